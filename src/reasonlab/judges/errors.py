"""Erroneous solutions with one injected error, for measuring how well judges locate wrong steps.

An injection rewrites the reference solution of a built-in task (`task.reference_steps(problem)`,
lines `a op b=c`) so that it goes wrong at one step, drawn with the caller's `random.Random`:

    arithmetic    step i's result is off by 1..9 (either sign); later steps that used the true value
                  use the wrong one, with their own arithmetic done right; the answer is the final
                  (now wrong) value
    operand       step i computes correctly on a wrong operand (the value before the one it should
                  use, or the true operand +/- 1..9) that is not available at that step; the new
                  result is carried forward; the answer is the final value
    skipped       step i is left out (never the last step); the step that used its result uses the
                  value step i started from (its left operand) instead; carried forward
    right_answer  step i's result is wrong but later steps go on from the true value, so the answer
                  is right: a right answer reached through a wrong step (never the last step)

    wrong_step    step i is replaced by the task's own invalid version of it (`task.wrong_step`); the
                  other lines and the answer stay the reference's. The kind for tasks whose steps are
                  not equations (chess: an illegal move)

Which step used which result is read off the reference text alone: each operand is the result of
the most recent earlier step with that value not yet used, else an input number. Injected values
keep the sign range of the reference (non-negative wherever the reference has no negative number),
division stays exact, and a kind that cannot apply to a problem (a single-step problem for skipped
or right_answer, a carried value that would make a later step impossible) gives None.

`Injection.index` says where the error was put; it is bookkeeping for tests only. The labels of an
injected solution come from the task's verifier (`judges.data.record_from_text`), and the tests
check that the verifier puts the first error exactly at `index` for every kind.

Departure from ProcessBench, whose errors are natural mistakes of real models labelled by experts:
these errors are synthetic and exactly labelled. Countdown supports `arithmetic` and `operand`
only: its verifier allows solutions that use a subset of the numbers, so a skipped step leaves a
valid derivation of a wrong number (no wrong step), and it demands every step be valid for a right
outcome, so a right answer through a wrong step cannot exist there.

Usage:
    rng = random.Random(0)
    text = inject(task, problem, "arithmetic", rng)   # completion text, or None
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from reasonlab.errors import ConfigError
from reasonlab.tasks.base import Task
from reasonlab.tasks.parsing import Equation, evaluate, format_equation, parse_equation
from reasonlab.types import Problem

ERROR_KINDS: tuple[str, ...] = ("arithmetic", "operand", "skipped", "right_answer", "wrong_step")
# the kinds each task's verifier can express (see the module docstring)
TASK_KINDS: dict[str, tuple[str, ...]] = {
    "countdown": ("arithmetic", "operand"),
    "chess": ("wrong_step",),
}
EQUATION_KINDS: tuple[str, ...] = ERROR_KINDS[:4]
DELTAS: tuple[int, ...] = tuple(d * s for d in range(1, 10) for s in (1, -1))

Sources = list[tuple[int | None, int | None]]  # per step: the step whose result is its left / right


@dataclass(frozen=True)
class Injection:
    """A solution with one injected error: its step lines, answer, text, and where the error is."""

    kind: str
    index: int  # the line index (0-based, in `steps`) of the injected error
    steps: tuple[str, ...]
    answer: str
    text: str


def supported_kinds(task: Task) -> tuple[str, ...]:
    """The error kinds that `task`'s verifier can express."""
    return TASK_KINDS.get(task.name, EQUATION_KINDS)


def inject(task: Task, problem: Problem, kind: str, rng: random.Random) -> str | None:
    """The completion text with one error of `kind` (steps, then the answer line), or None."""
    found = injection(task, problem, kind, rng)
    return None if found is None else found.text


def injection(task: Task, problem: Problem, kind: str, rng: random.Random) -> Injection | None:
    """Inject one error of `kind` at a step drawn from `rng`; None when the kind cannot apply.

    Step indices, and the deltas or operands tried at a step, are taken in an order drawn from
    `rng`; the first candidate that keeps every step possible is used.
    """
    if kind not in ERROR_KINDS:
        raise ConfigError(f"unknown error kind {kind!r} (known: {', '.join(ERROR_KINDS)})")
    if kind not in supported_kinds(task):
        return None
    if kind == "wrong_step":
        return replaced_step(task, problem, rng)
    eqs = reference_equations(task, problem)
    if not eqs:
        return None
    sources = result_sources(eqs)
    signed = any(v < 0 for e in eqs for v in (e.left, e.right, e.result))
    n_sites = len(eqs) if kind in ("arithmetic", "operand") else len(eqs) - 1
    for i in rng.sample(range(n_sites), n_sites):
        for steps in BUILDERS[kind](eqs, sources, i, rng):
            final = steps[-1].result
            if not all(fits(e, signed) for e in steps):
                continue
            if (kind == "right_answer") != (final == eqs[-1].result):
                continue
            lines = tuple(format_equation(e.left, e.op, e.right, e.result) for e in steps)
            text = "".join(f"{line}\n" for line in (*lines, task.answer_line(str(final))))
            return Injection(kind=kind, index=i, steps=lines, answer=str(final), text=text)
    return None


def replaced_step(task: Task, problem: Problem, rng: random.Random) -> Injection | None:
    """The reference solution with step i (drawn from `rng`) replaced by `task.wrong_step`."""
    steps = list(task.reference_steps(problem))
    if not steps:
        return None
    i = rng.randrange(len(steps))
    steps[i] = task.wrong_step(problem, i, rng)
    text = "".join(f"{line}\n" for line in (*steps, task.answer_line(problem.answer)))
    return Injection(
        kind="wrong_step", index=i, steps=tuple(steps), answer=problem.answer, text=text
    )


