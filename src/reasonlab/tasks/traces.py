"""Trace styles: how a reference solution is written out in a pretraining corpus.

Styles (the completion that follows the prompt; every line ends with "\\n"):

    answer_only   answer: 66
    steps         37+48=85 / 85-19=66 / answer: 66              (one line each)
    backtrack     each reference step is, with probability `error_rate`, first written wrong
                  (task.wrong_step) and followed by `check: wrong`; then the correct step,
                  always followed by `check: ok`; then the answer line

Every rendered trace verifies as CORRECT with first_error == -1: the wrong steps are retracted.
A task whose answer alone cannot be correct (`supports_answer_only` False: countdown, where the
answer is the given target) refuses the answer_only style with a ConfigError.
A corpus document is the problem's prompt followed by its completion; `corpus` draws distinct
problems from the train split by default (so n cannot exceed that split's size) and picks a style
per document from a `Mixture`.

Usage:
    from reasonlab.tasks import get_task
    from reasonlab.tasks.traces import Mixture, corpus
    docs = corpus(get_task("arith"), n=1000, mixture=Mixture({"steps": 1, "backtrack": 1}), seed=0)
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping
from typing import Literal

from reasonlab.errors import ConfigError
from reasonlab.tasks.base import Split, Task
from reasonlab.types import Problem

Style = Literal["answer_only", "steps", "backtrack"]
TRACE_STYLES: tuple[str, ...] = ("answer_only", "steps", "backtrack")


def check_error_rate(error_rate: float) -> float:
    """Validate the probability of writing a step wrong first; ConfigError otherwise."""
    ok = isinstance(error_rate, (int, float)) and not isinstance(error_rate, bool)
    if not ok or not math.isfinite(error_rate) or not 0.0 <= error_rate <= 1.0:
        raise ConfigError(f"invalid error_rate={error_rate!r}: must be a number from 0 to 1")
    return float(error_rate)


def check_answer_only(task: Task) -> None:
    """ConfigError if the task's answer line alone can never verify as correct."""
    if not task.supports_answer_only:
        raise ConfigError(
            f"trace style 'answer_only' cannot solve task '{task.name}': its verifier needs the "
            "steps; give answer_only a fraction of 0"
        )


def render(
    task: Task, problem: Problem, style: str, rng: random.Random, error_rate: float = 0.2
) -> str:
    """The completion text of `problem` in `style` (after the prompt), ending with "\\n".

    Only the backtrack style draws from `rng`.
    """
    if style not in TRACE_STYLES:
        raise ConfigError(f"unknown trace style {style!r} (known: {', '.join(TRACE_STYLES)})")
    if style == "answer_only":
        check_answer_only(task)
    error_rate = check_error_rate(error_rate)
    lines: list[str] = []
    if style == "steps":
        lines = list(task.reference_steps(problem))
    elif style == "backtrack":
        for index, step in enumerate(task.reference_steps(problem)):
            if rng.random() < error_rate:
                lines += [task.wrong_step(problem, index, rng), "check: wrong"]
            lines += [step, "check: ok"]
    lines.append(task.answer_line(problem.answer))
    return "\n".join(lines) + "\n"


class Mixture:
    """Fractions of trace styles in a corpus, e.g. Mixture({"steps": 0.7, "backtrack": 0.3}).

    Fractions must be finite and >= 0 with a positive sum; they are normalised.
    """

    def __init__(self, fractions: Mapping[str, float]) -> None:
        for style, value in fractions.items():
            if style not in TRACE_STYLES:
                raise ConfigError(
                    f"unknown trace style {style!r} in mixture (known: {', '.join(TRACE_STYLES)})"
                )
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or value < 0:
                raise ConfigError(f"invalid mixture fraction {style}={value!r}: must be >= 0")
        total = float(sum(fractions.values()))
        if total <= 0:
            raise ConfigError("invalid trace mixture: the fractions must sum to more than 0")
        self.fractions: dict[str, float] = {
            style: float(fractions.get(style, 0.0)) / total for style in TRACE_STYLES
        }

    @classmethod
    def only(cls, style: str) -> Mixture:
        """The mixture of a single style."""
        return cls({style: 1.0})

    def choose(self, rng: random.Random) -> str:
        """Draw one style (one rng.random() call)."""
        u = rng.random()
        cumulative = 0.0
        chosen = TRACE_STYLES[0]
        for style in TRACE_STYLES:
            if self.fractions[style] > 0:
                chosen = style
                cumulative += self.fractions[style]
                if u < cumulative:
                    return style
        return chosen  # u beyond the float sum of the fractions: the last style with weight

    def validate_for(self, task: Task) -> None:
        """ConfigError if a style with a positive fraction cannot solve `task` (fail fast)."""
        if self.fractions["answer_only"] > 0:
            check_answer_only(task)

    def __repr__(self) -> str:
        return f"Mixture({self.fractions})"


def corpus(
    task: Task,
    n: int,
    mixture: Mixture,
    seed: int,
    split: Split = "train",
    error_rate: float = 0.2,
) -> list[str]:
    """`n` documents (prompt + completion) of distinct problems of `split`, deterministic in seed.

    Problems come from task.sample(split, n, seed); styles and injected errors from a separate
    generator seeded from `seed`.
    """
    mixture.validate_for(task)
    problems = task.sample(split, n, seed)
    stream = int.from_bytes(hashlib.sha256(f"traces:{seed}".encode()).digest()[:8], "big")
    rng = random.Random(stream)
    documents = []
    for problem in problems:
        style = mixture.choose(rng)
        documents.append(problem.prompt + render(task, problem, style, rng, error_rate))
    return documents
