"""Agreement between raters, and between judges and humans: pure functions, no I/O.

Human-human (the chance-corrected statistics are the textbook ones):
- `cohen_kappa(a, b)`: two raters on the same items, nominal categories (Cohen 1960).
- `fleiss_kappa(counts)`: items x categories counts, every item rated by the same number of raters
  (Fleiss 1971).
- `krippendorff_alpha(units, level)`: any number of raters, missing values allowed, nominal /
  ordinal / interval metric, from the coincidence matrix exactly as in Krippendorff (2011),
  "Computing Krippendorff's Alpha-Reliability"; the ordinal metric is his rank-based one, built
  from the marginal frequencies of the values (not from the values' differences).
- `pairwise_agreement` / `first_error_agreement`: the plain share of rater pairs on the same item
  that agree exactly (not chance-corrected), pooled over pairs (an item with 3 raters gives 3 pairs).
- `consensus_first_error`: the majority first wrong step of several raters, ties to the earliest.

Judge-human: `judge_human(step_scores, human_first_errors)` scores a judge against human labels the
way evaluate/processbench.py scores it against exact labels (ProcessBench F1 and step AUROC).

Departures from the references: an undefined statistic (no item, no pairable value, or expected
agreement 1, e.g. a single category) is None rather than NaN or 1, so it survives JSON and reads as
"n/a"; `first_error_agreement` is None when there is no pair (the brief's signature said float).
In `judge_human` the threshold is tuned on the very items it is scored on (in-sample, so F1 is
optimistic); F1 at the fixed threshold 0.5 is reported beside it.

Usage:
    cohen_kappa([1, 0, 1], [1, 1, 1])                            # -> 0.0
    krippendorff_alpha([[1, 1, None], [2, 3, 2]], "ordinal")     # units x raters
    judge_human([[0.9, 0.2], [0.8, 0.7]], [1, -1])["f1"]         # -> 1.0
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from itertools import combinations
from typing import Any, Literal

from reasonlab.evaluate.processbench import (
    FIXED_THRESHOLD,
    auroc,
    earliest_error,
    processbench_metrics,
    tune_threshold,
)
from reasonlab.types import labels_from_first_error

Level = Literal["nominal", "ordinal", "interval"]
LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval")


# ---- two raters --------------------------------------------------------------------------------------


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters' nominal labels on the same items: (p_o - p_e) / (1 - p_e).

    a, b: (items,) one category per item, a[i] and b[i] on the same item. p_o is the share of items
    with a[i] == b[i]; p_e = sum over categories c of P(a = c) P(b = c) from each rater's own
    marginals. None when undefined: no item, or p_e == 1 (both raters used one and the same
    category). Computed in integers (n^2 p_e exactly) so perfect agreement gives exactly 1.0.
    """
    if len(a) != len(b):
        raise ValueError(f"cohen_kappa needs the same items: {len(a)} labels against {len(b)}")
    n = len(a)
    if n < 1:
        return None
    agree = sum(x == y for x, y in zip(a, b))  # n p_o
    ca, cb = Counter(a), Counter(b)
    chance = sum(ca[c] * cb[c] for c in ca)  # n^2 p_e
    if chance == n * n:
        return None
    return (n * agree - chance) / (n * n - chance)


