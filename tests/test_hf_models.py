"""Hugging Face policies with no downloaded weights: tiny Qwen2 and Llama models built locally (random
weights, a byte-level BPE tokenizer trained on the spot) run through the same protocol, samplers, RL
and judges as the tiny transformer, on the test device (tests/conftest.py: $REASONLAB_TEST_DEVICE) in
the dtype `auto` gives there."""

import json

import pytest
import torch

pytest.importorskip(
    "transformers", reason="Hugging Face tests need transformers: pip install 'reasonlab[hf]'"
)

from reasonlab.config import load_config  # noqa: E402
from reasonlab.errors import CheckpointError, ConfigError  # noqa: E402
from reasonlab.models import Policy, load_policy  # noqa: E402
from reasonlab.models.hf import HFPolicy  # noqa: E402
from reasonlab.models.tiny_hf import build_tiny_hf  # noqa: E402
from reasonlab.sampling import generate  # noqa: E402
from reasonlab.tasks import get_task  # noqa: E402
from runs import reasonlab

ARCHS = ("qwen2", "llama")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {arch: build_tiny_hf(root / arch, arch, seed=1) for arch in ARCHS}


def load(folder, device, **options):
    """The policy in `folder` on the test device (`options`: more `hf` fields, e.g. dtype, sampler)."""
    return load_policy(folder, options={"device": str(device), **options})


def one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("arch", ARCHS)
def test_loads_as_a_policy_with_its_prompt_format(folders, arch, device, auto_dtype):
    policy = load(folders[arch], device)
    assert isinstance(policy, HFPolicy) and isinstance(policy, Policy)
    weight = next(policy.module.parameters())
    assert weight.dtype == auto_dtype  # float32 on CPU, the GPU's half type on a GPU
    assert weight.device.type == device.type
    tok = policy.tokenizer
    ids = tok.encode_prompt("What is 2+3?")
    if arch == "qwen2":  # the chat template: a user turn, then the assistant's generation prompt
        assert (
            tok.tok.decode(ids)
            == "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"
        )
        assert set(tok.eos_ids) == {
            tok.tok.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")
        }
    else:  # no template: the tokenizer's BOS and the plain prompt
        assert ids[0] == tok.bos_id and tok.decode(ids) == "What is 2+3?"
    assert tok.decode(tok.encode("x = \\frac{1}{2}\n")) == "x = \\frac{1}{2}\n"


