"""Agreement metrics against published worked examples, and the agreement report against hand counts.

- Fleiss' kappa on the Fleiss (1971) / Wikipedia table of 10 items x 5 categories x 14 raters: 0.210.
- Krippendorff's alpha on the reliability data of Krippendorff (2011), "Computing Krippendorff's
  Alpha-Reliability" (4 observers, 12 units, missing values): nominal 0.743, ordinal 0.815, interval
  0.849; and his 2-observer binary example: 0.095. Plus a property test against an independent
  brute-force implementation (pairable values, all pairs, O(n^2)) on random data with hypothesis.
- Cohen's kappa on the Wikipedia 2 x 2 example (50 items, 20 / 5 / 10 / 15): 0.4.
- Perfect agreement gives 1, a single category gives None (undefined), missing ratings are skipped.
- judge_human on a hand-computed example: tuned threshold, F1 there and at 0.5, step AUROC over the
  steps up to the human first error.
- The report on a real SQLite database built with `connect()` and plain INSERTs: every number below
  is computed by hand in the comments.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasonlab.errors import DataError
from reasonlab.labeling.agreement import (
    cohen_kappa,
    consensus_first_error,
    first_error_agreement,
    fleiss_kappa,
    judge_human,
    krippendorff_alpha,
    pairwise_agreement,
)
from reasonlab.labeling.report import (
    agreement_html,
    agreement_markdown,
    agreement_report,
    write_agreement_report,
)
from reasonlab.labeling.store import connect

approx = pytest.approx

# ---- Cohen -------------------------------------------------------------------------------------------


def test_cohen_kappa_wikipedia_two_by_two():
    # yes/yes 20, yes/no 5, no/yes 10, no/no 15: p_o = 35/50 = 0.7,
    # p_e = (25/50)(30/50) + (25/50)(20/50) = 0.5, kappa = (0.7 - 0.5) / 0.5 = 0.4
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == approx(0.4)
    assert cohen_kappa(b, a) == approx(0.4)


def test_cohen_kappa_perfect_chance_and_undefined():
    assert cohen_kappa([1, 2, 3, 1], [1, 2, 3, 1]) == 1.0
    assert cohen_kappa([0, 1], [1, 0]) == -1.0  # systematic disagreement
    # p_o = 0.5 = p_e: no better than chance
    assert cohen_kappa(["a", "a", "b", "b"], ["a", "b", "a", "b"]) == approx(0.0)
    assert cohen_kappa(["x"] * 4, ["x"] * 4) is None  # one category: p_e = 1
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError):
        cohen_kappa([1], [1, 2])


# ---- Fleiss ------------------------------------------------------------------------------------------

WIKIPEDIA_FLEISS = [  # 10 items, 5 categories, 14 raters each
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_wikipedia_example():
    # P_bar = 0.378, P_e = 0.213, kappa = 0.210
    assert fleiss_kappa(WIKIPEDIA_FLEISS) == approx(0.210, abs=5e-4)


def test_fleiss_kappa_edges():
    assert fleiss_kappa([[3, 0], [0, 3]]) == 1.0
    assert fleiss_kappa([[3, 0, 0], [3, 0, 0]]) is None  # one category used: P_e = 1
    assert fleiss_kappa([]) is None
    # two raters: P_i = 0, 1; p = (3/4, 1/4), P_e = 0.625, kappa = (0.5 - 0.625) / 0.375
    assert fleiss_kappa([[2, 0], [1, 1]]) == approx(-1 / 3)
    with pytest.raises(ValueError):
        fleiss_kappa([[2, 1], [1, 1]])  # 3 raters on one item, 2 on the other
    with pytest.raises(ValueError):
        fleiss_kappa([[1, 0], [0, 1]])  # one rater
    with pytest.raises(ValueError):
        fleiss_kappa([[3, -1], [1, 1]])


def test_fleiss_equals_krippendorff_nominal_up_to_small_sample_correction():
    # complete data, m raters: alpha_nominal = 1 - (N m - 1) / (N m) (1 - kappa_Fleiss)
    rows = WIKIPEDIA_FLEISS
    units = [[c for c, k in enumerate(r) for _ in range(k)] for r in rows]
    nm = 10 * 14
    kappa = fleiss_kappa(rows)
    assert krippendorff_alpha(units, "nominal") == approx(1 - (nm - 1) / nm * (1 - kappa))


# ---- Krippendorff ------------------------------------------------------------------------------------

N = None
K2011 = [  # Krippendorff (2011), section C: observers A-D x units 1-12, '.' missing
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]
K2011_UNITS = [list(unit) for unit in zip(*K2011)]


def test_krippendorff_2011_example_with_missing_values():
    assert krippendorff_alpha(K2011_UNITS, "nominal") == approx(0.743, abs=5e-4)
    assert krippendorff_alpha(K2011_UNITS, "ordinal") == approx(0.815, abs=5e-4)
    assert krippendorff_alpha(K2011_UNITS, "interval") == approx(0.849, abs=5e-4)
    # nominal exactly, as in the paper: n_c = 9, 13, 10, 5, 3 (n = 40, sum n_c^2 = 384), the
    # off-diagonal coincidences sum to 8: alpha = 1 - (n - 1) 8 / (n^2 - 384) = 1 - 39 * 8 / 1216
    assert krippendorff_alpha(K2011_UNITS, "nominal") == approx(1 - 39 * 8 / 1216)


def test_krippendorff_2011_binary_two_observers():
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    assert krippendorff_alpha(list(zip(a, b)), "nominal") == approx(0.095, abs=5e-4)


def test_krippendorff_edges():
    assert krippendorff_alpha([[1, 1], [2, 2, None], [3, 3, 3]], "ordinal") == 1.0
    assert krippendorff_alpha([[1, 1], [1, 1, None]], "nominal") is None  # no variation
    assert krippendorff_alpha([[1, None], [None, 2]], "interval") is None  # nothing pairable
    assert krippendorff_alpha([], "nominal") is None
    # a unit with one value adds nothing
    base = [[1, 2], [2, 2], [3, 1]]
    assert krippendorff_alpha([*base, [5, None, None]], "interval") == krippendorff_alpha(
        base, "interval"
    )
    with pytest.raises(ValueError):
        krippendorff_alpha(base, "ratio")  # type: ignore[arg-type]


def test_krippendorff_ordinal_depends_on_ranks_not_distances():
    units = [[-1, 0], [0, 1], [1, 1], [-1, -1], [1, 0]]
    stretched = [[{-1: -10, 0: 0, 1: 100}[v] for v in u] for u in units]
    assert krippendorff_alpha(units, "ordinal") == approx(krippendorff_alpha(stretched, "ordinal"))
    assert krippendorff_alpha(units, "interval") != approx(
        krippendorff_alpha(stretched, "interval")
    )


def _brute_alpha(units, level):
    """alpha = 1 - D_o / D_e over the pairable values directly (Krippendorff 2011, eqs. for D_o, D_e)."""
    kept = [[v for v in u if v is not None] for u in units]
    kept = [u for u in kept if len(u) >= 2]
    pooled = [v for u in kept for v in u]
    n = len(pooled)
    if n < 2:
        return None
    freq = {v: pooled.count(v) for v in set(pooled)}

    def d2(c, k):
        if level == "nominal":
            return float(c != k)
        if level == "interval":
            return float(c - k) ** 2
        lo, hi = min(c, k), max(c, k)
        return (sum(f for g, f in freq.items() if lo <= g <= hi) - (freq[c] + freq[k]) / 2) ** 2

    d_o = (
        sum(
            d2(u[i], u[j]) / (len(u) - 1)
            for u in kept
            for i in range(len(u))
            for j in range(len(u))
            if i != j
        )
        / n
    )
    d_e = sum(d2(pooled[i], pooled[j]) for i in range(n) for j in range(n) if i != j) / (
        n * (n - 1)
    )
    return None if d_e == 0 else 1 - d_o / d_e


UNITS = st.lists(
    st.lists(st.one_of(st.none(), st.integers(-2, 3)), min_size=0, max_size=5), max_size=12
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(UNITS, st.sampled_from(["nominal", "ordinal", "interval"]))
def test_krippendorff_matches_brute_force(units, level):
    want = _brute_alpha(units, level)
    got = krippendorff_alpha(units, level)
    if want is None:
        assert got is None
    else:
        assert got == approx(want, abs=1e-9)
        assert got <= 1 + 1e-12


@settings(max_examples=100, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=30))
def test_two_raters_alpha_is_scotts_pi_with_correction(pairs):
    # complete data, 2 raters: alpha = 1 - (2N - 1)/(2N) (1 - pi), pi = Scott's pi
    a, b = zip(*pairs)
    n = len(pairs)
    p_o = sum(x == y for x, y in pairs) / n
    pooled = list(a) + list(b)
    p_e = sum((pooled.count(c) / (2 * n)) ** 2 for c in set(pooled))
    alpha = krippendorff_alpha([list(p) for p in pairs], "nominal")
    if p_e == 1:
        assert alpha is None
    else:
        pi = (p_o - p_e) / (1 - p_e)
        assert alpha == approx(1 - (2 * n - 1) / (2 * n) * (1 - pi))


# ---- exact agreement and consensus -------------------------------------------------------------------


def test_first_error_agreement_pools_rater_pairs():
    # item a: 3 raters -> pairs (1,1) yes, (1,2) no, (1,2) no; item b: (-1,-1) yes; item c: 1 rater
    assert first_error_agreement({"a": [1, 1, 2], "b": [-1, -1], "c": [0]}) == approx(2 / 4)
    assert first_error_agreement({"a": [3]}) is None
    assert first_error_agreement({}) is None
    assert pairwise_agreement({"p": ["a", "a"], "q": ["tie", "b"]}) == 0.5


def test_consensus_first_error():
    assert consensus_first_error([2, 2, 1]) == 2
    assert consensus_first_error([-1, -1, 3]) == -1
    assert consensus_first_error([3, 1]) == 1  # tie: the earliest error
    assert consensus_first_error([-1, 4]) == 4  # tie with "no error": the error
    assert consensus_first_error([-1]) == -1
    with pytest.raises(ValueError):
        consensus_first_error([])


# ---- judge against humans ----------------------------------------------------------------------------

# The prm scores of the report test below: the same numbers, checked once here directly.
PRM = [
    [0.9, 0.3, 0.2],
    [0.9, 0.8, 0.7],
    [0.9, 0.2, 0.1],
    [0.9, 0.8, 0.52],
    [0.8, 0.7, 0.9],
    [0.9, 0.9, 0.9],
    [0.95, 0.1, 0.5],
]
CONSENSUS = [1, -1, 0, 2, 0, -1, 1]


def test_judge_human_hand_example():
    # Prediction == label on threshold intervals: item 0 (0.3, 0.9], 2 (0.9, inf), 3 (0.52, 0.8],
    # 4 (0.8, inf), 6 (0.1, 0.95]; label -1: 1 (-inf, 0.7], 5 (-inf, 0.9]. On (0.52, 0.7] 3 of the 5
    # erroneous and both correct ones are hit: F1 = 2 * 0.6 * 1 / 1.6 = 0.75, the unique best piece;
    # its midpoint 0.61 is the threshold. At 0.5 item 3 (0.52) is missed: acc_error 0.4, F1 4/7.
    r = judge_human(PRM, CONSENSUS)
    assert r["threshold"] == approx(0.61)
    assert "in-sample" in r["threshold_source"]
    assert (r["f1"], r["acc_error"], r["acc_correct"]) == (approx(0.75), approx(0.6), 1.0)
    assert (r["f1_at_0.5"], r["acc_error_at_0.5"]) == (approx(4 / 7), approx(0.4))
    assert r["exact"] == approx(5 / 7)  # items 2 and 4 differ
    # step AUROC over steps up to the first error: 10 correct steps (.9 x6, .8 x2, .7, .95) against
    # 5 wrong (.3, .9, .52, .8, .1): wins 10 + 4 + 10 + 8 + 10 = 42 of 50
    assert r["step_auroc"] == approx(0.84)
    assert (r["n_items"], r["n_error"], r["n_correct"], r["n_steps"]) == (7, 5, 2, 15)


def test_judge_human_ignores_steps_after_the_first_error_and_checks_input():
    # step 2 comes after the human first error (step 1): its score must not matter
    low = judge_human([[0.9, 0.1, 0.0], [0.8, 0.7, 0.6]], [1, -1])
    high = judge_human([[0.9, 0.1, 1.0], [0.8, 0.7, 0.6]], [1, -1])
    assert low["step_auroc"] == high["step_auroc"] == 1.0
    assert low["f1"] == 1.0
    only_correct = judge_human([[0.9, 0.8]], [-1])
    assert only_correct["f1"] is None and only_correct["step_auroc"] is None
    assert judge_human([], [])["n_items"] == 0
    with pytest.raises(ValueError):
        judge_human([[0.5, 0.5]], [2])
    with pytest.raises(ValueError):
        judge_human([[0.5]], [])


# ---- the report --------------------------------------------------------------------------------------


def _build_db(path: Path) -> None:
    """3 labelling annotators + 1 idle admin; 8 step items (3 steps each) and 3 pairs.

    first wrong step per item (truth; labels; gold marked *):
      1: truth 1;   alice 1 [1,-1], bob 1 [0,-1], carol 2 [1,1,-1]
      2: truth -1;  alice -1 [1,1,1], bob -1 [1,0,1], carol -1 [1,1,1]
      3: truth 1;   alice 0 [-1], bob 1 [1,-1]
      4*: truth 2;  alice 2 [1,1,-1], bob 2 [1,1,-1]
      5: unknown;   alice -1 [1,1,1], bob 0 [-1]
      6*: truth -1; alice -1 [1,1,1], bob -1 [1,1,1]
      7*: truth 1;  alice 1 [1,-1]
      8: truth 0;   no label
    pairs (choice): 9* truth a: alice a, bob a; 10 truth b: alice b, bob tie, carol b;
                    11 unknown: alice a, bob b.
    """
    db = connect(path)
    now = 1_700_000_000.0
    people = [(1, "alice", "annotator"), (2, "bob", "annotator"), (3, "carol", "annotator")]
    people.append((4, "dave", "admin"))
    for aid, name, role in people:
        db.execute(
            "INSERT INTO annotators (id, name, token_hash, role, created) VALUES (?, ?, ?, ?, ?)",
            (aid, name, f"hash-{name}", role, now),
        )
    truths = {1: 1, 2: -1, 3: 1, 4: 2, 5: None, 6: -1, 7: 1, 8: 0}
    gold = {4, 6, 7}
    for i in range(1, 9):
        prompt = "Is 2 < 3? <script>alert(1)</script>" if i == 3 else f"Problem {i}: compute 2+{i}."
        truth = (
            None if truths[i] is None else json.dumps({"first_error": truths[i], "correct": None})
        )
        scores = {"prm": PRM[i - 1] if i <= 7 else [0.1, 0.2, 0.3]}
        if i == 1:
            scores["short"] = [0.5, 0.5]  # 2 scores for 3 steps: skipped
        db.execute(
            "INSERT INTO items (id, key, kind, prompt, body, truth, gold, scores, want, source, created)"
            " VALUES (?, ?, 'steps', ?, ?, ?, ?, ?, 2, 'test', ?)",
            (
                i,
                f"s{i}",
                prompt,
                json.dumps({"steps": [f"step {j + 1} of item {i}" for j in range(3)]}),
                truth,
                int(i in gold),
                json.dumps(scores),
                now,
            ),
        )
    for i, truth, is_gold in ((9, "a", 1), (10, "b", 0), (11, None, 0)):
        db.execute(
            "INSERT INTO items (id, key, kind, prompt, body, truth, gold, scores, source, created)"
            " VALUES (?, ?, 'pair', ?, ?, ?, ?, '{}', 'test', ?)",
            (
                i,
                f"p{i}",
                f"Pair problem {i}",
                json.dumps({"a": "answer A", "b": "answer B"}),
                None if truth is None else json.dumps({"choice": truth}),
                is_gold,
                now,
            ),
        )
    steps = {  # (item, annotator): ratings
        (1, 1): [1, -1], (1, 2): [0, -1], (1, 3): [1, 1, -1],
        (2, 1): [1, 1, 1], (2, 2): [1, 0, 1], (2, 3): [1, 1, 1],
        (3, 1): [-1], (3, 2): [1, -1],
        (4, 1): [1, 1, -1], (4, 2): [1, 1, -1],
        (5, 1): [1, 1, 1], (5, 2): [-1],
        (6, 1): [1, 1, 1], (6, 2): [1, 1, 1],
        (7, 1): [1, -1],
    }  # fmt: skip
    pairs = {(9, 1): "a", (9, 2): "a", (10, 1): "b", (10, 2): "tie", (10, 3): "b"}
    pairs.update({(11, 1): "a", (11, 2): "b"})
    seconds = {1: iter(range(10, 101, 10)), 2: iter([5.0] * 9), 3: iter([1.0, 2.0, None])}
    for (item, who), ratings in steps.items():
        fe = next((j for j, r in enumerate(ratings) if r == -1), -1)
        comments = json.dumps({"0": "the sign is wrong"}) if (item, who) == (3, 1) else "{}"
        db.execute(
            "INSERT INTO labels (item_id, annotator_id, ratings, first_error, comments, seconds, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (item, who, json.dumps(ratings), fe, comments, next(seconds[who]), now),
        )
    for (item, who), choice in pairs.items():
        db.execute(
            "INSERT INTO labels (item_id, annotator_id, choice, seconds, created)"
            " VALUES (?, ?, ?, ?, ?)",
            (item, who, choice, next(seconds[who]), now),
        )
    db.close()


def test_report_numbers_by_hand(tmp_path):
    db_path = tmp_path / "labels.sqlite"
    _build_db(db_path)
    html_path = write_agreement_report(db_path, tmp_path / "out")
    assert html_path == tmp_path / "out" / "agreement.html"
    report = json.loads((tmp_path / "out" / "agreement.json").read_text())

    assert report["counts"] == {
        "items": 11,
        "step_items": 8,
        "pair_items": 3,
        "gold_items": 4,
        "labelled_items": 10,
        "labels": 22,
        "step_labels": 15,
        "pair_labels": 7,
        "annotators": 4,
        "annotators_labelling": 3,
    }

    steps = report["humans"]["steps"]
    # items 1-6 have >= 2 labels: 3+3+2+2+2+2 = 14 labels, 3+3+1+1+1+1 = 10 rater pairs, of which
    # 1 (item 1: alice=bob) + 3 + 0 + 1 + 0 + 1 = 6 agree
    assert (steps["n_items"], steps["n_labels"], steps["n_pairs"]) == (6, 14, 10)
    assert steps["agreement"] == approx(0.6)
    # Fleiss: modal raters 2 (items 3-6): [0,1], [2,2], [-1,0], [-1,-1]; P_bar = (0+1+0+1)/4 = 0.5;
    # categories -1: 3, 0: 2, 1: 1, 2: 2 of 8 -> P_e = 18/64; kappa = (0.5 - 18/64)/(46/64) = 7/23
    assert steps["fleiss"] == {"raters": 2, "n_items": 4, "kappa": approx(7 / 23)}
    # Krippendorff ordinal on the step ratings: 13 pairable steps, 31 ratings; coincidences
    # o(1,1) = 18, o(1,0) = o(0,1) = 2, o(-1,-1) = 3, o(-1,1) = o(1,-1) = 3; n_1 = 23, n_0 = 2,
    # n_-1 = 6. delta^2: (-1,0) = (8 - 4)^2 = 16, (0,1) = (25 - 12.5)^2 = 156.25,
    # (-1,1) = (31 - 14.5)^2 = 272.25. Observed: 4 * 156.25 + 6 * 272.25 = 2258.5; expected:
    # 2 (6*2*16 + 2*23*156.25 + 6*23*272.25) = 89900. alpha = 1 - 30 * 2258.5 / 89900.
    assert steps["alpha_ordinal"] == {
        "alpha": approx(1 - 30 * 2258.5 / 89900),
        "n_units": 13,
        "n_values": 31,
    }
    # Cohen, alice & bob on items 1-6 (the only pair with >= 5 shared items):
    # alice [1,-1,0,2,-1,-1], bob [1,-1,1,2,0,-1]: 4 agree; chance sum 1*2 + 3*2 + 1*1 + 1*1 = 10;
    # kappa = (6*4 - 10) / (36 - 10) = 7/13. Has an error: alice TFTTFF, bob TFTTTF: 5 agree,
    # chance 3*4 + 3*2 = 18, kappa = (30 - 18) / (36 - 18) = 2/3.
    assert steps["cohen"] == [
        {
            "a": "alice",
            "b": "bob",
            "n": 6,
            "kappa": approx(7 / 13),
            "agreement": approx(4 / 6),
            "kappa_has_error": approx(2 / 3),
        }
    ]

    pairs = report["humans"]["pairs"]
    # 9: (a,a) yes; 10: (b,tie) (b,b) (tie,b) -> 1 of 3; 11: (a,b) no -> 2 of 5. Fleiss on the two
    # 2-rater items: P_bar 0.5, p = (3/4, 1/4), P_e = 0.625 -> -1/3. No pair of annotators shares 5.
    assert (pairs["n_items"], pairs["n_labels"], pairs["n_pairs"]) == (3, 7, 5)
    assert pairs["agreement"] == approx(0.4)
    assert pairs["fleiss"] == {"raters": 2, "n_items": 2, "kappa": approx(-1 / 3)}
    assert pairs["cohen"] == []

    who = {a["name"]: a for a in report["annotators"]}
    # alice: gold 4, 6, 7, pair 9 all right; non-gold known 1, 2, 3 (0 != 1), pair 10 -> 3 of 4
    assert who["alice"]["labels"] == 10 and who["alice"]["median_seconds"] == 55
    assert who["alice"]["gold"] == {"n": 4, "correct": 4, "accuracy": 1.0}
    assert who["alice"]["truth"] == {"n": 4, "correct": 3, "accuracy": 0.75}
    # bob: gold 4, 6, 9 right; non-gold 1, 2, 3 right, pair 10 'tie' != 'b'
    assert (who["bob"]["labels"], who["bob"]["step_labels"], who["bob"]["pair_labels"]) == (9, 6, 3)
    assert who["bob"]["median_seconds"] == 5.0
    assert who["bob"]["gold"] == {"n": 3, "correct": 3, "accuracy": 1.0}
    assert who["bob"]["truth"] == {"n": 4, "correct": 3, "accuracy": 0.75}
    # carol: no gold; item 1 (2 != 1) wrong, item 2 and pair 10 right; seconds 1, 2 (one missing)
    assert who["carol"]["gold"] == {"n": 0, "correct": 0, "accuracy": None}
    assert who["carol"]["truth"] == {"n": 3, "correct": 2, "accuracy": approx(2 / 3)}
    assert who["carol"]["median_seconds"] == 1.5
    assert who["dave"]["labels"] == 0 and who["dave"]["median_seconds"] is None
    assert who["dave"]["role"] == "admin"

    # judges: consensus first errors of items 1-7 are [1, -1, 0, 2, 0, -1, 1] (item 3: tie 0/1 ->
    # 0; item 5: tie -1/0 -> 0), the CONSENSUS of test_judge_human_hand_example
    prm = report["judges"]["prm"]
    assert prm["threshold"] == approx(0.61)
    assert prm["f1"] == approx(0.75) and prm["f1_at_0.5"] == approx(4 / 7)
    assert prm["step_auroc"] == approx(0.84) and prm["n_items"] == 7
    # at 0.61 prm flags [1, -1, 1, 2, -1, -1, 1]; truth known on items 1, 2, 3, 4, 6, 7:
    # [1, -1, 1, 2, -1, 1] -> prm all 6 right (F1 1); humans miss item 3 (acc_error 3/4, F1 6/7)
    assert prm["truth"] == {
        "n_items": 6,
        "judge_exact": 1.0,
        "human_exact": approx(5 / 6),
        "judge_f1": 1.0,
        "human_f1": approx(6 / 7),
    }
    short = report["judges"]["short"]
    assert (short["n_items"], short["n_skipped"], short["f1"]) == (0, 1, None)

    # disagreements: item 3 (humans 0, prm 1, truth 1) and item 5 (humans 0, prm -1, truth unknown)
    dis = report["disagreements"]
    assert [d["item_id"] for d in dis] == [3, 5]
    three = dis[0]
    assert (three["human_first_error"], three["truth_first_error"], three["human_right"]) == (
        0,
        1,
        False,
    )
    assert three["judges"]["prm"]["first_error"] == 1 and three["judges"]["prm"]["right"] is True
    assert three["steps"] == ["step 1 of item 3", "step 2 of item 3", "step 3 of item 3"]
    assert {h["annotator"]: h["first_error"] for h in three["humans"]} == {"alice": 0, "bob": 1}
    assert three["humans"][0]["comments"] == {"0": "the sign is wrong"}
    assert dis[1]["truth_first_error"] is None and dis[1]["human_right"] is None
    assert dis[1]["judges"]["prm"]["first_error"] == -1
    assert report["disagreement_summary"] == {
        "n_items": 2,
        "with_truth": 1,
        "humans_right": 0,
        "judges_right": {"prm": 1},
    }

    headline = " ".join(report["headline"])
    assert "3 annotators gave 22 labels on 10 items" in headline
    assert "60% of annotator pairs name the same first wrong step" in headline
    assert "the best judge, prm, reaches ProcessBench F1 0.75" in headline

    page = html_path.read_text()
    assert page.startswith("<!doctype html>") and "prm" in page
    assert "<script>" not in page and "&lt;script&gt;" in page  # the prompt is escaped
    assert 'src="http' not in page and 'href="http' not in page  # self-contained
    assert "Where humans and judges disagree" in page and "the sign is wrong" in page
    assert "Item 3: s3" in page and "Humans: step 1 (1 of 2; alice: step 1, bob: step 2)." in page
    assert (
        "prm: step 2 at threshold 0.61 (right)." in page and "Truth: step 2 (humans wrong)." in page
    )
    assert page == agreement_html(db_path)
    md = (tmp_path / "out" / "agreement.md").read_text()
    assert md == agreement_markdown(report)
    assert md.startswith("# Labeling agreement: labels.sqlite")
    assert "| alice & bob | 6 | 0.538 | 0.667 | 66.7% |" in md
    assert "### Item 5: s5" in md


def test_report_on_an_empty_database(tmp_path):
    db_path = tmp_path / "empty.sqlite"
    connect(db_path).close()
    report = agreement_report(db_path)
    assert report["counts"]["labels"] == 0 and report["judges"] == {}
    assert report["disagreements"] == []
    assert report["humans"]["steps"]["agreement"] is None
    assert report["humans"]["steps"]["alpha_ordinal"]["alpha"] is None
    assert report["headline"][0].startswith("No labels yet")
    html_path = write_agreement_report(db_path, tmp_path / "out")
    page = html_path.read_text()
    assert "No labels yet" in page
    data = json.loads((tmp_path / "out" / "agreement.json").read_text())
    assert data["counts"]["items"] == 0
    assert "No labels yet" in (tmp_path / "out" / "agreement.md").read_text()


def test_report_refuses_a_missing_database(tmp_path):
    with pytest.raises(DataError, match="no such labeling database"):
        agreement_report(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()


def test_nan_free_json(tmp_path):
    db_path = tmp_path / "labels.sqlite"
    _build_db(db_path)
    text = json.dumps(agreement_report(db_path), allow_nan=False)
    assert not any(math.isnan(x) for x in _numbers(json.loads(text)))


def _numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, float):
        yield value
