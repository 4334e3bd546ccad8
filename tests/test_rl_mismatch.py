"""Trainer-vs-sampler mismatch and TIS: the weights and metrics on hand-made tensors, ~0 mismatch when the
builtin sampler's fp32 logprobs come from the trained model itself, a measured one when they are shifted,
and RL runs with `rl.tis_cap` that log it and weight the policy loss."""

import json
import math

import pytest
import torch

import reasonlab.rl.rollouts as rollouts_module
from reasonlab.rl.losses import ObjectiveParams, get_aggregation, get_policy_loss, policy_objective
from reasonlab.rl.mismatch import mismatch_metrics, sampler_logprobs, tis_weights
from reasonlab.rl.rollouts import make_batch
from reasonlab.rl.trainer import make_learner, rl_step, train_rl
from reasonlab.tasks import get_task
from reasonlab.types import Rollout
from test_rl_trainer import tiny_cfg, tiny_policy

TASK = get_task("arith", n_operands=2, digits=1, operators="+")

# 2 sequences x 3 tokens; row 0 has 2 real tokens, row 1 has 3; padding holds garbage
TRAINER = torch.tensor([[math.log(0.5), math.log(0.2), 5.0], [math.log(0.9), -1.0, -2.0]])
SAMPLER = torch.tensor([[math.log(0.25), math.log(0.4), -7.0], [math.log(0.3), -1.0, -2.5]])
MASK = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
# pi_trainer / pi_sampler on the real tokens: 2, 0.5, 3, 1, e^0.5
RATIOS = torch.tensor([[2.0, 0.5, 0.0], [3.0, 1.0, math.exp(0.5)]])


def close(actual, expected, atol=1e-6):
    torch.testing.assert_close(
        actual, torch.as_tensor(expected, dtype=actual.dtype), atol=atol, rtol=0
    )


def test_tis_weights_are_the_ratio_truncated_at_the_cap_and_carry_no_gradient():
    trainer = TRAINER.clone().requires_grad_(True)
    w = tis_weights(trainer, SAMPLER, MASK, cap=2.0)  # (B, L)
    close(w, torch.minimum(RATIOS, torch.tensor(2.0)) * MASK)
    assert not w.requires_grad
    close(tis_weights(TRAINER, SAMPLER, MASK, cap=10.0), RATIOS)


def test_tis_weights_clamp_extreme_log_ratios_and_ignore_unscored_tokens():
    trainer = torch.tensor([[0.0, 0.0, 0.0]])
    sampler = torch.tensor([[-1000.0, float("nan"), 1000.0]])  # log ratios 1000, NaN, -1000
    w = tis_weights(trainer, sampler, torch.ones(1, 3), cap=5.0)
    close(w, [[5.0, 1.0, math.exp(-20.0)]])
    assert torch.isfinite(w).all()


def test_mismatch_metrics_on_hand_made_logprobs():
    m = mismatch_metrics(TRAINER, SAMPLER, MASK, cap=1.5)
    r = RATIOS[MASK.bool()]  # (5,)
    assert m["rollout/logp_diff"] == pytest.approx(float(r.log().abs().mean()), abs=1e-6)
    k3 = r - 1 - r.log()  # KL(sampler || trainer) estimate on the sampler's tokens
    assert m["rollout/kl_sampler"] == pytest.approx(float(k3.mean()), abs=1e-6)
    assert m["rollout/ratio_max"] == pytest.approx(3.0, rel=1e-6)
    assert m["rollout/tis_clip_frac"] == pytest.approx(3 / 5)  # 2, 3 and e^0.5 are truncated
    assert "rollout/tis_clip_frac" not in mismatch_metrics(TRAINER, SAMPLER, MASK)


def test_mismatch_metrics_are_zero_for_equal_logprobs_and_skip_nan_and_empty_masks():
    m = mismatch_metrics(TRAINER, TRAINER.clone(), MASK)
    assert m == {"rollout/logp_diff": 0.0, "rollout/kl_sampler": 0.0, "rollout/ratio_max": 1.0}
    sampler = TRAINER.clone()
    sampler[1, 1] = float("nan")
    assert mismatch_metrics(TRAINER, sampler, MASK)["rollout/logp_diff"] == 0.0
    assert mismatch_metrics(TRAINER, SAMPLER, torch.zeros_like(MASK)) == {}


def test_sampler_logprobs_are_laid_out_like_the_batch():
    rollouts = [
        Rollout("a", (1, 2), (5,), "x", (-0.5,), (1,), "eos"),
        Rollout("a", (1, 2), (5, 6, 7), "xyz", (-0.1, -0.2, -0.3), (1, 1, 1), "length"),
    ]
    out = sampler_logprobs(rollouts, 4)
    close(out, [[-0.5, 0.0, 0.0, 0.0], [-0.1, -0.2, -0.3, 0.0]])


