"""`countdown`: reach a target from a multiset of numbers with + - * and exact /; exact verifier.

The game of TinyZero and Stream of Search. Format (every line ends with "\\n"):

    3 7 25 50 -> 75     the prompt: the numbers (in drawn order) separated by spaces, ` -> `, target
    50-25=25            steps `a op b=c`
    25*3=75
    answer: 75

Generation: draw `n_numbers` numbers uniformly from 1..max_number, then repeatedly merge two random
numbers of the pool with a random operation whose result lies in 1..target_max (the larger operand
written first, so subtraction never goes negative; division only when exact) until one number is
left: the target. So every problem is solvable using all its numbers, and the merges are the
reference solution (n_numbers - 1 steps). If a merge has no allowed operation the numbers are
redrawn. Departure from TinyZero: targets are built, not drawn, and intermediate results of the
reference stay within target_max. Knobs: `n_numbers` (2..8), `max_number` (1..10000),
`target_max` (1..1000000), `test_fraction`. Difficulty is the number of input numbers.

Verifier: a step `a op b=c` is valid iff c == a op b with a, b and c non-negative (negative
numbers are never allowed) and division exact, AND a and b are both available: in the input
multiset or among earlier results, each use consuming one occurrence (so `a op a` needs two). A
non-retracted step, valid or not, consumes whichever of a and b are available and adds its claimed
c, so later steps are judged on their own; a retracted step (followed by `check: wrong`) changes
nothing. Solutions may use any subset of the numbers. Outcome: MALFORMED without an integer answer
line; CORRECT iff the answer equals the target, the last non-retracted step's result equals the
target and every non-retracted step is valid (the answer alone is not enough); WRONG otherwise.

Usage:
    task = get_task("countdown", n_numbers=4)
    problem = task.generate(random.Random(0))
    task.verify(problem, "50-25=25\\n25*3=75\\nanswer: 75\\n")
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from reasonlab.errors import ReasonlabError
from reasonlab.tasks.base import Task, int_knob, register_task
from reasonlab.tasks.parsing import (
    Equation,
    StepLine,
    canonical_int,
    evaluate,
    format_equation,
    make_verdict,
    parse_solution,
)
from reasonlab.types import Outcome, Problem, Verdict

OPERATORS = "+-*/"
MAX_DRAWS = 1000  # redraws of the numbers before generate() gives up

RefStep = tuple[int, str, int, int]  # (a, op, b, c)
Pool = dict[int, int]  # number -> how many times it is available


def merge_all(numbers: Sequence[int], cap: int, rng: random.Random) -> list[RefStep] | None:
    """Merge the numbers pairwise at random into one, results in 1..cap; None if stuck."""
    pool = list(numbers)
    steps: list[RefStep] = []
    while len(pool) > 1:
        i, j = rng.sample(range(len(pool)), 2)
        a, b = max(pool[i], pool[j]), min(pool[i], pool[j])
        options = []
        for op in OPERATORS:
            c = evaluate(a, op, b)
            if c is not None and 1 <= c <= cap:
                options.append((a, op, b, c))
        if not options:
            return None
        step = rng.choice(options)
        pool = [x for k, x in enumerate(pool) if k not in (i, j)] + [step[3]]
        steps.append(step)
    return steps


def step_holds(eq: Equation) -> bool:
    """The arithmetic of one step: non-negative numbers, exact division, the claimed result."""
    if eq.left < 0 or eq.right < 0 or eq.result < 0:
        return False
    return evaluate(eq.left, eq.op, eq.right) == eq.result


def available(pool: Pool, a: int, b: int) -> bool:
    """Can `a` and `b` both be taken from the pool (two occurrences when a == b)?"""
    if a == b:
        return pool.get(a, 0) >= 2
    return pool.get(a, 0) >= 1 and pool.get(b, 0) >= 1


def apply_step(pool: Pool, eq: Equation) -> Pool:
    """The pool after a step: a and b consumed where available, the claimed result added."""
    new = dict(pool)
    for x in (eq.left, eq.right):
        if new.get(x, 0) > 0:
            new[x] -= 1
    new[eq.result] = new.get(eq.result, 0) + 1
    return new


def make_pool(numbers: Sequence[int]) -> Pool:
    """The input multiset as number -> count."""
    pool: Pool = {}
    for x in numbers:
        pool[x] = pool.get(x, 0) + 1
    return pool


def judge_steps(numbers: Sequence[int], steps: Sequence[StepLine]) -> tuple[list[bool], int | None]:
    """Validity of each step line, and the result of the last non-retracted parsed step."""
    pool = make_pool(numbers)
    valid: list[bool] = []
    last: int | None = None
    for step in steps:
        eq = step.equation
        if eq is None:
            valid.append(False)
            continue
        valid.append(step_holds(eq) and available(pool, eq.left, eq.right))
        if not step.retracted:
            pool, last = apply_step(pool, eq), eq.result
    return valid, last


@register_task("countdown")
class CountdownTask(Task):
    """Combine `n_numbers` numbers with + - * / to reach the target."""

    supports_answer_only = False  # the answer is the target: only a derivation can be correct

    difficulty_knob = "n_numbers"  # the knob that sets Problem.difficulty

    def __init__(
        self,
        *,
        n_numbers: int = 4,
        max_number: int = 50,
        target_max: int = 100,
        test_fraction: float = 0.1,
    ) -> None:
        super().__init__(test_fraction=test_fraction)
        self.n_numbers = int_knob(self.name, "n_numbers", n_numbers, 2, 8)
        self.max_number = int_knob(self.name, "max_number", max_number, 1, 10_000)
        self.target_max = int_knob(self.name, "target_max", target_max, 1, 1_000_000)
        self.knobs = {
            "n_numbers": self.n_numbers,
            "max_number": self.max_number,
            "target_max": self.target_max,
            "test_fraction": self.test_fraction,
        }

    def generate(self, rng: random.Random) -> Problem:
        for _ in range(MAX_DRAWS):
            numbers = tuple(rng.randint(1, self.max_number) for _ in range(self.n_numbers))
            steps = merge_all(numbers, self.target_max, rng)
            if steps is not None:
                target = steps[-1][3]
                prompt = " ".join(map(str, numbers)) + f" -> {target}\n"
                meta = {"numbers": numbers, "target": target, "steps": tuple(steps)}
                return self.make_problem(prompt, str(target), self.n_numbers, meta)
        raise ReasonlabError(
            f"task 'countdown' found no solvable numbers in {MAX_DRAWS} draws with knobs "
            f"{self.knobs}; raise target_max"
        )

    def verify(self, problem: Problem, text: str) -> Verdict:
        solution = parse_solution(text)
        target = problem.meta["target"]
        valid, last = judge_steps(problem.meta["numbers"], solution.steps)
        derived = last == target and all(
            ok or step.retracted for ok, step in zip(valid, solution.steps)
        )
        if solution.answer is None:
            outcome = Outcome.MALFORMED
        elif solution.answer == canonical_int(str(target)) and derived:
            outcome = Outcome.CORRECT
        else:
            outcome = Outcome.WRONG
        return make_verdict(solution, valid, outcome)

    def reference_steps(self, problem: Problem) -> list[str]:
        return [format_equation(*step) for step in problem.meta["steps"]]

    def wrong_step(self, problem: Problem, index: int, rng: random.Random) -> str:
        """A wrong result (off by 1..9), or an unavailable right operand with true arithmetic."""
        steps = problem.meta["steps"]
        pool = make_pool(problem.meta["numbers"])
        for a, op, b, c in steps[:index]:
            pool = apply_step(pool, Equation(a, op, b, c))
        a, op, b, c = steps[index]
        delta = rng.randint(1, 9) * rng.choice((-1, 1))
        if rng.random() < 0.5 and b + delta >= 0:
            c2 = evaluate(a, op, b + delta)
            eq = Equation(a, op, b + delta, c2) if c2 is not None else None
            if eq is not None and step_holds(eq) and not available(pool, a, b + delta):
                return format_equation(a, op, b + delta, eq.result)
        return format_equation(a, op, b, c + delta if c + delta >= 0 else c - delta)