def reference_equations(task: Task, problem: Problem) -> list[Equation] | None:
    """The reference steps as equations; None unless every line is a true `a op b=c`."""
    eqs = [parse_equation(line.strip()) for line in task.reference_steps(problem)]
    if any(e is None or evaluate(e.left, e.op, e.right) != e.result for e in eqs):
        return None
    return [e for e in eqs if e is not None]


def result_sources(eqs: Sequence[Equation]) -> Sources:
    """Which earlier step's result each operand is (left first), None for an input number.

    An operand is the result of the most recent earlier step with that value whose result no step
    has used yet; otherwise it is an input number.
    """
    unused: list[int] = []  # steps whose result is not used yet
    sources: Sources = []
    for j, eq in enumerate(eqs):
        pair: list[int | None] = []
        for value in (eq.left, eq.right):
            k = next((k for k in reversed(unused) if eqs[k].result == value), None)
            if k is not None:
                unused.remove(k)
            pair.append(k)
        sources.append((pair[0], pair[1]))
        unused.append(j)
    return sources


def pool_before(eqs: Sequence[Equation], sources: Sources, i: int) -> dict[int, int]:
    """The numbers available to step i (value -> count): unused inputs and unused results."""
    pool: dict[int, int] = {}
    for j, (eq, pair) in enumerate(zip(eqs, sources)):
        for value, src in zip((eq.left, eq.right), pair):
            if src is None and j >= i:  # an input number not used before step i
                pool[value] = pool.get(value, 0) + 1
            if src is not None and src < i <= j:  # an earlier result used at or after step i
                pool[value] = pool.get(value, 0) + 1
    return pool


def available(pool: dict[int, int], a: int, b: int) -> bool:
    """Can `a` and `b` both be taken from the pool (two occurrences when a == b)?"""
    if a == b:
        return pool.get(a, 0) >= 2
    return pool.get(a, 0) >= 1 and pool.get(b, 0) >= 1


def fits(eq: Equation, signed: bool) -> bool:
    """A step an injection may write: non-negative numbers unless the reference has negatives."""
    return signed or min(eq.left, eq.right, eq.result) >= 0


def carry(eqs: Sequence[Equation], sources: Sources, i: int, value: int) -> list[Equation] | None:
    """Steps after i recomputed when step i's result becomes `value`; None if one is impossible."""
    results = {k: e.result for k, e in enumerate(eqs)}
    results[i] = value
    out: list[Equation] = []
    for j in range(i + 1, len(eqs)):
        eq, (src_l, src_r) = eqs[j], sources[j]
        left = eq.left if src_l is None else results[src_l]
        right = eq.right if src_r is None else results[src_r]
        result = evaluate(left, eq.op, right)
        if result is None:
            return None
        results[j] = result
        out.append(Equation(left, eq.op, right, result))
    return out


def build_arithmetic(
    eqs: Sequence[Equation], sources: Sources, i: int, rng: random.Random
) -> Iterator[list[Equation]]:
    """Step i's result off by a delta, carried forward by the steps that use it."""
    eq = eqs[i]
    for delta in rng.sample(DELTAS, len(DELTAS)):
        rest = carry(eqs, sources, i, eq.result + delta)
        if rest is not None:
            yield [*eqs[:i], Equation(eq.left, eq.op, eq.right, eq.result + delta), *rest]


def build_right_answer(
    eqs: Sequence[Equation], sources: Sources, i: int, rng: random.Random
) -> Iterator[list[Equation]]:
    """Step i's result off by a delta; later steps go on from the true value."""
    eq = eqs[i]
    for delta in rng.sample(DELTAS, len(DELTAS)):
        yield [*eqs[:i], Equation(eq.left, eq.op, eq.right, eq.result + delta), *eqs[i + 1 :]]


def build_operand(
    eqs: Sequence[Equation], sources: Sources, i: int, rng: random.Random
) -> Iterator[list[Equation]]:
    """Step i on a wrong, unavailable operand with true arithmetic; its result carried forward."""
    eq, pool = eqs[i], pool_before(eqs, sources, i)
    candidates = [(side, d) for side in ("left", "right") for d in DELTAS]
    rng.shuffle(candidates)
    src = sources[i][0]
    if src is not None and rng.random() < 0.5:  # the value before the previous result
        candidates.insert(0, ("left", eqs[src].left - eq.left))
    for side, delta in candidates:
        left = eq.left + delta if side == "left" else eq.left
        right = eq.right + delta if side == "right" else eq.right
        result = evaluate(left, eq.op, right)
        if delta == 0 or result is None or available(pool, left, right):
            continue
        rest = carry(eqs, sources, i, result)
        if rest is not None:
            yield [*eqs[:i], Equation(left, eq.op, right, result), *rest]


def build_skipped(
    eqs: Sequence[Equation], sources: Sources, i: int, rng: random.Random
) -> Iterator[list[Equation]]:
    """Step i left out; the step that used its result uses step i's left operand instead."""
    rest = carry(eqs, sources, i, eqs[i].left)
    if rest and rest[0] != eqs[i]:  # the line now at index i must not restore step i
        yield [*eqs[:i], *rest]


Builder = Callable[[Sequence[Equation], Sources, int, random.Random], Iterator[list[Equation]]]
BUILDERS: dict[str, Builder] = {
    "arithmetic": build_arithmetic,
    "operand": build_operand,
    "skipped": build_skipped,
    "right_answer": build_right_answer,
}