def test_importance_weights_multiply_the_surrogate_before_aggregation():
    torch.manual_seed(0)
    logp = torch.randn(2, 3, requires_grad=True)
    old, adv = logp.detach() + 0.1 * torch.randn(2, 3), torch.randn(2, 3)
    w = torch.tensor([[0.5, 2.0, 1.0], [1.0, 0.0, 3.0]])
    agg, params = get_aggregation("seq_mean_token_mean"), ObjectiveParams()
    loss, terms = policy_objective(logp, old, None, adv, MASK, agg, 3, params, is_weights=w)
    surrogate, _ = get_policy_loss("ppo_clip")(logp, old, adv, MASK, 0.2, 0.28)
    close(loss, agg(surrogate * w, MASK, 3))
    close(terms.policy, surrogate * w)
    plain, _ = policy_objective(logp, old, None, adv, MASK, agg, 3, params)
    ones, _ = policy_objective(
        logp, old, None, adv, MASK, agg, 3, params, is_weights=torch.ones(2, 3)
    )
    close(ones, plain)
    (grad,) = torch.autograd.grad(loss, logp)
    (plain_grad,) = torch.autograd.grad(agg(surrogate, MASK, 3), logp)
    close(grad, plain_grad * w)  # the weights scale each token's gradient


def _shift_sampler_logprobs(monkeypatch, shift):
    """The builtin sampler, its reported logprobs shifted by `shift` nats (a sampler that disagrees)."""
    real = rollouts_module.generate

    def shifted(*args, **kwargs):
        return [
            Rollout(
                r.problem_id,
                r.prompt_ids,
                r.token_ids,
                r.text,
                tuple(lp + shift for lp in r.logprobs),
                r.mask,
                r.finish_reason,
            )
            for r in real(*args, **kwargs)
        ]

    monkeypatch.setattr(rollouts_module, "generate", shifted)


def test_builtin_sampler_in_fp32_matches_the_trainer():
    cfg = tiny_cfg()
    learner = make_learner(cfg, tiny_policy())
    for step in range(2):
        m = rl_step(cfg, learner, TASK, step)
        assert m["rollout/logp_diff"] < 1e-4, m
        assert m["rollout/kl_sampler"] < 1e-7 and m["rollout/ratio_max"] == pytest.approx(
            1, abs=1e-4
        )


def test_a_disagreeing_sampler_shows_in_the_metrics(monkeypatch):
    _shift_sampler_logprobs(
        monkeypatch, -0.3
    )  # the sampler gave its tokens e^-0.3 of the trainer's
    cfg = tiny_cfg(tis_cap=1.2)
    m = rl_step(cfg, make_learner(cfg, tiny_policy()), TASK, 0)
    assert m["rollout/logp_diff"] == pytest.approx(0.3, abs=1e-3)
    assert m["rollout/kl_sampler"] == pytest.approx(math.exp(0.3) - 1 - 0.3, abs=1e-3)
    assert m["rollout/ratio_max"] == pytest.approx(math.exp(0.3), abs=1e-3)
    assert m["rollout/tis_clip_frac"] == 1.0  # e^0.3 > 1.2 on every token


def test_tis_scales_the_update_by_the_truncated_ratio(monkeypatch):
    """On-policy, so the PPO ratio is 1 and the gradient is linear in the weights: a sampler that gave
    every token e^0.3 x the trainer's probability makes every weight e^-0.3 and the gradient with it."""
    plain_cfg, tis_cfg = tiny_cfg(), tiny_cfg(tis_cap=2.0)
    plain = rl_step(plain_cfg, make_learner(plain_cfg, tiny_policy()), TASK, 0)
    _shift_sampler_logprobs(monkeypatch, 0.3)
    tis = rl_step(tis_cfg, make_learner(tis_cfg, tiny_policy()), TASK, 0)
    assert tis["rl/grad_norm"] == pytest.approx(math.exp(-0.3) * plain["rl/grad_norm"], rel=1e-4)
    assert tis["rollout/tis_clip_frac"] == 0.0


def test_tis_with_an_exact_sampler_leaves_the_update_as_it_is():
    results = []
    for cap in (None, 2.0):
        cfg = tiny_cfg(tis_cap=cap)
        policy = tiny_policy()
        learner = make_learner(cfg, policy)
        # plain SGD: Adam's first step, lr x sign(g), would turn rounding noise into differences of 2 x lr
        learner.optimizer = torch.optim.SGD(policy.module.parameters(), lr=1.0)
        rl_step(cfg, learner, TASK, 0)
        results.append([p.detach().clone() for p in policy.module.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_an_rl_run_with_tis_logs_the_mismatch_every_step(tmp_path):
    base = tmp_path / "base"
    tiny_policy().save(base)
    cfg = tiny_cfg(steps=3, tis_cap=2.0, num_iterations=2)
    train_rl(cfg, tmp_path / "run", base)
    rows = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 3
    for row in rows:
        keys = (
            "rollout/logp_diff",
            "rollout/kl_sampler",
            "rollout/ratio_max",
            "rollout/tis_clip_frac",
        )
        assert all(math.isfinite(row[k]) for k in keys), row
        assert row["rollout/logp_diff"] < 1e-4


def test_the_mismatch_metrics_use_the_batch_layout():
    cfg = tiny_cfg()
    policy = tiny_policy()
    collected = rollouts_module.collect(policy, TASK, cfg.rl, 0, 0)
    batch = make_batch(collected.groups, policy.tokenizer.pad_id)
    rollouts = [r for g in collected.groups for r in g.rollouts]
    out = sampler_logprobs(rollouts, batch.completion_ids.shape[1])
    assert out.shape == batch.token_mask.shape
    assert torch.equal(out != 0, batch.token_mask.bool() & (out != 0))  # nothing on padding
    for i, r in enumerate(rollouts):
        assert out[i, : len(r.logprobs)].tolist() == pytest.approx(list(r.logprobs))
