"""Rewards: plain functions of (Problem, Rollout, Verdict) -> float, combined with weights from the config.

Built in: `outcome` (the verifier's answer check), `format` (a parsable answer that ended on its own),
`process` (the fraction of valid steps, from the task's exact step verdicts; an answer without steps
earns 0) and `first_error` (-1 when some step is wrong, the penalty at the first wrong step that
process-supervision papers use, 0 otherwise). The config names them with weights,
`rl.rewards: {outcome: 1.0, process: 0.5}`. `random` is the control of Shao et al. 2025 ("Spurious
Rewards", arXiv 2506.10947): a fair coin per completion that ignores correctness, so whatever RL gains
under it comes from amplifying what the base already does, not from the reward's information; the
coin is a hash of (problem id, completion token ids), so it is deterministic and needs no RNG state
(the paper draws a fresh coin). One more name, `judge`, is the score of the learned judge
named by `rl.judge` (a PRM's aggregated step score or an ORM's outcome score, judges/models.py); it
is computed for a whole batch at once by the rollout collector, not by a function here. A new reward
is a few lines:

    @register_reward("short")
    def short(problem, rollout, verdict): return -len(rollout.token_ids) / 64
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping

from reasonlab.errors import ConfigError
from reasonlab.registry import Registry
from reasonlab.types import Outcome, Problem, Rollout, Verdict

RewardFn = Callable[[Problem, Rollout, Verdict], float]
REWARDS: Registry[RewardFn] = Registry("reward")
LEARNED = "judge"  # the reward name of the learned judge's score


def register_reward(name: str) -> Callable[[RewardFn], RewardFn]:
    """Decorator: make `fn(problem, rollout, verdict) -> float` usable as `rl.rewards: {name: weight}`."""

    return REWARDS.decorator(name)


@register_reward("outcome")
def outcome(problem: Problem, rollout: Rollout, verdict: Verdict) -> float:
    """1 for a correct final answer, else 0."""
    return 1.0 if verdict.correct else 0.0


@register_reward("format")
def format_reward(problem: Problem, rollout: Rollout, verdict: Verdict) -> float:
    """1 when the answer parses and the completion ended by itself (not cut at the length limit)."""
    return (
        1.0
        if verdict.outcome is not Outcome.MALFORMED and rollout.finish_reason != "length"
        else 0.0
    )


@register_reward("process")
def process(problem: Problem, rollout: Rollout, verdict: Verdict) -> float:
    """Fraction of valid steps (0 without steps, or where the task cannot judge steps)."""
    steps = verdict.steps_valid
    return sum(steps) / len(steps) if steps else 0.0


@register_reward("first_error")
def first_error(problem: Problem, rollout: Rollout, verdict: Verdict) -> float:
    """-1 when a step is wrong (and not retracted by a check), else 0."""
    return -1.0 if verdict.first_error is not None and verdict.first_error >= 0 else 0.0


@register_reward("random")
def random_reward(problem: Problem, rollout: Rollout, verdict: Verdict) -> float:
    """Bernoulli(0.5), independent of correctness: the low bit of sha256(problem id, completion token ids)."""
    key = f"{problem.id}\0{','.join(map(str, rollout.token_ids))}".encode("utf-8", "surrogatepass")
    return float(hashlib.sha256(key).digest()[0] & 1)


def check_rewards(weights: Mapping[str, float], judge: str | None = None) -> None:
    """Fail on an empty reward mix, an unknown reward name, or `judge` without a judge to ask."""
    if not weights:
        raise ConfigError("rl.rewards: name at least one reward, e.g. {outcome: 1.0}")
    unknown = [name for name in weights if name not in REWARDS and name != LEARNED]
    if unknown:
        known = ", ".join(sorted([*REWARDS, LEARNED]))
        raise ConfigError(f"rl.rewards: unknown reward {unknown[0]!r} (known: {known})")
    if LEARNED in weights and judge is None:
        raise ConfigError(
            "rl.rewards: the 'judge' reward needs rl.judge (prm, orm or a judge folder)"
        )


def score(
    weights: Mapping[str, float],
    problem: Problem,
    rollout: Rollout,
    verdict: Verdict,
    learned: float | None = None,
) -> dict[str, float]:
    """Each named reward of one rollout, and their weighted sum under the key "total"; `learned` is the
    judge's score of this rollout (used when the mix names `judge`)."""
    parts = {
        name: float(REWARDS[name](problem, rollout, verdict)) for name in weights if name != LEARNED
    }
    if LEARNED in weights:
        parts[LEARNED] = float(learned if learned is not None else 0.0)
    parts["total"] = sum(weights[name] * value for name, value in parts.items())
    return parts


def overlong_penalty(length: int, max_new_tokens: int, buffer: int) -> float:
    """DAPO's soft overlong punishment (Yu et al. 2025, eq. 13): 0 up to max - buffer tokens, then
    falling linearly to -1 at max tokens: ((max - buffer) - length) / buffer."""
    free = max_new_tokens - buffer
    return 0.0 if length <= free else max(-1.0, (free - length) / buffer)
