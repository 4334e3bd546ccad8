"""Compute accounting and the outcome of each problem.

Generated tokens and judge tokens are counted per problem exactly (every generate row and every
judge record belongs to one problem). Wall time is measured once with `time.perf_counter` around
the whole method and divided evenly among its problems: the methods batch all problems into the
same generate and judge calls, so no per-problem wall time exists.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from reasonlab.search.base import Compute, SearchContext, SearchOutcome
from reasonlab.types import Problem


def outcomes(
    ctx: SearchContext,
    problems: Sequence[Problem],
    texts: Sequence[str],
    candidates: Sequence[int],
    generated: Sequence[int],
    judged: Sequence[int],
    started: float,
) -> list[SearchOutcome]:
    """One SearchOutcome per problem: the chosen text, its verdict, what it cost."""
    out = []
    for i, problem in enumerate(problems):
        verdict = ctx.task.verify(problem, texts[i])
        out.append(
            SearchOutcome(
                problem_id=problem.id,
                text=texts[i],
                answer=verdict.answer,
                correct=verdict.correct,
                candidates=candidates[i],
                compute=Compute(generated[i], judged[i], 0.0),
            )
        )
    wall = (time.perf_counter() - started) / max(1, len(problems))
    for o in out:
        o.compute.wall_s = wall
    return out
