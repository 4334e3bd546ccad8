"""The typed records that flow between stages: Problem -> Rollout -> Verdict -> Scored, and the
step-labelled StepRecord that judges read and score as JudgeScores.

Stages talk only through these frozen dataclasses (docs/architecture.md, "The flow of one problem").
StepRecord labels follow Math-Shepherd and ProcessBench: `labels[i]` is True iff the solution is still
right after step i, so the labels are True up to the earliest wrong step and False from there on, and
`first_error` is that step's index (-1 when every step is right).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal


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


@dataclass(frozen=True)
class StepRecord:
    """One solution, cut into steps, with its labels where known.

    `prompt` is the problem text the solution answers; `steps` the step texts in order (no trailing
    newlines). `labels` (one per step) and `first_error` are both set or both None. `source` says
    where the record came from (e.g. "reference", "policy", "injected:arithmetic", "processbench").
    `problem` is the task Problem when the record came from a built-in task (the verifier needs it).
    `soft_labels` are Monte-Carlo success rates per step where they were estimated.
    """

    prompt: str
    steps: tuple[str, ...]
    labels: tuple[bool, ...] | None = None
    first_error: int | None = None
    correct: bool | None = None
    id: str = ""
    source: str = ""
    problem: Problem | None = field(default=None, compare=False)
    soft_labels: tuple[float, ...] | None = None

    @property
    def erroneous(self) -> bool:
        """Has a labelled wrong step (first_error >= 0)."""
        return self.first_error is not None and self.first_error >= 0


def labels_from_first_error(n_steps: int, first_error: int) -> tuple[bool, ...]:
    """[True] * first_error + [False] * (n_steps - first_error); all True for first_error == -1."""
    cut = n_steps if first_error < 0 else first_error
    return tuple(i < cut for i in range(n_steps))


def first_error_of(labels: Sequence[bool]) -> int:
    """The index of the first False label, or -1."""
    return next((i for i, ok in enumerate(labels) if not ok), -1)


@dataclass(frozen=True)
class JudgeScores:
    """A judge's view of one solution: P(still right after step i) per step, and one overall score."""

    steps: tuple[float, ...]
    outcome: float
