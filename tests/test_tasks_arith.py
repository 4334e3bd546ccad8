"""Tests for the `arith` task: generation, the exact step verifier, sampling and the registry.

Run: .venv/bin/pytest tests/test_tasks_arith.py -q
"""

from __future__ import annotations

import hashlib
import random
import re

import pytest

from reasonlab.errors import ConfigError, ReasonlabError
from reasonlab.tasks import ArithmeticTask, Task, get_task, list_tasks
from reasonlab.types import Outcome, Problem


@pytest.fixture(scope="module")
def task() -> Task:
    return get_task("arith")


def make(task: Task, operands: tuple[int, ...], operators: str, answer: int) -> Problem:
    expr = str(operands[0]) + "".join(op + str(x) for op, x in zip(operators, operands[1:]))
    meta = {"operands": operands, "operators": operators}
    return task.make_problem(f"{expr}=?\n", str(answer), len(operands), meta)


@pytest.fixture(scope="module")
def p66(task: Task) -> Problem:  # 37+48-19 = 66 via 85
    return make(task, (37, 48, 19), "+-", 66)


def judge(task: Task, problem: Problem, text: str) -> tuple:
    v = task.verify(problem, text)
    return v.outcome, v.steps_valid, v.first_error


# ---------------------------------------------------------------- verifier: hand-written cases


def test_reference_solution_is_correct(task, p66):
    assert task.reference_steps(p66) == ["37+48=85", "85-19=66"]
    v = task.verify(p66, "37+48=85\n85-19=66\nanswer: 66\n")
    assert v.outcome is Outcome.CORRECT and v.correct
    assert (v.answer, v.steps_valid, v.first_error, v.checks, v.backtracks) == (
        "66",
        (True, True),
        -1,
        0,
        0,
    )


def test_answer_only(task, p66):
    assert judge(task, p66, "answer: 66\n") == (Outcome.CORRECT, (), -1)
    assert judge(task, p66, "answer: 67\n") == (Outcome.WRONG, (), -1)


def test_answer_forms(task, p66):
    assert task.verify(p66, "answer:   066  \n").outcome is Outcome.CORRECT
    assert task.verify(p66, "Answer: +66").outcome is Outcome.CORRECT  # no final newline
    assert task.verify(p66, "answer: -66\n").outcome is Outcome.WRONG
    assert task.verify(p66, "answer: -66\n").answer == "-66"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        "37+48=85\n85-19=66\n",
        "answer:\n",
        "answer: sixty-six\n",
        "answer: 66.0\n",
        "answer: 66 apples\n",
        "answer: 6 6\n",
        "answer: --66\n",
        "the answer: 66\n",
        "answer: \u0666\u0666\n",  # Arabic-Indic digits are not ASCII integers
        "answer: \uff16\uff16\n",  # fullwidth digits
    ],
)
def test_malformed(task, p66, text):
    v = task.verify(p66, text)
    assert v.outcome is Outcome.MALFORMED and v.answer is None


def test_non_string_is_malformed(task, p66):
    assert task.verify(p66, None).outcome is Outcome.MALFORMED  # type: ignore[arg-type]


def test_truncated_mid_step(task, p66):
    assert judge(task, p66, "37+48=8") == (Outcome.MALFORMED, (False,), 0)
    assert judge(task, p66, "37+48=85\n85-1") == (Outcome.MALFORMED, (True, False), 1)
    assert judge(task, p66, "37+48=85\nansw") == (Outcome.MALFORMED, (True, False), 1)


def test_huge_numbers_do_not_hang_or_raise(task, p66):
    big = "9" * 100_000
    v = task.verify(p66, f"{big}+48={big}\n{big}-19={big}\nanswer: {big}\n")
    assert (v.outcome, v.steps_valid, v.first_error) == (Outcome.WRONG, (False, False), 0)
    over_int_limit = "1" + "0" * 5000  # int() refuses > 4300 digits: must never be called
    v = task.verify(p66, f"37+48=85\n85-{over_int_limit}=-{over_int_limit}\nanswer: 66")
    assert (v.outcome, v.steps_valid) == (Outcome.CORRECT, (True, False))
    assert task.verify(p66, "answer: " + "0" * 50_000 + "66").outcome is Outcome.CORRECT


def test_unicode_and_control_characters(task, p66):
    text = "\u00e9\u4e2d \ud800\n\uff13\uff17+48=85\n\x00\n37+48=85\n85-19=66\nanswer: 66\u2713\n"
    v = task.verify(p66, text)
    assert v.outcome is Outcome.MALFORMED
    assert v.steps_valid == (False, False, False, True, True)
    assert v.first_error == 0


def test_junk_and_blank_lines(task, p66):
    text = "Let me think.\n\n37+48=85\n   \n85-19=66\nanswer: 66\n"
    assert judge(task, p66, text) == (Outcome.CORRECT, (False, True, True), 0)
    assert judge(task, p66, "  37 + 48 = 85 \r\n85-19=66\r\nanswer: 66\r\n") == (
        Outcome.CORRECT,
        (True, True),
        -1,
    )


