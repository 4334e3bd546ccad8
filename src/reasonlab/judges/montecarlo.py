"""Monte-Carlo step labels (Math-Shepherd, Wang et al. 2024): continue each step prefix and see if it wins.

For a solution with steps s_0..s_{n-1}, the prefix through step i is continued `n` times by a policy
and each full text is checked by the task's verifier. The soft label of step i is the fraction of
continuations that reach the right answer, the hard label is "at least one does". The last step's
prefix is the whole solution, so its label is the verifier's verdict on it (no sampling).
Departure from the paper: Math-Shepherd trains on the raw per-step hard labels; here a step's label
is True only if every prefix up to it has a winning continuation, so MC labels mean what exact labels
mean ("still right after step i") and the earliest wrong step is the first False. Soft labels are
kept raw in `soft_labels`.

A `Continuer` samples continuations: `policy_continuer(policy, ...)` uses the builtin sampler;
`reference_continuer(task)` continues with the task's own rules (`task.reference_continuation`), the
perfect policy against which MC labels must equal exact labels. Usage:

    relabelled = montecarlo_labels(task, records, policy_continuer(policy), n=8, seed=0)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from reasonlab.errors import ReasonlabError
from reasonlab.sampling import generate
from reasonlab.tasks import Task
from reasonlab.types import Problem, StepRecord, first_error_of

Continuer = Callable[[Sequence[Problem], int, int], list[str]]
"""(problems whose prompts end with a step prefix, n, seed) -> n continuation texts per problem, problem-major."""


def prefix_text(steps: Sequence[str], upto: int) -> str:
    """The solution text through step `upto` (inclusive), each line ending with a newline."""
    return "".join(s + "\n" for s in steps[: upto + 1])


def policy_continuer(
    policy: object, max_new_tokens: int = 64, temperature: float = 1.0, batch_size: int = 512
) -> Continuer:
    """Continuations sampled from `policy` with the builtin sampler."""

    def run(problems: Sequence[Problem], n: int, seed: int) -> list[str]:
        rollouts = generate(
            policy,
            problems,
            n,
            seed,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            batch_size=batch_size,
        )
        return [r.text for r in rollouts]

    return run


def reference_continuer(task: Task) -> Continuer:
    """The task's rule-following continuation of each prefix, n times (a perfect, deterministic policy)."""

    def run(problems: Sequence[Problem], n: int, seed: int) -> list[str]:
        out = []
        for p in problems:
            original, prefix = p.meta["_original"], p.meta["_prefix"]
            out += [task.reference_continuation(original, prefix)] * n
        return out

    return run


def montecarlo_labels(
    task: Task, records: Sequence[StepRecord], continuer: Continuer, n: int, seed: int
) -> list[StepRecord]:
    """The records relabelled by `n` continuations per step prefix (records need their `problem`)."""
    if n < 1:
        raise ReasonlabError(f"judge.continuations must be >= 1, got {n}")
    queries: list[Problem] = []
    where: list[tuple[int, int]] = []  # (record, step) of each query
    for i, r in enumerate(records):
        if r.problem is None:
            raise ReasonlabError(
                f"record {r.id or i}: Monte-Carlo labels need the task problem it solves"
            )
        for j in range(len(r.steps) - 1):
            prefix = prefix_text(r.steps, j)
            meta = {**r.problem.meta, "_original": r.problem, "_prefix": prefix}
            queries.append(
                dataclasses.replace(r.problem, prompt=r.problem.prompt + prefix, meta=meta)
            )
            where.append((i, j))
    texts = continuer(queries, n, seed) if queries else []
    wins: dict[tuple[int, int], float] = {}
    for q, (i, j) in enumerate(where):
        original = records[i].problem
        prefix = prefix_text(records[i].steps, j)
        ok = [task.verify(original, prefix + t).correct for t in texts[q * n : (q + 1) * n]]
        wins[(i, j)] = sum(ok) / n
    out = []
    for i, r in enumerate(records):
        whole = (
            task.verify(r.problem, prefix_text(r.steps, len(r.steps) - 1)).correct
            if r.steps
            else False
        )
        soft = tuple(wins[(i, j)] for j in range(len(r.steps) - 1)) + (
            (float(whole),) if r.steps else ()
        )
        labels, alive = [], True
        for s in soft:
            alive = alive and s > 0
            labels.append(alive)
        out.append(
            dataclasses.replace(
                r, labels=tuple(labels), first_error=first_error_of(labels), soft_labels=soft
            )
        )
    return out
