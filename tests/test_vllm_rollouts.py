"""vLLM in RL, colocated with the trainer, checked without vLLM where possible: the weights handed to
vLLM's `load_weights` (plain names, LoRA merged) on tiny Qwen2 / Llama models, the wake -> sample -> sleep
-> update -> push cycle of `rl_step` against a stand-in engine that records what it is asked, and the
one-line error when vLLM is missing. The tests that need vLLM itself (and a GPU) are skipped here."""

import copy
import os
import sys
import types

import pytest
import torch

pytest.importorskip(
    "transformers", reason="Hugging Face tests need transformers: pip install 'reasonlab[hf]'"
)

from reasonlab.config import load_config  # noqa: E402
from reasonlab.errors import ConfigError  # noqa: E402
from reasonlab.models import load_policy  # noqa: E402
from reasonlab.models.tiny_hf import build_tiny_hf  # noqa: E402
from reasonlab.rl.trainer import make_learner, prepare_policy, rl_step  # noqa: E402
from reasonlab.sampling import generate  # noqa: E402
from reasonlab.sampling.vllm import vllm_weights  # noqa: E402
from reasonlab.tasks import get_task  # noqa: E402
from runs import assert_one_line_error, reasonlab  # noqa: E402

ARCHS = ("qwen2", "llama")  # qwen2 ties its LM head to the input embedding, llama does not


def vllm_missing() -> bool:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return True
    return False


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {arch: build_tiny_hf(root / arch, arch, seed=1) for arch in ARCHS}


def plain_names(module: torch.nn.Module) -> set[str]:
    """The state dict's names vLLM loads: a tied LM head is the input embedding (vLLM ties it itself)."""
    names = set(module.state_dict())
    if module.config.tie_word_embeddings:
        names.discard("lm_head.weight")
    return names


# --- the weights vLLM loads --------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_a_plain_model_gives_its_own_parameters_under_their_own_names(folders, arch):
    module = load_policy(folders[arch]).module
    pairs = dict(vllm_weights(module))
    assert set(pairs) == plain_names(module)
    if arch == "llama":
        assert set(pairs) == set(module.state_dict())
    params = dict(module.named_parameters())
    for name, tensor in pairs.items():
        assert not tensor.requires_grad and tensor.data_ptr() == params[name].data_ptr(), name


def _lora_policy(folder):
    policy = load_policy(folder)
    policy.enable_lora(4, 8.0, 0.0)
    with torch.no_grad():  # B starts at 0 (the merge would be the base); give the adapters a value
        for name, p in policy.module.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(len(name)))
    return policy


@pytest.mark.parametrize("arch", ARCHS)
def test_a_lora_model_gives_the_merged_weights_under_the_plain_names(folders, arch):
    policy = _lora_policy(folders[arch])
    before = {n: p.detach().clone() for n, p in policy.module.named_parameters()}
    merged = copy.deepcopy(policy.module).merge_and_unload()
    pairs = dict(vllm_weights(policy.module))
    assert set(pairs) == plain_names(merged)
    expected = merged.state_dict()
    for name, tensor in pairs.items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=1e-6, msg=name)
    plain = load_policy(folders[arch]).module.state_dict()
    changed = [n for n in pairs if not torch.equal(pairs[n], plain[n])]
    assert changed and all("proj" in n for n in changed)  # the adapted linear layers, nothing else
    for name, p in policy.module.named_parameters():  # nothing was merged into the model
        assert torch.equal(p, before[name]), name


def test_merged_or_disabled_adapters_are_not_added_twice(folders):
    policy = _lora_policy(folders["qwen2"])
    merged = {n: t.clone() for n, t in vllm_weights(policy.module)}
    with policy.module.disable_adapter():
        base = dict(vllm_weights(policy.module))
    plain = load_policy(folders["qwen2"]).module.state_dict()
    assert all(torch.equal(base[n], plain[n]) for n in base)
    policy.module.merge_adapter()  # peft merged in place: the base weights already hold the adapters
    for name, tensor in vllm_weights(policy.module):
        torch.testing.assert_close(tensor, merged[name], rtol=0, atol=1e-6, msg=name)


# --- the colocated cycle, against a stand-in engine ---------------------------------------------


class FakeModel:
    """vLLM's model inside the engine: what `load_weights` received last."""

    def __init__(self):
        self.weights: dict[str, torch.Tensor] = {}

    def load_weights(self, weights):
        self.weights = {name: tensor.clone() for name, tensor in weights}
        return set(self.weights)


