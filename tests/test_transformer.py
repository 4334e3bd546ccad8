"""Tiny transformer: KV-cache decoding equals the full forward, left padding, init, checkpoints."""

import json

import pytest
import torch

from reasonlab.errors import CheckpointError
from reasonlab.models import Policy, TinyPolicy, TransformerConfig, load_policy, save_policy

CFG = TransformerConfig(vocab_size=100, d_model=32, n_layers=2, n_heads=4, max_seq_len=32)


@pytest.fixture(scope="module")
def policy():
    return TinyPolicy.create(CFG, seed=0)


def padded_batch(lengths, total, seed=0):
    """Random ids (B, total), left-padded: row i has `lengths[i]` real tokens at the end."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 100, (len(lengths), total), generator=g)
    mask = torch.zeros(len(lengths), total, dtype=torch.long)
    for i, n in enumerate(lengths):
        mask[i, total - n :] = 1
        ids[i, : total - n] = 0
    return ids, mask


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


def test_policy_protocol_and_shapes(policy):
    assert isinstance(policy, Policy)
    ids, _ = padded_batch([5, 5], 5)
    assert policy.logits(ids).shape == (2, 5, 100)
    expected = 100 * 32 + 2 * (2 * 32 + 32 * 96 + 32 * 32 + 32 * 256 + 128 * 32) + 32
    assert policy.num_parameters() == expected


def test_kv_cache_matches_full_forward(policy):
    ids, mask = padded_batch([12, 12, 12], 12)
    full = policy.logits(ids, mask)
    assert torch.allclose(incremental(policy, ids, mask, prefill=5), full, atol=1e-5)
    assert torch.allclose(policy.logits(ids), full, atol=1e-6)  # mask of ones == no mask


def test_kv_cache_matches_full_forward_left_padded(policy):
    ids, mask = padded_batch([14, 9, 4, 1], 14, seed=1)
    full = policy.logits(ids, mask)
    assert torch.isfinite(full).all()
    real = mask.bool()
    for prefill, chunk in [(4, 1), (5, 3), (14, 1)]:
        inc = incremental(policy, ids, mask, prefill, chunk)
        assert torch.allclose(inc[real], full[real], atol=1e-5), (prefill, chunk)


def test_prefill_of_repeated_prompts_matches_full_forward(policy):
    ids, mask = padded_batch([9, 5, 9, 5], 9, seed=4)
    ids[2], ids[3] = ids[0], ids[1]  # rows 2, 3 repeat rows 0, 1 (as n samples of a problem do)
    full = policy.logits(ids, mask)
    real = mask.bool()
    assert torch.allclose(incremental(policy, ids, mask, prefill=6)[real], full[real], atol=1e-5)


def test_left_padding_does_not_change_a_row(policy):
    ids, mask = padded_batch([10, 6], 10, seed=2)
    full = policy.logits(ids, mask)
    alone = policy.logits(ids[1:, 4:])  # row 1 without its padding
    assert torch.allclose(full[1, 4:], alone[0], atol=1e-5)


def test_positions_past_max_seq_len_extend_rope(policy):
    ids, mask = padded_batch([40], 40, seed=3)
    assert torch.allclose(
        incremental(policy, ids, mask, prefill=30), policy.logits(ids, mask), atol=1e-5
    )


def test_decoding_follows_weight_updates():
    p = TinyPolicy.create(CFG, seed=0)
    ids, mask = padded_batch([6, 4], 6)
    before = incremental(p, ids, mask, prefill=3)
    opt = torch.optim.SGD(p.module.parameters(), lr=0.1)
    p.logits(ids, mask).square().mean().backward()
    opt.step()
    after = incremental(p, ids, mask, prefill=3)  # a new cache snapshots the updated weights
    real = mask.bool()
    assert not torch.allclose(after[real], before[real], atol=1e-4)
    assert torch.allclose(after[real], p.logits(ids, mask)[real], atol=1e-5)


def test_live_caches_never_share_memory(policy):
    a, b = policy.new_cache(2, 8), policy.new_cache(2, 8)
    assert a.kv.data_ptr() != b.kv.data_ptr()
    ptr = a.kv.data_ptr()
    del a
    c = policy.new_cache(1, 8)  # a's memory is free again and reused
    assert c.kv.data_ptr() == ptr


def test_cache_overflow_is_an_error(policy):
    cache = policy.new_cache(1, 4)
    with pytest.raises(ValueError):
        policy.decode_step(
            torch.ones(1, 5, dtype=torch.long), torch.ones(1, 5, dtype=torch.long), cache
        )


def test_init_is_deterministic_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = TinyPolicy.create(CFG, seed=7), TinyPolicy.create(CFG, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)
    c = TinyPolicy.create(CFG, seed=8)
    for (name, pa), pb, pc in zip(
        a.module.named_parameters(), b.module.parameters(), c.module.parameters()
    ):
        assert torch.equal(pa, pb), name
        if "norm" not in name:
            assert not torch.equal(pa, pc), name


def test_gradients_reach_every_parameter(policy):
    ids, mask = padded_batch([8, 5], 8)
    policy.logits(ids, mask)[mask.bool()].logsumexp(-1).sum().backward()
    for name, p in policy.module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    policy.module.zero_grad(set_to_none=True)


def test_untied_embeddings():
    p = TinyPolicy.create(CFG.model_copy(update={"tie_embeddings": False}), seed=0)
    assert p.num_parameters() == TinyPolicy.create(CFG, seed=0).num_parameters() + 100 * 32
    ids, mask = padded_batch([6, 3], 6)
    assert torch.allclose(
        incremental(p, ids, mask, 3)[mask.bool()], p.logits(ids, mask)[mask.bool()], atol=1e-5
    )


def test_save_load_round_trip(tmp_path, policy):
    policy.save(tmp_path / "ckpt")
    assert sorted(f.name for f in (tmp_path / "ckpt").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["kind"] == "tiny"
    loaded = load_policy(tmp_path / "ckpt")
    assert isinstance(loaded, TinyPolicy) and loaded.config == policy.config
    assert loaded.tokenizer.to_dict() == policy.tokenizer.to_dict()
    ids, mask = padded_batch([7, 3], 7)
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


def _grouped_batch(prompt_lengths=(6, 4, 1), width=6, group_size=3, completion_len=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    prompt_ids = torch.zeros(len(prompt_lengths), width, dtype=torch.long)
    prompt_mask = torch.zeros_like(prompt_ids)
    for i, n in enumerate(prompt_lengths):
        prompt_ids[i, width - n :] = torch.randint(4, 60, (n,), generator=g)
        prompt_mask[i, width - n :] = 1
    group = torch.arange(len(prompt_lengths)).repeat_interleave(group_size)
    completions = torch.randint(4, 60, (len(group), completion_len), generator=g)
    return prompt_ids, prompt_mask, completions, group


def test_grouped_forward_equals_the_plain_forward_and_its_gradients(policy):
    from reasonlab.models.grouped import grouped_completion_logits

    prompt_ids, prompt_mask, completions, group = _grouped_batch()
    width, length = prompt_ids.shape[1], completions.shape[1]
    ids = torch.cat([prompt_ids[group], completions], 1)
    mask = torch.cat([prompt_mask[group], torch.ones_like(completions)], 1)
    weights = torch.randn(len(group), length, policy.module.cfg.vocab_size)

    policy.module.zero_grad(set_to_none=True)
    plain = policy.logits(ids, mask)[:, width - 1 : width - 1 + length]  # (B, L, V)
    (plain * weights).sum().backward()
    plain_grads = {n: p.grad.clone() for n, p in policy.module.named_parameters()}
    policy.module.zero_grad()
    grouped = grouped_completion_logits(policy.module, prompt_ids, prompt_mask, completions, group)
    (grouped * weights).sum().backward()
    assert torch.allclose(grouped, plain, atol=1e-5)
    for name, p in policy.module.named_parameters():
        assert torch.allclose(p.grad, plain_grads[name], atol=1e-5), name
    shuffled = grouped_completion_logits(
        policy.module, prompt_ids, prompt_mask, completions, group.flip(0)
    )
    assert not torch.allclose(
        shuffled, plain, atol=1e-3
    )  # each completion really reads its own prompt
    policy.module.zero_grad(set_to_none=True)


def test_policy_completion_logits_is_the_grouped_forward(policy):
    from reasonlab.models.grouped import grouped_completion_logits

    prompt_ids, prompt_mask, completions, group = _grouped_batch(seed=1)
    completion_mask = torch.ones_like(completions)
    completion_mask[0, 3:] = 0  # right padding is not read: a token never sees the padding after it
    got = policy.completion_logits(prompt_ids, prompt_mask, completions, completion_mask, group)
    assert torch.equal(
        got, grouped_completion_logits(policy.module, prompt_ids, prompt_mask, completions, group)
    )
    assert got.requires_grad
    assert policy.max_seq_len == CFG.max_seq_len
    assert policy.critic_body() is policy.module


def test_one_block_serves_every_forward():
    """The full, cached and grouped forwards all run transformer.block_forward, once per layer."""
    from unittest import mock

    from reasonlab.models import grouped, transformer

    p = TinyPolicy.create(CFG, seed=0)
    ids, mask = padded_batch([6, 3], 6)
    prompt_ids, prompt_mask, completions, group = _grouped_batch()
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
