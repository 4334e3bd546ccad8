"""The RL loop on tiny random-init models: one update moves every parameter, a few dozen GRPO steps
raise the reward, every algorithm runs, kill + resume equals an uninterrupted run, NaN stops cleanly."""

import json
import math

import pytest
import torch

from reasonlab.config import config_from_dict
from reasonlab.errors import ConfigError
from reasonlab.models import CharTokenizer, TinyPolicy, TransformerConfig, load_policy
from reasonlab.rl.rewards import REWARDS, register_reward
from reasonlab.rl.rollouts import collect, make_batch
from reasonlab.rl.trainer import (
    Diverged,
    advantage_params,
    make_learner,
    objective_params,
    place_rewards,
    rl_step,
    train_rl,
    validate_rl,
)
from reasonlab.tasks import get_task


@register_reward("sevens")
def sevens(problem, rollout, verdict):
    """A toy reward a random model can climb: the share of 7s among the first 8 characters."""
    return rollout.text[:8].count("7") / 8


def tiny_cfg(**rl):
    return config_from_dict(
        {
            "seed": 0,
            "task": {"name": "arith", "knobs": {"n_operands": 2, "digits": 1, "operators": "+"}},
            "model": {"d_model": 32, "n_layers": 1, "n_heads": 2, "max_seq_len": 64},
            "rl": {
                "steps": 4,
                "prompts_per_step": 4,
                "group_size": 4,
                "max_new_tokens": 8,
                "lr": 1e-2,
                "rewards": {"sevens": 1.0},
                "checkpoint_every": 2,
                **rl,
            },
        }
    )


def tiny_policy(seed=0):
    tok = CharTokenizer()
    return TinyPolicy.create(
        TransformerConfig(
            vocab_size=tok.vocab_size, d_model=32, n_layers=1, n_heads=2, max_seq_len=64
        ),
        seed=seed,
    )


@pytest.fixture
def base_dir(tmp_path):
    tiny_policy().save(tmp_path / "base")
    return tmp_path / "base"


def params(policy):
    return {name: p.detach().clone() for name, p in policy.module.named_parameters()}


def test_one_grpo_update_changes_every_parameter():
    cfg = tiny_cfg()
    policy = tiny_policy()
    before = params(policy)
    metrics = rl_step(
        cfg, make_learner(cfg, policy), get_task("arith", n_operands=2, digits=1, operators="+"), 0
    )
    assert metrics["rl/groups_trained"] == 4 and math.isfinite(metrics["rl/loss"])
    for name, p in policy.module.named_parameters():
        assert not torch.equal(p, before[name]), name


def test_a_few_dozen_grpo_steps_raise_the_reward():
    cfg = tiny_cfg(prompts_per_step=8, group_size=8)
    policy = tiny_policy()
    learner = make_learner(cfg, policy)
    task = get_task("arith", n_operands=2, digits=1, operators="+")
    rewards = [rl_step(cfg, learner, task, step)["reward/mean"] for step in range(30)]
    first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    assert last > first + 0.2, rewards


@pytest.mark.parametrize(
    "rl",
    [
        {"advantage": "dr_grpo", "aggregation": "seq_sum_norm"},
        {"advantage": "grpo", "std_scaling": "batch", "aggregation": "seq_mean_token_mean"},
        {"advantage": "rloo", "num_iterations": 2, "minibatches": 2},
        {"advantage": "reinforce_pp", "beta": 0.1, "kl_in": "reward", "kl_estimator": "k1"},
        {"advantage": "reinforce_pp_baseline", "beta": 0.1, "kl_in": "loss", "kl_estimator": "k2"},
        {"kl_monitor_every": 1},
        {"advantage": "gae", "beta": 0.05, "kl_in": "reward", "num_iterations": 2},
        {"policy_loss": "gspo", "epsilon_low": 3e-4, "epsilon_high": 4e-4, "num_iterations": 2},
        {"entropy_coef": 0.01, "overlong": "mask"},
        {"overlong": "penalty", "overlong_buffer": 4, "dynamic_sampling": True},
        {"beta": 0.04, "kl_importance_correction": True, "std_eps": 1e-4, "num_iterations": 2},
    ],
)
def test_every_algorithm_runs_and_reports_finite_metrics(rl):
    cfg = tiny_cfg(**rl)
    policy = tiny_policy()
    learner = make_learner(cfg, policy)
    task = get_task("arith", n_operands=2, digits=1, operators="+")
    for step in range(2):
        metrics = rl_step(cfg, learner, task, step)
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    if cfg.rl.beta > 0 or cfg.rl.kl_monitor_every:
        assert "rl/kl_ref" in metrics
        assert (
            metrics["rl/kl_ref"] >= 0 or cfg.rl.kl_estimator == "k1"
        )  # k1 alone can come out negative
    if cfg.rl.advantage == "gae":
        assert "rl/value_loss" in metrics and learner.critic is not None
    if cfg.rl.num_iterations > 1:
        assert metrics["rl/approx_kl"] > 0  # the second pass is off-policy


