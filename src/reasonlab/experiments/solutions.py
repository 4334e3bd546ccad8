"""The solutions stage of the main job: the base's and the RL model's chains on the same problems, judged.

From the samples the evaluations already keep (eval/base.json and eval/rl.json: a few completions of
every test problem), `build_solutions` picks at most `eval.solutions` problems and one completion per
model of each, re-runs the task's verifier on it and writes what a reader needs to see where a chain
went wrong: the step texts (`tasks.parsing.solution_steps`, the cutting the judges are trained and
scored on, so step i is the step of the verifier's `steps_valid[i]`), the verifier's mark of each
step ("valid", "wrong", or "retracted" by a `check: wrong` line; None where the verifier gives the
step no mark, as for the lone answer line of a shortcut or a task that cannot judge steps), the
first wrong step (the verifier's `first_error`), the answer with its outcome, whether it is a
shortcut, and each trained judge's step scores and solution score (judges/<head>/; none when no
judge loads).

Which problems: a model *solves* a problem when at least half of its samples are right; each
problem is "fixed" (the base does not solve it, the RL model does), "broke" (the reverse),
"both_wrong" or "both_right" ("wrong" / "right" with no RL model). Problems are drawn from these
groups in turn, each group shuffled by the seed, so every group that has problems is shown.
Which completion: the first kept sample whose outcome agrees with the model's verdict on the
problem (a wrong one where the model does not solve it, a right one where it does), else the first
kept sample. The result is eval/solutions.json; reports/solutions.py renders it. Usage:

    data = build_solutions(task, problems, base_eval, rl_eval, load_run_judges(run_dir, ["prm"]), 24, 0)
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reasonlab.evaluate.runner import is_shortcut
from reasonlab.judges.base import Judge
from reasonlab.tasks import Task
from reasonlab.tasks.parsing import solution_steps, split_lines
from reasonlab.types import Problem, StepRecord

STATUSES = ("fixed", "broke", "both_wrong", "both_right")  # with an RL model, in display order
BASE_STATUSES = ("wrong", "right")  # without one


def load_run_judges(run_dir: Path, heads: Sequence[str]) -> dict[str, Judge]:
    """The judges the run trained (run_dir/judges/<head>), by head; a head that fails to load is left out."""
    from reasonlab.judges.models import load_judge

    judges: dict[str, Judge] = {}
    for head in heads:
        folder = Path(run_dir) / "judges" / head
        if not (folder / "config.json").is_file():
            continue
        try:
            judges[head] = load_judge(folder)
        except Exception:  # noqa: BLE001 - a view without judge scores beats no view
            continue
    return judges


def build_solutions(
    task: Task,
    problems: Sequence[Problem],
    base_eval: Mapping[str, Any],
    rl_eval: Mapping[str, Any] | None,
    judges: Mapping[str, Judge],
    n: int,
    seed: int,
) -> dict[str, Any]:
    """The eval/solutions.json dict: at most `n` problems of `base_eval` (and `rl_eval`), chosen as the
    module docstring says, each with one judged completion per model."""
    by_id = {p.id: p for p in problems}
    rl_rows = {r["id"]: r for r in (rl_eval or {}).get("problems", [])}
    groups: dict[str, list[tuple[Problem, dict[str, Any], dict[str, Any] | None]]] = {}
    for row in base_eval.get("problems", []):
        problem = by_id.get(row["id"])
        rl_row = rl_rows.get(row["id"])
        if problem is None or not row.get("samples") or (rl_eval is not None and rl_row is None):
            continue
        if rl_row is not None and not rl_row.get("samples"):
            continue
        groups.setdefault(_status(row, rl_row), []).append((problem, row, rl_row))
    order = STATUSES if rl_eval is not None else BASE_STATUSES
    counts = {s: len(groups.get(s, [])) for s in order}
    chosen = _pick(groups, order, n, seed)
    entries = []
    for status in order:
        for problem, row, rl_row in chosen.get(status, []):
            solutions = {"base": solution_record(task, problem, _sample(row)["text"], "base")}
            if rl_row is not None:
                solutions["rl"] = solution_record(task, problem, _sample(rl_row)["text"], "rl")
            entries.append(
                {
                    "id": problem.id,
                    "prompt": problem.prompt,
                    "answer": problem.answer,
                    "difficulty": problem.difficulty,
                    "status": status,
                    "accuracy": {
                        "base": _accuracy(row),
                        **({"rl": _accuracy(rl_row)} if rl_row is not None else {}),
                    },
                    "solutions": solutions,
                }
            )
    add_judge_scores(entries, judges)
    return {
        "task": task.name,
        "knobs": dict(task.knobs),
        "models": ["base", "rl"] if rl_eval is not None else ["base"],
        "judges": {
            name: {
                "aggregation": getattr(j, "aggregation", None),
                "threshold": _round(getattr(j, "threshold", None)),
            }
            for name, j in judges.items()
        },
        "counts": counts,
        "problems": entries,
    }


def _accuracy(row: Mapping[str, Any]) -> float:
    return round(row["n_correct"] / max(row["n"], 1), 4)


def _solves(row: Mapping[str, Any]) -> bool:
    return 2 * row["n_correct"] >= row["n"] > 0


def _status(base: Mapping[str, Any], rl: Mapping[str, Any] | None) -> str:
    if rl is None:
        return "right" if _solves(base) else "wrong"
    return {
        (False, True): "fixed",
        (True, False): "broke",
        (False, False): "both_wrong",
        (True, True): "both_right",
    }[(_solves(base), _solves(rl))]


def _pick(groups: Mapping[str, list], order: Sequence[str], n: int, seed: int) -> dict[str, list]:
    """Up to `n` members, taken from the groups in turn (each shuffled by `seed`), kept in file order."""
    rng = random.Random(seed)
    pools = {s: rng.sample(range(len(groups.get(s, []))), len(groups.get(s, []))) for s in order}
    taken: dict[str, list[int]] = {s: [] for s in order}
    total = 0
    while total < n and any(pools.values()):
        for s in order:
            if pools[s] and total < n:
                taken[s].append(pools[s].pop())
                total += 1
    return {s: [groups[s][i] for i in sorted(taken[s])] for s in order if taken[s]}


def _sample(row: Mapping[str, Any]) -> dict[str, Any]:
    """The kept sample whose outcome agrees with the model's verdict on the problem, else the first."""
    want = _solves(row)
    for s in row["samples"]:
        if (s["outcome"] == "correct") == want:
            return s
    return row["samples"][0]