def test_right_arithmetic_wrong_chain(task, p66):
    # wrong right operand: 37+49 is true but 49 is not operand 1
    assert judge(task, p66, "37+49=86\n86-19=67\nanswer: 67\n") == (Outcome.WRONG, (False, True), 0)
    # wrong left operand in step 1: does not continue from 85
    assert judge(task, p66, "37+48=85\n84-19=65\nanswer: 65\n") == (Outcome.WRONG, (True, False), 1)
    # wrong operator, swapped operands, skipped operand
    assert judge(task, p66, "37-48=-11\n")[1] == (False,)
    assert judge(task, p66, "48+37=85\n")[1] == (False,)
    assert judge(task, p66, "37-19=18\n")[1] == (False,)


def test_right_answer_through_wrong_step(task, p66):
    v = task.verify(p66, "37+48=86\n85-19=66\nanswer: 66\n")
    assert (v.outcome, v.steps_valid, v.first_error) == (Outcome.CORRECT, (False, False), 0)
    v = task.verify(p66, "37+48=84\n84-19=66\nanswer: 66\n")
    assert (v.outcome, v.steps_valid, v.first_error) == (Outcome.CORRECT, (False, False), 0)


def test_wrong_result_is_blamed_once(task, p66):
    # step 1 continues from the claimed 86, so only step 0 is wrong
    assert judge(task, p66, "37+48=86\n86-19=67\nanswer: 67\n") == (Outcome.WRONG, (False, True), 0)


def test_extra_step_past_the_chain_is_invalid(task, p66):
    assert judge(task, p66, "37+48=85\n85-19=66\n66+0=66\nanswer: 66\n") == (
        Outcome.CORRECT,
        (True, True, False),
        2,
    )


def test_checks_and_backtracks(task, p66):
    text = "37+48=86\ncheck: wrong\n37+48=85\ncheck: ok\n85-19=66\ncheck: ok\nanswer: 66\n"
    v = task.verify(p66, text)
    assert (v.outcome, v.steps_valid, v.first_error) == (Outcome.CORRECT, (False, True, True), -1)
    assert (v.checks, v.backtracks) == (3, 1)


def test_retracting_a_valid_step(task, p66):
    v = task.verify(p66, "37+48=85\ncheck: wrong\n37+48=85\n85-19=66\nanswer: 66\n")
    assert (v.steps_valid, v.first_error, v.backtracks) == ((True, True, True), -1, 1)


def test_continuing_from_a_retracted_step_is_invalid(task, p66):
    v = task.verify(p66, "37+48=86\ncheck: wrong\n86-19=67\nanswer: 67\n")
    assert (v.outcome, v.steps_valid, v.first_error) == (Outcome.WRONG, (False, False), 1)


def test_check_ok_does_not_retract(task, p66):
    v = task.verify(p66, "37+48=86\ncheck: ok\n86-19=67\nanswer: 67\n")
    assert (v.steps_valid, v.first_error, v.checks, v.backtracks) == ((False, True), 0, 1, 0)


def test_check_without_a_step_before_retracts_nothing(task, p66):
    v = task.verify(p66, "check: wrong\n37+48=86\ncheck: ok\n\ncheck: wrong\nanswer: 66\n")
    assert (v.checks, v.backtracks, v.first_error) == (3, 0, 0)
    v = task.verify(p66, "37+48=86\n\ncheck:wrong\nanswer: 66\n")  # blank lines are skipped
    assert (v.checks, v.backtracks, v.first_error) == (1, 1, -1)
    assert task.verify(p66, "37+48=86\ncheck: maybe\n").steps_valid == (False, False)


def test_text_after_the_first_answer_is_ignored(task, p66):
    v = task.verify(p66, "answer: 66\n37+48=99\ncheck: wrong\nanswer: 1\n")
    assert (v.outcome, v.answer, v.steps_valid, v.checks) == (Outcome.CORRECT, "66", (), 0)


def test_negative_intermediates(task):
    p = make(task, (12, 48, 5), "-+", -31)
    assert task.reference_steps(p) == ["12-48=-36", "-36+5=-31"]
    assert judge(task, p, "12-48=-36\n-36+5=-31\nanswer: -31\n") == (
        Outcome.CORRECT,
        (True, True),
        -1,
    )
    assert judge(task, p, "12-48=36\n36+5=41\nanswer: 41\n") == (Outcome.WRONG, (False, True), 0)


# ---------------------------------------------------------------- generation and wrong steps


