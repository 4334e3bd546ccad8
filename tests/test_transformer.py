"""Tiny transformer: KV-cache decoding equals the full forward, left padding, init, checkpoints.

On the test device (tests/conftest.py: $REASONLAB_TEST_DEVICE), in float32 there too: these check the
cache, padding and grouping against the full forward, and float32 keeps their errors visible (bfloat16
rounding is as large as what they look for); the low-precision paths have their own tests."""

import json

import pytest
import torch

from reasonlab.errors import CheckpointError
from reasonlab.models import Policy, TinyPolicy, TransformerConfig, load_policy, save_policy

CFG = TransformerConfig(vocab_size=100, d_model=32, n_layers=2, n_heads=4, max_seq_len=32)
# what the policies here compute in (TinyPolicy.create's default), on any device
DTYPE = torch.float32


@pytest.fixture(scope="module")
def policy(device):
    return TinyPolicy.create(CFG, seed=0, device=device)


def padded_batch(lengths, total, seed=0, device="cpu"):
    """Random ids (B, total), left-padded: row i has `lengths[i]` real tokens at the end; on `device`."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 100, (len(lengths), total), generator=g)
    mask = torch.zeros(len(lengths), total, dtype=torch.long)
    for i, n in enumerate(lengths):
        mask[i, total - n :] = 1
        ids[i, : total - n] = 0
    return ids.to(device), mask.to(device)


def incremental(policy, ids, mask, prefill, chunk=1):
    """Logits from a prefill of `prefill` tokens, then `chunk` tokens per decode step."""
    cache = policy.new_cache(ids.shape[0], ids.shape[1])
    outs = [policy.decode_step(ids[:, :prefill], mask[:, :prefill], cache)]
    for t in range(prefill, ids.shape[1], chunk):
        end = min(t + chunk, ids.shape[1])
        outs.append(policy.decode_step(ids[:, t:end], mask[:, :end], cache))
    return torch.cat(outs, dim=1)


def test_config_defaults_and_validation():
    assert TransformerConfig(vocab_size=10, d_model=64).d_ff == 256
    assert TransformerConfig(vocab_size=10, d_model=64, d_ff=None).d_ff == 256
    with pytest.raises(ValueError):
        TransformerConfig(vocab_size=10, d_model=30, n_heads=4)


def test_policy_protocol_and_shapes(policy, device):
    assert isinstance(policy, Policy)
    ids, _ = padded_batch([5, 5], 5, device=device)
    assert policy.logits(ids).shape == (2, 5, 100)
    expected = 100 * 32 + 2 * (2 * 32 + 32 * 96 + 32 * 32 + 32 * 256 + 128 * 32) + 32
    assert policy.num_parameters() == expected


def test_kv_cache_matches_full_forward(policy, device, tolerance):
    ids, mask = padded_batch([12, 12, 12], 12, device=device)
    full = policy.logits(ids, mask)
    assert torch.allclose(incremental(policy, ids, mask, prefill=5), full, **tolerance(DTYPE))
    unmasked = policy.logits(ids)  # a mask of ones is no mask
    assert torch.allclose(unmasked, full, **tolerance(DTYPE, atol=1e-6))


def test_kv_cache_matches_full_forward_left_padded(policy, device, tolerance):
    ids, mask = padded_batch([14, 9, 4, 1], 14, seed=1, device=device)
    full = policy.logits(ids, mask)
    assert torch.isfinite(full).all()
    real = mask.bool()
    for prefill, chunk in [(4, 1), (5, 3), (14, 1)]:
        inc = incremental(policy, ids, mask, prefill, chunk)
        assert torch.allclose(inc[real], full[real], **tolerance(DTYPE)), (prefill, chunk)


def test_prefill_of_repeated_prompts_matches_full_forward(policy, device, tolerance):
    ids, mask = padded_batch([9, 5, 9, 5], 9, seed=4, device=device)
    ids[2], ids[3] = ids[0], ids[1]  # rows 2, 3 repeat rows 0, 1 (as n samples of a problem do)
    full = policy.logits(ids, mask)
    real = mask.bool()
    inc = incremental(policy, ids, mask, prefill=6)
    assert torch.allclose(inc[real], full[real], **tolerance(DTYPE))


def test_left_padding_does_not_change_a_row(policy, device, tolerance):
    ids, mask = padded_batch([10, 6], 10, seed=2, device=device)
    full = policy.logits(ids, mask)
    alone = policy.logits(ids[1:, 4:])  # row 1 without its padding
    assert torch.allclose(full[1, 4:], alone[0], **tolerance(DTYPE))


def test_positions_past_max_seq_len_extend_rope(policy, device, tolerance):
    ids, mask = padded_batch([40], 40, seed=3, device=device)
    assert torch.allclose(
        incremental(policy, ids, mask, prefill=30), policy.logits(ids, mask), **tolerance(DTYPE)
    )


def test_decoding_follows_weight_updates(device, tolerance):
    p = TinyPolicy.create(CFG, seed=0, device=device)
    ids, mask = padded_batch([6, 4], 6, device=device)
    before = incremental(p, ids, mask, prefill=3)
    opt = torch.optim.SGD(p.module.parameters(), lr=0.1)
    p.logits(ids, mask).square().mean().backward()
    opt.step()
    after = incremental(p, ids, mask, prefill=3)  # a new cache snapshots the updated weights
    real = mask.bool()
    assert not torch.allclose(after[real], before[real], atol=1e-4)
    assert torch.allclose(after[real], p.logits(ids, mask)[real], **tolerance(DTYPE))


def test_live_caches_never_share_memory(policy):
    a, b = policy.new_cache(2, 8), policy.new_cache(2, 8)
    assert a.kv.data_ptr() != b.kv.data_ptr()
    ptr = a.kv.data_ptr()
    del a
    c = policy.new_cache(1, 8)  # a's memory is free again and reused
    assert c.kv.data_ptr() == ptr


def test_cache_overflow_is_an_error(policy, device):
    cache = policy.new_cache(1, 4)
    ones = torch.ones(1, 5, dtype=torch.long, device=device)
    with pytest.raises(ValueError):
        policy.decode_step(ones, ones, cache)


def test_init_is_deterministic_and_leaves_global_rng_alone(device):
    state = torch.random.get_rng_state()
    a = TinyPolicy.create(CFG, seed=7, device=device)
    b = TinyPolicy.create(CFG, seed=7, device=device)
    assert torch.equal(torch.random.get_rng_state(), state)
    c = TinyPolicy.create(CFG, seed=8, device=device)
    for (name, pa), pb, pc in zip(
        a.module.named_parameters(), b.module.parameters(), c.module.parameters()
    ):
        assert torch.equal(pa, pb), name
        if "norm" not in name:
            assert not torch.equal(pa, pc), name


def test_gradients_reach_every_parameter(policy, device):
    ids, mask = padded_batch([8, 5], 8, device=device)
    policy.logits(ids, mask)[mask.bool()].logsumexp(-1).sum().backward()
    for name, p in policy.module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    policy.module.zero_grad(set_to_none=True)


def test_untied_embeddings(device, tolerance):
    p = TinyPolicy.create(CFG.model_copy(update={"tie_embeddings": False}), seed=0, device=device)
    assert p.num_parameters() == TinyPolicy.create(CFG, seed=0).num_parameters() + 100 * 32
    ids, mask = padded_batch([6, 3], 6, device=device)
    real = mask.bool()
    assert torch.allclose(
        incremental(p, ids, mask, 3)[real], p.logits(ids, mask)[real], **tolerance(DTYPE)
    )


def load_here(directory, device):
    """A saved tiny policy on the test device, computing in float32 as the created ones do."""
    return load_policy(directory, device, options={"device": str(device), "dtype": "float32"})


def test_save_load_round_trip(tmp_path, policy, device):
    policy.save(tmp_path / "ckpt")
    assert sorted(f.name for f in (tmp_path / "ckpt").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["kind"] == "tiny"
    loaded = load_here(tmp_path / "ckpt", device)
    assert isinstance(loaded, TinyPolicy) and loaded.config == policy.config
    assert loaded.tokenizer.to_dict() == policy.tokenizer.to_dict()
    ids, mask = padded_batch([7, 3], 7, device=device)
    assert torch.equal(loaded.logits(ids, mask), policy.logits(ids, mask))
    assert all(p.requires_grad for p in loaded.module.parameters())
    save_policy(loaded, tmp_path / "ckpt")  # overwriting in place works and leaves no temp files
    assert len(list((tmp_path / "ckpt").iterdir())) == 2


def _saved(tmp_path, policy):
    d = tmp_path / "ckpt"
    save_policy(policy, d)
    return d


@pytest.mark.parametrize(
    "corrupt, fragment",
    [
        (lambda d: d.rename(d.with_name("gone")), "ckpt"),
        (lambda d: (d / "model.safetensors").unlink(), "model.safetensors"),
        (lambda d: (d / "config.json").unlink(), "config.json"),
        (lambda d: (d / "config.json").write_text("{not json"), "config.json"),
        (lambda d: (d / "config.json").write_text('{"kind": "gpt5"}'), "gpt5"),
        (
            lambda d: (d / "config.json").write_text('{"kind": "tiny", "model": {"d_model": 8}}'),
            "config.json",
        ),
        (
            lambda d: (d / "model.safetensors").write_bytes(
                (d / "model.safetensors").read_bytes()[:100]
            ),
            "model.safetensors",
        ),
        (
            lambda d: (d / "model.safetensors").write_bytes(
                (d / "model.safetensors").read_bytes()[:-64]
            ),
            "model.safetensors",
        ),
    ],
    ids=[
        "no-folder",
        "no-weights",
        "no-config",
        "bad-json",
        "unknown-kind",
        "bad-config",
        "truncated-header",
        "truncated-data",
    ],
)
def test_load_errors_are_one_line_checkpoint_errors(tmp_path, policy, corrupt, fragment):
    d = _saved(tmp_path, policy)
    corrupt(d)
    with pytest.raises(CheckpointError) as err:
        load_policy(d)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_wrong_shapes_are_a_checkpoint_error(tmp_path, policy):
    d = _saved(tmp_path, policy)
    meta = json.loads((d / "config.json").read_text())
    meta["model"]["d_ff"] = 64
    (d / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="model.safetensors") as err:
        load_policy(d)
    assert "\n" not in str(err.value)


def _grouped_batch(
    prompt_lengths=(6, 4, 1), width=6, group_size=3, completion_len=5, seed=0, device="cpu"
):
    g = torch.Generator().manual_seed(seed)
    prompt_ids = torch.zeros(len(prompt_lengths), width, dtype=torch.long)
    prompt_mask = torch.zeros_like(prompt_ids)
    for i, n in enumerate(prompt_lengths):
        prompt_ids[i, width - n :] = torch.randint(4, 60, (n,), generator=g)
        prompt_mask[i, width - n :] = 1
    group = torch.arange(len(prompt_lengths)).repeat_interleave(group_size)
    completions = torch.randint(4, 60, (len(group), completion_len), generator=g)
    return tuple(t.to(device) for t in (prompt_ids, prompt_mask, completions, group))


def test_grouped_forward_equals_the_plain_forward_and_its_gradients(policy, device, tolerance):
    from reasonlab.models.grouped import grouped_completion_logits

    prompt_ids, prompt_mask, completions, group = _grouped_batch(device=device)
    width, length = prompt_ids.shape[1], completions.shape[1]
    ids = torch.cat([prompt_ids[group], completions], 1)
    mask = torch.cat([prompt_mask[group], torch.ones_like(completions)], 1)
    weights = torch.randn(len(group), length, policy.module.cfg.vocab_size).to(device)

    policy.module.zero_grad(set_to_none=True)
    plain = policy.logits(ids, mask)[:, width - 1 : width - 1 + length]  # (B, L, V)
    (plain * weights).sum().backward()
    plain_grads = {n: p.grad.clone() for n, p in policy.module.named_parameters()}
    policy.module.zero_grad()
    grouped = grouped_completion_logits(policy.module, prompt_ids, prompt_mask, completions, group)
    (grouped * weights).sum().backward()
    assert torch.allclose(grouped, plain, **tolerance(DTYPE))
    for name, p in policy.module.named_parameters():
        assert torch.allclose(p.grad, plain_grads[name], **tolerance(DTYPE)), name
    shuffled = grouped_completion_logits(
        policy.module, prompt_ids, prompt_mask, completions, group.flip(0)
    )
    assert not torch.allclose(
        shuffled, plain, atol=1e-3
    )  # each completion really reads its own prompt
    policy.module.zero_grad(set_to_none=True)


def test_policy_completion_logits_is_the_grouped_forward(policy, device):
    from reasonlab.models.grouped import grouped_completion_logits

    prompt_ids, prompt_mask, completions, group = _grouped_batch(seed=1, device=device)
    completion_mask = torch.ones_like(completions)
    completion_mask[0, 3:] = 0  # right padding is not read: a token never sees the padding after it
    got = policy.completion_logits(prompt_ids, prompt_mask, completions, completion_mask, group)
    assert torch.equal(
        got, grouped_completion_logits(policy.module, prompt_ids, prompt_mask, completions, group)
    )
    assert got.requires_grad
    assert policy.max_seq_len == CFG.max_seq_len
    assert policy.critic_body() is policy.module


def test_one_block_serves_every_forward(device):
    """The full, cached and grouped forwards all run transformer.block_forward, once per layer."""
    from unittest import mock

    from reasonlab.models import grouped, transformer

    p = TinyPolicy.create(CFG, seed=0, device=device)
    ids, mask = padded_batch([6, 3], 6, device=device)
    prompt_ids, prompt_mask, completions, group = _grouped_batch(device=device)
    runs = {
        "full": lambda: p.logits(ids, mask),
        "cached": lambda: incremental(p, ids, mask, prefill=4),
        "grouped": lambda: grouped.grouped_completion_logits(
            p.module, prompt_ids, prompt_mask, completions, group
        ),
    }
    calls = {
        "full": 2,
        "cached": 2 * 3,
        "grouped": 2,
    }  # layers x forward calls (one prefill + two steps)
    for name, run in runs.items():
        with mock.patch.object(
            transformer, "block_forward", wraps=transformer.block_forward
        ) as spy:
            run()
        assert spy.call_count == calls[name], name


def _imports(path):
    """Modules of reasonlab.models that the file imports anywhere (top level or inside functions)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n == "reasonlab.models" or n.startswith("reasonlab.models.")}
    return found


def test_no_module_of_models_imports_one_that_imports_it_back():
    from pathlib import Path

    import reasonlab.models

    folder = Path(reasonlab.models.__file__).parent
    modules = {f"reasonlab.models.{f.stem}": f for f in folder.glob("*.py") if f.stem != "__init__"}
    graph = {
        name: _imports(path) & {*modules, "reasonlab.models"} for name, path in modules.items()
    }
    assert (
        "reasonlab.models.tiny_policy" in graph["reasonlab.models.checkpoint"]
    )  # the parse sees imports
    assert "reasonlab.models.hf" in graph["reasonlab.models.checkpoint"]  # ... in functions too

    def reaches(start, goal, seen=()):
        return any(
            n == goal or (n not in seen and n in graph and reaches(n, goal, (*seen, n)))
            for n in graph.get(start, ())
        )

    for name in graph:
        assert "reasonlab.models" not in graph[name], f"{name} imports the package that imports it"
        assert not reaches(name, name), f"{name} imports a module that imports it back"
