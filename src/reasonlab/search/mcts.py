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
is the finished node with the highest mean value Q (ties: the earliest created); if no node has
finished after N simulations (small N: each simulation adds one level to one path), the highest-Q
leaf is completed by one sampled rollout to the end, its tokens counted (candidates = 1).
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


def choose(tree: list[Node]) -> tuple[str, int]:
    """The finished node with the highest mean value, or the best leaf; and the finished count."""
    done = [n for n in tree if n.path.finished]
    pool = done or [n for n in tree if not n.children]
    best = max(range(len(pool)), key=lambda i: (pool[i].q, -i))
    return pool[best].path.text, len(done)


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
    chosen = [choose(tree) for tree in trees]
    texts, counts = finish(ctx, problems, trees, chosen, expansion_seed(seed, sims), generated)
    return outcomes(ctx, problems, texts, counts, generated, scorer.judge_tokens, started)


def finish(
    ctx: SearchContext,
    problems: Sequence[Problem],
    trees: list[list[Node]],
    chosen: list[tuple[str, int]],
    seed: int,
    generated: list[int],
) -> tuple[list[str], list[int]]:
    """The chosen texts, with every tree that finished nothing read out by completing its best leaf
    in one sampled rollout to the end (all such trees in one generate call, tokens counted)."""
    texts, counts = [c[0] for c in chosen], [c[1] for c in chosen]
    open_ = [i for i, (_, done) in enumerate(chosen) if done == 0]
    leaves = [best_leaf(trees[i]).path for i in open_]
    for i, path in zip(
        open_, expand(ctx, problems, leaves, [1] * len(leaves), seed, True, generated)
    ):
        texts[i], counts[i] = path.text, 1
    return texts, counts


def best_leaf(tree: list[Node]) -> Node:
    leaves = [n for n in tree if not n.children]
    return max(leaves, key=lambda n: (n.q, -tree.index(n)))


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
