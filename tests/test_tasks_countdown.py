"""Tests for the `countdown` task: generation, the exact step verifier, sampling and knobs.

Run: .venv/bin/pytest tests/test_tasks_countdown.py -q
"""

from __future__ import annotations

import random
import re

import pytest

from reasonlab.errors import ConfigError
from reasonlab.tasks import CountdownTask, Task, get_task
from reasonlab.tasks.countdown import judge_steps
from reasonlab.tasks.parsing import parse_solution
from reasonlab.types import Outcome, Problem


@pytest.fixture(scope="module")
def task() -> Task:
    return get_task("countdown")


def make(task: Task, numbers: tuple[int, ...], steps: tuple) -> Problem:
    target = steps[-1][3]
    meta = {"numbers": numbers, "target": target, "steps": steps}
    prompt = " ".join(map(str, numbers)) + f" -> {target}\n"
    return task.make_problem(prompt, str(target), len(numbers), meta)


@pytest.fixture(scope="module")
def p75(task: Task) -> Problem:  # 3 7 25 50 -> 75
    return make(task, (3, 7, 25, 50), ((50, "-", 25, 25), (25, "*", 3, 75)))


def judge(task: Task, problem: Problem, text: str) -> tuple:
    v = task.verify(problem, text)
    return v.outcome, v.steps_valid, v.first_error


# ---------------------------------------------------------------- verifier: hand-written cases


def test_reference_solution_is_correct(task, p75):
    assert p75.prompt == "3 7 25 50 -> 75\n"
    assert task.reference_steps(p75) == ["50-25=25", "25*3=75"]
    v = task.verify(p75, "50-25=25\n25*3=75\nanswer: 75\n")
    assert (v.outcome, v.answer, v.steps_valid, v.first_error) == (
        Outcome.CORRECT,
        "75",
        (True, True),
        -1,
    )


def test_other_valid_derivations(task, p75):
    assert judge(task, p75, "25*3=75\nanswer: 75\n") == (Outcome.CORRECT, (True,), -1)
    assert judge(task, p75, "50+25=75\nanswer: 75") == (Outcome.CORRECT, (True,), -1)
    assert judge(task, p75, "7-3=4\n25*3=75\nanswer: 75\n") == (Outcome.WRONG, (True, False), 1)


def test_answer_alone_is_not_enough(task, p75):
    assert judge(task, p75, "answer: 75\n") == (Outcome.WRONG, (), -1)


def test_final_step_must_reach_the_target(task, p75):
    assert judge(task, p75, "50-25=25\nanswer: 75\n") == (Outcome.WRONG, (True,), -1)
    assert judge(task, p75, "50+25=75\nanswer: 76\n") == (Outcome.WRONG, (True,), -1)


def test_number_reuse(task, p75):
    # 25 is in the input once: 25+25 needs two; the one 25 is then consumed anyway
    assert judge(task, p75, "25+25=50\n50+25=75\nanswer: 75\n")[:2] == (
        Outcome.WRONG,
        (False, False),
    )
    assert judge(task, p75, "25+25=50\n50+50=100\n")[1] == (False, True)
    # after 50-25, the input 25 is consumed but the result 25 is available once
    assert judge(task, p75, "50-25=25\n25+25=50\nanswer: 50\n")[1] == (True, False)
    # a consumed number cannot be used again
    assert judge(task, p75, "50+3=53\n50+25=75\nanswer: 75\n") == (Outcome.WRONG, (True, False), 1)


def test_numbers_not_in_the_input(task, p75):
    assert judge(task, p75, "5*15=75\nanswer: 75\n") == (Outcome.WRONG, (False,), 0)


def test_arithmetic_rules(task):
    p = make(task, (7, 2, 5, 5), ((7, "+", 2, 9), (9, "+", 5, 14), (14, "+", 5, 19)))
    assert task.verify(p, "7/2=3\n").steps_valid == (False,)  # not exact
    assert task.verify(p, "7/2=3.5\n").steps_valid == (False,)  # not an integer: junk
    assert task.verify(p, "2-7=-5\n").steps_valid == (False,)  # negative
    assert task.verify(p, "7+2=10\n").steps_valid == (False,)
    assert task.verify(p, "5-5=0\n7/0=0\n").steps_valid == (True, False)  # division by zero
    assert task.verify(p, "5-5=0\n0/7=0\n").steps_valid == (True, True)
    assert task.verify(p, "5/5=1\n7*1=7\n7 * 2 = 14\n").steps_valid == (True, True, True)


def test_right_answer_through_invalid_step(task, p75):
    assert judge(task, p75, "50*3=75\nanswer: 75\n") == (Outcome.WRONG, (False,), 0)
    # a wrong result becomes available, later steps are judged on their own
    assert judge(task, p75, "50-25=24\n24*3=72\nanswer: 72\n") == (Outcome.WRONG, (False, True), 0)


def test_backtracking_restores_numbers(task, p75):
    text = "50-25=24\ncheck: wrong\n50-25=25\ncheck: ok\n25*3=75\ncheck: ok\nanswer: 75\n"
    v = task.verify(p75, text)
    assert (v.outcome, v.steps_valid, v.first_error) == (Outcome.CORRECT, (False, True, True), -1)
    assert (v.checks, v.backtracks) == (3, 1)
    v = task.verify(p75, "50-25=25\ncheck: wrong\n50+25=75\nanswer: 75\n")
    assert (v.outcome, v.steps_valid, v.backtracks) == (Outcome.CORRECT, (True, True), 1)


