"""`arith`: multi-operand integer arithmetic evaluated left to right, with an exact step verifier.

Format (prompt + completion; every line ends with "\\n"):

    37+48-19=?          the prompt: operands and operators, no spaces, then `=?`
    37+48=85            one step per operator, evaluated left to right (no precedence)
    85-19=66
    answer: 66

Negative intermediate results are written with a leading '-' (`12-48=-36`, then `-36+5=-31`).
Knobs: `n_operands` (2..32; n_operands - 1 steps), `digits` (1..9; every operand has exactly that
many digits, no leading zero), `operators` (a non-empty string over "+-*"; each position picks one
uniformly), `test_fraction`. Difficulty is the number of operands.

Verifier rules (see tasks/parsing.py for the line grammar): a step line is valid iff its
arithmetic holds AND it continues the chain: its left operand is operand 0 for the first step, else
the claimed result of the previous non-retracted step (so a wrong result is blamed once, on the step
that wrote it); its operator and right operand are those of the next position. Steps past the last
operator and junk lines are invalid; a junk line does not move the chain. The outcome judges the
answer only: CORRECT iff it equals the true value, WRONG otherwise, MALFORMED without an integer
answer line, so a right answer reached by a wrong step is CORRECT with first_error >= 0. An
incomplete but valid chain followed by the right answer is CORRECT with first_error == -1.

Usage:
    task = get_task("arith", n_operands=4, operators="+-*")
    problem = task.generate(random.Random(0))
    task.verify(problem, "\\n".join(task.reference_steps(problem)) + "\\nanswer: " + problem.answer)
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from reasonlab.errors import ConfigError
from reasonlab.tasks.base import Task, int_knob, register_task, short_repr
from reasonlab.tasks.parsing import (
    StepLine,
    canonical_int,
    evaluate,
    format_equation,
    make_verdict,
    parse_solution,
)
from reasonlab.types import Outcome, Problem, Verdict

ALLOWED_OPERATORS = "+-*"


def apply_op(left: int, op: str, right: int) -> int:
    """`left op right` for op in "+-*"."""
    return left + right if op == "+" else left - right if op == "-" else left * right


def chain_results(operands: Sequence[int], operators: str) -> list[int]:
    """The result of each left-to-right step: [o0 op0 o1, (o0 op0 o1) op1 o2, ...]."""
    results: list[int] = []
    value = operands[0]
    for op, right in zip(operators, operands[1:]):
        value = apply_op(value, op, right)
        results.append(value)
    return results


def judge_chain(operands: Sequence[int], operators: str, steps: Sequence[StepLine]) -> list[bool]:
    """Validity of each step line against the chain (see the module docstring)."""
    valid: list[bool] = []
    value, position = operands[0], 0  # current left value; index of the next operator
    for step in steps:
        eq = step.equation
        if eq is None:
            valid.append(False)
            continue
        ok = (
            position < len(operators)
            and eq.left == value
            and eq.op == operators[position]
            and eq.right == operands[position + 1]
            and evaluate(eq.left, eq.op, eq.right) == eq.result
        )
        valid.append(ok)
        if not step.retracted:
            value, position = eq.result, position + 1
    return valid


@register_task("arith")
class ArithmeticTask(Task):
    """Left-to-right arithmetic over `n_operands` operands of `digits` digits."""

    difficulty_knob = "n_operands"  # the knob that sets Problem.difficulty

    def __init__(
        self,
        *,
        n_operands: int = 3,
        digits: int = 2,
        operators: str = "+-",
        test_fraction: float = 0.1,
    ) -> None:
        super().__init__(test_fraction=test_fraction)
        self.n_operands = int_knob(self.name, "n_operands", n_operands, 2, 32)
        self.digits = int_knob(self.name, "digits", digits, 1, 9)
        if (
            not isinstance(operators, str)
            or not operators
            or any(op not in ALLOWED_OPERATORS for op in operators)
        ):
            raise ConfigError(
                f"invalid knob operators={short_repr(operators)} for task 'arith': "
                f"must be a non-empty string of characters from '{ALLOWED_OPERATORS}'"
            )
        self.operators = "".join(dict.fromkeys(operators))  # unique, in the order given
        self.knobs = {
            "n_operands": self.n_operands,
            "digits": self.digits,
            "operators": self.operators,
            "test_fraction": self.test_fraction,
        }

    def generate(self, rng: random.Random) -> Problem:
        lo, hi = 10 ** (self.digits - 1), 10**self.digits - 1
        operands = tuple(rng.randint(lo, hi) for _ in range(self.n_operands))
        operators = "".join(rng.choice(self.operators) for _ in range(self.n_operands - 1))
        expression = str(operands[0]) + "".join(
            op + str(x) for op, x in zip(operators, operands[1:])
        )
        answer = str(chain_results(operands, operators)[-1])
        meta = {"operands": operands, "operators": operators}
        return self.make_problem(f"{expression}=?\n", answer, self.n_operands, meta)

    def verify(self, problem: Problem, text: str) -> Verdict:
        solution = parse_solution(text)
        operands, operators = problem.meta["operands"], problem.meta["operators"]
        valid = judge_chain(operands, operators, solution.steps)
        if solution.answer is None:
            outcome = Outcome.MALFORMED
        elif solution.answer == canonical_int(problem.answer):
            outcome = Outcome.CORRECT
        else:
            outcome = Outcome.WRONG
        return make_verdict(solution, valid, outcome)

    def reference_steps(self, problem: Problem) -> list[str]:
        operands, operators = problem.meta["operands"], problem.meta["operators"]
        lefts = [operands[0], *chain_results(operands, operators)]
        return [
            format_equation(lefts[i], op, operands[i + 1], lefts[i + 1])
            for i, op in enumerate(operators)
        ]

    def reference_continuation(self, problem: Problem, prefix: str) -> str:
        """Continue the chain from the last claimed result, at the position after the steps written."""
        operands, operators = problem.meta["operands"], problem.meta["operators"]
        kept = [s.equation for s in parse_solution(prefix).steps if not s.retracted]
        if any(eq is None for eq in kept):
            return "answer: ?\n"  # a junk line: no state to continue from
        value, position = (kept[-1].result, len(kept)) if kept else (operands[0], 0)
        lines = []
        for op, right in zip(operators[position:], operands[position + 1 :]):
            lines.append(format_equation(value, op, right, apply_op(value, op, right)))
            value = apply_op(value, op, right)
        return "".join(line + "\n" for line in lines) + self.answer_line(str(value)) + "\n"

    def wrong_step(self, problem: Problem, index: int, rng: random.Random) -> str:
        """A wrong result (off by 1..9), or a wrong left or right operand with true arithmetic."""
        operands, operators = problem.meta["operands"], problem.meta["operators"]
        left = ([operands[0], *chain_results(operands, operators)])[index]
        op, right = operators[index], operands[index + 1]
        delta = rng.randint(1, 9) * rng.choice((-1, 1))
        kind = rng.choice(("result", "left", "right"))
        if kind == "left":  # true arithmetic, but it does not continue the chain
            left += delta
        elif kind == "right" and right + delta > 0:  # true arithmetic on a wrong operand
            right += delta
        else:  # the right operands, a wrong result
            return format_equation(left, op, right, apply_op(left, op, right) + delta)
        return format_equation(left, op, right, apply_op(left, op, right))
