"""The run's device and dtype (models/precision.py) and the tiny transformer in bfloat16 on CPU: autocast
forwards close to float32 and returned in float32, bf16 decoding (bf16 weight copies, bf16 KV cache) close
to the full forward, gradients reaching the float32 weights, pretraining and an RL step in bf16, and the
config reaching every loaded model."""

import math

import pytest
import torch

from reasonlab.config import config_from_dict
from reasonlab.errors import ConfigError
from reasonlab.models import CharTokenizer, TinyPolicy, TransformerConfig, load_policy
from reasonlab.models.precision import BF16_MIN_WIDTH, cpu_has_bf16, resolve_device, tiny_dtype
from reasonlab.pretrain.trainer import masked_loss, pretrain
from reasonlab.rl.trainer import make_learner, rl_step
from reasonlab.sampling import generate
from reasonlab.tasks import get_task

TOK = CharTokenizer()
CPU = torch.device("cpu")


def policy(d_model=64, seed=0):
    cfg = TransformerConfig(vocab_size=TOK.vocab_size, d_model=d_model, n_layers=2, n_heads=2)
    return TinyPolicy.create(cfg, seed=seed)


def batch(b=4, t=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, TOK.vocab_size, (b, t), generator=g)
    mask = torch.ones(b, t, dtype=torch.long)
    mask[1, :5] = 0  # a left-padded row
    return ids, mask


def test_auto_dtype_follows_the_measured_rule():
    assert (
        tiny_dtype("auto", CPU, 128) == torch.float32
    )  # the default width gains nothing from bf16
    wide = tiny_dtype("auto", CPU, BF16_MIN_WIDTH)
    assert wide == (torch.bfloat16 if cpu_has_bf16() else torch.float32)
    assert tiny_dtype("bfloat16", CPU, 32) == torch.bfloat16
    assert tiny_dtype("float32", CPU, 4096) == torch.float32


def test_bad_device_or_dtype_is_one_clear_line():
    with pytest.raises(ConfigError, match="dtype"):
        tiny_dtype("int8", CPU, 128)
    with pytest.raises(ConfigError, match="device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no GPU"):
            resolve_device("cuda")
    with pytest.raises(ConfigError, match="dtype"):
        config_from_dict({"dtype": "fp8"})


def test_bf16_forward_is_close_to_float32_and_returned_in_float32():
    p = policy()
    ids, mask = batch()
    ref = p.logits(ids, mask)
    p.place(CPU, torch.bfloat16)
    low = p.logits(ids, mask)
    real = mask.bool()
    assert low.dtype == torch.float32 and p.module.embed.weight.dtype == torch.float32
    assert not torch.equal(low, ref)  # it did compute in bf16
    torch.testing.assert_close(low[real], ref[real], atol=5e-2, rtol=5e-2)
    hidden = p.module(ids, mask, hidden=True)
    assert hidden.dtype == torch.float32 and hidden.shape == (4, 20, 64)


def test_bf16_decoding_uses_bf16_weights_and_cache_and_matches_the_forward():
    p = policy().place(CPU, torch.bfloat16)
    ids, mask = batch(t=12)
    full = p.logits(ids, mask)  # autocast forward, (B, T, V)
    cache = p.new_cache(4, 16)
    assert cache.kv.dtype == torch.bfloat16 and cache.head.dtype == torch.bfloat16
    assert all(w.qkv.dtype == torch.bfloat16 for w in cache.weights)
    pre = p.decode_step(ids[:, :8], mask[:, :8], cache)  # (B, 8, V)
    steps = [p.decode_step(ids[:, t : t + 1], mask[:, : t + 1], cache) for t in range(8, 12)]
    got = torch.cat([pre, *steps], 1).float()
    real = mask.bool()
    torch.testing.assert_close(got[real], full[real], atol=6e-2, rtol=6e-2)


def test_bf16_greedy_sampling_mostly_agrees_with_float32():
    p = policy(seed=3)
    task = get_task("arith", n_operands=3, digits=1, operators="+-")
    problems = task.sample("test", 16, seed=0)
    ref = generate(p, problems, 1, seed=0, temperature=0.0, max_new_tokens=12)
    p.place(CPU, torch.bfloat16)
    low = generate(p, problems, 1, seed=0, temperature=0.0, max_new_tokens=12)
    same = sum(a.token_ids[:4] == b.token_ids[:4] for a, b in zip(ref, low))
    assert same >= 12, same  # rounding can flip a near-tie, rarely
    assert all(math.isfinite(x) and x <= 0 for r in low for x in r.logprobs)


