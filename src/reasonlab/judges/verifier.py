"""The task verifier as a Judge: exact step and outcome scores (1.0 or 0.0) from the task's rules.

Step i scores 1.0 iff the solution is still right after it (the same rule that labels exact training
data, judges/data.py `record_from_text`); the overall score is 1.0 iff the final answer is right.
It needs each record's task Problem, so it judges records built from a built-in task, not
ProcessBench files. Usage:

    VerifierJudge(get_task("arith")).score(records)
"""

from __future__ import annotations

from collections.abc import Sequence

from reasonlab.errors import ReasonlabError
from reasonlab.tasks import Task
from reasonlab.types import JudgeScores, StepRecord


class VerifierJudge:
    """Exact scores from `task.verify`."""

    name = "verifier"

    def __init__(self, task: Task) -> None:
        self.task = task

    def score(self, records: Sequence[StepRecord]) -> list[JudgeScores]:
        from reasonlab.judges.data import record_from_text

        out = []
        for i, r in enumerate(records):
            if r.problem is None or r.problem.task != self.task.name:
                raise ReasonlabError(
                    f"the verifier judge needs a {self.task.name} problem for record "
                    f"{r.id or i}; this record has {'none' if r.problem is None else r.problem.task}"
                )
            labelled = record_from_text(
                self.task, r.problem, "".join(s + "\n" for s in r.steps), r.source, r.id
            )
            if labelled is None:
                out.append(JudgeScores((), 0.0))
                continue
            out.append(
                JudgeScores(tuple(float(x) for x in labelled.labels), float(bool(labelled.correct)))
            )
        return out
