"""The pretraining corpus: task solutions in a mixture of trace styles, packed into one token stream.

Solutions are rendered from the task's train split in the configured trace mixture (answer-only,
step-by-step, with checks and backtracking), tokenized as `<bos> prompt solution <eos>` and packed
into one stream with a mask of the positions whose next token is learned. Each training step reads
`batch_size` random windows of `seq_len + 1` tokens; which windows is a pure function of (seed, step),
so a resumed run sees exactly the batches an uninterrupted one would. Usage:

    stream = build_stream(task, cfg, "train", n_docs=1000, seed=0, tok=tokenizer)
    inputs, targets, weight = get_batch(stream, batch_size=32, seq_len=128, seed=0, step=7)
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from reasonlab.config import RunConfig
from reasonlab.models import CharTokenizer
from reasonlab.tasks import Task
from reasonlab.tasks.traces import Mixture, render


@dataclass(frozen=True)
class TokenStream:
    """A packed corpus: token ids and a 0/1 mask of the positions whose next token is learned."""

    ids: np.ndarray  # (N,) int64
    learn: np.ndarray  # (N,) bool, learn[i] == predict ids[i] from ids[:i]


def corpus_mixture(cfg: RunConfig) -> Mixture:
    """The trace mixture the config asks for."""
    t = cfg.traces
    return Mixture({"answer_only": t.answer_only, "steps": t.steps, "backtrack": t.backtrack})


def build_stream(
    task: Task, cfg: RunConfig, split: str, n_docs: int, seed: int, tok: CharTokenizer
) -> TokenStream:
    """Render `n_docs` solutions of `split` problems in the configured trace mixture and pack them.

    Problems are drawn independently (a small problem space repeats problems rather than running out).
    """
    mix = corpus_mixture(cfg)
    rng = random.Random(seed)
    ids: list[int] = []
    learn: list[bool] = []
    for problem in task.sample(split, n_docs, seed, distinct=False):
        solution = render(task, problem, mix.choose(rng), rng, error_rate=cfg.traces.error_rate)
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
