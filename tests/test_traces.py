"""Tests for trace styles, mixtures and corpora: every rendered trace must verify as correct.

Run: .venv/bin/pytest tests/test_traces.py -q
"""

from __future__ import annotations

import random
import string
from collections import Counter

import pytest

from reasonlab.errors import ConfigError
from reasonlab.tasks import Task, get_task
from reasonlab.tasks.traces import TRACE_STYLES, Mixture, corpus, render
from reasonlab.types import Outcome, Problem

TASKS = [
    ("arith", {}),
    ("arith", {"n_operands": 6, "operators": "+-*", "digits": 1}),
    ("countdown", {}),
    ("countdown", {"n_numbers": 6, "max_number": 20}),
]
PRINTABLE = set(string.printable) - set("\t\r\x0b\x0c")


@pytest.fixture(scope="module")
def arith() -> Task:
    return get_task("arith")


@pytest.fixture(scope="module")
def p66(arith: Task) -> Problem:
    meta = {"operands": (37, 48, 19), "operators": "+-"}
    return arith.make_problem("37+48-19=?\n", "66", 3, meta)


def test_render_exact_text(arith, p66):
    rng = random.Random(0)
    assert render(arith, p66, "answer_only", rng) == "answer: 66\n"
    assert render(arith, p66, "steps", rng) == "37+48=85\n85-19=66\nanswer: 66\n"
    assert render(arith, p66, "backtrack", rng, error_rate=0.0) == (
        "37+48=85\ncheck: ok\n85-19=66\ncheck: ok\nanswer: 66\n"
    )


def test_backtrack_with_every_step_wrong_first(arith, p66):
    text = render(arith, p66, "backtrack", random.Random(1), error_rate=1.0)
    lines = text.splitlines()
    assert lines[1::2][:4] == ["check: wrong", "check: ok", "check: wrong", "check: ok"]
    assert lines[2] == "37+48=85" and lines[6] == "85-19=66" and lines[-1] == "answer: 66"
    assert lines[0] != "37+48=85" and lines[4] != "85-19=66"
    v = arith.verify(p66, text)
    assert (v.outcome, v.steps_valid, v.first_error) == (
        Outcome.CORRECT,
        (False, True, False, True),
        -1,
    )
    assert (v.checks, v.backtracks) == (4, 2)


SUPPORTED = [
    (name, knobs, style)
    for name, knobs in TASKS
    for style in TRACE_STYLES
    if not (name == "countdown" and style == "answer_only")
]  # see test_countdown_refuses_answer_only


@pytest.mark.parametrize("name,knobs,style", SUPPORTED)
def test_every_trace_verifies_correct(name, knobs, style):
    task = get_task(name, **knobs)
    rng = random.Random(42)
    backtracks = 0
    for problem in task.sample("train", 200, seed=9):
        text = render(task, problem, style, rng, error_rate=0.3)
        assert text.endswith("\n") and set(text) <= PRINTABLE
        v = task.verify(problem, text)
        assert v.outcome is Outcome.CORRECT and v.first_error == -1, (problem.prompt, text)
        assert v.backtracks == text.count("check: wrong\n")
        assert v.checks == text.count("check: ")
        n_steps = len(task.reference_steps(problem))
        if style == "answer_only":
            assert v.steps_valid == ()
        elif style == "steps":
            assert v.steps_valid == (True,) * n_steps and v.checks == 0
        else:
            assert len(v.steps_valid) == n_steps + v.backtracks
            assert v.checks == n_steps + v.backtracks
        backtracks += v.backtracks
    if style == "backtrack":
        assert backtracks > 0  # errors were injected, and all of them were retracted


def test_render_errors(arith, p66):
    with pytest.raises(ConfigError, match="unknown trace style 'cot'"):
        render(arith, p66, "cot", random.Random(0))
    with pytest.raises(ConfigError, match="error_rate"):
        render(arith, p66, "backtrack", random.Random(0), error_rate=1.5)


def test_mixture_normalises_and_chooses():
    mix = Mixture({"steps": 3, "backtrack": 1})
    assert mix.fractions == {"answer_only": 0.0, "steps": 0.75, "backtrack": 0.25}
    rng = random.Random(0)
    counts = Counter(mix.choose(rng) for _ in range(10_000))
    assert counts["answer_only"] == 0
    assert 0.22 < counts["backtrack"] / 10_000 < 0.28
    assert {Mixture.only(s).choose(rng) for _ in range(50) for s in ["steps"]} == {"steps"}
    assert Mixture.only("answer_only").choose(random.Random(0)) == "answer_only"


@pytest.mark.parametrize(
    "fractions,match",
    [
        ({"cot": 1.0}, "unknown trace style 'cot'"),
        ({"steps": -1.0, "backtrack": 2.0}, "steps=-1.0"),
        ({"steps": float("nan")}, "steps=nan"),
        ({"steps": 0.0}, "sum to more than 0"),
        ({}, "sum to more than 0"),
    ],
)
def test_mixture_errors(fractions, match):
    with pytest.raises(ConfigError, match=match):
        Mixture(fractions)


def test_countdown_refuses_answer_only():
    task = get_task("countdown")
    problem = task.generate(random.Random(0))
    assert task.verify(problem, f"answer: {problem.answer}\n").outcome is Outcome.WRONG
    with pytest.raises(ConfigError, match="answer_only.*countdown"):
        render(task, problem, "answer_only", random.Random(0))
    with pytest.raises(ConfigError, match="answer_only.*countdown"):
        corpus(task, 5, Mixture({"steps": 1.0, "answer_only": 0.01}), seed=0)
    with pytest.raises(ConfigError, match="answer_only.*countdown"):
        Mixture({"answer_only": 1.0}).validate_for(task)
    Mixture({"answer_only": 1.0}).validate_for(get_task("arith"))  # fine for arith
    assert len(corpus(task, 5, Mixture({"steps": 1.0, "answer_only": 0.0}), seed=0)) == 5


@pytest.mark.parametrize("name", ["arith", "countdown"])
def test_corpus(name):
    task = get_task(name)
    styles_in = ("steps", "backtrack") if name == "countdown" else TRACE_STYLES
    mix = Mixture({style: 1 for style in styles_in})
    docs = corpus(task, 300, mix, seed=4)
    assert docs == corpus(task, 300, mix, seed=4)
    assert docs != corpus(task, 300, mix, seed=5)
    problems = task.sample("train", 300, seed=4)
    styles = Counter()
    for doc, problem in zip(docs, problems, strict=True):
        assert doc.startswith(problem.prompt) and task.split_of(problem) == "train"
        completion = doc[len(problem.prompt) :]
        v = task.verify(problem, completion)
        assert v.correct and v.first_error == -1
        styles["answer_only" if not v.steps_valid else "backtrack" if v.checks else "steps"] += 1
    assert min(styles.values()) > 60 and set(styles) == set(styles_in)


def test_corpus_of_the_test_split_and_single_style():
    task = get_task("arith")
    docs = corpus(task, 50, Mixture.only("answer_only"), seed=0, split="test")
    tests = task.sample("test", 50, seed=0)
    assert [d.split("\n")[0] + "\n" for d in docs] == [p.prompt for p in tests]
    assert all(d.count("\n") == 2 and "\nanswer: " in d for d in docs)
