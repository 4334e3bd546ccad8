"""ProcessBench metrics, threshold tuning, AUROC, calibration and best-of-n against hand-computed values.

Run: .venv/bin/pytest tests/test_judge_metrics.py -q
"""

from __future__ import annotations

import json
import random

import pytest

from reasonlab.evaluate.processbench import (
    auroc,
    best_of_n,
    earliest_error,
    ece,
    judge_step_metrics,
    processbench_metrics,
    reliability,
    tune_split,
    tune_threshold,
)
from reasonlab.types import JudgeScores, StepRecord, labels_from_first_error


def test_earliest_error_is_first_step_strictly_below_threshold():
    assert earliest_error([0.9, 0.4, 0.2], 0.5) == 1
    assert earliest_error([0.9, 0.4, 0.2], 0.4) == 2
    assert earliest_error([0.9, 0.4, 0.2], 0.1) == -1
    assert earliest_error([], 0.5) == -1


def test_processbench_metrics_hand_values():
    got = processbench_metrics([-1, 1, 2, 1], [-1, -1, 2, 0])
    assert got == {"acc_error": 0.5, "acc_correct": 0.5, "f1": 0.5, "n_error": 2, "n_correct": 2}
    asym = processbench_metrics([-1, 3, -1, 2], [-1, 3, 1, 0])
    assert asym["acc_correct"] == 1.0 and asym["acc_error"] == pytest.approx(1 / 3)
    assert asym["f1"] == pytest.approx(2 * (1 / 3) * 1.0 / (1 / 3 + 1.0))


def test_processbench_metrics_empty_class_gives_zero():
    only_errors = processbench_metrics([2], [2])
    assert only_errors == {
        "acc_error": 1.0,
        "acc_correct": 0.0,
        "f1": 0.0,
        "n_error": 1,
        "n_correct": 0,
    }
    assert processbench_metrics([], [])["f1"] == 0.0
    with pytest.raises(ValueError):
        processbench_metrics([1], [1, 2])


def test_auroc_hand_values_and_ties():
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert auroc([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0]) == pytest.approx(0.5)
    assert auroc([0.5, 0.5, 0.2, 0.9], [1, 0, 0, 1]) == pytest.approx(3.5 / 4)  # one tie counts 1/2
    assert auroc([0.1, 0.2], [True, True]) is None
    assert auroc([], []) is None


def test_auroc_matches_pair_counting():
    rng = random.Random(3)
    scores = [rng.choice([0.0, 0.25, 0.5, 0.75, 1.0]) for _ in range(60)]
    labels = [rng.random() < 0.4 for _ in range(60)]
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    pairs = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
    assert auroc(scores, labels) == pytest.approx(pairs)


def test_ece_two_bins_by_hand():
    probs, labels = [0.2, 0.4, 0.6, 1.0], [False, True, True, True]
    # bin [0, .5): mean prob .3, accuracy .5; bin [.5, 1]: mean prob .8, accuracy 1 -> .5*.2 + .5*.2
    assert ece(probs, labels, bins=2) == pytest.approx(0.2)
    assert ece([], []) == 0.0
    assert ece([0.5, 0.5], [True, False], bins=1) == 0.0


def test_reliability_rows_only_for_non_empty_bins():
    rows = reliability([0.2, 0.4, 1.0], [False, True, True], bins=4)
    assert [(r["lo"], r["hi"], r["n"]) for r in rows] == [
        (0.0, 0.25, 1),
        (0.25, 0.5, 1),
        (0.75, 1.0, 1),
    ]
    assert rows[1]["confidence"] == pytest.approx(0.4) and rows[1]["accuracy"] == 1.0


def test_tune_threshold_separates_a_separable_set():
    rng = random.Random(0)
    step_scores, labels = [], []
    for _ in range(40):
        n = rng.randint(1, 6)
        label = rng.choice([-1, rng.randrange(n)])
        right, wrong = lambda: rng.uniform(0.6, 1.0), lambda: rng.uniform(0.0, 0.3)
        step_scores.append([right() if label < 0 or i < label else wrong() for i in range(n)])
        labels.append(label)
    t = tune_threshold(step_scores, labels)
    assert [earliest_error(s, t) for s in step_scores] == labels
    assert 0.3 < t < 0.6


def test_tune_threshold_returns_midpoint_of_best_range():
    # Record A is right only for t in (0.2, 0.9]; record B only for t <= 0.7: best range (0.2, 0.7].
    assert tune_threshold([[0.9, 0.2], [0.8, 0.7]], [1, -1]) == pytest.approx(0.45)


def test_tune_threshold_ends_and_ties():
    assert (
        tune_threshold([[1.0, 1.0], [1.0]], [0, -1]) == 0.0
    )  # every threshold scores F1 0: flag nothing
    assert tune_threshold([[0.9], [0.8]], [-1, -1]) == 0.0  # one class only
    assert tune_threshold([[0.3], [0.2, 0.9]], [0, 0]) == 0.0
    assert tune_threshold([], []) == 0.0
    with pytest.raises(ValueError):
        tune_threshold([[0.5]], [0, 1])


def brute_force_best_f1(step_scores, labels) -> float:
    flat = sorted({s for steps in step_scores for s in steps})
    candidates = [0.0, *flat, max(flat) + 1.0]
    predictions = ([earliest_error(s, t) for s in step_scores] for t in candidates)
    return max(processbench_metrics(p, labels)["f1"] for p in predictions)


