"""Step-level tree search with a judge: PRM beam search and diverse verifier tree search (DVTS).

Both follow search-and-learn (Beeching et al. 2024; Snell et al. 2024) on one shared core, a set
of independent *groups* per problem, each with a width W (beams kept) and C candidates per
expansion:

- `beam`: one group per problem, W = M = settings.beam_width, C = N. Expansion: the N candidates
  are spread over the A active beams (N // A each, the first N % A one more; search-and-learn
  duplicates the active beams round-robin to N), each candidate one step (up to
  settings.step_stop) after its beam; every candidate is scored by the judge (aggregated step
  scores of the partial solution, search/scoring.py); the top W - F candidates are kept, where F
  counts the group's finished beams; the finished ones among them are set aside, the rest stay
  active. So active + finished = W after every expansion, and the group stops when W beams have
  finished (no active beam remains). The chosen solution is the best-scored finished beam.
- `dvts`: floor(N / M) groups per problem, each W = 1, C = M: every subtree keeps greedily its best
  child among M (search-and-learn's DVTS) and ends when that child is finished; the chosen solution
  is the best-scored final beam over the subtrees.

Departures: search-and-learn's beam search sets aside every finished candidate and prunes only the
unfinished ones, and never stops early; here a finished candidate counts only if it is among the
top W - F, and the search stops at W finished beams (the brief's rule; it makes DVTS with one
subtree exactly a width-1 beam search). Its DVTS returns all M children of each subtree's last
expansion; here the finished best child. Candidates per expansion are never more than N per
problem. Expansions are capped by settings.max_expansions (search-and-learn's num_iterations);
the last one runs to the end of the solution, so every kept beam finishes. Ties in scores go to
the earlier candidate (a stable sort). All active beams of all problems decode in ONE generate
call per expansion (search/expand.py: prefixes recomputed, no shared KV cache); judge scores are
cached by (problem, prefix steps), so the judge reads each distinct partial solution once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from reasonlab.sampling import check_fits
from reasonlab.search.accounting import outcomes
from reasonlab.search.base import SearchContext, SearchOutcome, register_method
from reasonlab.search.checks import (
    check_budget,
    check_expansions,
    check_settings,
    check_width,
    require_judge,
    require_steps,
)
from reasonlab.search.expand import Path, expand, expansion_seed
from reasonlab.search.scoring import CachedScorer
from reasonlab.types import Problem


@dataclass
class Group:
    """One beam search over one problem: W beams kept, C candidates sampled per expansion."""

    problem: int
    width: int
    candidates: int
    active: list[Path] = field(default_factory=list)
    finished: list[Path] = field(default_factory=list)


def spread(total: int, parts: int) -> list[int]:
    """`total` split over `parts` as evenly as possible, larger shares first: spread(5, 2) == [3, 2]."""
    return [total // parts + (i < total % parts) for i in range(parts)]


def keep_top(group: Group, candidates: list[Path]) -> None:
    """Keep the best W - F candidates (stable: earlier first on ties); set aside the finished ones."""
    ranked = sorted(candidates, key=lambda p: -p.score)[: group.width - len(group.finished)]
    group.finished += [p for p in ranked if p.finished]
    group.active = [p for p in ranked if not p.finished]


def search_groups(
    ctx: SearchContext, problems: Sequence[Problem], groups: list[Group], seed: int
) -> tuple[list[int], list[int]]:
    """Run every group to the end; returns tokens generated and judge tokens per problem."""
    scorer = CachedScorer(ctx, problems)
    generated = [0] * len(problems)
    expansions = ctx.settings.max_expansions
    for g in groups:
        g.active = [Path(g.problem)]
    for depth in range(expansions):
        live = [g for g in groups if g.active]
        if not live:
            break
        paths, counts = [], []
        for g in live:
            paths += g.active
            counts += spread(g.candidates, len(g.active))
        last = depth == expansions - 1
        new = expand(ctx, problems, paths, counts, expansion_seed(seed, depth), last, generated)
        scores = scorer.scores([(p.problem, p.text, p.finished) for p in new])
        new = [replace(p, score=s) for p, s in zip(new, scores)]
        at = 0
        for g in live:
            keep_top(g, new[at : at + g.candidates])
            at += g.candidates
    return generated, scorer.judge_tokens


def best_finished(groups: Sequence[Group]) -> tuple[str, int]:
    """The best-scored finished beam of these groups (the earliest on ties) and how many there are."""
    done = [p for g in groups for p in g.finished]
    if not done:  # cannot happen: the last expansion finishes every kept beam
        return "", 0
    best = max(range(len(done)), key=lambda i: (done[i].score, -i))
    return done[best].text, len(done)


def _run(
    name: str,
    ctx: SearchContext,
    problems: Sequence[Problem],
    budget: int,
    seed: int,
    make: Callable[[int, int, int], list[Group]],  # (problem index, N, M) -> its groups
) -> list[SearchOutcome]:
    started = time.perf_counter()
    n = check_budget(name, budget)
    check_settings(name, ctx)
    m = check_width(name, ctx, n)
    check_expansions(name, ctx)
    require_judge(name, ctx)
    require_steps(name, ctx, problems)
    if problems:
        check_fits(ctx.policy, problems, ctx.settings.max_new_tokens, "search.max_new_tokens")
    if not problems:  # a dry run of the checks
        return []
    per_problem = [make(i, n, m) for i in range(len(problems))]
    generated, judged = search_groups(ctx, problems, [g for gs in per_problem for g in gs], seed)
    chosen = [best_finished(gs) for gs in per_problem]
    texts, counts = [c[0] for c in chosen], [c[1] for c in chosen]
    return outcomes(ctx, problems, texts, counts, generated, judged, started)


@register_method("beam")
def beam(
    ctx: SearchContext, problems: Sequence[Problem], budget: int, seed: int
) -> list[SearchOutcome]:
    """PRM beam search: M beams, N candidates per expansion (see the module docstring)."""
    return _run("beam", ctx, problems, budget, seed, lambda i, n, m: [Group(i, m, n)])


@register_method("dvts")
def dvts(
    ctx: SearchContext, problems: Sequence[Problem], budget: int, seed: int
) -> list[SearchOutcome]:
    """DVTS: floor(N / M) independent subtrees, each keeping its best of M children per step."""
    return _run(
        "dvts", ctx, problems, budget, seed, lambda i, n, m: [Group(i, 1, m) for _ in range(n // m)]
    )
