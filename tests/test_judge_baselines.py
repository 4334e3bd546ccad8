"""The training-free judges: the exact arithmetic checker on a table of steps, and a ProcessBench smoke test.

Run: .venv/bin/pytest tests/test_judge_baselines.py -q
"""

from __future__ import annotations

import json
import random

import pytest

from reasonlab.judges.base import Judge
from reasonlab.judges.baselines import (
    BASELINES,
    AlwaysCorrect,
    SymbolicArithmetic,
    has_false_arithmetic,
)
from reasonlab.judges.files import resolve_data
from reasonlab.types import JudgeScores, StepRecord, labels_from_first_error

FALSE_CLAIMS = [
    "37+48=86",
    "12-48=36",
    "2+3*4=20",  # left to right without precedence
    "2 + 3 + 4 = 10",
    r"So \(1/3 \times 18 = 7\) flamingos.",
    r"$18 \cdot 2 = 35$",
    r"\(18 \div 2 = 8\)",
    "18 × 2 = 35 and 18 ÷ 2 = 9",
    "1,000 + 2,500 = 3,400",
    "10/3 = 3.35",
    "1.5 + 2.5 = 3.9",
    "(2+3)*4 = 14",
    r"\frac{1}{3} \times 18 = 5",
    "3 x 4 = 13",
    "3 * 4 = 12 + 2 = 15",  # a chain: the last bare number is checked against 12 + 2
    "2 * -3 = 6",
    "Result: -3 + 5 = 3",
    "**Step 2:** 3 + 4 = 8",
    "We get 6084 * 6084 = 36,997,536.",
    "first 5 + 3 = 8, then 8 - 2 = 7",
]

TRUE_OR_UNCHECKABLE = [
    "37+48=85",
    "12-48=-36",
    "-36+5=-31",
    "2+3*4=14",
    "(2+3)*4 = 20",
    r"\(1/3 \times 18 = 6\) flamingos",
    r"$1,000 + 2,500 = 3,500$",
    "10/3 = 3.33",  # rounded
    "10/3 = 3.34",  # rounded up
    "2/3 = 0.67",
    "0.1 + 0.2 = 0.3",
    r"\dfrac{6}{4} = 1.5",
    r"18 \cdot 2 = 36 \text{ apples}",
    "3 * 4 = 12 + 2 = 14",
    "Total = 5 + 3 = 8",
    r"x &= 2 + 3 \\ &= 5",
    "- \\(\\frac{2903040}{4} = 725760\\)",  # a list bullet, not a minus sign
    "5/0 = 3",  # division by zero: ignored
    "garbage = = ) ( +",
    "1" * 40 + " + 1 = 2",  # too long to parse: ignored
    "2x + 3 = 7",
    "17 mod 5 = 2",
    r"\sin 30 = 0.5",
    "3^2 + 4 = 13",
    "5cm + 3cm = 9cm",
    "20% of 50 = 10",
    "100 - 20 = 81%",
    "1500000 + 3500000 = 5 million",
    "2**3 = 8",
    "9:00 + 2 = 11:00",
    "f(2) = 5",
    r"\gcd(41^2, 41 \cdot 43) = 41",
    r"(2 \cdot 1994, 1) = (3988, 1)",
    r"$2 \times 3 = 6\pi$",
    "a <= 3 + 4 = 7",
    "5! = 120",
    "",
]


@pytest.mark.parametrize("text", FALSE_CLAIMS)
def test_false_arithmetic_is_caught(text):
    assert has_false_arithmetic(text)


@pytest.mark.parametrize("text", TRUE_OR_UNCHECKABLE)
def test_true_or_unclear_claims_pass(text):
    assert not has_false_arithmetic(text)


def test_checker_is_total_on_random_text():
    rng = random.Random(0)
    alphabet = list("0123456789+-*/()=., $\\{}x%^!\n")
    alphabet += [r"\frac", r"\times", "1,000", r"\(", r"\)", "×", "÷"]
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        assert has_false_arithmetic(text) in (True, False)
    for text in [
        "1,000" * 2000 + "=1",
        "(" * 5000 + "1=1",
        "1+" * 5000 + "1=2",
        "9" * 5000 + "+1=1",
    ]:
        assert has_false_arithmetic(text) in (True, False)


def step_record(*steps: str) -> StepRecord:
    return StepRecord("12-48+5=?", tuple(steps), id="t", source="test")


def test_symbolic_arithmetic_scores_each_step_and_takes_the_weakest():
    judge = SymbolicArithmetic()
    [scores] = judge.score([step_record("12-48=-36", "-36+5=-30", "answer: -30")])
    assert scores == JudgeScores(steps=(1.0, 0.0, 1.0), outcome=0.0)
    assert judge.score([step_record()]) == [JudgeScores(steps=(), outcome=1.0)]


def test_always_correct_and_registry():
    assert AlwaysCorrect().score([step_record("a", "b")]) == [JudgeScores((1.0, 1.0), 1.0)]
    assert set(BASELINES) == {"always-correct", "symbolic-arithmetic"}
    for name, make in BASELINES.items():
        judge = make()
        assert isinstance(judge, Judge) and judge.name == name


def test_symbolic_arithmetic_on_processbench_gsm8k(monkeypatch):
    monkeypatch.delenv("REASONLAB_DATA_DIR", raising=False)
    path = resolve_data("processbench:gsm8k")  # the copy shipped with the package
    rows = json.loads(path.read_text(encoding="utf-8"))[:50]
    records = [
        StepRecord(
            r["problem"],
            tuple(r["steps"]),
            labels_from_first_error(len(r["steps"]), r["label"]),
            r["label"],
            r["final_answer_correct"],
            id=r["id"],
            source="processbench",
        )
        for r in rows
    ]
    scores = SymbolicArithmetic().score(records)
    assert [len(s.steps) for s in scores] == [len(r.steps) for r in records]
    assert any(r.erroneous and min(s.steps) == 0.0 for r, s in zip(records, scores))