@pytest.mark.parametrize("arch", ARCHS)
def test_kv_cache_decoding_equals_the_full_forward_with_left_padding(folders, arch, device):
    # float32 on every device: a cache or padding error moves these random-weight logits (std ~0.15)
    # by ~1e-2 to 1e-1, as much as bfloat16 rounding does; in float32 the two paths agree to ~1e-6
    policy = load(folders[arch], device, dtype="float32")
    tok = policy.tokenizer
    prompts = [tok.encode_prompt("Compute 12+7 and explain."), tok.encode_prompt("hi")]
    width = max(map(len, prompts))
    ids = torch.tensor([[tok.pad_id] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    cache = policy.new_cache(2, width + 6)
    step_logits = [policy.decode_step(ids, mask, cache)[:, -1]]
    for _ in range(5):
        nxt = step_logits[-1].argmax(-1, keepdim=True)
        ids, mask = torch.cat([ids, nxt], 1), torch.cat([mask, torch.ones_like(nxt)], 1)
        step_logits.append(policy.decode_step(nxt, mask, cache)[:, -1])
    with torch.no_grad():
        full = policy.logits(ids, mask)  # (B, T, V)
    for k, logits in enumerate(step_logits):
        torch.testing.assert_close(logits, full[:, width - 1 + k], atol=1e-4, rtol=1e-4)
    # the padded row equals the same row run alone
    alone = policy.logits(ids[1:, width - len(prompts[1]) :])
    torch.testing.assert_close(alone[0, -1], full[1, -1], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_builtin_sampler_and_generate_agree_greedily(folders, arch, device, auto_dtype, tolerance):
    task = get_task("arith")
    problems = task.sample("test", 3, seed=0)
    builtin = generate(
        load(folders[arch], device), problems, 2, seed=0, max_new_tokens=12, temperature=0.0
    )
    hf = generate(
        load(folders[arch], device, sampler="hf"),
        problems,
        2,
        seed=0,
        max_new_tokens=12,
        temperature=0.0,
    )
    assert [r.token_ids for r in builtin] == [r.token_ids for r in hf]
    assert [r.text for r in builtin] == [r.text for r in hf]
    for a, b in zip(builtin, hf):
        assert a.finish_reason == b.finish_reason
        assert a.logprobs == pytest.approx(b.logprobs, abs=tolerance(auto_dtype, atol=1e-4)["atol"])


def test_sampling_is_seeded_and_stops_at_any_eos(folders, device):
    policy = load(folders["qwen2"], device)
    problems = get_task("arith").sample("test", 2, seed=0)
    a = generate(policy, problems, 4, seed=3, max_new_tokens=24, temperature=1.5)
    b = generate(policy, problems, 4, seed=3, max_new_tokens=24, temperature=1.5)
    assert [r.token_ids for r in a] == [r.token_ids for r in b]
    eos = set(policy.tokenizer.eos_ids)
    for r in a:
        assert all(t not in eos for t in r.token_ids[:-1])
        assert (r.finish_reason == "eos") == (r.token_ids[-1] in eos)


def _rl_config(tmp_path, lora_r, device):
    return load_config(
        None,
        [
            f"hf.device={device}",
            "task.name=arith",
            "rl.steps=2",
            "rl.prompts_per_step=2",
            "rl.group_size=4",
            "rl.max_new_tokens=16",
            "rl.overlong=penalty",
            "rl.overlong_buffer=12",
            "rl.lr=1e-2",
            f"hf.lora_r={lora_r}",
            "hf.lora_alpha=8",
        ],
    )


@pytest.mark.parametrize("lora_r", [0, 4])
def test_grpo_steps_train_the_model_or_only_its_lora_adapters(folders, tmp_path, lora_r, device):
    from reasonlab.rl.trainer import train_rl

    cfg = _rl_config(tmp_path, lora_r, device)
    before = {k: v.clone() for k, v in load(folders["qwen2"], device).module.state_dict().items()}
    policy = train_rl(cfg, tmp_path / "run", folders["qwen2"])
    rows = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 2 and any(
        r.get("rl/grad_norm", 0) > 0 for r in rows
    )  # the length penalty: a signal
    trainable = {n for n, p in policy.module.named_parameters() if p.requires_grad}
    if lora_r:
        assert trainable and all("lora_" in n for n in trainable)
        base = policy.module.get_base_model().state_dict()
        for name, value in base.items():  # frozen base weights (the adapters sit beside them)
            if "lora_" not in name:
                key = name.replace("base_layer.", "")
                torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    saved = load(tmp_path / "run" / "rl", device)  # a plain Hugging Face folder, LoRA merged in
    assert isinstance(saved, HFPolicy) and not saved.lora
    after = saved.module.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed and all(
        "proj" in k or "lm_head" in k or "embed" in k or "norm" in k for k in changed
    )


def test_rl_on_a_hugging_face_model_resumes_exactly(folders, tmp_path, device):
    from reasonlab.rl.trainer import train_rl

    def cfg(steps):
        return load_config(
            None,
            [
                f"hf.device={device}",
                "task.name=arith",
                f"rl.steps={steps}",
                "rl.prompts_per_step=2",
                "rl.group_size=4",
                "rl.max_new_tokens=12",
                "rl.overlong=penalty",
                "rl.overlong_buffer=10",
                "rl.checkpoint_every=1",
                "rl.lr=1e-2",
                "hf.lora_r=4",
            ],
        )

    train_rl(
        cfg(2), tmp_path / "resumed", folders["llama"]
    )  # stops after step 2, as a killed run would
    resumed = train_rl(cfg(4), tmp_path / "resumed", folders["llama"])
    straight = train_rl(cfg(4), tmp_path / "straight", folders["llama"])
    keys = ("reward/mean", "rl/loss", "rl/grad_norm", "rl/length_mean")
    rows = {
        name: [
            {k: r.get(k) for k in keys}
            for r in map(json.loads, (tmp_path / name / "metrics.jsonl").read_text().splitlines())
        ]
        for name in ("resumed", "straight")
    }
    assert len(rows["straight"]) == 4 and rows["resumed"] == rows["straight"]
    a, b = resumed.module.state_dict(), straight.module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_training_switches_that_cannot_apply_are_refused(folders, tmp_path, device):
    from reasonlab.models import TinyPolicy, TransformerConfig
    from reasonlab.rl.trainer import prepare_policy

    cfg = _rl_config(tmp_path, 4, device)
    with pytest.raises(ConfigError, match="hf.lora_r"):
        prepare_policy(cfg, TinyPolicy.create(TransformerConfig(vocab_size=100), seed=0))
    try:
        import vllm  # noqa: F401
    except ImportError:  # RL with vLLM needs vLLM: without it, one line before anything is written
        with pytest.raises(ConfigError, match="hf.sampler: vllm is not installed"):
            prepare_policy(cfg, load(folders["qwen2"], device, sampler="vllm"))


def test_judges_score_through_a_hugging_face_backbone(
    folders, tmp_path, device, auto_dtype, tolerance
):
    from reasonlab.config import JudgeConfig
    from reasonlab.judges.data import eval_records
    from reasonlab.judges.likelihood import LikelihoodJudge
    from reasonlab.judges.models import LearnedJudge, load_judge
    from reasonlab.judges.train import train_reward_model

    policy = load(folders["qwen2"], device)
    task = get_task("arith")
    records = eval_records(task, task.sample("train", 24, 0), 0)
    zero_shot = LikelihoodJudge(policy).score(records)
    assert len(zero_shot) == len(records)
    assert all(
        len(s.steps) == len(r.steps) and all(0 < p <= 1 for p in s.steps)
        for s, r in zip(zero_shot, records)
    )
    judge = LearnedJudge.from_backbone(policy.backbone(), policy.tokenizer, "prm")
    history = train_reward_model(
        judge,
        records[:36],
        records[36:],
        JudgeConfig(max_steps=12, eval_every=6, batch_size=12),
        seed=0,
    )
    assert history.summary(records[:36], records[36:])["steps"] == 12
    scores = judge.score(records[:6])
    judge.save(tmp_path / "prm")
    reloaded = load_judge(tmp_path / "prm")  # on the CPU, each part in the dtype it was saved in
    assert reloaded.tokenizer.to_dict() == policy.tokenizer.to_dict()
    reloaded.model.to(device)
    for a, b in zip(scores, reloaded.score(records[:6])):
        assert a.steps == pytest.approx(b.steps, abs=tolerance(auto_dtype)["atol"])


def test_dtype_option(folders, device):
    policy = load(folders["llama"], device, dtype="bfloat16")
    assert next(policy.module.parameters()).dtype == torch.bfloat16


def test_vllm_sampler_without_vllm_is_a_clear_error(folders, device):
    pytest.importorskip("reasonlab")
    try:
        import vllm  # noqa: F401

        pytest.skip("vllm is installed here; this checks the message when it is not")
    except ImportError:
        pass
    policy = load(folders["qwen2"], device, sampler="vllm")
    with pytest.raises(ConfigError, match="vllm is not installed"):
        generate(policy, get_task("arith").sample("test", 1, seed=0), 1, seed=0)


def test_incomplete_model_folders_and_hub_ids_are_one_line_errors(folders, tmp_path):
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((folders["qwen2"] / "config.json").read_text())
    with pytest.raises(CheckpointError, match="no model weights"):
        load_policy(no_weights)
    no_tok = tmp_path / "no_tokenizer"
    no_tok.mkdir()
    for name in ("config.json", "model.safetensors"):
        (no_tok / name).write_bytes((folders["qwen2"] / name).read_bytes())
    with pytest.raises(CheckpointError, match="no tokenizer"):
        load_policy(no_tok)
    one_line_error(
        reasonlab("eval", "--model", str(no_tok), "--task", "arith", cwd=tmp_path),
        "no tokenizer",
        str(no_tok),
    )
    one_line_error(
        reasonlab("eval", "--model", "Qwen/Qwen2.5-0.5B", "--task", "arith", cwd=tmp_path),
        "Qwen/Qwen2.5-0.5B",
        "local folders only",
    )
    assert not (tmp_path / "runs").exists()


def _shipped_data(monkeypatch):
    """The benchmark files shipped with the package, found with no --data-dir and no $REASONLAB_DATA_DIR."""
    from reasonlab.tasks.mathdata import resolve_data_dir

    monkeypatch.delenv("REASONLAB_DATA_DIR", raising=False)
    return resolve_data_dir()


@pytest.mark.parametrize(("arch", "task"), [("qwen2", "aime24"), ("llama", "gsm8k")])
def test_eval_of_a_local_model_on_a_benchmark_keeps_every_answer_and_verdict(
    folders, tmp_path, monkeypatch, arch, task, cli_device
):
    _shipped_data(monkeypatch)  # no --data-dir: the command finds the shipped files itself
    out = tmp_path / "eval.json"
    proc = reasonlab(
        "eval",
        "--model",
        str(folders[arch]),
        "--task",
        task,
        "-n",
        "3",
        "--problems",
        "4",
        "--max-new-tokens",
        "12",
        "--out",
        str(out),
        "--device",
        str(cli_device),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    result = json.loads(out.read_text())
    assert result["task"] == task and result["n_problems"] == 4 and result["n_samples"] == 3
    assert set(result["summary"]) >= {"pass@1", "pass@3", "maj@2", "malformed_rate"}
    for p in result["problems"]:
        assert len(p["answers"]) == len(p["outcomes"]) == 3 and p["answer"]
        assert set(p["outcomes"]) <= {"correct", "wrong", "malformed"}
        for sample, outcome in zip(p["samples"], p["outcomes"]):
            assert sample["outcome"] == outcome


def test_grpo_on_a_math_benchmark_with_lora(folders, tmp_path, monkeypatch, device):
    from reasonlab.rl.trainer import train_rl

    data = _shipped_data(monkeypatch)
    cfg = load_config(
        None,
        [
            f"hf.device={device}",
            "task.name=gsm8k",
            f"task.knobs={{data_dir: '{data}', test_fraction: 0.5}}",
            "rl.steps=2",
            "rl.prompts_per_step=2",
            "rl.group_size=4",
            "rl.max_new_tokens=16",
            "rl.overlong=penalty",
            "rl.overlong_buffer=12",
            "hf.lora_r=4",
        ],
    )
    policy = train_rl(cfg, tmp_path / "run", folders["llama"])
    rows = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in rows] == [1, 2] and all(r["rl/pass_rate"] == 0.0 for r in rows)
    assert policy.lora and (tmp_path / "run" / "rl" / "model.safetensors").is_file()


def test_judge_commands_train_and_measure_a_prm_on_a_hugging_face_base(
    folders, tmp_path, cli_device
):
    from reasonlab.judges.data import eval_records
    from reasonlab.judges.files import write_records

    task = get_task("arith")
    data = tmp_path / "steps.jsonl"
    write_records(data, eval_records(task, task.sample("train", 60, 0), 0))
    proc = reasonlab(
        "judge",
        "train",
        "--base",
        str(folders["qwen2"]),
        "--head",
        "prm",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "prm"),
        "--set",
        "judge.max_steps=6",
        "--set",
        "judge.eval_every=3",
        "--set",
        "judge.batch_size=16",
        "--set",
        f"hf.device={cli_device}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert (tmp_path / "prm" / "tokenizer.json").is_file()
    proc = reasonlab(
        "judge",
        "eval",
        "--judge",
        str(tmp_path / "prm"),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "eval.json"),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    metrics = json.loads((tmp_path / "eval.json").read_text())["metrics"]
    assert 0.0 <= metrics["f1"] <= 1.0 and 0.0 <= metrics["step_auroc"] <= 1.0


def test_sufficiency_report_on_a_hugging_face_model(folders, tmp_path, cli_device):
    # no device option: the command's `auto` device (cpu here when the test device is cpu)
    pytest.importorskip(
        "reasoning_gym", reason="the gym task needs reasoning-gym: pip install 'reasonlab[gym]'"
    )
    out = tmp_path / "suff"
    proc = reasonlab(
        "sufficiency",
        "--model",
        str(folders["qwen2"]),
        "--task",
        "gym:chain_sum",
        "-n",
        "4",
        "--problems",
        "3",
        "--best-of",
        "2",
        "--control-steps",
        "1",
        "--max-new-tokens",
        "8",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    result = json.loads((out / "sufficiency.json").read_text())
    assert (
        result["task"] == "gym:chain_sum" and result["n"] == 4 and list(result["levels"]) == ["0"]
    )
    level = result["levels"]["0"]
    assert level["learnable"] + level["never"] + level["always"] == pytest.approx(1.0)
    assert (
        result["judge"]["name"] == "likelihood"
        and len(result["control"]["outcome"]["pass_rate"]) == 1
    )
    assert (out / "sufficiency.md").is_file() and (out / "plots" / "coverage.png").is_file()


def test_search_runs_on_a_hugging_face_model(folders, device):
    """Every search method runs on a Hugging Face policy (continuations re-encode their prefix)."""
    from reasonlab.judges.likelihood import LikelihoodJudge
    from reasonlab.search.base import SearchContext, SearchSettings, get_method

    policy = load(folders["qwen2"], device)
    task = get_task("arith", n_operands=3)
    context = SearchContext(
        policy, task, LikelihoodJudge(policy), SearchSettings(max_new_tokens=16)
    )
    problems = task.sample("test", 3, 0)
    for name in ("majority", "best_of_n", "weighted_best_of_n", "beam", "dvts", "mcts"):
        outcomes = get_method(name)(context, problems, 4, 0)
        assert [o.problem_id for o in outcomes] == [p.id for p in problems], name
        assert all(o.compute.generated_tokens > 0 for o in outcomes), name
