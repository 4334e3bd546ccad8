"""The pretraining corpus: task solutions in a mixture of trace styles, packed into one token stream.

Solutions are rendered from the task's train split in the configured trace mixture (answer-only,
step-by-step, with checks and backtracking), tokenized as `<bos> prompt solution <eos>` and packed
into one stream with a mask of the positions whose next token is learned. Each training step reads
`batch_size` random windows of `seq_len + 1` tokens; which windows is a pure function of (seed, step),
so a resumed run sees exactly the batches an uninterrupted one would.

Difficulty range (`pretrain.levels`, level -> share): each document's level is the task's difficulty knob
(`Task.at_level`, the knob eval.levels varies). The counts by level are fixed first (`level_counts`: exact
when share x n_docs is an integer, else largest remainder: the floors, then one more document to the
levels with the largest fractional parts, ties to the lower level), then the seeded rng shuffles the
order of the levels and draws each level's problems with its own seed. Empty (the default) draws every
document at the task's own level, the stream exactly as before levels existed. `level_region` says where a
test level lies against the range: in_range (between the lowest and highest level with a positive share,
inclusive), edge (one above), beyond (further above) or below. Usage:

    stream = build_stream(task, cfg, "train", n_docs=1000, seed=0, tok=tokenizer)
    inputs, targets, weight = get_batch(stream, batch_size=32, seq_len=128, seed=0, step=7)
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from reasonlab.config import RunConfig
from reasonlab.errors import ConfigError
from reasonlab.models import CharTokenizer
from reasonlab.tasks import Task
from reasonlab.tasks.traces import Mixture, render
from reasonlab.types import Problem


@dataclass(frozen=True)
class TokenStream:
    """A packed corpus: token ids and a 0/1 mask of the positions whose next token is learned."""

    ids: np.ndarray  # (N,) int64
    learn: np.ndarray  # (N,) bool, learn[i] == predict ids[i] from ids[:i]


def corpus_mixture(cfg: RunConfig) -> Mixture:
    """The trace mixture the config asks for."""
    t = cfg.traces
    return Mixture({"answer_only": t.answer_only, "steps": t.steps, "backtrack": t.backtrack})


def level_counts(shares: Mapping[int, float], n: int) -> dict[int, int]:
    """Documents per level, summing to `n`: share / total x n, floored, then the left-over documents one each
    to the levels with the largest remainders (ties: the lower level first). Levels in increasing order."""
    total = sum(shares.values())
    levels = sorted(shares)
    quotas = {lv: round(shares[lv] / total * n, 9) for lv in levels}  # near-integers are integers
    counts = {lv: math.floor(q) for lv, q in quotas.items()}
    by_remainder = sorted(levels, key=lambda lv: (-(quotas[lv] - counts[lv]), lv))
    for lv in by_remainder[: n - sum(counts.values())]:
        counts[lv] += 1
    return counts


def level_tasks(task: Task, shares: Mapping[int, float]) -> dict[int, Task]:
    """The task at each level of `pretrain.levels`; ConfigError naming the field for a task without a
    difficulty knob or a level its knob does not allow."""
    try:
        return {lv: task.at_level(lv) for lv in sorted(shares)}
    except ConfigError as err:
        raise ConfigError(f"pretrain.levels: {err}") from None


def level_region(shares: Mapping[int, float], level: int) -> str:
    """Where a test level lies against the corpus's range (the levels with a positive share): below,
    in_range (lowest..highest, inclusive), edge (highest + 1) or beyond."""
    trained = [lv for lv, share in shares.items() if share > 0]
    lo, hi = min(trained), max(trained)
    if level < lo:
        return "below"
    return "in_range" if level <= hi else "edge" if level == hi + 1 else "beyond"


def corpus_problems(
    task: Task, cfg: RunConfig, split: str, n_docs: int, seed: int, rng: random.Random
) -> list[tuple[Task, Problem]]:
    """The `n_docs` problems of a corpus in order, each with the task (level) that made it; drawn
    independently (a small problem space repeats problems rather than running out)."""
    shares = cfg.pretrain.levels
    if not shares:
        return [(task, p) for p in task.sample(split, n_docs, seed, distinct=False)]
    tasks = level_tasks(task, shares)
    counts = level_counts(shares, n_docs)
    order = [lv for lv, count in counts.items() for _ in range(count)]
    rng.shuffle(order)
    drawn = {
        lv: iter(tasks[lv].sample(split, count, rng.randrange(2**32), distinct=False))
        for lv, count in counts.items()
    }
    return [(tasks[lv], next(drawn[lv])) for lv in order]


def build_stream(
    task: Task, cfg: RunConfig, split: str, n_docs: int, seed: int, tok: CharTokenizer
) -> TokenStream:
    """Render `n_docs` solutions of `split` problems in the configured trace mixture and pack them
    (at the levels of pretrain.levels when it is set, else at the task's own)."""
    mix = corpus_mixture(cfg)
    rng = random.Random(seed)
    ids: list[int] = []
    learn: list[bool] = []
    for level_task, problem in corpus_problems(task, cfg, split, n_docs, seed, rng):
        solution = render(
            level_task, problem, mix.choose(rng), rng, error_rate=cfg.traces.error_rate
        )
        prompt_ids = [tok.bos_id] + tok.encode(problem.prompt)
        solution_ids = tok.encode(solution) + [tok.eos_id]
        ids += prompt_ids + solution_ids
        learn += [cfg.pretrain.loss_on_prompt] * len(prompt_ids) + [True] * len(solution_ids)
    learn[0] = False
    return TokenStream(np.asarray(ids, dtype=np.int64), np.asarray(learn, dtype=bool))


def get_batch(
    stream: TokenStream, batch_size: int, seq_len: int, seed: int, step: int
) -> tuple[torch.Tensor, ...]:
    """Random windows: inputs (B, T), targets (B, T), loss weights (B, T); a pure function of (seed, step)."""
    rng = np.random.default_rng([seed, step])
    starts = rng.integers(0, len(stream.ids) - seq_len - 1, size=batch_size)
    idx = starts[:, None] + np.arange(seq_len + 1)[None, :]  # (B, T+1)
    window = torch.from_numpy(stream.ids[idx])
    weight = torch.from_numpy(stream.learn[idx[:, 1:]]).float()
    return window[:, :-1], window[:, 1:], weight