class FakeLLM:
    """A stand-in `vllm.LLM`: records its arguments and calls; samples tokens from a seeded generator
    and reports each with logprob -2."""

    built: list["FakeLLM"] = []
    tokenizer = None

    def __init__(self, **kwargs):
        self.kwargs, self.calls, self.model = kwargs, [], FakeModel()
        FakeLLM.built.append(self)

    def sleep(self, level=1):
        self.calls.append(("sleep", level))

    def wake_up(self, tags=None):
        self.calls.append(("wake_up", tuple(tags or ())))

    def apply_model(self, fn):
        self.calls.append(("load",))
        return [fn(self.model)]

    def reset_prefix_cache(self):
        self.calls.append(("reset",))

    def generate(self, prompts, params, use_tqdm=True):
        self.calls.append(("generate",))
        g = torch.Generator().manual_seed(params.seed)
        eos = params.stop_token_ids[0]
        results = []
        for _ in prompts:
            outputs = []
            for i in range(params.n):
                length = 1 + i % params.max_tokens
                ids = torch.randint(20, 200, (length,), generator=g).tolist()
                stopped = length < params.max_tokens
                if stopped:
                    ids[-1] = eos
                outputs.append(
                    types.SimpleNamespace(
                        token_ids=ids,
                        text=FakeLLM.tokenizer.decode(ids),
                        logprobs=[{t: types.SimpleNamespace(logprob=-2.0)} for t in ids],
                        finish_reason="stop" if stopped else "length",
                        stop_reason=None,
                    )
                )
            results.append(types.SimpleNamespace(outputs=outputs))
        return results


@pytest.fixture
def fake_vllm(monkeypatch):
    """`import vllm` finds the stand-in; the torch.distributed variables it sets are restored after."""
    module = types.ModuleType("vllm")
    module.__version__ = "0.11.0"
    module.LLM = FakeLLM
    module.SamplingParams = lambda **kw: types.SimpleNamespace(**kw)
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = lambda prompt_token_ids: {"prompt_token_ids": prompt_token_ids}
    module.inputs = inputs
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.inputs", inputs)
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    FakeLLM.built = []
    return module


def _rl_config(lora_r, sleep):
    return load_config(
        None,
        [
            "task.name=arith",
            "rl.prompts_per_step=2",
            "rl.group_size=4",
            "rl.max_new_tokens=8",
            "rl.overlong=penalty",  # completions of 1..8 tokens: rewards differ within each group
            "rl.overlong_buffer=8",
            "rl.lr=1e-2",
            "rl.tis_cap=2.0",
            f"hf.lora_r={lora_r}",
            "hf.lora_alpha=8",
            "hf.sampler=vllm",
            f"hf.vllm_sleep={sleep}",
            "hf.vllm_gpu_memory=0.25",
        ],
    )


@pytest.mark.parametrize("lora_r, sleep", [(0, True), (4, True), (0, False)])
def test_rl_steps_wake_sample_sleep_update_and_push(folders, fake_vllm, lora_r, sleep):
    cfg = _rl_config(lora_r, sleep)
    policy = load_policy(folders["qwen2"], options=cfg.model_options())
    FakeLLM.tokenizer = policy.tokenizer
    prepare_policy(cfg, policy)
    learner = make_learner(cfg, policy)
    task = get_task("arith")
    start = {n: t.clone() for n, t in vllm_weights(policy.module)}
    rows = [rl_step(cfg, learner, task, step) for step in range(2)]

    (llm,) = FakeLLM.built  # one engine, built at the first step
    assert llm.kwargs["model"] == str(folders["qwen2"])
    assert llm.kwargs["distributed_executor_backend"] == "external_launcher"
    assert llm.kwargs["enable_sleep_mode"] is sleep
    assert llm.kwargs["gpu_memory_utilization"] == 0.25
    assert llm.kwargs["enable_prefix_caching"] is True
    assert llm.kwargs["logprobs_mode"] == "processed_logprobs"
    assert os.environ["WORLD_SIZE"] == "1" and os.environ["MASTER_PORT"]

    push = [("load",), ("reset",)]
    sample_then_update = [("generate",), ("sleep", 2), ("wake_up", ("weights",)), *push]
    if sleep:
        expected = [*push, *sample_then_update, ("wake_up", ("kv_cache",)), *sample_then_update]
    else:
        expected = [*push, ("generate",), *push, ("generate",), *push]
    assert llm.calls == expected

    now = dict(vllm_weights(policy.module))
    assert set(llm.model.weights) == set(now) == plain_names(load_policy(folders["qwen2"]).module)
    assert all(torch.equal(llm.model.weights[n], now[n]) for n in now)  # the updated weights
    assert any(not torch.equal(start[n], now[n]) for n in now)
    for row in rows:  # the stand-in's logprobs (-2) are not the trainer's
        assert row["rollout/logp_diff"] > 0 and "rollout/tis_clip_frac" in row

    llm.calls.clear()  # evaluating the trained policy samples from the same engine, woken
    generate(policy, task.sample("test", 2, seed=0), 2, seed=0)
    assert llm.calls == ([("wake_up", ("kv_cache",))] if sleep else []) + [("generate",)]


