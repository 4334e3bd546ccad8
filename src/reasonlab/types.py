"""The typed records that flow between stages: Problem -> Rollout -> Verdict -> Scored.

Stages talk only through these frozen dataclasses (see DESIGN.md, "The flow of data").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, Mapping


class Outcome(str, Enum):
    """How an answer is judged as a whole."""

    CORRECT = "correct"
    WRONG = "wrong"
    MALFORMED = "malformed"  # no parsable answer: a verdict on the output, never an exception


@dataclass(frozen=True)
class Problem:
    """One task instance.

    `prompt` is the exact text the model is conditioned on; `answer` the reference answer as text;
    `meta` holds task-specific structured data (operands, numbers, target, ...) for the verifier.
    """

    id: str
    task: str
    prompt: str
    answer: str
    difficulty: int
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Rollout:
    """One sampled completion of one problem's prompt.

    `token_ids`, `logprobs` and `mask` all have the completion's length; `mask[i] == 1` marks a token
    the model generated (and that training may learn from); `logprobs` are those of the sampling
    distribution after temperature / top-p, under the policy that generated them.
    """

    problem_id: str
    prompt_ids: tuple[int, ...]
    token_ids: tuple[int, ...]
    text: str
    logprobs: tuple[float, ...]
    mask: tuple[int, ...]
    finish_reason: Literal["eos", "stop", "length"]


@dataclass(frozen=True)
class Verdict:
    """A verifier's judgement of one solution text.

    `steps_valid[i]` says whether step i is valid (its own rule holds and it continues the chain);
    `first_error` is the index of the earliest wrong step that was not retracted by a check, or -1
    when there is none (the ProcessBench convention); both are None where the task cannot judge steps.
    `checks` counts self-check lines and `backtracks` counts steps that a check retracted.
    """

    outcome: Outcome
    answer: str | None = None
    steps_valid: tuple[bool, ...] | None = None
    first_error: int | None = None
    checks: int = 0
    backtracks: int = 0

    @property
    def correct(self) -> bool:
        return self.outcome is Outcome.CORRECT


@dataclass(frozen=True)
class Scored:
    """A rollout with its verdict and reward (and per-step rewards where a judge gives them)."""

    rollout: Rollout
    verdict: Verdict
    reward: float
    step_rewards: tuple[float, ...] | None = None
