"""`mcts`: Monte-Carlo tree search over steps with PUCT selection (rStar-Math style, simplified).

Each problem has a tree whose nodes are partial solutions (search/expand.py paths). The budget N is
the number of simulations per problem; one simulation of every problem runs per step of the loop,
and all their expansions decode in ONE generate call:

1. selection: from the root, descend to the child with the largest
   Q + c_puct * P * sqrt(N_parent) / (1 + N_child), with Q = mean value of the child, P = 1 / k
   uniform over the k sampled children (rStar-Math's PPM gives no prior), N visit counts; ties go
   to the earlier child; stop at a node without children;
2. expansion: an unfinished leaf gets settings.beam_width children, one sampled step each;
3. evaluation: a new child's value is the judge's aggregated score of its partial solution
   (search/scoring.py), also when it is finished (settings.mcts_terminal = "judge", the default);
   with mcts_terminal = "verifier" a finished child gets 1/0 from the verifier, which reads the
   reference answer, as rStar-Math's training-time rollouts do: an oracle, not a test-time method;
4. backup: each new child counts as one visit with its value, and every ancestor adds one visit
   and that value per child. A selected leaf that is already finished is not expanded: its value
   is backed up once more (AlphaZero's terminal rule).

Departures from rStar-Math: no rollouts to the end from a new node (the judge's value stands in
for them), no prior from a policy or PPM, children scored as they are created. The chosen solution
is the node with the highest mean value Q among the finished nodes and the unfinished leaves
(ties: the earliest created); an unfinished one is completed by one sampled rollout to the end, its
tokens counted. Finished nodes are not preferred as such: at small N (each simulation adds one level
to one path) the only finished nodes are often one-step answer-only solutions, which a rule
"prefer finished" picked in 49 of 50 problems on the default base.
With zero simulations (budget 0, which only MCTS accepts) the answer is the greedy completion:
`generate` at temperature 0 (the builtin sampler's greedy path), one per problem.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from reasonlab import sampling
from reasonlab.search.accounting import outcomes
from reasonlab.search.base import SearchContext, SearchOutcome, register_method
from reasonlab.search.checks import (
    check_budget,
    check_mcts,
    check_settings,
    require_judge,
    require_steps,
)
from reasonlab.search.expand import Path, expand, expansion_seed
from reasonlab.search.scoring import CachedScorer
from reasonlab.types import Problem


@dataclass
class Node:
    path: Path
    parent: int | None
    children: list[int] = field(default_factory=list)
    visits: int = 0
    total: float = 0.0

    @property
    def q(self) -> float:
        return self.total / self.visits if self.visits else 0.0


def puct(parent: Node, child: Node, c_puct: float) -> float:
    """Q + c_puct * P * sqrt(N_parent) / (1 + N_child), P = 1 / (children of the parent)."""
    prior = 1.0 / len(parent.children)
    return child.q + c_puct * prior * math.sqrt(parent.visits) / (1 + child.visits)


def select(tree: list[Node], c_puct: float) -> int:
    """The leaf reached from the root by the largest PUCT at each node (earliest on ties)."""
    at = 0
    while tree[at].children:
        node = tree[at]
        at = max(node.children, key=lambda c: (puct(node, tree[c], c_puct), -c))
    return at


def backup(tree: list[Node], at: int | None, value: float) -> None:
    """One visit with `value` at `at` and every ancestor."""
    while at is not None:
        tree[at].visits += 1
        tree[at].total += value
        at = tree[at].parent


def choose(tree: list[Node]) -> Node:
    """The node with the highest mean value among the finished nodes and the unfinished leaves (ties:
    the earliest created). A finished node is not preferred for being finished: a one-step
    answer-only solution would otherwise beat every deeper path still under way."""
    pool = [n for n in tree if n.path.finished or not n.children]
    return pool[max(range(len(pool)), key=lambda i: (pool[i].q, -i))]


def greedy(
    ctx: SearchContext, problems: Sequence[Problem], seed: int
) -> tuple[list[str], list[int]]:
    rollouts = sampling.generate(
        ctx.policy, problems, 1, seed, max_new_tokens=ctx.settings.max_new_tokens, temperature=0.0
    )
    return [r.text for r in rollouts], [len(r.token_ids) for r in rollouts]


@register_method("mcts")
def mcts(
    ctx: SearchContext, problems: Sequence[Problem], budget: int, seed: int
) -> list[SearchOutcome]:
    """PUCT tree search over steps, `budget` simulations per problem (see the module docstring)."""
    started = time.perf_counter()
    sims = check_budget("mcts", budget, least=0)
    check_settings("mcts", ctx)
    check_mcts(ctx)
    require_judge("mcts", ctx)
    require_steps("mcts", ctx, problems)
    if problems:
        sampling.check_fits(
            ctx.policy, problems, ctx.settings.max_new_tokens, "search.max_new_tokens"
        )
    if not problems:  # a dry run of the checks
        return []
    if sims == 0:
        texts, generated = greedy(ctx, problems, seed)
        zeros = [0] * len(problems)
        return outcomes(ctx, problems, texts, [1] * len(problems), generated, zeros, started)
    s = ctx.settings
    scorer = CachedScorer(ctx, problems)
    generated = [0] * len(problems)
    trees = [[Node(Path(i), None)] for i in range(len(problems))]
    for sim in range(sims):
        leaves = []
        for tree in trees:
            at = select(tree, s.c_puct)
            if tree[at].path.finished:
                backup(tree, at, tree[at].q)
            else:
                leaves.append((tree, at))
        paths = [tree[at].path for tree, at in leaves]
        seed_now = expansion_seed(seed, sim)
        kids = expand(ctx, problems, paths, [s.beam_width] * len(paths), seed_now, False, generated)
        values = _values(ctx, problems, scorer, kids)
        for k, (tree, at) in enumerate(leaves):
            for j in range(k * s.beam_width, (k + 1) * s.beam_width):
                tree[at].children.append(len(tree))
                tree.append(Node(kids[j], at))
                backup(tree, len(tree) - 1, values[j])
    texts, counts = finish(ctx, problems, trees, expansion_seed(seed, sims), generated)
    return outcomes(ctx, problems, texts, counts, generated, scorer.judge_tokens, started)


def finish(
    ctx: SearchContext,
    problems: Sequence[Problem],
    trees: list[list[Node]],
    seed: int,
    generated: list[int],
) -> tuple[list[str], list[int]]:
    """Each tree's chosen text and the finished solutions it chose among; a chosen node that is not
    finished is read out by completing it in one sampled rollout to the end (all such trees in one
    generate call, tokens counted)."""
    chosen = [choose(tree) for tree in trees]
    texts = [node.path.text for node in chosen]
    counts = [sum(n.path.finished for n in tree) for tree in trees]
    open_ = [i for i, node in enumerate(chosen) if not node.path.finished]
    paths = [chosen[i].path for i in open_]
    for i, path in zip(
        open_, expand(ctx, problems, paths, [1] * len(paths), seed, True, generated)
    ):
        texts[i], counts[i] = path.text, counts[i] + 1
    return texts, counts


def _values(
    ctx: SearchContext, problems: Sequence[Problem], scorer: CachedScorer, kids: Sequence[Path]
) -> list[float]:
    """Judge scores of the new children; the verifier's 1/0 for finished ones when so set."""
    by_verifier = ctx.settings.mcts_terminal == "verifier"
    ask = [p for p in kids if not (by_verifier and p.finished)]
    scores = iter(scorer.scores([(p.problem, p.text, p.finished) for p in ask]))
    return [
        float(ctx.task.verify(problems[p.problem], p.text).correct)
        if by_verifier and p.finished
        else next(scores)
        for p in kids
    ]
