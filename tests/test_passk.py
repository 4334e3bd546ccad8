"""pass@k against brute-force enumeration over subsets, and maj@k against hand-computed cases."""

from itertools import combinations

import pytest

from reasonlab.evaluate.passk import majority_at_k, majority_vote, pass_at_k, pass_at_k_curve


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    samples = [True] * c + [False] * (n - c)
    subsets = list(combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8, 10])
def test_pass_at_k_matches_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_k_hand_values():
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(10, 0, 10) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(256, 1, 1) == pytest.approx(1 / 256)


def test_pass_at_k_large_n_is_stable():
    assert 0.0 < pass_at_k(1000, 1, 10) < 0.011
    assert pass_at_k(1000, 1, 10) == pytest.approx(0.01)


def test_pass_at_k_rejects_bad_arguments():
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 0)


def test_curve_is_mean_over_problems():
    curve = pass_at_k_curve([(4, 1), (4, 0), (4, 4)], [1, 2])
    assert curve[1] == pytest.approx((0.25 + 0 + 1) / 3)
    assert curve[2] == pytest.approx((0.5 + 0 + 1) / 3)


def test_majority_vote_ignores_malformed_and_breaks_ties_by_first_seen():
    assert majority_vote([None, "3", "4", "4", None, None]) == "4"
    assert majority_vote(["5", "3", "3", "5"]) == "5"
    assert majority_vote([None, None]) is None


def test_majority_at_k_full_and_subsets():
    answers = ["7", "7", "7", "2"]
    correct = [True, True, True, False]
    assert majority_at_k(answers, correct, 4, seed=0) == 1.0
    assert majority_at_k(answers, correct, 1, seed=0, draws=2000) == pytest.approx(0.75, abs=0.04)
    assert majority_at_k(["1", "2", "2"], [True, False, False], 3, seed=0) == 0.0
    # deterministic in the seed
    assert majority_at_k(answers, correct, 2, seed=3) == majority_at_k(answers, correct, 2, seed=3)


def test_majority_ties_are_split_evenly_at_every_k():
    answers, correct = ["7", None, "8"], [False, False, True]
    assert majority_at_k(answers, correct, 3, seed=0) == 0.5  # a 1-1 tie, whatever the order
    assert majority_at_k(["8", None, "7"], [True, False, False], 3, seed=0) == 0.5
    # k < n: subsets {7, None} 0, {7, 8} 0.5, {None, 8} 1 -> 0.5 in expectation, as at k == n
    assert majority_at_k(answers, correct, 2, seed=0, draws=3000) == pytest.approx(0.5, abs=0.03)
    assert majority_at_k(["1", "2", "3", "1"], [True, False, False, True], 4, seed=0) == 1.0
    assert majority_at_k([None, None], [False, False], 2, seed=0) == 0.0


def test_reported_ks():
    from reasonlab.evaluate.passk import headline_ks, powers_of_two

    assert powers_of_two(1) == [1] and powers_of_two(64) == [1, 2, 4, 8, 16, 32, 64]
    assert powers_of_two(6) == [1, 2, 4]
    assert headline_ks(6) == [1, 2, 4, 6] and headline_ks(64) == [1, 2, 4, 8, 16, 32, 64]
