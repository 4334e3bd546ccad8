"""Selection over N complete samples per problem: majority vote, best-of-N, weighted best-of-N.

All N x problems completions are sampled in ONE generate call (`settings.max_new_tokens`, no stop
string: a completion ends at EOS or the length limit), so best-of-N generates exactly N
completions per problem.

- `majority` (self-consistency, Wang et al. 2022): the most frequent verified answer
  (`task.verify(...).answer`; malformed completions never vote). A SearchOutcome needs one
  completion, so a tie is broken by `random.Random(f"{seed}:{problem id}")` choosing uniformly
  among the tied answers (evaluate/passk.py `majority_share` is the expected value of this draw);
  the chosen completion is the first one with that answer. With no answer at all: the first
  completion. Needs no judge.
- `best_of_n`: the completion with the highest judge score (search/scoring.py: aggregated step
  scores); ties go to the earliest sample.
- `weighted_best_of_n` (Li et al. 2023; search-and-learn's "weighted" selection): the answer whose
  completions have the largest summed judge score; ties go to the answer seen first; the chosen
  completion is that answer's highest-scored one. With no answer at all: best-of-N.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Sequence

from reasonlab import sampling
from reasonlab.search.accounting import outcomes
from reasonlab.search.base import SearchContext, SearchOutcome, register_method
from reasonlab.search.checks import check_budget, check_settings, require_judge
from reasonlab.search.scoring import CachedScorer
from reasonlab.types import Problem


def sample_all(
    ctx: SearchContext, problems: Sequence[Problem], n: int, seed: int
) -> tuple[list[list[str]], list[int]]:
    """N completion texts per problem, from one generate call, and the tokens generated per problem."""
    s = ctx.settings
    rollouts = sampling.generate(
        ctx.policy, problems, n, seed,
        max_new_tokens=s.max_new_tokens, temperature=s.temperature, top_p=s.top_p,
    )  # fmt: skip
    return [[r.text for r in rollouts[i * n : (i + 1) * n]] for i in range(len(problems))], [
        sum(len(r.token_ids) for r in rollouts[i * n : (i + 1) * n]) for i in range(len(problems))
    ]


def _prepare(
    name: str, ctx: SearchContext, problems: Sequence[Problem], budget: int, judge: bool
) -> int:
    n = check_budget(name, budget)
    check_settings(name, ctx)
    if judge:
        require_judge(name, ctx)
    if problems:
        sampling.check_fits(
            ctx.policy, problems, ctx.settings.max_new_tokens, "search.max_new_tokens"
        )
    return n


def _judge_scores(
    ctx: SearchContext, problems: Sequence[Problem], texts: list[list[str]]
) -> tuple[list[list[float]], list[int]]:
    scorer = CachedScorer(ctx, problems)
    flat = scorer.scores([(i, t, True) for i, ts in enumerate(texts) for t in ts])
    n = len(texts[0]) if texts else 0
    return [flat[i * n : (i + 1) * n] for i in range(len(texts))], scorer.judge_tokens


def argmax_first(values: Sequence[float]) -> int:
    """Index of the largest value; the earliest on ties."""
    return max(range(len(values)), key=lambda i: (values[i], -i))


@register_method("majority")
def majority(
    ctx: SearchContext, problems: Sequence[Problem], budget: int, seed: int
) -> list[SearchOutcome]:
    started = time.perf_counter()
    n = _prepare("majority", ctx, problems, budget, judge=False)
    if not problems:  # a dry run of the checks
        return []
    texts, generated = sample_all(ctx, problems, n, seed)
    chosen = []
    for problem, ts in zip(problems, texts):
        answers = [ctx.task.verify(problem, t).answer for t in ts]
        votes = Counter(a for a in answers if a is not None)
        if not votes:
            chosen.append(ts[0])
            continue
        best = max(votes.values())
        tied = [a for a in dict.fromkeys(answers) if a is not None and votes[a] == best]
        pick = tied[0] if len(tied) == 1 else random.Random(f"{seed}:{problem.id}").choice(tied)
        chosen.append(ts[answers.index(pick)])
    zeros = [0] * len(problems)
    return outcomes(ctx, problems, chosen, [n] * len(problems), generated, zeros, started)


def _judged_samples(
    name: str, ctx: SearchContext, problems: Sequence[Problem], budget: int, seed: int
) -> tuple[int, list[list[str]], list[int], list[list[float]], list[int]]:
    """The checks, then N samples per problem and the judge's score of each: (N, texts, tokens
    generated, scores, judge tokens), per problem."""
    n = _prepare(name, ctx, problems, budget, judge=True)
    if not problems:  # a dry run of the checks
        return n, [], [], [], []
    texts, generated = sample_all(ctx, problems, n, seed)
    scores, judged = _judge_scores(ctx, problems, texts)
    return n, texts, generated, scores, judged


@register_method("best_of_n")
def best_of_n(
    ctx: SearchContext, problems: Sequence[Problem], budget: int, seed: int
) -> list[SearchOutcome]:
    started = time.perf_counter()
    n, texts, generated, scores, judged = _judged_samples("best_of_n", ctx, problems, budget, seed)
    if not problems:
        return []
    chosen = [ts[argmax_first(sc)] for ts, sc in zip(texts, scores)]
    return outcomes(ctx, problems, chosen, [n] * len(problems), generated, judged, started)


@register_method("weighted_best_of_n")
def weighted_best_of_n(
    ctx: SearchContext, problems: Sequence[Problem], budget: int, seed: int
) -> list[SearchOutcome]:
    started = time.perf_counter()
    n, texts, generated, scores, judged = _judged_samples(
        "weighted_best_of_n", ctx, problems, budget, seed
    )
    if not problems:
        return []
    chosen = []
    for problem, ts, sc in zip(problems, texts, scores):
        answers = [ctx.task.verify(problem, t).answer for t in ts]
        weight: dict[str, float] = {}
        for a, s in zip(answers, sc):
            if a is not None:
                weight[a] = weight.get(a, 0.0) + s
        if not weight:
            chosen.append(ts[argmax_first(sc)])
            continue
        top = max(weight.values())
        pick = next(a for a in weight if weight[a] == top)
        members = [i for i, a in enumerate(answers) if a == pick]
        chosen.append(ts[members[argmax_first([sc[i] for i in members])]])
    return outcomes(ctx, problems, chosen, [n] * len(problems), generated, judged, started)