# ---- many raters, complete data ----------------------------------------------------------------------


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa from a table of counts: (P_bar - P_e) / (1 - P_e).

    counts: (items, categories), counts[i][j] = how many raters put item i in category j; every row
    sums to the same number of raters m >= 2 (ValueError otherwise, and for a negative count or
    rows of different lengths). P_i = (sum_j n_ij^2 - m) / (m (m - 1)) is the agreement on item i,
    P_bar their mean; p_j = sum_i n_ij / (N m) the share of category j and P_e = sum_j p_j^2.
    None when undefined: no item, or P_e == 1 (one category only).
    """
    rows = [list(map(int, r)) for r in counts]
    if not rows:
        return None
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise ValueError("fleiss_kappa needs rows of the same length (one count per category)")
    if any(x < 0 for r in rows for x in r):
        raise ValueError("fleiss_kappa needs counts >= 0")
    m = sum(rows[0])
    if m < 2 or any(sum(r) != m for r in rows):
        raise ValueError(
            "fleiss_kappa needs every item rated by the same number of raters, at least 2; "
            f"got raters per item {sorted({sum(r) for r in rows})}"
        )
    n_items = len(rows)
    p_bar = sum((sum(x * x for x in r) - m) / (m * (m - 1)) for r in rows) / n_items
    totals = [sum(r[j] for r in rows) for j in range(width)]
    if max(totals) == n_items * m:  # every rating in one category: P_e == 1 exactly
        return None
    p_e = sum((t / (n_items * m)) ** 2 for t in totals)
    return (p_bar - p_e) / (1 - p_e)


# ---- many raters, missing values ---------------------------------------------------------------------


def coincidences(units: Sequence[Sequence[Any]]) -> dict[tuple[Any, Any], float]:
    """Krippendorff's coincidence matrix {(c, k): o_ck} of the pairable values.

    units: (units, raters) values, None for a missing one. A unit with m_u >= 2 values contributes
    each ordered pair of its values (two different raters) with weight 1 / (m_u - 1), so every
    pairable value contributes 1 in all and sum_ck o_ck = n, the number of pairable values. Units
    with fewer than 2 values are not pairable and contribute nothing.
    """
    o: dict[tuple[Any, Any], float] = defaultdict(float)
    for unit in units:
        values = Counter(v for v in unit if v is not None)
        m = sum(values.values())
        if m < 2:
            continue
        for c, n_c in values.items():
            for k, n_k in values.items():
                pairs = n_c * (n_k - 1) if c == k else n_c * n_k
                if pairs:
                    o[c, k] += pairs / (m - 1)
    return dict(o)


def _distance(level: str, marginals: Mapping[Any, float]) -> Any:
    """delta^2(c, k) for the level, given the values' marginal frequencies n_c (ordinal needs them)."""
    if level == "nominal":
        return lambda c, k: 0.0 if c == k else 1.0
    if level == "interval":
        return lambda c, k: (float(c) - float(k)) ** 2
    ranked = sorted(marginals)  # the ordinal metric: ranks through the frequencies between c and k
    cumulative, below = {}, 0.0
    for v in ranked:
        cumulative[v] = below  # sum of n_g for g < v
        below += marginals[v]

    def ordinal(c: Any, k: Any) -> float:
        lo, hi = (c, k) if cumulative[c] <= cumulative[k] else (k, c)
        between = cumulative[hi] + marginals[hi] - cumulative[lo]  # sum of n_g, lo <= g <= hi
        return (between - (marginals[c] + marginals[k]) / 2) ** 2

    return ordinal


def krippendorff_alpha(units: Sequence[Sequence[Any]], level: Level = "nominal") -> float | None:
    """Krippendorff's alpha = 1 - D_o / D_e from the coincidence matrix (Krippendorff 2011).

    units: (units, raters) values, None where a rater gave none; rows may differ in length. With
    o_ck the coincidences, n_c = sum_k o_ck and n = sum_c n_c:
        alpha = 1 - (n - 1) sum_ck o_ck delta^2_ck / sum_ck n_c n_k delta^2_ck
    with delta^2 = [c != k] (nominal), (c - k)^2 (interval), and for ordinal
    (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2, g running over the values in order from c to k.
    Ordinal values need an order, interval values must be numbers. None when undefined: fewer than
    2 pairable values, or no variation among them (D_e == 0).
    """
    if level not in LEVELS:
        raise ValueError(f"krippendorff_alpha level must be one of {LEVELS}, got {level!r}")
    o = coincidences(units)
    marginals: dict[Any, float] = defaultdict(float)
    for (c, _), weight in o.items():
        marginals[c] += weight
    n = sum(marginals.values())
    if n < 2:
        return None
    delta = _distance(level, marginals)
    observed = sum(w * delta(c, k) for (c, k), w in o.items())
    expected = sum(
        n_c * n_k * delta(c, k) for c, n_c in marginals.items() for k, n_k in marginals.items()
    )
    if expected <= 0:
        return None
    return 1.0 - (n - 1) * observed / expected


# ---- exact agreement ---------------------------------------------------------------------------------


def pairwise_agreement(values_by_item: Mapping[Hashable, Sequence[Hashable]]) -> float | None:
    """The share of rater pairs on the same item that gave the same value, pooled over all pairs.

    values_by_item: {item: (raters,) values}. An item with m raters gives m (m - 1) / 2 pairs; items
    with one rater give none. None when there is no pair.
    """
    same = total = 0
    for values in values_by_item.values():
        for x, y in combinations(values, 2):
            total += 1
            same += x == y
    return same / total if total else None


