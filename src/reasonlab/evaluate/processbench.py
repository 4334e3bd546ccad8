"""Step-level judge evaluation: ProcessBench F1, threshold tuning, AUROC, calibration, best-of-n.

Follows ProcessBench (Zheng et al. 2024, arXiv 2412.06559): a judge's step scores become one
prediction per solution, the index of the earliest step scored below a threshold (-1 if none);
accuracy is measured separately on the erroneous solutions (prediction == the labelled earliest
wrong step) and on the all-correct ones (prediction == -1), and F1 is their harmonic mean.

Departures from the paper:
- The threshold is tuned per judge and per file: `tune_threshold` picks it exactly (every distinct
  score is considered, no grid) on the records `tune_split` marks (about half), and the metrics
  are reported on the rest, so reported numbers cover about half of each file and are not the
  paper's full-file figures. Among equally good thresholds the lowest range wins, and the value
  returned is the midpoint of that range, so it sits between the scores it separates.
- `judge_step_metrics` adds what the paper does not report: step and outcome AUROC and expected
  calibration error, and a breakdown by record source (e.g. per injected error kind).

Usage:
    result = judge_step_metrics(records, judge.score(records), tune_split([r.id for r in records]))
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import defaultdict
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

import numpy as np

from reasonlab.types import JudgeScores, StepRecord

FIXED_THRESHOLD = 0.5


def earliest_error(step_scores: Sequence[float], threshold: float) -> int:
    """The index of the first step scored below `threshold`, or -1 when there is none."""
    return next((i for i, s in enumerate(step_scores) if s < threshold), -1)


def _share(hits: int, n: int) -> float:
    return hits / n if n else 0.0


def _harmonic(a: float, b: float) -> float:
    return 2 * a * b / (a + b) if a + b > 0 else 0.0


def processbench_metrics(predicted: Sequence[int], labels: Sequence[int]) -> dict[str, float]:
    """ProcessBench accuracies and F1 of predicted earliest-error indices against labels.

    `acc_error` is the share of records with label >= 0 predicted exactly; `acc_correct` the share
    of records with label -1 predicted -1; `f1` their harmonic mean. A class with no record gets
    accuracy 0.0, so F1 is 0.0 unless both classes are present.
    """
    if len(predicted) != len(labels):
        raise ValueError(f"{len(predicted)} predictions for {len(labels)} labels")
    errors = [(p, t) for p, t in zip(predicted, labels) if t >= 0]
    fine = [p for p, t in zip(predicted, labels) if t < 0]
    acc_error = _share(sum(p == t for p, t in errors), len(errors))
    acc_correct = _share(sum(p == -1 for p in fine), len(fine))
    return {
        "acc_error": acc_error,
        "acc_correct": acc_correct,
        "f1": _harmonic(acc_error, acc_correct),
        "n_error": len(errors),
        "n_correct": len(fine),
    }


def _hit_interval(step_scores: Sequence[float], label: int) -> tuple[float, float]:
    """(lo, hi): `earliest_error(step_scores, t) == label` exactly when lo < t <= hi."""
    mins = list(accumulate(step_scores, min))  # the prediction is the first i with mins[i] < t
    if label < 0:
        return -math.inf, mins[-1] if mins else math.inf
    if label >= len(mins):
        return math.inf, math.inf  # never hit
    return mins[label], mins[label - 1] if label > 0 else math.inf


def _hits(lo: np.ndarray, hi: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For each threshold t, how many intervals (lo, hi] contain it (lo <= hi elementwise)."""
    below_lo = np.searchsorted(np.sort(lo), thresholds, side="left")  # #{lo < t}
    below_hi = np.searchsorted(np.sort(hi), thresholds, side="left")  # #{hi < t}
    return below_lo - below_hi


def _representative(edges: np.ndarray, first: int, last: int) -> float:
    """A threshold inside pieces first..last of the line cut at `edges` (piece j: (edges[j-1], edges[j]]).

    Flag nothing (piece 0 included): 0.0, or the lowest score if negative. Otherwise the midpoint of
    the pieces' span, whose top end for the last piece (flag every step) is 1.0, or the highest
    score + 1 if that is >= 1.
    """
    if first == 0:
        return min(0.0, float(edges[0]))
    top = float(edges[-1])
    lo = float(edges[first - 1])
    hi = float(edges[last]) if last < len(edges) else (1.0 if top < 1.0 else top + 1.0)
    mid = (lo + hi) / 2
    return mid if lo < mid <= hi else hi


