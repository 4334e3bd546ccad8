"""The static decoding path (sampling/static.py) against the eager loop: the tiny transformer and tiny
random-weight Hugging Face Llama, Qwen2, Qwen3 and Mistral models give the same rollouts (greedy ids
equal; sampled ids equal and log-probs within 1e-4, float32) with EOS, stop strings, left padding, several
batches and batches padded to a bucket. On CPU the step runs uncaptured; the CUDA tests (skipped without a
GPU) compare graph replay with the eager loop on the device."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from reasonlab.errors import ConfigError
from reasonlab.models import CharTokenizer, TinyPolicy, TransformerConfig
from reasonlab.sampling import generate, static
from reasonlab.types import Problem

CFG = TransformerConfig(vocab_size=100, d_model=32, n_layers=2, n_heads=4, max_seq_len=64)
PROMPTS = ["1+1=", "12+345=", "7", "Q: 99-3?\n"]  # different lengths: left padding
HF_PROMPTS = ["What is 2+3?", "x", "Compute 37+48 and explain each step.", "mate in 1"]
SETTINGS = {
    "greedy": dict(temperature=0.0),
    "sampled": dict(temperature=1.0),
    "nucleus": dict(temperature=0.7, top_p=0.9),
}
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graph tests need a GPU")


def problems(prompts):
    return [
        Problem(id=f"p{i}", task="test", prompt=p, answer="", difficulty=1)
        for i, p in enumerate(prompts)
    ]


class ManyEosTokenizer(CharTokenizer):
    """A character tokenizer whose EOS is any of three ids, so random models end rows often."""

    eos_ids = (2, 20, 30)


def tiny(decode="static", device="cpu", tokenizer=None):
    policy = TinyPolicy.create(CFG, seed=0, tokenizer=tokenizer, device=device)
    policy.decode = decode
    return policy


def run(policy, decode, prompts, **kwargs):
    policy.decode = decode
    return generate(policy, problems(prompts), **kwargs)


def assert_same(eager, static_, atol=1e-4):
    assert [r.token_ids for r in static_] == [r.token_ids for r in eager]
    assert [r.text for r in static_] == [r.text for r in eager]
    assert [r.finish_reason for r in static_] == [r.finish_reason for r in eager]
    assert [r.mask for r in static_] == [r.mask for r in eager]
    for a, b in zip(eager, static_):
        assert b.logprobs == pytest.approx(a.logprobs, abs=atol)


def engine_shapes(policy):
    entry = static._ENGINES.get(policy)
    return set() if entry is None else set(entry.engines)


def test_buckets():
    batches = {1: 1, 2: 2, 3: 4, 5: 8, 8: 8, 129: 256, 512: 512, 513: 1024, 1100: 1536}
    assert {n: static.batch_bucket(n) for n in batches} == batches
    lengths = {1: 64, 64: 64, 65: 128, 300: 320}
    assert {n: static.length_bucket(n) for n in lengths} == lengths


def test_mode_choice_on_cpu():
    cpu = torch.device("cpu")
    policy = tiny("auto")
    assert not static.uses_static(policy, cpu)  # auto: static only on a GPU
    assert static.uses_static(policy, torch.device("cuda"))
    policy.decode = "static"
    assert static.uses_static(policy, cpu)
    policy.decode = "eager"
    assert not static.uses_static(policy, torch.device("cuda"))
    policy.decode = "fast"
    with pytest.raises(ConfigError, match="decode"):
        static.uses_static(policy, cpu)
    del policy.decode  # a policy without the attribute: auto
    assert not static.uses_static(policy, cpu)


def test_auto_on_cpu_decodes_eagerly():
    policy = tiny("auto")
    generate(policy, problems(PROMPTS), n=2, seed=0, max_new_tokens=4)
    assert engine_shapes(policy) == set()


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_tiny_static_equals_eager(setting):
    policy = tiny(tokenizer=ManyEosTokenizer())
    kwargs = dict(n=3, seed=4, max_new_tokens=24, batch_size=5, stop=["ab", "!", "\n"])
    kwargs |= SETTINGS[setting]
    eager = run(policy, "eager", PROMPTS, **kwargs)
    out = run(policy, "static", PROMPTS, **kwargs)
    assert_same(eager, out)
    # 12 rows in batches of 5, 5, 2: buckets 8 (5 rows padded) and 2; width 10 + 24 new -> M = 64
    assert engine_shapes(policy) == {(8, 64), (2, 64)}
    if setting != "greedy":
        assert {r.finish_reason for r in out} == {"eos", "stop", "length"}


def test_tiny_engines_are_reused_and_follow_weight_updates():
    policy = tiny(tokenizer=ManyEosTokenizer())
    kwargs = dict(n=2, seed=1, max_new_tokens=16, temperature=1.0, stop=["!"])
    first = run(policy, "static", PROMPTS, **kwargs)
    engine = static._ENGINES[policy].engines[(8, 64)]
    assert engine.captures == 1
    longer = ["a much longer prompt than the others", "b", "cc", "d"]  # 8 rows, M = 64 again
    other = run(policy, "static", longer, **kwargs)
    assert run(policy, "static", PROMPTS, **kwargs) == first
    assert static._ENGINES[policy].engines[(8, 64)] is engine and engine.captures == 1
    assert engine_shapes(policy) == {(8, 64)}
    assert_same(run(policy, "eager", longer, **kwargs), other)
    with torch.no_grad():  # an in-place update, as an optimizer step makes
        for p in policy.module.parameters():
            p.mul_(1.5)
    assert_same(run(policy, "eager", PROMPTS, **kwargs), run(policy, "static", PROMPTS, **kwargs))
    assert static._ENGINES[policy].engines[(8, 64)] is engine
    static.release(policy)
    assert engine_shapes(policy) == set()


def test_tiny_one_new_token_and_every_row_ending_early():
    policy = tiny(tokenizer=ManyEosTokenizer())
    for kwargs in (dict(max_new_tokens=1), dict(max_new_tokens=40, stop=list("0123456789"))):
        kwargs |= dict(n=2, seed=2, temperature=1.0)
        assert_same(
            run(policy, "eager", PROMPTS, **kwargs), run(policy, "static", PROMPTS, **kwargs)
        )


@pytest.mark.parametrize("every", [1, 3, 100])
def test_results_do_not_depend_on_the_check_interval(monkeypatch, every):
    policy = tiny(tokenizer=ManyEosTokenizer())
    kwargs = dict(n=3, seed=5, max_new_tokens=20, temperature=1.0, stop=["ab", "!", "\n"])
    eager = run(policy, "eager", PROMPTS, **kwargs)
    monkeypatch.setattr(static, "CHECK_EVERY", every)
    assert_same(eager, run(policy, "static", PROMPTS, **kwargs))


class ScriptedPolicy:
    """Not a model with a static path: `static` must decode it eagerly."""

    def __init__(self):
        self.tokenizer = CharTokenizer()
        self.module = torch.nn.Linear(1, 1)
        self.decode = "static"


def test_policies_without_a_static_path_decode_eagerly():
    assert not static.uses_static(ScriptedPolicy(), torch.device("cpu"))


# ---- Hugging Face models


@pytest.fixture(scope="module")
def hf_policies(tmp_path_factory):
    """Tiny random-weight models: Llama and Qwen2 (chat template, two EOS ids) from their folders,
    Qwen3 and Mistral (sliding window 4096: longer than any cache here) built from configs."""
    pytest.importorskip("transformers", reason="Hugging Face tests need transformers")
    from reasonlab.models import load_policy
    from reasonlab.models.tiny_hf import build_tiny_hf

    root = tmp_path_factory.mktemp("hf_static")
    policies = {
        arch: load_policy(build_tiny_hf(root / arch, arch, seed=1), options={"decode": "static"})
        for arch in ("llama", "qwen2")
    }
    policies["qwen3"] = hf_policy("qwen3", head_dim=16)
    policies["mistral"] = hf_policy("mistral")
    return policies


def hf_policy(arch, **overrides):
    """An HFPolicy around a random `arch` model built from its config, with the Llama test tokenizer."""
    tf = pytest.importorskip("transformers", reason="Hugging Face tests need transformers")

    from reasonlab.models.hf import HFPolicy, HFTokenizer
    from reasonlab.models.tiny_hf import train_tokenizer

    tok = train_tokenizer("llama")
    common = dict(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    configs = {"qwen3": tf.Qwen3Config, "mistral": tf.MistralConfig, "gpt2": tf.GPT2Config}
    if arch == "gpt2":
        common = dict(vocab_size=len(tok), n_embd=64, n_layer=2, n_head=4, n_positions=256)
    torch.manual_seed(1)
    module = tf.AutoModelForCausalLM.from_config(configs[arch](**common, **overrides)).eval()
    policy = HFPolicy(module, HFTokenizer(tok, [tok.eos_token_id]))
    policy.decode = "static"
    return policy


def with_more_eos(policy):
    """The same policy with 24 more EOS ids, so random weights end some rows early."""
    tok = policy.tokenizer
    tok.eos_ids = tuple(dict.fromkeys([*tok.eos_ids, *range(40, 64)]))
    return policy


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3", "mistral"])
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_hugging_face_static_equals_eager(hf_policies, arch, setting):
    policy = with_more_eos(hf_policies[arch])
    static.release(policy)
    kwargs = dict(n=3, seed=3, max_new_tokens=16, batch_size=5, stop=["\n", " t"])
    kwargs |= SETTINGS[setting]
    eager = run(policy, "eager", HF_PROMPTS, **kwargs)
    out = run(policy, "static", HF_PROMPTS, **kwargs)
    assert_same(eager, out)
    assert {b for b, _ in engine_shapes(policy)} == {8, 2}  # 12 rows: 5 (padded to 8), 5, 2
    if setting == "sampled":
        assert len({r.finish_reason for r in out}) >= 2


def test_hugging_face_batches_padded_to_buckets(hf_policies):
    policy = hf_policies["qwen2"]
    static.release(policy)
    kwargs = dict(n=3, seed=0, max_new_tokens=8, batch_size=5, temperature=1.0)
    assert_same(
        run(policy, "eager", HF_PROMPTS[:3], **kwargs),
        run(policy, "static", HF_PROMPTS[:3], **kwargs),
    )
    assert {b for b, _ in engine_shapes(policy)} == {8, 4}  # 9 rows: 5 (padded to 8) and 4


def test_a_short_sliding_window_decodes_eagerly():
    policy = hf_policy("mistral", sliding_window=8)
    kwargs = dict(n=2, seed=0, max_new_tokens=12, temperature=1.0)
    assert static.uses_static(policy, torch.device("cpu"))
    out = run(policy, "static", HF_PROMPTS, **kwargs)
    assert engine_shapes(policy) == set()  # no static cache with a window shorter than it
    assert out == run(policy, "eager", HF_PROMPTS, **kwargs)


def test_an_unsupported_architecture_decodes_eagerly():
    policy = hf_policy("gpt2")
    assert not static.uses_static(policy, torch.device("cpu"))
    kwargs = dict(n=2, seed=0, max_new_tokens=6, temperature=1.0)
    assert run(policy, "static", HF_PROMPTS, **kwargs) == run(policy, "eager", HF_PROMPTS, **kwargs)
    assert engine_shapes(policy) == set()


# ---- what CUDA graph capture needs, checked on CPU

SYNC_OPS = {
    "_local_scalar_dense",  # .item(), bool(tensor), int(tensor)
    "is_nonzero",
    "item",
    "equal",
    "nonzero",
    "masked_select",
    "unique",
    "_unique",
    "_unique2",
    "unique_consecutive",
    "unique_dim",
    "repeat_interleave",
    "lift_fresh",  # torch.tensor(data): a host-to-device copy on a GPU
}


class SyncSpy(TorchDispatchMode):
    """Records every op that would wait for the device or copy from the host (not allowed in a graph)."""

    def __init__(self):
        super().__init__()
        self.hits = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in SYNC_OPS or (name.startswith("index") and _bool_index(args)):
            self.hits.append(str(func))
        return func(*args, **(kwargs or {}))


def _bool_index(args):
    """Whether an index op got a boolean mask (its output size depends on the data)."""
    indices = args[1] if len(args) > 1 and isinstance(args[1], list | tuple) else ()
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices)


@pytest.fixture
def spied_steps(monkeypatch):
    """Run every static decode step under SyncSpy; yields the list of ops it recorded."""
    hits, step = [], static._Engine._step

    def spied(self, temperature, top_p):
        with SyncSpy() as spy:
            step(self, temperature, top_p)
        hits.extend(spy.hits)

    monkeypatch.setattr(static._Engine, "_step", spied)
    return hits


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_the_tiny_decode_step_never_syncs(spied_steps, setting):
    policy = tiny(tokenizer=ManyEosTokenizer())
    kwargs = dict(n=2, seed=0, max_new_tokens=6, stop=["!"]) | SETTINGS[setting]
    assert_same(run(policy, "eager", PROMPTS, **kwargs), run(policy, "static", PROMPTS, **kwargs))
    assert static._ENGINES[policy].engines  # the static path ran
    assert spied_steps == []


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3", "mistral"])
def test_the_hugging_face_decode_step_never_syncs(hf_policies, spied_steps, arch):
    policy = hf_policies[arch]
    static.release(policy)
    run(policy, "static", HF_PROMPTS, n=1, seed=0, max_new_tokens=4, temperature=0.7, top_p=0.9)
    assert static._ENGINES[policy].engines
    assert spied_steps == []


# ---- CUDA graphs (run with a GPU, e.g. REASONLAB_TEST_DEVICE=cuda)


@CUDA
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_tiny_graph_replay_equals_eager_on_cuda(setting):
    policy = tiny(device="cuda", tokenizer=ManyEosTokenizer())
    kwargs = dict(n=3, seed=4, max_new_tokens=24, batch_size=5, stop=["ab", "!", "\n"])
    kwargs |= SETTINGS[setting]
    eager = run(policy, "eager", PROMPTS, **kwargs)
    out = run(policy, "static", PROMPTS, **kwargs)
    assert_same(eager, out)
    engines = static._ENGINES[policy].engines
    assert set(engines) == {(8, 64), (2, 64)}
    assert all(
        isinstance(g, torch.cuda.CUDAGraph) for e in engines.values() for g in e.graphs.values()
    )
    assert_same(out, run(policy, "static", PROMPTS, **kwargs))  # replayed again, not recaptured
    assert all(e.captures == 1 for e in engines.values())


@CUDA
@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_hugging_face_graph_replay_equals_eager_on_cuda(tmp_path, arch):
    from reasonlab.models import load_policy
    from reasonlab.models.tiny_hf import build_tiny_hf

    folder = build_tiny_hf(tmp_path / arch, arch, seed=1)
    policy = with_more_eos(load_policy(folder, options={"device": "cuda", "dtype": "float32"}))
    for setting in SETTINGS.values():
        kwargs = dict(n=3, seed=3, max_new_tokens=24, batch_size=5, stop=["\n", " t"]) | setting
        assert_same(
            run(policy, "eager", HF_PROMPTS, **kwargs), run(policy, "static", HF_PROMPTS, **kwargs)
        )
    engines = static._ENGINES[policy].engines
    assert engines and all(
        isinstance(g, torch.cuda.CUDAGraph) for e in engines.values() for g in e.graphs.values()
    )


@CUDA
def test_hugging_face_bf16_graph_replay_gives_well_formed_rollouts(tmp_path):
    from reasonlab.models import load_policy
    from reasonlab.models.tiny_hf import build_tiny_hf

    folder = build_tiny_hf(tmp_path / "qwen2", "qwen2", seed=1)
    policy = load_policy(folder, options={"device": "cuda", "dtype": "bfloat16", "decode": "auto"})
    assert static.uses_static(policy, torch.device("cuda"))
    out = generate(policy, problems(HF_PROMPTS * 40), 4, seed=0, max_new_tokens=64, temperature=1.0)
    assert len(out) == 640 and static._ENGINES[policy].engines
    eos = set(policy.tokenizer.eos_ids)
    for r in out:
        n = len(r.token_ids)
        assert 1 <= n <= 64 and len(r.logprobs) == n and all(lp <= 0 for lp in r.logprobs)
        assert (r.finish_reason == "eos") == (r.token_ids[-1] in eos)