def first_error_agreement(first_errors_by_item: Mapping[Hashable, Sequence[int]]) -> float | None:
    """The share of rater pairs on the same item that agree exactly on the first wrong step.

    first_errors_by_item: {item: (raters,) first wrong step index, -1 meaning none}; two raters
    agree when both say -1 or both name the same step. None when no item has two raters.
    """
    return pairwise_agreement(first_errors_by_item)


def consensus_first_error(first_errors: Sequence[int]) -> int:
    """The raters' majority first wrong step; ties go to the earliest error (-1, none, is latest).

    A tie between "no error" and "step 4" is resolved to 4: a step that half the raters call wrong
    is the one to look at. ValueError for no rater.
    """
    if not first_errors:
        raise ValueError("consensus_first_error needs at least one rater's first error")
    votes = Counter(first_errors)
    top = max(votes.values())
    tied = [fe for fe, v in votes.items() if v == top]
    errors = [fe for fe in tied if fe >= 0]
    return min(errors) if errors else -1


# ---- judges against humans ---------------------------------------------------------------------------


def _f1_block(predicted: Sequence[int], labels: Sequence[int], suffix: str = "") -> dict[str, Any]:
    """processbench_metrics with None for an empty class (and for F1 then), as judge_step_metrics."""
    raw = processbench_metrics(predicted, labels)
    n_error, n_correct = int(raw["n_error"]), int(raw["n_correct"])
    return {
        f"f1{suffix}": raw["f1"] if n_error and n_correct else None,
        f"acc_error{suffix}": raw["acc_error"] if n_error else None,
        f"acc_correct{suffix}": raw["acc_correct"] if n_correct else None,
    }


def judge_human(
    step_scores: Sequence[Sequence[float]], human_first_errors: Sequence[int]
) -> dict[str, Any]:
    """A judge's ProcessBench F1 and step AUROC against human first wrong steps.

    step_scores: (items, steps_i) the judge's P(the solution is still right after step j);
    human_first_errors: (items,) the humans' first wrong step per item, -1 when none.
    - F1 (`f1`, `acc_error`, `acc_correct`): predictions are `earliest_error(scores, threshold)` at
      the threshold `tune_threshold` picks on these same items against these labels: tuned
      in-sample, so optimistic; `f1_at_0.5` etc. are at the fixed threshold 0.5, not tuned.
    - `step_auroc`: over the steps up to and including each item's human first wrong step (all steps
      when none), a step labelled correct iff it comes before the first error
      (types.labels_from_first_error, the judges' convention); steps after the first error carry
      no human label under the first_error protocol and are left out. None with one class only.
    A class (error / no error) with no item gives None for its accuracy and for F1.
    """
    if len(step_scores) != len(human_first_errors):
        raise ValueError(f"{len(step_scores)} score lists for {len(human_first_errors)} labels")
    for i, (scores, fe) in enumerate(zip(step_scores, human_first_errors)):
        if not -1 <= fe < len(scores):
            raise ValueError(f"item {i}: first error {fe} outside its {len(scores)} steps")
    n = len(step_scores)
    threshold = tune_threshold(step_scores, human_first_errors) if n else FIXED_THRESHOLD
    tuned = [earliest_error(s, threshold) for s in step_scores]
    fixed = [earliest_error(s, FIXED_THRESHOLD) for s in step_scores]
    probs: list[float] = []
    labels: list[bool] = []
    for scores, fe in zip(step_scores, human_first_errors):
        keep = len(scores) if fe < 0 else fe + 1
        probs += [float(s) for s in scores[:keep]]
        labels += labels_from_first_error(len(scores), fe)[:keep]
    n_error = sum(fe >= 0 for fe in human_first_errors)
    return {
        "n_items": n,
        "n_error": n_error,
        "n_correct": n - n_error,
        "threshold": threshold,
        "threshold_source": f"tuned in-sample on these {n} items (optimistic)",
        **_f1_block(tuned, human_first_errors),
        "exact": sum(p == t for p, t in zip(tuned, human_first_errors)) / n if n else None,
        **_f1_block(fixed, human_first_errors, "_at_0.5"),
        "step_auroc": auroc(probs, labels),
        "n_steps": len(probs),
    }
