"""Parse a solution text into step, check and answer lines; shared by the rule-based tasks.

The line grammar (one item per line; whitespace around a line is ignored; blank lines are skipped):

    step    <int><op><int>=<int>     e.g. `37+48=85`, `12-48=-36`; ints are ASCII digits with an
                                     optional leading '-', op is one of + - * /, spaces allowed
    check   check: ok | check: wrong refers to the step line immediately before it; `check: wrong`
                                     retracts that step (a check after a check retracts nothing)
    answer  answer: <int>            the first line starting with `answer:` (any case) ends the
                                     solution; everything after it is ignored

Any other non-blank line (prose, a malformed check, a truncated step) is a *junk step*: it counts
as a step line (it gets an entry in `steps_valid`) and is never valid. An integer with more than
`MAX_INT_CHARS` digits (the sign not counted) also makes its line junk, so that `int()` never sees
a huge string. Answers are compared as canonical strings (`canonical_int`), never converted.

Bounded work on any text: only the first `MAX_LINES` non-blank lines are read (a solution that has
not reached its answer line by then has none: MALFORMED); blank runs are skipped by one regex
search, not line by line; a line longer than a step can be is not matched; every pattern is linear
(no repeat can backtrack into another). So a verifier call costs time linear in the text and at
most MAX_LINES line parses, whatever the text holds (benchmarks/verifiers.py measures it).

Usage:
    from reasonlab.tasks.parsing import parse_solution
    parse_solution("37+48=85\\ncheck: ok\\nanswer: 85\\n")
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from reasonlab.types import Outcome, Verdict

MAX_INT_CHARS = 1000  # most digits an integer of a step may hold; built-in tasks stay far below
MAX_LINES = 1000  # non-blank lines read from a solution; built-in tasks need at most ~70

_INT = r"(-?[0-9]+)"
# Every unbounded repeat below is followed by a character it cannot match (a digit run by a space,
# operator or "="; a space run by an operator, sign, digit or "="), so a match never backtracks
# into it: linear time (tests/test_regex_linear.py checks this for every pattern of src/).
_EQUATION = re.compile(rf"{_INT}\s*([-+*/])\s*{_INT}\s*=\s*{_INT}", re.ASCII)
_CANONICAL = re.compile(r"([-+]?)([0-9]+)", re.ASCII)
_CHECK = re.compile(r"check:\s*(ok|wrong)", re.ASCII | re.IGNORECASE)
_NONBLANK = re.compile(r"\S")  # the same whitespace as str.strip()
_MAX_LINE = 4 * MAX_INT_CHARS + 64  # longer lines cannot be steps; skip the regex on them


@dataclass(frozen=True)
class Equation:
    """A parsed step `left op right = result` (the claim, not necessarily true)."""

    left: int
    op: str
    right: int
    result: int


@dataclass(frozen=True)
class StepLine:
    """One step line: its equation (None for a junk line) and whether a check retracted it."""

    equation: Equation | None
    retracted: bool


@dataclass(frozen=True)
class Solution:
    """A parsed solution text: step lines in order, number of check lines, the answer if any.

    `answer` is the canonical integer string of the first answer line, or None when there is no
    answer line or its value is not an integer (both make the output malformed).
    """

    steps: tuple[StepLine, ...]
    checks: int
    answer: str | None


def canonical_int(text: str) -> str | None:
    """`' +007 '` -> `'7'`, `'-0'` -> `'0'`; None unless `text` is an ASCII integer."""
    match = _CANONICAL.fullmatch(text.strip())
    if match is None:
        return None
    sign, digits = match.groups()
    digits = digits.lstrip("0") or "0"
    return digits if sign != "-" or digits == "0" else "-" + digits


def format_equation(left: int, op: str, right: int, result: int) -> str:
    """The canonical step line, e.g. `format_equation(12, "-", 48, -36) == "12-48=-36"`."""
    return f"{left}{op}{right}={result}"


def parse_equation(line: str) -> Equation | None:
    """Parse one step line; None if it is not `<int><op><int>=<int>` with bounded integers."""
    if len(line) > _MAX_LINE:
        return None
    match = _EQUATION.fullmatch(line)
    if match is None:
        return None
    left, op, right, result = match.groups()
    if max(len(x.lstrip("-")) for x in (left, right, result)) > MAX_INT_CHARS:
        return None
    return Equation(int(left), op, int(right), int(result))


def evaluate(left: int, op: str, right: int) -> int | None:
    """`left op right`, or None for division that is not exact (or by zero)."""
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if op == "/" and right != 0 and left % right == 0:
        return left // right
    return None


def nonblank_lines(text: str) -> Iterator[str]:
    """The first MAX_LINES non-blank lines of `text` (split at "\\n"), stripped, in order. Blank runs
    are skipped by a regex search, so a text of a million newlines costs one scan, not a loop."""
    pos, count = 0, 0
    while count < MAX_LINES and (found := _NONBLANK.search(text, pos)) is not None:
        end = text.find("\n", found.start())
        end = len(text) if end < 0 else end
        yield text[found.start() : end].rstrip()  # the search already skipped the leading space
        pos, count = end + 1, count + 1


def split_lines(text: str) -> tuple[list[str], list[bool], int, str | None]:
    """The line grammar, whatever a step line holds: step lines (stripped), whether a check retracted
    each, the number of check lines, and the text after the first `answer:` (None without one). Total."""
    lines: list[str] = []
    retracted: list[bool] = []
    checks = 0
    if not isinstance(text, str):
        return lines, retracted, checks, None
    after_step = False  # is the previous non-blank line a step line?
    for line in nonblank_lines(text):
        if line[:7].lower() == "answer:":
            return lines, retracted, checks, line[7:]
        check = _CHECK.fullmatch(line) if len(line) < 64 else None
        if check is not None:
            checks += 1
            if after_step and check.group(1).lower() == "wrong":
                retracted[-1] = True
            after_step = False
            continue
        lines.append(line)
        retracted.append(False)
        after_step = True
    return lines, retracted, checks, None


def parse_solution(text: str) -> Solution:
    """Split `text` into step lines, check lines and the first answer line (total: never raises)."""
    lines, retracted, checks, answer = split_lines(text)
    steps = tuple(StepLine(parse_equation(line), r) for line, r in zip(lines, retracted))
    return Solution(
        steps=steps, checks=checks, answer=None if answer is None else canonical_int(answer)
    )


def solution_steps(text: str) -> list[str]:
    """The solution cut into step texts, one per entry of the verifier's `steps_valid` (total).

    Each step line starts a step; check lines join the step before them; the answer line joins the
    last step (or is the only step of a solution that writes no step); blank lines and everything
    after the answer line are dropped. A judge that scores step i therefore scores the line that the
    verifier's `steps_valid[i]` and `first_error` refer to.
    """
    if not isinstance(text, str):
        return []
    steps: list[str] = []
    pending: list[str] = []  # check lines seen before any step line
    for line in nonblank_lines(text):
        is_answer = line[:7].lower() == "answer:"
        is_check = not is_answer and len(line) < 64 and _CHECK.fullmatch(line) is not None
        if (is_answer or is_check) and steps:
            steps[-1] += "\n" + line
        elif is_answer or is_check:
            pending.append(line)
        else:
            steps.append("\n".join([*pending, line]))
            pending = []
        if is_answer:
            break
    if pending:  # checks or an answer with no step line before them
        steps.append("\n".join(pending))
    return steps


def first_error(steps: tuple[StepLine, ...], valid: list[bool]) -> int:
    """Index of the earliest invalid step that was not retracted, or -1."""
    for index, (step, ok) in enumerate(zip(steps, valid)):
        if not ok and not step.retracted:
            return index
    return -1


def make_verdict(solution: Solution, valid: list[bool], outcome: Outcome) -> Verdict:
    """Assemble a Verdict; step fields are filled even for malformed outputs."""
    return Verdict(
        outcome=outcome,
        answer=solution.answer,
        steps_valid=tuple(valid),
        first_error=first_error(solution.steps, valid),
        checks=solution.checks,
        backtracks=sum(step.retracted for step in solution.steps),
    )