def test_kl_in_reward_lowers_the_token_rewards_and_the_reward_sits_on_the_last_token():
    cfg = tiny_cfg(beta=0.5, kl_in="reward")
    policy = tiny_policy()
    collected = collect(
        policy, get_task("arith", n_operands=2, digits=1, operators="+"), cfg.rl, 0, 0
    )
    batch = make_batch(collected.groups, policy.tokenizer.pad_id)
    plain = place_rewards(batch, cfg.rl, None, None)  # (B, L)
    rows = torch.arange(len(batch.lengths))
    assert torch.equal(plain[rows, batch.lengths - 1], batch.rewards)
    assert plain.sum() == batch.rewards.sum()
    logp = torch.zeros_like(plain)
    penalised = place_rewards(
        batch, cfg.rl, logp - 1.0, logp
    )  # k3 of a log-ratio of 1 nat: e^-1 + 1 - 1
    assert torch.allclose(plain - penalised, 0.5 * math.exp(-1) * batch.token_mask)


def test_dynamic_sampling_keeps_only_groups_with_signal():
    cfg = tiny_cfg(dynamic_sampling=True, max_refill_rounds=2, rewards={"outcome": 1.0})
    collected = collect(
        tiny_policy(), get_task("arith", n_operands=2, digits=1, operators="+"), cfg.rl, 0, 0
    )
    assert (
        collected.rounds == 3
    )  # a random model never answers: every group is dropped, every refill tried
    assert collected.groups == [] and len(collected.sampled) == 12


def test_kill_and_resume_equals_an_uninterrupted_run(tmp_path, base_dir):
    # beta > 0: the resumed run must rebuild its reference from the base, not from the checkpoint
    cfg = tiny_cfg(num_iterations=2, minibatches=2, dynamic_sampling=True, steps=5, beta=0.1)
    whole = train_rl(cfg, tmp_path / "whole", base_dir)

    class Killed(Exception):
        pass

    def kill_at_3(done, total, row):
        if done == 3:
            raise Killed

    with pytest.raises(Killed):
        train_rl(
            cfg, tmp_path / "resumed", base_dir, on_step=kill_at_3
        )  # checkpoint at step 2, killed at 3
    resumed = train_rl(cfg, tmp_path / "resumed", base_dir)
    for (name, a), b in zip(whole.module.named_parameters(), resumed.module.parameters()):
        assert torch.equal(a, b), name
    reloaded = load_policy(tmp_path / "resumed" / "rl")
    assert all(
        torch.equal(a, b) for a, b in zip(whole.module.parameters(), reloaded.module.parameters())
    )
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 5  # the row of the killed step 3 was dropped on resume and written again


def test_nan_reward_stops_and_keeps_the_last_good_checkpoint(tmp_path, base_dir):
    calls = {"n": 0}

    @register_reward("nan_after_two_steps")
    def nan_after(problem, rollout, verdict):
        calls["n"] += 1
        return float("nan") if calls["n"] > 2 * 16 else rollout.text.count("7") / 8

    try:
        cfg = tiny_cfg(rewards={"nan_after_two_steps": 1.0}, checkpoint_every=1, steps=5)
        with pytest.raises(Diverged, match=r"step 3 .*step_00000002"):
            train_rl(cfg, tmp_path / "run", base_dir)
        assert (tmp_path / "run" / "checkpoints" / "rl" / "latest").read_text() == "step_00000002"
        assert not (tmp_path / "run" / "rl").exists()
    finally:
        REWARDS.pop("nan_after_two_steps")