def solution_record(task: Task, problem: Problem, text: str, model: str = "") -> dict[str, Any]:
    """One completion as the view shows it (no judge scores yet: `add_judge_scores`): its text, answer,
    reference answer, outcome, shortcut flag, the verifier's first_error, and its steps with the
    verifier's mark of each ("valid", "wrong", "retracted", or None where the verifier gives none)."""
    verdict = task.verify(problem, text)
    steps = solution_steps(text)
    valid = verdict.steps_valid
    retracted = split_lines(text)[1]
    if valid is None or len(retracted) != len(valid):
        retracted = [False] * len(valid or ())
    marks: list[str | None] = []
    for i in range(len(steps)):
        if valid is None or i >= len(valid):
            marks.append(None)
        elif retracted[i]:
            marks.append("retracted")
        else:
            marks.append("valid" if valid[i] else "wrong")
    return {
        "model": model,
        "text": text,
        "answer": verdict.answer,
        "reference": problem.answer,
        "outcome": verdict.outcome.value,
        "shortcut": is_shortcut(verdict),
        "first_error": verdict.first_error,
        "steps": [{"text": s, "mark": m} for s, m in zip(steps, marks)],
        "judges": {},
    }


def add_judge_scores(entries: list[dict[str, Any]], judges: Mapping[str, Judge]) -> None:
    """Fill solution["judges"][name] = {"steps": [...], "score": x} for each judge and each solution
    with a step of `entries` (dicts with "prompt" and "solutions"), in one batch per judge; a judge
    that fails to score is left out."""
    solutions = [s for e in entries for s in e["solutions"].values() if s["steps"]]
    prompts = [e["prompt"] for e in entries for s in e["solutions"].values() if s["steps"]]
    records = [
        StepRecord(p, tuple(step["text"] for step in s["steps"]))
        for p, s in zip(prompts, solutions)
    ]
    for name, judge in judges.items():
        try:
            scores = judge.score(records) if records else []
        except Exception:  # noqa: BLE001 - a judge that cannot score is left out of the view
            continue
        for solution, score in zip(solutions, scores):
            solution["judges"][name] = {
                "steps": [_round(x) for x in score.steps],
                "score": _round(score.outcome),
            }


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)