def test_bf16_gradients_reach_the_float32_weights():
    p = policy().place(CPU, torch.bfloat16)
    ids, mask = batch()
    loss = masked_loss(p.logits(ids, mask)[:, :-1], ids[:, 1:], mask[:, 1:].float())
    loss.backward()
    grads = [q.grad for q in p.module.parameters()]
    assert all(
        g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads
    )
    assert sum(float(g.abs().sum()) for g in grads) > 0


def tiny_run_cfg(**top):
    return config_from_dict(
        {
            "seed": 0,
            **top,
            "task": {"name": "arith", "knobs": {"n_operands": 2, "digits": 1, "operators": "+"}},
            "model": {"d_model": 32, "n_layers": 1, "n_heads": 2, "max_seq_len": 64},
            "pretrain": {
                "token_budget": 8 * 64 * 30,
                "batch_size": 8,
                "seq_len": 64,
                "corpus_docs": 500,
                "eval_every": 10,
                "checkpoint_every": 10,
                "warmup_steps": 3,
            },
            "rl": {
                "steps": 2,
                "prompts_per_step": 4,
                "group_size": 4,
                "max_new_tokens": 8,
                "rewards": {
                    "random": 1.0
                },  # varies within every group, so the update is never empty
            },
        }
    )


def test_bf16_pretraining_learns_like_float32(tmp_path):
    losses = {}
    for name in ("float32", "bfloat16"):
        cfg = tiny_run_cfg(dtype=name)
        out = pretrain(cfg, tmp_path / name)
        assert out.module.compute_dtype == getattr(torch, name)
        assert out.module.embed.weight.dtype == torch.float32  # master weights stay float32
        rows = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        losses[name] = [
            float(r.split('"train/loss": ')[1].split(",")[0]) for r in rows if "train/loss" in r
        ]
    for name, curve in losses.items():
        assert curve[-1] < curve[0] - 0.5, (name, curve)  # both learn
    assert abs(losses["bfloat16"][-1] - losses["float32"][-1]) < 0.15, losses


def test_the_run_config_places_every_loaded_model(tmp_path):
    policy().save(tmp_path / "base")
    cfg = tiny_run_cfg(dtype="bfloat16", device="cpu", decode="eager")
    loaded = load_policy(tmp_path / "base", options=cfg.model_options())
    assert loaded.module.compute_dtype == torch.bfloat16 and loaded.decode == "eager"
    assert load_policy(tmp_path / "base").module.compute_dtype == torch.float32  # auto at width 64


def test_an_rl_step_in_bf16_returns_finite_metrics():
    cfg = tiny_run_cfg(dtype="bfloat16")
    p = TinyPolicy.create(
        TransformerConfig(
            vocab_size=TOK.vocab_size, d_model=32, n_layers=1, n_heads=2, max_seq_len=64
        )
    ).place(CPU, torch.bfloat16)
    before = [q.detach().clone() for q in p.module.parameters()]
    metrics = rl_step(
        cfg, make_learner(cfg, p), get_task("arith", n_operands=2, digits=1, operators="+"), 0
    )
    assert all(math.isfinite(v) for v in metrics.values() if isinstance(v, float)), metrics
    assert any(not torch.equal(a, b) for a, b in zip(before, p.module.parameters()))


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU"
)
def test_a_gpu_asked_for_where_there_is_none_is_one_line_and_writes_nothing(tmp_path):
    from runs import assert_one_line_error, reasonlab

    out = tmp_path / "run"
    proc = reasonlab("run", "--set", "device=cuda", "--out", str(out))
    assert_one_line_error(proc, "device: cuda asked for, but torch sees no GPU")
    assert not out.exists()
    proc = reasonlab("run", "--set", "device=tpu", "--out", str(out))
    assert_one_line_error(proc, "device: unknown device 'tpu'")
    assert not out.exists()


def test_a_ppo_critic_sits_on_its_policy_device():
    from reasonlab.rl.critic import Critic

    p = policy().place(CPU, torch.bfloat16)
    critic = Critic.from_policy(p)
    assert critic.value_head.weight.device == p.module.embed.weight.device
    ids, mask = batch()
    values = critic(ids, mask)  # (B, T)
    assert values.shape == (4, 20) and values.dtype == torch.float32