@pytest.mark.parametrize(
    "rl, fragment",
    [
        ({"advantage": "nosuch"}, "rl.advantage"),
        ({"policy_loss": "nosuch"}, "rl.policy_loss"),
        ({"aggregation": "nosuch"}, "rl.aggregation"),
        ({"kl_estimator": "k9"}, "rl.kl_estimator"),
        ({"rewards": {"nosuch": 1.0}}, "rl.rewards"),
        ({"rewards": {}}, "rl.rewards"),
        ({"group_size": 1}, "rl.group_size"),
        ({"group_size": 1, "advantage": "rloo"}, "rl.group_size"),
        ({"minibatches": 5}, "rl.minibatches"),
        (
            {"kl_importance_correction": True, "kl_in": "reward", "beta": 0.1},
            "rl.kl_importance_correction",
        ),
        ({"task_knobs": {"n_operands": 99}}, "rl.task_knobs"),
        ({"task_knobs": {"operandz": 3}}, "rl.task_knobs"),
    ],
)
def test_bad_rl_config_is_one_clear_error(rl, fragment):
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        validate_rl(tiny_cfg(**rl))


def test_rl_task_knobs_train_at_another_difficulty(tmp_path, base_dir):
    # the task is 2-operand sums; RL trains on 4 operands: every prompt is BOS "d+d+d+d=?" and a newline
    cfg = tiny_cfg(steps=1, task_knobs={"n_operands": 4})
    train_rl(cfg, tmp_path / "run", base_dir)
    row = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert (
        row["rl/prompt_tokens"] == 16 * 11
        and row["rl/trained_tokens"] == 16 * 11 + row["rl/completion_tokens"]
    )
    train_rl(tiny_cfg(steps=1), tmp_path / "plain", base_dir)
    plain = (tmp_path / "plain" / "metrics.jsonl").read_text().splitlines()[0]
    assert json.loads(plain)["rl/prompt_tokens"] == 16 * 7


def test_config_reaches_the_advantages_and_the_loss():
    rc = tiny_cfg(std_eps=1e-4, beta=0.04, kl_importance_correction=True, policy_loss="gspo").rl
    assert advantage_params(rc).eps == 1e-4 and advantage_params(tiny_cfg().rl).eps == 1e-6
    params = objective_params(rc)
    assert params.kl_importance_correction and params.beta == 0.04 and params.policy_loss == "gspo"
    assert not objective_params(tiny_cfg(beta=0.04).rl).kl_importance_correction
    assert objective_params(tiny_cfg(beta=0.04, kl_in="reward").rl).beta == 0.0  # not in the loss


def test_group_size_one_is_fine_without_a_group_baseline():
    validate_rl(tiny_cfg(group_size=1, advantage="reinforce_pp"))


@pytest.mark.parametrize(
    "rl",
    [
        {"aggregation": "seq_mean_token_mean", "beta": 0.1, "entropy_coef": 0.01},
        {"aggregation": "token_mean", "advantage": "gae"},
        {"aggregation": "seq_sum_norm", "advantage": "dr_grpo"},
        {"policy_loss": "gspo", "beta": 0.1, "kl_importance_correction": True},
    ],
)
def test_micro_batches_give_the_same_update_as_the_whole_batch(rl):
    task = get_task("arith", n_operands=2, digits=1, operators="+")
    results = []
    for micro in (None, 3):  # 3 does not divide a group of 4: micro-batches cut across groups
        cfg = tiny_cfg(micro_batch_size=micro, **rl)
        policy = tiny_policy()
        learner = make_learner(cfg, policy)
        # plain SGD: the step is the (clipped) gradient itself; Adam's first step, lr x sign(g), would
        # turn rounding noise in near-zero gradients into differences of 2 x lr
        learner.optimizer = torch.optim.SGD(policy.module.parameters(), lr=1.0)
        if learner.critic is not None:
            learner.critic_optimizer = torch.optim.SGD(learner.critic.parameters(), lr=1.0)
        metrics = rl_step(cfg, learner, task, 0)
        results.append((metrics, [p.detach().clone() for p in policy.module.parameters()], learner))
    (whole, p_whole, l_whole), (micro, p_micro, l_micro) = results
    for a, b in zip(p_whole, p_micro):
        assert torch.allclose(a, b, atol=1e-6)
    if l_whole.critic is not None:
        for a, b in zip(l_whole.critic.parameters(), l_micro.critic.parameters()):
            assert torch.allclose(a, b, atol=1e-6)
    for key in ("rl/loss", "rl/entropy", "rl/clip_frac", "rl/approx_kl"):
        assert micro[key] == pytest.approx(whole[key], rel=1e-4, abs=1e-6), key
