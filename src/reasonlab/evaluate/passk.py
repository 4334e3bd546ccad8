"""pass@k and maj@k: the unbiased estimators used to measure a policy from n samples per problem.

pass@k follows Chen et al. 2021 ("Evaluating Large Language Models Trained on Code", eq. 1):
pass@k = 1 - C(n-c, k) / C(n, k), computed as a product so it stays exact for large n.
maj@k (self-consistency, Wang et al. 2022) has no closed form over subsets; it is estimated here by
averaging the majority vote over `draws` random k-subsets (exact when k == n). A tie is broken
uniformly at random, in expectation: a vote whose top answers tie counts as the share of them that
are right (`['7', None, '8']` with '8' right scores 0.5), for every k including k == n, so the
curve has no jump at k == n. Malformed answers (None) never win a vote. `majority_vote`, which must
name one answer, gives a tie to the answer seen first.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n (c correct) is correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):  # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i)
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def pass_at_k_curve(counts: Sequence[tuple[int, int]], ks: Sequence[int]) -> dict[int, float]:
    """Mean pass@k over problems, for each k; `counts` holds (n, c) per problem."""
    if not counts:
        return {k: 0.0 for k in ks}
    return {k: sum(pass_at_k(n, c, k) for n, c in counts) / len(counts) for k in ks}


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """The most frequent non-None answer (first seen wins ties), or None if there is none."""
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return None
    best = max(votes.values())
    return next(a for a in answers if a is not None and votes[a] == best)


def majority_share(answers: Sequence[str | None], right: set[str]) -> float:
    """The share of the top-voted answers (all of them when several tie) that are right: the chance
    that a uniformly random tie-break picks a right one. 0 when every answer is None."""
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return 0.0
    best = max(votes.values())
    top = [a for a, count in votes.items() if count == best]
    return sum(a in right for a in top) / len(top)


def majority_at_k(
    answers: Sequence[str | None], correct: Sequence[bool], k: int, seed: int, draws: int = 32
) -> float:
    """Chance that the majority answer of k random samples is a correct one, ties broken at random
    (exact when k == n, else the mean over `draws` random k-subsets)."""
    n = len(answers)
    if not 1 <= k <= n:
        raise ValueError(f"majority_at_k needs 1 <= k <= n, got k={k}, n={n}")
    right = {a for a, ok in zip(answers, correct) if ok and a is not None}
    if k == n:
        return majority_share(answers, right)
    rng = random.Random(seed)
    total = 0.0
    for _ in range(draws):
        idx = rng.sample(range(n), k)
        total += majority_share([answers[i] for i in idx], right)
    return total / draws


def powers_of_two(n: int) -> list[int]:
    """1, 2, 4, ... up to n: the k of maj@k."""
    return [1 << i for i in range(n.bit_length())]


def headline_ks(n: int) -> list[int]:
    """The pass@k shown in summaries: powers of two up to n, and n itself."""
    ks = powers_of_two(n)
    return ks if ks[-1] == n else ks + [n]


def curve_ks(n: int) -> list[int]:
    """Every k from 1 to n (the curve is cheap: n evaluations of a product per problem)."""
    return list(range(1, n + 1))
