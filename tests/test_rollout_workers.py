"""Rollout workers on a real local Ray, with tiny random-init models: N workers sample exactly what one
process samples for the same seed (uneven shares included), a publish reaches them before their next
draw, RL with workers equals RL without, async RL runs one step off-policy with the ratio against the
sampler's log-probs and resumes, and bad settings are one line."""

from __future__ import annotations

import json
import math

import pytest
import torch

from reasonlab.config import config_from_dict
from reasonlab.errors import ConfigError
from reasonlab.models import CharTokenizer, TinyPolicy, TransformerConfig
from reasonlab.rl.mismatch import sampler_logprobs
from reasonlab.rl.rewards import register_reward
from reasonlab.rl.rollout_workers import (
    RolloutWorkers,
    check_workers,
    pack,
    packed_bytes,
    share_bounds,
    unpack,
)
from reasonlab.rl.rollouts import collect, draw_prompts, make_batch, sampling_kwargs
from reasonlab.rl.trainer import learn, make_learner, train_rl, validate_rl
from reasonlab.sampling import generate
from reasonlab.tasks import get_task
from runs import reasonlab

KNOBS = {"n_operands": 2, "digits": 1, "operators": "+"}
TIMING = {"rl/sample_s", "rl/judge_s", "rl/update_s", "rl/step_s", "rl/tokens_per_s"}
HALF_CPU = 0.5  # two workers take one of the test Ray's two CPUs: a second pair still fits


@register_reward("digit_share")
def digits(problem, rollout, verdict):
    """A reward a random model's samples differ on: the share of digits among the first 8 characters."""
    return sum(c.isdigit() for c in rollout.text[:8]) / 8


def tiny_cfg(**rl):
    return config_from_dict(
        {
            "seed": 0,
            "device": "cpu",
            "task": {"name": "arith", "knobs": KNOBS},
            "model": {"d_model": 32, "n_layers": 2, "n_heads": 2, "max_seq_len": 64},
            "ray": {"rollout_cpus": HALF_CPU},
            "rl": {
                "steps": 3,
                "prompts_per_step": 3,
                "group_size": 4,
                "max_new_tokens": 8,
                "lr": 1e-2,
                "rewards": {"digit_share": 1.0},
                "checkpoint_every": 1,
                **rl,
            },
        }
    )


def tiny_policy(seed=0):
    tok = CharTokenizer()
    config = TransformerConfig(
        vocab_size=tok.vocab_size, d_model=32, n_layers=2, n_heads=2, max_seq_len=64
    )
    return TinyPolicy.create(config, seed=seed)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("workers") / "base"
    tiny_policy().save(folder)
    return folder


@pytest.fixture(scope="module")
def two_workers(ray_local, base_dir):
    with RolloutWorkers(tiny_cfg(rollout_workers=2), base_dir, tiny_policy(), step=0) as workers:
        yield workers


def assert_same_rollouts(got, want):
    assert [r.problem_id for r in got] == [r.problem_id for r in want]
    assert [r.token_ids for r in got] == [r.token_ids for r in want]
    assert [r.finish_reason for r in got] == [r.finish_reason for r in want]
    for a, b in zip(got, want):
        torch.testing.assert_close(torch.tensor(a.logprobs), torch.tensor(b.logprobs))


PROBLEMS = get_task("arith", **KNOBS).sample("train", 5, 11)
DRAW = {"max_new_tokens": 12, "temperature": 1.0, "batch_size": 64}


def test_shares_are_contiguous_and_cover_the_problems():
    assert share_bounds(5, 2) == [(0, 2), (2, 5)]
    assert share_bounds(2, 3) == [
        (0, 1),
        (1, 2),
    ]  # more workers than problems: empty shares dropped
    assert share_bounds(7, 1) == [(0, 7)]


def test_first_row_samples_a_share_as_the_whole_draw_does():
    policy = tiny_policy()
    whole = generate(policy, PROBLEMS, 3, 7, **DRAW)
    share = generate(policy, PROBLEMS[2:], 3, 7, first_row=6, **{**DRAW, "batch_size": 4})
    assert_same_rollouts(share, whole[6:])
    unskipped = generate(policy, PROBLEMS[2:], 3, 7, **DRAW)
    assert [r.token_ids for r in unskipped] != [r.token_ids for r in whole[6:]]
    with pytest.raises(ValueError, match="first_row"):
        generate(policy, PROBLEMS, 3, 7, first_row=-1)


