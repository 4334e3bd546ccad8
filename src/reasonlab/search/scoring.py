"""Judge scores of partial and complete solutions, cached, with the judge tokens they cost.

A solution text (partial or complete) becomes a StepRecord by judges/data.py `record_from_text`,
so its steps are cut exactly as the judges' training records were; its score is
`aggregate(step_scores, settings.aggregation)` (a text with no step scores 0, as
judges/base.py `score_solutions` does). Scores are cached per search by (problem id, steps)
(and finished, for the verifier judge below): the judge reads only records it has not scored
yet, in one `judge.score` call per batch.
Judge tokens are the policy tokenizer's `encode` length of each record the judge reads (its prompt
and its steps, one newline after each); the learned judges share the policy's tokenizer.

One departure, for the exact verifier as a judge (judges/verifier.py): it blames a solution with
no answer line at its last step, which is right for a finished solution but would score every
unfinished partial solution 0. An unfinished partial solution is therefore scored by the
verifier's step labels alone (1.0 up to its first wrong step, 0.0 from there), the oracle PRM a
search needs; finished solutions keep the verifier judge's own scores.
"""

from __future__ import annotations

from collections.abc import Sequence

from reasonlab.judges.base import aggregate
from reasonlab.judges.data import record_from_text
from reasonlab.judges.verifier import VerifierJudge
from reasonlab.search.base import SearchContext
from reasonlab.types import JudgeScores, Problem, StepRecord, labels_from_first_error

Key = tuple[str, tuple[str, ...], bool]


class CachedScorer:
    """Aggregated judge scores of (problem, text, finished) triples, cached; counts judge tokens."""

    def __init__(self, ctx: SearchContext, problems: Sequence[Problem]) -> None:
        assert ctx.judge is not None
        self.ctx, self.problems = ctx, problems
        self.cache: dict[Key, JudgeScores] = {}
        self.judge_tokens = [0] * len(problems)  # per problem index
        self.records_read = 0

    def scores(self, items: Sequence[tuple[int, str, bool]]) -> list[float]:
        """One score per (problem index, solution text, finished), in order; new records are
        judged in one call."""
        task, tok = self.ctx.task, self.ctx.policy.tokenizer
        oracle = isinstance(self.ctx.judge, VerifierJudge)
        records: list[StepRecord | None] = []
        keys: list[Key | None] = []
        todo: dict[Key, tuple[int, StepRecord, bool]] = {}
        for index, text, finished in items:
            problem = self.problems[index]
            record = record_from_text(task, problem, text, "search")
            records.append(record)
            key = None if record is None else (problem.id, record.steps, oracle and finished)
            keys.append(key)
            if key is not None and key not in self.cache and key not in todo:
                todo[key] = (index, record, finished)
        if todo:
            self._judge(list(todo.items()), tok)
        return [
            0.0
            if key is None
            else aggregate(self.cache[key].steps, self.ctx.settings.aggregation)
            if self.cache[key].steps
            else self.cache[key].outcome
            for key in keys
        ]

    def _judge(self, todo: list[tuple[Key, tuple[int, StepRecord, bool]]], tok: object) -> None:
        judge = self.ctx.judge
        oracle = isinstance(judge, VerifierJudge)
        asked = [(k, r) for k, (_, r, fin) in todo if not (oracle and not fin)]
        got = judge.score([r for _, r in asked]) if asked else []  # type: ignore[union-attr]
        self.cache.update((k, s) for (k, _), s in zip(asked, got))
        for key, (index, record, finished) in todo:
            if oracle and not finished:
                self.cache[key] = prefix_oracle(self.ctx, record)
            text = record.prompt + "".join(step + "\n" for step in record.steps)
            self.judge_tokens[index] += len(tok.encode(text))  # type: ignore[attr-defined]
            self.records_read += 1


def prefix_oracle(ctx: SearchContext, record: StepRecord) -> JudgeScores:
    """The verifier's step labels of an unfinished solution: 1.0 up to its first wrong step."""
    assert record.problem is not None
    text = "".join(step + "\n" for step in record.steps)
    verdict = ctx.task.verify(record.problem, text)
    first = -1 if verdict.first_error is None else verdict.first_error
    labels = labels_from_first_error(len(record.steps), first)
    return JudgeScores(tuple(float(x) for x in labels), float(verdict.correct))