@pytest.mark.parametrize("seed", range(5))
def test_tune_threshold_matches_brute_force(seed):
    rng = random.Random(seed)
    step_scores, labels = [], []
    for _ in range(30):
        n = rng.randint(1, 5)
        step_scores.append([round(rng.random(), 1) for _ in range(n)])  # many ties
        labels.append(rng.choice([-1, rng.randrange(n)]))
    t = tune_threshold(step_scores, labels)
    got = processbench_metrics([earliest_error(s, t) for s in step_scores], labels)["f1"]
    assert got == pytest.approx(brute_force_best_f1(step_scores, labels))


def test_best_of_n_exact_averages_ties():
    assert best_of_n([0.9, 0.9, 0.1], [True, False, True], k=3, seed=0) == 0.5
    assert best_of_n([0.2, 0.9, 0.1], [False, True, False], k=3, seed=0) == 1.0
    with pytest.raises(ValueError):
        best_of_n([0.1, 0.2], [True, False], k=3, seed=0)
    with pytest.raises(ValueError):
        best_of_n([0.1, 0.2], [True, False], k=0, seed=0)


def test_best_of_n_subsets_are_deterministic_and_unbiased():
    scores, correct = [0.9, 0.9, 0.1], [True, False, True]
    assert best_of_n(scores, correct, k=2, seed=5) == best_of_n(scores, correct, k=2, seed=5)
    # Exact over the 3 pairs: {0,1} -> 0.5, {0,2} -> 1, {1,2} -> 0, mean 0.5.
    assert best_of_n(scores, correct, k=2, seed=1, draws=3000) == pytest.approx(0.5, abs=0.04)
    assert best_of_n(scores, correct, k=1, seed=1, draws=3000) == pytest.approx(2 / 3, abs=0.04)


def test_tune_split_is_stable_and_roughly_the_fraction():
    ids = [f"r{i}" for i in range(2000)]
    split = tune_split(ids)
    assert split == tune_split(ids)
    assert 0.45 < sum(split) / len(ids) < 0.55
    assert not any(tune_split(ids, 0.0)) and all(tune_split(ids, 1.0))
    assert tune_split(["a", "a"]) == [tune_split(["a"])[0]] * 2


def record(first_error, correct, source, n, rid=""):
    labels = None if first_error is None else labels_from_first_error(n, first_error)
    steps = tuple(f"step {i}" for i in range(n))
    return StepRecord("p", steps, labels, first_error, correct, id=rid, source=source)


RECORDS = [
    record(-1, True, "reference", 3),
    record(1, False, "injected:arithmetic", 3),
    record(0, False, "injected:arithmetic", 2),
    record(-1, True, "policy", 2),
    record(None, None, "policy", 2),
]
SCORES = [
    JudgeScores((0.9, 0.8, 0.9), 0.8),
    JudgeScores((0.9, 0.3, 0.2), 0.2),
    JudgeScores((0.6, 0.4), 0.4),  # predicted 1, label 0
    JudgeScores((0.7, 0.45), 0.45),  # predicted 1, label -1
    JudgeScores((0.5, 0.5), 0.5),
]


def test_judge_step_metrics_fixed_threshold_by_hand():
    got = judge_step_metrics(RECORDS, SCORES, [False] * 5)
    assert got["threshold"] == 0.5 and got["threshold_source"] == "fixed 0.5"
    assert (got["acc_error"], got["acc_correct"], got["f1"]) == (0.5, 0.5, 0.5)
    assert (got["n_error"], got["n_correct"], got["n_records"]) == (2, 2, 5)
    assert got["step_auroc"] == pytest.approx(
        23 / 24
    )  # only 0.45 (right) vs 0.6 (wrong) is misordered
    assert got["outcome_auroc"] == 1.0
    # outcome bins: 0.8 (right), 0.2 (wrong), and {0.4 wrong, 0.45 right} sharing a bin
    assert got["outcome_ece"] == pytest.approx(0.2 / 4 + 0.2 / 4 + 0.075 * 2 / 4)
    by = got["by_source"]
    assert by["injected:arithmetic"] == {
        "f1": None,
        "acc_error": 0.5,
        "acc_correct": None,
        "n_error": 2,
        "n_correct": 0,
        "n": 2,
    }
    assert by["policy"]["acc_correct"] == 0.0 and by["policy"]["n"] == 1
    assert by["reference"]["acc_correct"] == 1.0 and by["reference"]["acc_error"] is None
    json.dumps(got)


def test_judge_step_metrics_tunes_on_marked_records():
    tuning = [record(1, False, "tune", 2), record(-1, True, "tune", 2)]
    tuning_scores = [JudgeScores((0.9, 0.35), 0.35), JudgeScores((0.9, 0.8), 0.8)]
    got = judge_step_metrics(RECORDS + tuning, SCORES + tuning_scores, [False] * 5 + [True] * 2)
    assert got["threshold_source"] == "tuned on 2 records"
    assert got["threshold"] == pytest.approx((0.35 + 0.8) / 2)
    assert got["n_records"] == 5 and "tune" not in got["by_source"]


def test_judge_step_metrics_undefined_metrics_are_none():
    got = judge_step_metrics([RECORDS[4]], [SCORES[4]], [False])
    assert got["f1"] is None and got["step_auroc"] is None and got["step_ece"] is None
    assert got["outcome_auroc"] is None and got["by_source"] == {}
    with pytest.raises(ValueError):
        judge_step_metrics(RECORDS, SCORES[:4], [False] * 5)
    with pytest.raises(ValueError):
        judge_step_metrics(RECORDS[:1], [JudgeScores((0.5,), 0.5)], [False])