def test_packed_weights_load_back_exactly_with_tied_and_bfloat16_tensors():
    def module(seed):
        torch.manual_seed(seed)
        m = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 10, bias=False))
        m[1].weight = m[0].weight  # tied, as embeddings and output heads are
        m.append(torch.nn.Linear(4, 4).to(torch.bfloat16))
        return m

    sent, got = module(0), module(1)
    packed = pack(sent)
    assert packed["1.weight"] == "0.weight"  # the tied tensor travels once
    assert packed_bytes(packed) == 10 * 4 * 4 + (4 * 4 + 4) * 2
    got.load_state_dict(unpack(packed))
    for (name, a), b in zip(sent.state_dict().items(), got.state_dict().values()):
        assert a.dtype == b.dtype and torch.equal(a, b), name


@pytest.mark.parametrize("n_problems", [5, 1])  # 5 over two workers: shares of 2 and 3
def test_two_workers_sample_what_one_process_samples(two_workers, n_problems):
    policy = tiny_policy()
    two_workers.publish(policy, step=0)
    problems = PROBLEMS[:n_problems]
    got = two_workers.generate(problems, 3, 7, **DRAW)
    assert_same_rollouts(got, generate(policy, problems, 3, 7, **DRAW))
    other_seed = generate(policy, problems, 3, 8, **DRAW)
    assert [r.token_ids for r in got] != [r.token_ids for r in other_seed]  # the seed matters


def test_one_worker_samples_what_one_process_samples(ray_local, base_dir):
    policy = tiny_policy()
    with RolloutWorkers(tiny_cfg(rollout_workers=1), base_dir, policy, step=0) as workers:
        assert_same_rollouts(
            workers.generate(PROBLEMS, 2, 5, **DRAW), generate(policy, PROBLEMS, 2, 5, **DRAW)
        )


def test_a_publish_reaches_the_workers_before_their_next_draw(two_workers):
    old = tiny_policy()
    two_workers.publish(old, step=0)
    two_workers.generate(PROBLEMS, 2, 3, **DRAW)
    assert two_workers.weights_steps() == [0, 0] and two_workers.staleness(0) == 0
    new = tiny_policy(seed=1)  # other weights, as after an update
    stale = generate(old, PROBLEMS, 2, 3, **DRAW)
    fresh = generate(new, PROBLEMS, 2, 3, **DRAW)
    assert [r.token_ids for r in stale] != [r.token_ids for r in fresh]  # a stale worker would fail
    two_workers.publish(new, step=1)
    assert_same_rollouts(two_workers.generate(PROBLEMS, 2, 3, **DRAW), fresh)
    assert two_workers.weights_steps() == [1, 1]
    assert two_workers.staleness(1) == 0


def test_a_submitted_draw_is_sampled_with_the_weights_published_before_it(two_workers):
    old, new = tiny_policy(), tiny_policy(seed=1)
    two_workers.publish(old, step=4)
    two_workers.submit(PROBLEMS, 2, 9, **DRAW)  # the async order: submit, update, publish, collect
    two_workers.publish(new, step=5)
    assert_same_rollouts(
        two_workers.generate(PROBLEMS, 2, 9, **DRAW), generate(old, PROBLEMS, 2, 9, **DRAW)
    )
    assert two_workers.staleness(5) == 1


def rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def assert_same_run(got_dir, got_policy, want_dir, want_policy):
    got, want = rows(got_dir), rows(want_dir)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        keys = set(b) - TIMING
        assert keys <= set(a), keys - set(a)
        for k in keys:
            assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-6), (a["step"], k)
    for (name, a), b in zip(got_policy.module.named_parameters(), want_policy.module.parameters()):
        torch.testing.assert_close(a, b, msg=name)


@pytest.fixture(scope="module")
def in_process(tmp_path_factory, base_dir):
    """Three GRPO steps sampled in this process: the run the workers must repeat."""
    run_dir = tmp_path_factory.mktemp("in_process")
    return run_dir, train_rl(tiny_cfg(), run_dir, base_dir)


def stop_after_step_2(done, total, row):
    """Interrupts a run once step 2 is logged, before its checkpoint: it resumes at step 1."""
    if done == 2:
        raise KeyboardInterrupt


def test_rl_on_two_workers_equals_rl_in_one_process(ray_local, tmp_path, base_dir, in_process):
    with pytest.raises(KeyboardInterrupt):  # step 1 in this process, checkpointed, then stopped
        train_rl(tiny_cfg(), tmp_path, base_dir, on_step=stop_after_step_2)
    policy = train_rl(tiny_cfg(rollout_workers=2), tmp_path, base_dir)  # steps 2 and 3 on workers
    assert_same_run(tmp_path, policy, *in_process)
    assert [r.get("rollout/staleness") for r in rows(tmp_path)] == [None, 0, 0]
    assert all(r["rl/grad_norm"] > 0 for r in rows(tmp_path))  # every step moved the weights