def tune_threshold(step_scores: Sequence[Sequence[float]], labels: Sequence[int]) -> float:
    """The threshold whose `earliest_error` predictions maximise ProcessBench F1 on these records.

    Exact: the prediction for a record equals its label on one interval of thresholds (read off the
    running minimum of its scores), so F1 is constant between consecutive distinct scores and
    every piece is evaluated at once with sorted counts, in O((steps + records) log steps).
    Ties go to the lowest pieces (fewest steps flagged): the first best piece and the adjacent
    pieces above it with the same F1 form one range, and the value returned is its midpoint;
    0.0 (or the lowest score, if negative) when flagging nothing is best, and 1.0 (or the highest
    score + 1, if >= 1) as the top end of the range that flags every step.
    """
    if len(step_scores) != len(labels):
        raise ValueError(f"{len(step_scores)} score lists for {len(labels)} labels")
    flat = [float(s) for steps in step_scores for s in steps]
    if any(math.isnan(s) for s in flat):
        raise ValueError("tune_threshold needs step scores that are numbers, got NaN")
    edges = np.unique(np.asarray(flat, dtype=float))
    if edges.size == 0:
        return 0.0
    intervals = [_hit_interval(s, t) for s, t in zip(step_scores, labels)]
    probes = np.append(edges, math.inf)  # piece j < len(edges) contains edges[j]; the last, +inf
    accs: list[np.ndarray] = []
    for wanted in (lambda t: t >= 0, lambda t: t < 0):
        chosen = [iv for iv, t in zip(intervals, labels) if wanted(t)]
        if not chosen:
            return _representative(edges, 0, len(edges))  # one class only: every threshold has F1 0
        lo, hi = (np.asarray(v, dtype=float) for v in zip(*chosen))
        accs.append(_hits(lo, hi, probes) / len(chosen))
    total = accs[0] + accs[1]
    f1 = np.divide(2 * accs[0] * accs[1], total, out=np.zeros_like(total), where=total > 0)
    first = last = int(np.argmax(f1))
    while last + 1 < len(f1) and f1[last + 1] == f1[first]:
        last += 1
    return _representative(edges, first, last)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranks = np.empty(len(values), dtype=float)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return ranks


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """P(a random positive outscores a random negative), ties 1/2 (Mann-Whitney U); None if one class."""
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} scores for {len(labels)} labels")
    positive = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(np.asarray(scores, dtype=float))
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def _bins_of(probs: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width bin index on [0, 1] (probabilities clipped into it; 1.0 goes in the last bin)."""
    if bins < 1:
        raise ValueError(f"need at least one bin, got bins={bins}")
    return np.minimum((np.clip(probs, 0.0, 1.0) * bins).astype(int), bins - 1)


def reliability(
    probs: Sequence[float], labels: Sequence[bool], bins: int = 10
) -> list[dict[str, float]]:
    """Per non-empty equal-width bin: its edges, size, mean probability and share of positives."""
    if len(probs) != len(labels):
        raise ValueError(f"{len(probs)} probabilities for {len(labels)} labels")
    p = np.asarray(probs, dtype=float)
    y = np.asarray(labels, dtype=float)
    which = _bins_of(p, bins)
    rows = []
    for b in range(bins):
        inside = which == b
        if inside.any():
            rows.append(
                {
                    "lo": b / bins,
                    "hi": (b + 1) / bins,
                    "n": int(inside.sum()),
                    "confidence": float(p[inside].mean()),
                    "accuracy": float(y[inside].mean()),
                }
            )
    return rows


def ece(probs: Sequence[float], labels: Sequence[bool], bins: int = 10) -> float:
    """Expected calibration error: sum over bins of (n_bin / N) |share of positives - mean prob|."""
    rows = reliability(probs, labels, bins)
    total = sum(r["n"] for r in rows)
    if total == 0:
        return 0.0
    return float(sum(r["n"] / total * abs(r["accuracy"] - r["confidence"]) for r in rows))


def _top_correct(scores: Sequence[float], correct: Sequence[bool]) -> float:
    """Correctness of the top-scoring sample, averaged over the samples tied at the top."""
    best = max(scores)
    tied = [ok for s, ok in zip(scores, correct) if s == best]
    return sum(tied) / len(tied)


def best_of_n(
    scores: Sequence[float], correct: Sequence[bool], k: int, seed: int, draws: int = 32
) -> float:
    """Expected correctness of the highest-scoring of k samples of one problem (ties averaged).

    Exact when k == n; otherwise the mean over `draws` random k-subsets drawn with
    random.Random(seed), as `majority_at_k` does.
    """
    n = len(scores)
    if len(correct) != n:
        raise ValueError(f"{n} scores for {len(correct)} correctness flags")
    if not 1 <= k <= n:
        raise ValueError(f"best_of_n needs 1 <= k <= n, got k={k}, n={n}")
    if k == n:
        return float(_top_correct(scores, correct))
    rng = random.Random(seed)
    total = 0.0
    for _ in range(draws):
        idx = rng.sample(range(n), k)
        total += _top_correct([scores[i] for i in idx], [correct[i] for i in idx])
    return total / draws


def tune_split(ids: Sequence[str], fraction: float = 0.5) -> list[bool]:
    """True for the records whose id hashes (sha256) below `fraction`: stable across runs and machines."""

    def unit(text: str) -> float:
        return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") / 2**64

    return [unit(i) < fraction for i in ids]


def _accuracies(
    pairs: Sequence[tuple[StepRecord, JudgeScores]], threshold: float
) -> dict[str, Any]:
    """F1 and the two accuracies on labelled records; None for a class with no record (and for F1)."""
    predicted = [earliest_error(s.steps, threshold) for _, s in pairs]
    labels = [r.first_error for r, _ in pairs]
    raw = processbench_metrics(predicted, labels)
    n_error, n_correct = int(raw["n_error"]), int(raw["n_correct"])
    acc_error = raw["acc_error"] if n_error else None
    acc_correct = raw["acc_correct"] if n_correct else None
    return {
        "f1": raw["f1"] if n_error and n_correct else None,
        "acc_error": acc_error,
        "acc_correct": acc_correct,
        "n_error": n_error,
        "n_correct": n_correct,
    }


def _calibration(
    probs: Sequence[float], labels: Sequence[bool]
) -> tuple[float | None, float | None]:
    """(AUROC, ECE), ECE None for no data."""
    return auroc(probs, labels), (ece(probs, labels) if probs else None)


def _check_shapes(
    records: Sequence[StepRecord], scores: Sequence[JudgeScores], tune: Sequence[bool]
) -> None:
    if not len(records) == len(scores) == len(tune):
        raise ValueError(
            f"{len(records)} records, {len(scores)} scores and {len(tune)} tune flags differ in number"
        )
    for r, s in zip(records, scores):
        if len(r.steps) != len(s.steps):
            raise ValueError(
                f"record {r.id!r} has {len(r.steps)} steps but {len(s.steps)} step scores"
            )


def _by_source(
    pairs: Sequence[tuple[StepRecord, JudgeScores]], threshold: float
) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[tuple[StepRecord, JudgeScores]]] = defaultdict(list)
    for pair in pairs:
        groups[pair[0].source].append(pair)
    return {src: {**_accuracies(g, threshold), "n": len(g)} for src, g in sorted(groups.items())}


def judge_step_metrics(
    records: Sequence[StepRecord], scores: Sequence[JudgeScores], tune: Sequence[bool]
) -> dict[str, Any]:
    """The ProcessBench-style evaluation of one judge, as a flat JSON-ready dict (plus `by_source`).

    The threshold is tuned on the labelled records with tune[i] True (fixed 0.5 when there are
    none); every metric is reported on the records with tune[i] False. Step metrics use records
    with labels; outcome metrics records with `correct` known. A metric with no data is None:
    unlike `processbench_metrics`, an accuracy over an empty class is None, and so is F1 then.
    """
    _check_shapes(records, scores, tune)
    tuning = [(r, s) for r, s, t in zip(records, scores, tune) if t and r.first_error is not None]
    reported = [(r, s) for r, s, t in zip(records, scores, tune) if not t]
    if tuning:
        threshold = tune_threshold([s.steps for _, s in tuning], [r.first_error for r, _ in tuning])
        source = f"tuned on {len(tuning)} records"
    else:
        threshold, source = FIXED_THRESHOLD, "fixed 0.5"
    labelled = [(r, s) for r, s in reported if r.first_error is not None and r.labels is not None]
    step_probs = [p for _, s in labelled for p in s.steps]
    step_labels = [ok for r, _ in labelled for ok in r.labels]
    known = [(r, s) for r, s in reported if r.correct is not None]
    step_auroc, step_ece = _calibration(step_probs, step_labels)
    outcome_auroc, outcome_ece = _calibration(
        [s.outcome for _, s in known], [r.correct for r, _ in known]
    )
    return {
        "threshold": threshold,
        "threshold_source": source,
        **_accuracies(labelled, threshold),
        "step_auroc": step_auroc,
        "step_ece": step_ece,
        "outcome_auroc": outcome_auroc,
        "outcome_ece": outcome_ece,
        "n_records": len(reported),
        "n_tune": len(tuning),
        "by_source": _by_source(labelled, threshold),
    }
