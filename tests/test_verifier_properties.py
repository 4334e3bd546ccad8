"""Every verifier is total and bounded on any text, up to 1 MB (property-based, with hypothesis).

For arith, countdown, chess, the math tasks and reasoning-gym, on arbitrary text (long digit runs,
unicode digits, control characters, lone surrogates, tens of thousands of lines, nested and
unclosed `\\boxed{`, answer tags), a `verify` call never raises, returns a Verdict, gives the same
Verdict twice and returns within a bound:
- rule-based verifiers (arith, countdown, chess, gym's answer extraction): `RULE_BOUND_S` per call.
  The work is linear in the text with at most MAX_LINES line parses (tasks/parsing.py): on this
  2-core machine the worst measured is about 20 ms for 1 MB (benchmarks/verifiers.py); the bound
  here is 25x that so that a loaded CI machine cannot fail it, while any super-linear regression
  (the old integer pattern took 2.7 s for 30 KB, an hour for 1 MB) fails at once;
- math tasks: `timeout + GRACE_S` plus slack, the checker's guarantee (its worker is killed past
  that), whatever sympy does with the answer; the text is cut to a bounded window first.
The generated texts are concatenations of repeated motifs, so one example can reach 1 MB while
hypothesis still shrinks a failure to a small case. `derandomize=True` keeps CI reproducible.
"""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reasonlab.tasks import Task, get_task
from reasonlab.tasks.mathcheck import GRACE_S, MAX_WINDOW_CHARS, answer_window
from reasonlab.tasks.parsing import MAX_INT_CHARS, MAX_LINES, parse_equation, parse_solution
from reasonlab.types import Outcome, Verdict

MAX_TEXT = 1_000_000
RULE_BOUND_S = 0.5
MATH_TIMEOUT_S = 1.0
MOTIFS = [
    "0", "7", "-", "+", "=", "*", "/", " ", "\n", "\r\n", "\t", "x", ":", "$", ",", " and ",
    "answer:", "ANSWER: ", "answer: 85\n", "check: ok\n", "check: wrong\n", "37+48=85\n",
    "12-48=-36", "1" * 999 + "+1=2", "\\boxed{", "}", "{", "\\{", "\\}", "\\", "\\boxed{1}",
    "\\boxed{\\frac{1}{2}}", "\\frac{", "^", "<answer>", "</answer>", "Nf3\n", "e4", "O-O",
    "e7e8q", "Qh7#", "\u0663", "\uff11", "\U0001d7ce", "\x00", "\x1f", "\x0b", "\x85", "\u2028",
    "\ud800", "\udfff", "\u00e9", "\u212a", "final answer is ",
]  # fmt: skip
REPEATS = st.one_of(st.integers(1, 40), st.sampled_from([100, 1_000, 20_000, 200_000, 1_000_000]))
PIECE = st.tuples(st.one_of(st.sampled_from(MOTIFS), st.text(max_size=6)), REPEATS)
TEXTS = st.lists(PIECE, min_size=1, max_size=6).map(
    lambda pieces: "".join(motif * count for motif, count in pieces)[:MAX_TEXT]
)
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ISSUE_EXAMPLES = [  # inputs that were slow before the verifiers were bounded
    "answer: " + "0" * 30_000 + "x",
    "+".join(["1"] * 15_000),
    "\\boxed{1}" * 20_000,
    " " * MAX_TEXT,
    "x\n" * 20_000,
]


def timed_verdict(task: Task, problem, text: str) -> tuple[Verdict, float]:
    start = time.perf_counter()
    verdict = task.verify(problem, text)
    return verdict, time.perf_counter() - start


def check_total(task: Task, problem, text: str, bound_s: float) -> None:
    verdict, seconds = timed_verdict(task, problem, text)
    again, _ = timed_verdict(task, problem, text)
    assert isinstance(verdict, Verdict) and verdict.outcome in Outcome
    assert again == verdict
    assert seconds < bound_s, f"{task.name}: {seconds:.3f} s on {len(text)} characters"


def rule_tasks() -> dict[str, tuple[Task, object]]:
    import reasonlab.tasks.chess  # noqa: F401  (registers the task)
    import reasonlab.tasks.gym  # noqa: F401

    tasks = {
        "arith": get_task("arith", n_operands=4),
        "countdown": get_task("countdown"),
        "chess": get_task("chess", mate_in=1),
        "gym:chain_sum": get_task("gym:chain_sum"),
        "gym:spell_backward": get_task("gym:spell_backward"),
    }
    return {name: (task, task.generate(random.Random(0))) for name, task in tasks.items()}


RULE_TASKS = rule_tasks()