def test_async_rl_runs_one_step_off_policy_and_resumes(ray_local, tmp_path, base_dir, in_process):
    cfg = tiny_cfg(rollout_workers=1, **{"async": True})
    with pytest.raises(KeyboardInterrupt):
        train_rl(cfg, tmp_path, base_dir, on_step=stop_after_step_2)
    before = rows(tmp_path)
    assert [r["rollout/staleness"] for r in before] == [0, 1]
    # step 2 was sampled during update 1, by the base weights: its rollouts are theirs
    problems, seed = draw_prompts(get_task("arith", **KNOBS), cfg.rl, cfg.seed, 1, 0)
    by_base = generate(tiny_policy(), problems, 4, seed, **sampling_kwargs(cfg.rl, len(problems)))
    base_reward = sum(digits(None, r, None) for r in by_base) / len(by_base)
    assert before[1]["reward/mean"] == pytest.approx(base_reward)
    assert rows(in_process[0])[1]["reward/mean"] != pytest.approx(base_reward)  # sync: updated
    train_rl(cfg, tmp_path, base_dir)
    resumed = rows(tmp_path)
    # the resumed step 2 is sampled again, by the checkpointed weights (on-policy once), then one off
    assert [r["rollout/staleness"] for r in resumed] == [0, 0, 1]
    assert all(math.isfinite(v) for r in resumed for v in r.values())


@pytest.mark.parametrize("run_async", [False, True])
def test_the_async_ratio_is_taken_against_the_sampler(ray_local, run_async):
    cfg = tiny_cfg(rollout_workers=1, **{"async": run_async})
    learner = make_learner(cfg, tiny_policy())
    collected = collect(learner.policy, get_task("arith", **KNOBS), cfg.rl, cfg.seed, 0)
    batch = make_batch(collected.groups, learner.policy.tokenizer.pad_id)
    rollouts = [r for g in collected.groups for r in g.rollouts]
    sampled = sampler_logprobs(rollouts, batch.completion_ids.shape[1])  # (B, L): the policy's own
    behaviour = sampled - 0.3  # as if an older policy had sampled: log pi - log pi_behaviour = 0.3
    metrics = learn(cfg, learner, batch, behaviour, step=1)
    # approx_kl (k3) of the first update's ratio: exp(0.3) - 1 - 0.3 against the sampler, 0 on-policy
    expected = math.exp(0.3) - 1.3 if run_async else 0.0
    assert metrics["rl/approx_kl"] == pytest.approx(expected, rel=1e-3, abs=1e-6)


def test_async_without_workers_is_refused():
    with pytest.raises(ConfigError, match=r"^rl\.async: needs rl\.rollout_workers >= 1"):
        validate_rl(tiny_cfg(**{"async": True}))
    with pytest.raises(ConfigError, match=r"^rl\.tis_cap: with rl\.async"):
        validate_rl(tiny_cfg(rollout_workers=1, tis_cap=2.0, **{"async": True}))
    with pytest.raises(ConfigError, match=r"^rl\.rollout_workers: needs hf\.sampler: builtin"):
        validate_rl(config_from_dict({"hf": {"sampler": "hf"}, "rl": {"rollout_workers": 1}}))


def test_a_request_the_cluster_cannot_hold_is_refused_in_seconds(ray_local):
    cfg = tiny_cfg(rollout_workers=1)
    cfg.ray.rollout_gpus = 1
    with pytest.raises(
        ConfigError, match=r"^ray\.rollout_cpus / ray\.rollout_gpus: no node .* 1 GPU"
    ):
        check_workers(cfg)
    cfg = tiny_cfg(rollout_workers=5)  # 5 x half a CPU on two CPUs
    with pytest.raises(ConfigError, match=r"5 x \(0\.5 CPU\) do not fit .* \(room for 4\)"):
        check_workers(cfg)


def test_the_command_refuses_a_gpu_request_in_one_line_before_writing(
    ray_local, tmp_path, base_dir, cli_device, monkeypatch
):
    monkeypatch.setenv("RAY_ADDRESS", ray_local.get_runtime_context().gcs_address)
    out = tmp_path / "out"
    proc = reasonlab(
        "rl",
        "--base",
        str(base_dir),
        "--out",
        str(out),
        "--set",
        "rl.rollout_workers=1",
        "--set",
        "ray.rollout_gpus=1",
    )
    assert proc.returncode == 2, proc.stderr + proc.stdout
    line = "ray.rollout_cpus / ray.rollout_gpus: no node of the Ray cluster has 1 CPU, 1 GPU"
    assert line in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists()