def test_retracted_final_step_does_not_count(task, p75):
    v = task.verify(p75, "50-25=25\n25*3=75\ncheck: wrong\nanswer: 75\n")
    assert (v.outcome, v.steps_valid, v.first_error, v.backtracks) == (
        Outcome.WRONG,
        (True, True),
        -1,
        1,
    )
    # its result is not available either
    assert judge(task, p75, "50+25=75\ncheck: wrong\n75-3=72\n")[1] == (True, False)


def test_junk_line_makes_the_derivation_invalid(task, p75):
    v = task.verify(p75, "I will subtract.\n50-25=25\n25*3=75\nanswer: 75\n")
    assert (v.outcome, v.steps_valid, v.first_error) == (Outcome.WRONG, (False, True, True), 0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "50-25=25\n25*3=75\n",
        "50-25=25\n25*3=7",
        "answer: seventy-five\n",
        "answer: 75.0\n",
        "50-25=25\n25*3=75\nanswer: \u0667\u0665\n",
        "\u2603\ud800\x00\n",
    ],
)
def test_malformed(task, p75, text):
    v = task.verify(p75, text)
    assert v.outcome is Outcome.MALFORMED and v.answer is None


def test_huge_numbers_do_not_hang_or_raise(task, p75):
    big = "7" * 100_000
    v = task.verify(p75, f"{big}*{big}={big}\n{big}/{big}=1\nanswer: {big}\n")
    assert (v.outcome, v.steps_valid, v.first_error) == (Outcome.WRONG, (False, False), 0)
    over = "1" + "0" * 5000
    assert task.verify(p75, f"{over}-{over}=0\nanswer: 75").steps_valid == (False,)


def test_judge_steps_reports_the_last_result(p75):
    valid, last = judge_steps((3, 7, 25, 50), parse_solution("7+3=10\n50-25=25\nx\n").steps)
    assert (valid, last) == ([True, True, False], 25)


# ---------------------------------------------------------------- generation and wrong steps


@pytest.mark.parametrize(
    "knobs",
    [
        {},
        {"n_numbers": 2},
        {"n_numbers": 6, "max_number": 9},
        {"max_number": 500, "target_max": 1000},
    ],
)
def test_generated_problems(knobs):
    task = get_task("countdown", **knobs)
    n = task.knobs["n_numbers"]
    rng = random.Random(5)
    for _ in range(150):
        p = task.generate(rng)
        assert re.fullmatch(r"[1-9][0-9]*( [1-9][0-9]*)* -> [1-9][0-9]*\n", p.prompt)
        numbers, target = p.meta["numbers"], p.meta["target"]
        assert len(numbers) == n == p.difficulty and p.answer == str(target)
        assert all(1 <= x <= task.knobs["max_number"] for x in numbers)
        assert 1 <= target <= task.knobs["target_max"]
        steps = task.reference_steps(p)
        assert len(steps) == n - 1
        v = task.verify(p, "\n".join(steps) + f"\nanswer: {target}\n")
        assert v.correct and v.steps_valid == (True,) * (n - 1) and v.first_error == -1
        # the reference uses every input number exactly once
        pool = list(numbers)
        for a, _, b, c in p.meta["steps"]:
            pool.remove(a)
            pool.remove(b)
            pool.append(c)
        assert pool == [target]
        for i in range(n - 1):
            wrong = task.wrong_step(p, i, rng)
            assert wrong != steps[i]
            v = task.verify(p, "\n".join(steps[:i] + [wrong]) + "\n")
            assert v.steps_valid == (True,) * i + (False,) and v.first_error == i


def test_sample_determinism_and_disjoint_splits(task):
    train = task.sample("train", 2000, seed=3)
    assert train == task.sample("train", 2000, seed=3)
    assert len({p.prompt for p in train}) == 2000
    test = task.sample("test", 200, seed=3)
    assert {p.prompt for p in train}.isdisjoint(p.prompt for p in test)
    assert {task.split_of(p) for p in test} == {"test"}


# ---------------------------------------------------------------- knobs


def test_knobs():
    task = get_task("countdown", n_numbers=3)
    assert isinstance(task, CountdownTask)
    assert task.knobs == {"n_numbers": 3, "max_number": 50, "target_max": 100, "test_fraction": 0.1}
    with pytest.raises(ConfigError, match="'numbers'.*max_number, n_numbers, target_max"):
        get_task("countdown", numbers=4)


@pytest.mark.parametrize(
    "knob,value",
    [
        ("n_numbers", 1),
        ("n_numbers", 9),
        ("max_number", 0),
        ("target_max", 0),
        ("target_max", "100"),
    ],
)
def test_invalid_knob_values(knob, value):
    with pytest.raises(ConfigError, match=f"invalid knob {knob}=.*'countdown'"):
        get_task("countdown", **{knob: value})


def test_fuzzed_outputs_never_raise():
    """Random splices of step, check and answer fragments and garbage: always a Verdict."""
    fragments = [
        "50-25=25",
        "25*3=75",
        "check: ok",
        "check: wrong",
        "answer: 75",
        "answer: x",
        "\n",
        "\n",
        "=",
        "-",
        "/0=",
        "9" * 3000,
        "\u00e9",
        "\ud800",
        "\x00",
        " ",
        "7/",
        "answer:",
        "check:",
        "-0",
        "+",
    ]
    rng = random.Random(0)
    for name in ["arith", "countdown"]:
        task = get_task(name)
        problem = task.generate(random.Random(1))
        outcomes = set()
        for _ in range(2000):
            text = "".join(rng.choice(fragments) for _ in range(rng.randint(0, 12)))
            v = task.verify(problem, text)
            assert v.steps_valid is not None and v.first_error >= -1 and v.backtracks <= v.checks
            outcomes.add(v.outcome)
        assert Outcome.MALFORMED in outcomes and Outcome.WRONG in outcomes
