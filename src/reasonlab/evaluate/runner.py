"""Evaluate a policy on a task's test problems: sample n completions each, verify, and summarise.

The result is a JSON-ready dict: pass@k for k = 1..n (Chen et al. unbiased estimator), maj@k at
powers of two, malformed rate, process validity (share of correct answers whose every step is
valid), mean completion length, the shortcut rate (samples that write no step, only an answer)
with the accuracy of shortcut and stepwise samples, a breakdown by difficulty, and per-problem
records with a few sample texts and their verdicts, so a reader can see *why* a problem was marked wrong. Usage:

    result = evaluate_policy(policy, task, task.sample("test", 200, seed=1), n=64, seed=0)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reasonlab.evaluate.passk import curve_ks, majority_at_k, pass_at_k_curve, powers_of_two
from reasonlab.models import Policy
from reasonlab.sampling import generate
from reasonlab.tasks import Task
from reasonlab.types import Outcome, Problem, Rollout, Verdict


@dataclass(frozen=True)
class SamplingParams:
    """How completions are drawn for an evaluation."""

    n: int
    seed: int
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    batch_size: int = 256


def evaluate_policy(
    policy: Policy,
    task: Task,
    problems: Sequence[Problem],
    params: SamplingParams,
    keep_samples: int = 4,
) -> dict[str, Any]:
    """Sample `params.n` completions per problem, judge them with the task verifier, summarise."""
    rollouts = generate(
        policy,
        problems,
        params.n,
        params.seed,
        max_new_tokens=params.max_new_tokens,
        temperature=params.temperature,
        top_p=params.top_p,
        batch_size=params.batch_size,
    )
    verdicts = [task.verify(problems[i // params.n], r.text) for i, r in enumerate(rollouts)]
    records = [
        _problem_record(
            p,
            rollouts[i * params.n : (i + 1) * params.n],
            verdicts[i * params.n : (i + 1) * params.n],
            params,
            keep_samples,
        )
        for i, p in enumerate(problems)
    ]
    return {
        "task": task.name,
        "knobs": dict(task.knobs),
        "n_problems": len(problems),
        "n_samples": params.n,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "seed": params.seed,
        "summary": summarise(records, params.n, params.seed),
        "by_difficulty": {
            str(level): summarise(group, params.n, params.seed)
            for level, group in _by_difficulty(records).items()
        },
        "problems": records,
    }


def is_shortcut(verdict: Verdict) -> bool:
    """A sample that answers without writing any step (judged steps, none of them)."""
    return verdict.steps_valid == ()


def summarise(records: Sequence[dict[str, Any]], n: int, seed: int) -> dict[str, float]:
    """Flat metrics over problem records: pass@k (all k), maj@k (powers of two), rates, lengths."""
    counts = [(r["n"], r["n_correct"]) for r in records]
    out: dict[str, float] = {
        f"pass@{k}": v for k, v in pass_at_k_curve(counts, curve_ks(n)).items()
    }
    for k in powers_of_two(n):
        out[f"maj@{k}"] = _mean([r["maj"][str(k)] for r in records])
    total = sum(r["n"] for r in records)
    out["malformed_rate"] = sum(r["n_malformed"] for r in records) / max(total, 1)
    correct = sum(r["n_correct"] for r in records)
    out["process_valid_rate"] = sum(r["n_correct_all_steps_valid"] for r in records) / max(
        correct, 1
    )
    out["mean_length"] = sum(r["total_length"] for r in records) / max(total, 1)
    shortcuts = sum(r["n_shortcut"] for r in records)
    shortcuts_correct = sum(r["n_shortcut_correct"] for r in records)
    out["shortcut_rate"] = shortcuts / max(total, 1)
    out["shortcut_accuracy"] = shortcuts_correct / max(shortcuts, 1)
    out["stepwise_accuracy"] = (correct - shortcuts_correct) / max(total - shortcuts, 1)
    out["truncated_rate"] = sum(r["n_truncated"] for r in records) / max(total, 1)
    return out


def _problem_record(
    problem: Problem,
    rollouts: Sequence[Rollout],
    verdicts: Sequence[Verdict],
    params: SamplingParams,
    keep: int,
) -> dict[str, Any]:
    answers = [v.answer if v.outcome is not Outcome.MALFORMED else None for v in verdicts]
    correct = [v.correct for v in verdicts]
    return {
        "id": problem.id,
        "prompt": problem.prompt,
        "answer": problem.answer,
        "difficulty": problem.difficulty,
        "n": len(verdicts),
        "n_correct": sum(correct),
        "n_malformed": sum(v.outcome is Outcome.MALFORMED for v in verdicts),
        "n_truncated": sum(r.finish_reason == "length" for r in rollouts),
        "n_correct_all_steps_valid": sum(
            v.correct and v.first_error in (-1, None) for v in verdicts
        ),
        "n_shortcut": sum(is_shortcut(v) for v in verdicts),
        "n_checking": sum(v.checks > 0 for v in verdicts),
        "n_backtracking": sum(v.backtracks > 0 for v in verdicts),
        "n_distinct_correct": len(
            {" ".join(r.text.split()) for r, v in zip(rollouts, verdicts) if v.correct}
        ),
        "n_shortcut_correct": sum(is_shortcut(v) and v.correct for v in verdicts),
        "total_length": sum(len(r.token_ids) for r in rollouts),
        "answers": answers,
        "outcomes": [v.outcome.value for v in verdicts],
        "maj": {
            str(k): majority_at_k(answers, correct, k, seed=params.seed)
            for k in powers_of_two(len(verdicts))
        },
        "samples": [
            {
                "text": r.text,
                "outcome": v.outcome.value,
                "answer": v.answer,
                "first_error": v.first_error,
                "shortcut": is_shortcut(v),
            }
            for r, v in zip(rollouts[:keep], verdicts[:keep])
        ],
    }


def _by_difficulty(records: Sequence[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    groups: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[r["difficulty"]].append(r)
    return dict(sorted(groups.items()))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