@pytest.mark.parametrize(
    "knobs",
    [
        {},
        {"n_operands": 5, "digits": 1, "operators": "+-*"},
        {"n_operands": 2, "digits": 4, "operators": "*"},
    ],
)
def test_generated_problems(knobs):
    task = get_task("arith", **knobs)
    n, d = task.knobs["n_operands"], task.knobs["digits"]
    rng = random.Random(7)
    for _ in range(200):
        p = task.generate(rng)
        assert re.fullmatch(r"[1-9][0-9]*([-+*][1-9][0-9]*)*=\?\n", p.prompt)
        operands, ops = p.meta["operands"], p.meta["operators"]
        assert len(operands) == n == p.difficulty and len(ops) == n - 1
        assert all(len(str(x)) == d for x in operands) and set(ops) <= set(task.knobs["operators"])
        value = operands[0]
        for op, x in zip(ops, operands[1:]):
            value = value + x if op == "+" else value - x if op == "-" else value * x
        assert p.answer == str(value) and p.task == "arith"
        assert p.id == hashlib.sha256(f"arith\0{p.prompt}".encode()).hexdigest()[:12]
        steps = task.reference_steps(p)
        assert len(steps) == n - 1
        v = task.verify(p, "\n".join(steps) + f"\nanswer: {p.answer}\n")
        assert v.correct and v.steps_valid == (True,) * (n - 1) and v.first_error == -1
        for i in range(n - 1):
            wrong = task.wrong_step(p, i, rng)
            assert wrong != steps[i]
            v = task.verify(p, "\n".join(steps[:i] + [wrong]) + "\n")
            assert v.steps_valid == (True,) * i + (False,) and v.first_error == i


def test_generate_is_deterministic(task):
    a = [task.generate(random.Random(3)) for _ in range(2)]
    assert a[0] == a[1] and a[0].meta == a[1].meta


# ---------------------------------------------------------------- sampling and splits


def test_sample_is_deterministic_and_distinct(task):
    a = task.sample("train", 500, seed=11)
    assert a == task.sample("train", 500, seed=11)
    assert len(a) == 500 and len({p.prompt for p in a}) == 500
    assert a != task.sample("train", 500, seed=12)
    assert task.sample("test", 0, seed=1) == []


def test_train_and_test_are_disjoint(task):
    train = task.sample("train", 3000, seed=1)
    test = task.sample("test", 300, seed=1)
    assert {p.prompt for p in train}.isdisjoint(p.prompt for p in test)
    assert {task.split_of(p) for p in train} == {"train"}
    assert {task.split_of(p) for p in test} == {"test"}
    # the split depends on the prompt only, not on the seed or the task object
    other = get_task("arith", test_fraction=0.1)
    assert all(other.split_of(p) == "test" for p in test)


def test_test_fraction_changes_the_split():
    rng = random.Random(0)
    problems = [get_task("arith").generate(rng) for _ in range(2000)]
    share = sum(get_task("arith", test_fraction=0.3).split_of(p) == "test" for p in problems)
    assert 0.25 < share / 2000 < 0.35


def test_sample_errors():
    tiny = get_task("arith", n_operands=2, digits=1, operators="+")  # 81 problems in all
    with pytest.raises(ReasonlabError, match="distinct train problems"):
        tiny.sample("train", 100, seed=0)
    with pytest.raises(ReasonlabError, match="no test problems"):
        get_task("arith", test_fraction=0.0).sample("test", 1, seed=0)
    with pytest.raises(ConfigError, match="split"):
        tiny.sample("valid", 1, seed=0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="n=-1"):
        tiny.sample("train", -1, seed=0)


# ---------------------------------------------------------------- registry and knobs


def test_registry():
    assert list_tasks() == [
        "aime24",
        "aime25",
        "amc23",
        "arith",
        "chess",
        "countdown",
        "gsm8k",
        "gym:<name>",
        "math",
        "math500",
    ]
    task = get_task("arith", digits=3)
    assert isinstance(task, ArithmeticTask) and task.name == "arith"
    assert task.knobs == {"n_operands": 3, "digits": 3, "operators": "+-", "test_fraction": 0.1}
    assert get_task("arith", operators="*+*").knobs["operators"] == "*+"


def test_registry_errors():
    with pytest.raises(ConfigError) as err:
        get_task("foo")
    assert str(err.value).startswith(
        "unknown task 'foo' (known: aime24, aime25, amc23, arith, chess, countdown"
    )
    with pytest.raises(ConfigError) as err:
        get_task("arith", digitz=2)
    assert "'digitz'" in str(err.value)
    assert "digits, n_operands, operators, test_fraction" in str(err.value)


@pytest.mark.parametrize(
    "knob,value",
    [
        ("digits", 0),
        ("digits", 10),
        ("digits", "2"),
        ("digits", True),
        ("n_operands", 1),
        ("n_operands", 2.0),
        ("operators", "+%"),
        ("operators", ""),
        ("operators", ["+"]),
        ("test_fraction", 1.5),
        ("test_fraction", -0.1),
        ("test_fraction", float("nan")),
    ],
)
def test_invalid_knob_values(knob, value):
    with pytest.raises(ConfigError, match=f"invalid knob {knob}="):
        get_task("arith", **{knob: value})
