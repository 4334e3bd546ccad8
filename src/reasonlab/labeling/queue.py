"""Active learning: which item a human should label first.

An item's priority is a weighted sum of three terms, each in [0, 1], computed from the judges'
scores of it (and from its truth where the source file knew it):

- convincing wrong answer: the mean of the judges' solution scores (a solution's score is its last
  step score) when the truth says the solution is wrong, else 0. A judge fooled by a wrong
  solution is the judge's costliest mistake, and a human label there teaches it the most
  (PRM800K's active learning, Lightman et al. 2023, "Let's Verify Step by Step": "convincing
  wrong-answer" solutions, rated highly by the current PRM but reaching a wrong final answer);
- disagreement: the spread (max - min) of the judges' solution scores, 0 with one judge;
- uncertainty: 1 - 2 |mean - 0.5|, 1 when the judges' mean sits at 0.5, 0 at 0 or 1.

Items without judge scores get priority 0. `pair_priority` does the same for a pair of solutions,
on the judges' preference (score of a minus score of b): convincing = how far the judges prefer the
side the truth says is worse, disagreement = spread of the judges' preferences (halved, in [0, 1]),
uncertainty = 1 - |mean preference|.

Departures from PRM800K: PRM800K only surfaces convincing wrong-answer solutions (and picks them per
problem, from samples of a policy, with the PRM retrained between rounds); here the priority is
computed once, at import, from any number of judges (PRM, ORM, the base's likelihood), and adds
the judges' disagreement and uncertainty so that items with no known truth are ordered too.
"Wrong" is any known error: a wrong final answer (`correct` false) or a wrong step
(`first_error` >= 0), not only the final answer. One global queue orders all items.

Usage:
    priority({"prm": [0.9, 0.8, 0.95]}, {"first_error": 1, "correct": False}, Weights())  # -> 0.975
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reasonlab.judges.base import aggregate


@dataclass(frozen=True)
class Weights:
    """How much each term counts in an item's priority."""

    convincing_wrong: float = 1.0
    disagreement: float = 0.5
    uncertainty: float = 0.25


def solution_scores(scores: Mapping[str, Sequence[float]]) -> list[float]:
    """Each judge's solution score (its last step score); judges with no step score are left out.
    ValueError for a score that is not a number in [0, 1]."""
    out = []
    for judge, steps in scores.items():
        for s in steps:
            if not isinstance(s, (int, float)) or not math.isfinite(s) or not 0.0 <= s <= 1.0:
                raise ValueError(f"judge {judge!r}: score {s!r} is not a number in [0, 1]")
        if steps:
            out.append(aggregate(steps, "last"))
    return out


def says_wrong(truth: Mapping[str, Any] | None) -> bool:
    """Does the truth say the solution is wrong (wrong final answer or a wrong step)?"""
    if not truth:
        return False
    first_error = truth.get("first_error")
    return truth.get("correct") is False or (isinstance(first_error, int) and first_error >= 0)


def priority(
    scores: Mapping[str, Sequence[float]], truth: Mapping[str, Any] | None, weights: Weights
) -> float:
    """The priority of a steps item from its judges' step scores ({judge: [score per step]}) and
    its truth ({"first_error", "correct"} or None); 0 when no judge scored it."""
    solved = solution_scores(scores)
    if not solved:
        return 0.0
    mean = statistics.fmean(solved)
    convincing = mean if says_wrong(truth) else 0.0
    spread = max(solved) - min(solved)
    uncertainty = 1.0 - 2.0 * abs(mean - 0.5)
    return (
        weights.convincing_wrong * convincing
        + weights.disagreement * spread
        + weights.uncertainty * uncertainty
    )


def pair_priority(
    scores: Mapping[str, Sequence[float]], truth: Mapping[str, Any] | None, weights: Weights
) -> float:
    """The priority of a pair item from {judge: [score of a, score of b]} and its truth
    ({"choice": "a" | "b" | "tie" | "both_wrong"} or None); 0 when no judge scored it."""
    prefs = []
    for judge, pair in scores.items():
        solution_scores({judge: pair})  # checks the range
        if len(pair) != 2:
            raise ValueError(f"judge {judge!r}: expected [score_a, score_b], got {len(pair)}")
        prefs.append(float(pair[0]) - float(pair[1]))  # > 0: the judge prefers a
    if not prefs:
        return 0.0
    mean = statistics.fmean(prefs)
    choice = (truth or {}).get("choice")
    convincing = max(0.0, -mean) if choice == "a" else max(0.0, mean) if choice == "b" else 0.0
    spread = (max(prefs) - min(prefs)) / 2.0
    uncertainty = 1.0 - abs(mean)
    return (
        weights.convincing_wrong * convincing
        + weights.disagreement * spread
        + weights.uncertainty * uncertainty
    )