def test_an_old_vllm_is_a_clear_error(folders, fake_vllm):
    fake_vllm.__version__ = "0.9.2"
    policy = load_policy(folders["qwen2"], options={"sampler": "vllm"})
    with pytest.raises(ConfigError, match=r"vllm 0\.9\.2 is too old.*>= 0\.10\.2"):
        prepare_policy(_rl_config(0, True), policy)


# --- without vLLM ------------------------------------------------------------------------------


@pytest.mark.skipif(
    not vllm_missing(), reason="vllm is installed here; this checks the message when it is not"
)
def test_rl_with_the_vllm_sampler_and_no_vllm_is_one_line(folders, tmp_path):
    policy = load_policy(folders["qwen2"], options={"sampler": "vllm"})
    with pytest.raises(ConfigError, match="hf.sampler: vllm is not installed"):
        prepare_policy(_rl_config(0, True), policy)
    out = tmp_path / "run"
    proc = reasonlab(
        "rl", "--base", str(folders["qwen2"]), "--out", str(out), "--set", "hf.sampler=vllm"
    )
    assert_one_line_error(proc, "hf.sampler", "vllm is not installed")
    assert not out.exists()  # refused before anything was written


# --- with vLLM (GPU machines) ------------------------------------------------------------------


def test_colocated_vllm_samples_from_the_pushed_weights(tmp_path):
    pytest.importorskip("vllm", reason="vLLM is not installed (GPU machines only)")
    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a GPU")
    folder = build_tiny_hf(tmp_path / "qwen2", "qwen2", seed=1, hidden=256)  # head size 64
    cfg = _rl_config(0, True)
    cfg.rl.max_new_tokens = 16
    policy = load_policy(folder, options=cfg.model_options())
    prepare_policy(cfg, policy)
    learner = make_learner(cfg, policy)
    task = get_task("arith")
    rows = [rl_step(cfg, learner, task, step) for step in range(3)]
    for row in rows:  # vLLM's bf16 kernels against the trainer's: close, not equal
        assert 0 <= row["rollout/logp_diff"] < 0.1, row
        assert row["rollout/kl_sampler"] < 0.01, row
    trained = policy.module.model.embed_tokens.weight.detach().float().cpu()  # (V, D)
    served = policy._vllm.llm.apply_model(
        lambda m: m.model.embed_tokens.weight[: trained.shape[0]].float().cpu()
    )[0]  # vLLM pads the vocabulary: its first V rows
    torch.testing.assert_close(served, trained, rtol=0, atol=0)  # the update reached the engine


def test_a_copy_of_the_policy_does_not_copy_its_engine(folders, fake_vllm):
    cfg = _rl_config(0, True)
    cfg.rl.beta = 0.1  # a frozen reference: a deep copy of the policy
    policy = load_policy(folders["qwen2"], options=cfg.model_options())
    FakeLLM.tokenizer = policy.tokenizer
    generate(policy, get_task("arith").sample("test", 1, seed=0), 1, seed=0)  # an evaluation engine
    learner = make_learner(cfg, policy)
    assert learner.reference._vllm is None and policy._vllm.llm is FakeLLM.built[0]
    rl_step(
        cfg, learner, get_task("arith"), 0
    )  # RL builds its colocated engine in the training process
    assert len(FakeLLM.built) == 2 and policy._vllm.colocated
    assert FakeLLM.built[1].kwargs["distributed_executor_backend"] == "external_launcher"
    assert "distributed_executor_backend" not in FakeLLM.built[0].kwargs