@pytest.mark.parametrize("name", sorted(RULE_TASKS))
def test_rule_verifiers_are_total_and_bounded(name: str) -> None:
    task, problem = RULE_TASKS[name]

    @SETTINGS
    @given(text=TEXTS)
    @example(text="\n".join(task.reference_steps(problem) or []) + "\nanswer: " + problem.answer)
    def property_holds(text: str) -> None:
        check_total(task, problem, text, RULE_BOUND_S)

    for text in ISSUE_EXAMPLES:
        check_total(task, problem, text, RULE_BOUND_S)
    property_holds()


@pytest.fixture(scope="module")
def math_task() -> Task:
    task = get_task("gsm8k", timeout=MATH_TIMEOUT_S)
    task.verify(task.problems[0], r"\boxed{0}")  # start the checker's worker
    return task


def test_math_verifier_is_total_and_bounded(math_task: Task) -> None:
    problem = math_task.problems[0]
    bound = MATH_TIMEOUT_S + GRACE_S + 1.0

    @settings(SETTINGS, max_examples=25)
    @given(text=TEXTS)
    @example(text=f"so the answer is \\boxed{{{problem.answer}}}" + " blah" * 200_000)
    def property_holds(text: str) -> None:
        check_total(math_task, problem, text, bound)

    for text in ISSUE_EXAMPLES:
        check_total(math_task, problem, text, bound)
    property_holds()


def test_math_bound_holds_on_an_answer_sympy_cannot_finish(math_task: Task) -> None:
    """A short answer can still hang sympy (a power tower); the worker's timeout bounds it."""
    tower = "\\boxed{" + "^".join(["2"] * 60) + "}"
    verdict, seconds = timed_verdict(math_task, math_task.problems[0], tower)
    assert verdict.outcome is Outcome.MALFORMED
    assert seconds < MATH_TIMEOUT_S + GRACE_S + 1.0


# ---------------------------------------------------------------------------------------------
# The bounds behind the properties, exactly


def test_integer_length_limit_counts_digits_not_the_sign() -> None:
    digits = "1" * MAX_INT_CHARS
    assert parse_equation(f"{digits}+0={digits}") is not None
    assert parse_equation(f"-{digits}+0=-{digits}") is not None
    assert parse_equation(f"{digits}1+0=1") is None  # MAX_INT_CHARS + 1 digits: a junk line
    assert parse_equation(f"-{digits}1+0=1") is None


def test_only_the_first_max_lines_are_read() -> None:
    filler = "junk\n" * (MAX_LINES - 1)
    inside = parse_solution(filler + "answer: 5\n")
    assert inside.answer == "5" and len(inside.steps) == MAX_LINES - 1
    beyond = parse_solution(filler + "junk\nanswer: 5\n")
    assert beyond.answer is None and len(beyond.steps) == MAX_LINES
    blank_runs = parse_solution(
        "\n" * 500_000 + "  37+48=85 \r\n" + "\n \t\n" * 1000 + "answer: 85"
    )
    assert blank_runs.answer == "85" and len(blank_runs.steps) == 1


def test_the_issue_input_is_malformed_not_slow() -> None:
    task, problem = RULE_TASKS["arith"]
    verdict = task.verify(problem, "answer: " + "0" * 30_000 + "x")
    assert verdict.outcome is Outcome.MALFORMED
    sign, digits = ("-", problem.answer[1:]) if problem.answer[0] == "-" else ("", problem.answer)
    padded = task.verify(problem, f"answer: {sign}{'0' * 30_000}{digits}")
    assert padded.outcome is Outcome.CORRECT and padded.answer == problem.answer


def test_answer_window_rules() -> None:
    far = "\\boxed{7}" + " thinking" * 100_000
    assert answer_window(far) == "\\boxed{7}"
    assert answer_window("\\boxed{1} wait \\boxed{2}") == "\\boxed{2}"
    assert answer_window("\\boxed{2} and \\boxed{3}") == "\\boxed{2} and \\boxed{3}"
    assert answer_window("$\\boxed{2}$, $\\boxed{3}$") == "\\boxed{2}$, $\\boxed{3}"
    assert answer_window("\\boxed{\\{1\\}}") == "\\boxed{\\{1\\}}"  # escaped braces do not count
    assert answer_window("\\boxed{" + "1" * MAX_WINDOW_CHARS + "}") is None  # too long: no answer
    adjacent = answer_window("\\boxed{1}" * 20_000)
    assert adjacent is not None and len(adjacent) <= MAX_WINDOW_CHARS
    lines = "step\n" * 1000 + "The final answer is 12."
    assert answer_window(lines).endswith("The final answer is 12.")
    assert len(answer_window(lines)) <= MAX_WINDOW_CHARS
    assert answer_window("1" * (MAX_WINDOW_CHARS + 1)) is None  # one token longer than the window
