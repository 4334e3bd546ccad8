"""Step-labelled data for judges from the built-in tasks: exact labels from their verifiers.

Labels follow Math-Shepherd and ProcessBench: `labels[i]` is True iff the solution is still right
after step i, so they are True up to the earliest wrong step and False from there on. For a
built-in task the labels are exact, from the verifier (`record_from_text`): the steps are
`tasks.parsing.solution_steps(text)` (aligned with the verifier's `steps_valid`), and the earliest
wrong step is the verifier's `first_error` when there is one; a solution whose written steps are all
valid but whose answer is wrong or missing is blamed at its last step (the step that carries, or
should carry, the answer); otherwise there is none (-1). A right answer reached through a wrong step
keeps that step's error. `eval_records` builds a held-out set that pairs each problem's reference
solution with one injected error (`judges.errors`), so erroneous and all-correct cases balance.
Files of records are read and written by judges/files.py.

Usage:
    records = eval_records(task, task.sample("test", 100, seed=0), seed=0)
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from reasonlab.judges.errors import ERROR_KINDS, inject
from reasonlab.tasks.base import Task
from reasonlab.tasks.parsing import solution_steps
from reasonlab.types import Problem, StepRecord, labels_from_first_error


def record_from_text(
    task: Task, problem: Problem, text: str, source: str, id: str = ""
) -> StepRecord | None:
    """The exactly labelled record of one solution text; None when it has no step.

    first_error is the verifier's earliest unretracted wrong step; failing that, the last step when
    the outcome is not CORRECT (all steps valid, answer wrong or missing); else -1. A solution with
    no step line (only `answer: X`) is one step, wrong (0) or right (-1) as its answer is. Where the
    task cannot judge steps (`first_error` None), labels and first_error are None.
    """
    steps = solution_steps(text)
    if not steps:
        return None
    verdict = task.verify(problem, text)
    if verdict.first_error is None:
        labels, first_error = None, None
    else:
        first_error = verdict.first_error
        if first_error < 0 and not verdict.correct:
            first_error = len(steps) - 1
        labels = labels_from_first_error(len(steps), first_error)
    return StepRecord(
        prompt=problem.prompt,
        steps=tuple(steps),
        labels=labels,
        first_error=first_error,
        correct=verdict.correct,
        id=id,
        source=source,
        problem=problem,
    )


def reference_record(task: Task, problem: Problem) -> StepRecord:
    """The record of the task's reference solution (source "reference")."""
    text = "".join(f"{line}\n" for line in task.reference_steps(problem))
    text += task.answer_line(problem.answer) + "\n"
    record = record_from_text(task, problem, text, "reference", f"{problem.id}:reference")
    assert record is not None  # the answer line alone is a step
    return record


def injected_record(
    task: Task, problem: Problem, kind: str, rng: random.Random
) -> StepRecord | None:
    """The record of a solution with one injected error of `kind`, labelled by the verifier."""
    text = inject(task, problem, kind, rng)
    if text is None:
        return None
    source = f"injected:{kind}"
    return record_from_text(task, problem, text, source, f"{problem.id}:{source}")


def eval_records(task: Task, problems: Sequence[Problem], seed: int) -> list[StepRecord]:
    """A balanced evaluation set: per problem, its reference record and one injected error.

    The kind cycles through ERROR_KINDS; where the wanted kind does not apply, the next one that
    does is used and the cycle goes on after it. A problem where no kind applies is left out.
    """
    rng = random.Random(seed)
    records: list[StepRecord] = []
    cursor = 0
    for problem in problems:
        for offset in range(len(ERROR_KINDS)):
            kind = ERROR_KINDS[(cursor + offset) % len(ERROR_KINDS)]
            wrong = injected_record(task, problem, kind, rng)
            if wrong is not None:
                records += [reference_record(task, problem), wrong]
                cursor = (cursor + offset + 1) % len(ERROR_KINDS)
                break
    return records
