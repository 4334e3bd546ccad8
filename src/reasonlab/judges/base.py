"""The Judge protocol: what every judge does with the step-labelled records of types.py.

A `StepRecord` (types.py) is one solution cut into steps (TRL's stepwise-supervision layout: prompt, list of
steps, list of labels) with what is known about it. Labels follow Math-Shepherd and ProcessBench:
`labels[i]` is True iff the solution is still right after step i, so the labels of a solution are
True up to its earliest wrong step and False from there on, and `first_error` is that step's index
(-1 when every step is right). `correct` says whether the final answer is right (None if unknown).

A `Judge` scores records in batches: `judge.score(records)` returns one `JudgeScores` per record, the
per-step probabilities that the solution is still right after each step, and one aggregated score
for the whole solution. A process judge aggregates its step scores as the PRM literature does
(`min`: the weakest step, Lightman et al. 2023; `product`: every step right, as if independent;
`last`: the score after the final step, Wang et al. 2024); an outcome judge returns its own
whole-solution score. Usage:

    scores = judge.score(records)              # list[JudgeScores]
    aggregate(scores[0].steps, "min")
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal, Protocol, runtime_checkable

from reasonlab.types import JudgeScores, StepRecord

Aggregation = Literal["min", "product", "last"]
AGGREGATIONS: tuple[str, ...] = ("min", "product", "last")


@runtime_checkable
class Judge(Protocol):
    """Anything that scores solutions step by step and as a whole (scores are probabilities)."""

    name: str

    def score(self, records: Sequence[StepRecord]) -> list[JudgeScores]: ...


def aggregate(step_scores: Sequence[float], how: str) -> float:
    """One score from per-step scores: min, product or last (1.0 for a solution with no step)."""
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r} (known: {', '.join(AGGREGATIONS)})")
    if not step_scores:
        return 1.0
    if how == "min":
        return float(min(step_scores))
    if how == "product":
        return float(math.prod(step_scores))
    return float(step_scores[-1])


def regroup(
    records: Sequence[StepRecord],
    flat: Sequence[float],
    overall: Callable[[tuple[float, ...]], float],
    empty: float,
) -> list[JudgeScores]:
    """JudgeScores per record from `flat`, the step scores of the records that have steps, in order
    (record-major); a record without steps gets no step score and the overall score `empty`."""
    out, at = [], 0
    for r in records:
        if not r.steps:
            out.append(JudgeScores((), empty))
            continue
        steps = tuple(flat[at : at + len(r.steps)])
        at += len(r.steps)
        out.append(JudgeScores(steps, overall(steps)))
    return out


def score_solutions(judge: Judge, prompts: Sequence[str], texts: Sequence[str]) -> list[float]:
    """The judge's overall score of each solution text, cut into steps by the line grammar of the
    built-in tasks (tasks/parsing.py `solution_steps`); a text with no step scores 0."""
    from reasonlab.tasks.parsing import solution_steps

    records = [StepRecord(p, tuple(solution_steps(t))) for p, t in zip(prompts, texts)]
    return [s.outcome if r.steps else 0.0 for r, s in zip(records, judge.score(records))]
