"""Sampling with Hugging Face `model.generate`: the same signature and Rollouts as the builtin sampler.

Prompts are encoded as the builtin sampler does (`tokenizer.encode_prompt`), left-padded, and handed to
`generate` with `do_sample` (temperature 0: greedy), `top_p`, the tokenizer's EOS ids and the stop
strings. Logprobs are read from `output_scores`: the log-softmax of the processed scores, i.e. of the
distribution actually sampled from after temperature and top-p, as the builtin sampler reports them.
Departure from the builtin sampler: randomness comes from torch's global generator seeded with
(seed, batch index) inside `torch.random.fork_rng` (the caller's RNG state is left as it was), so
results depend on the batch size. Usage (`hf.sampler: hf` in a config selects it):

    rollouts = generate(policy, problems, n=8, seed=0, max_new_tokens=512)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from reasonlab.models.base import Policy, module_device
from reasonlab.sampling.eager import check_args, eos_ids, finish_row
from reasonlab.types import Problem, Rollout


def generate(
    policy: Policy,
    problems: Sequence[Problem],
    n: int,
    seed: int,
    *,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_p: float = 1.0,
    stop: Sequence[str] = (),
    batch_size: int = 256,
) -> list[Rollout]:
    """Sample `n` completions of every problem's prompt with `policy.module.generate`; problem-major."""
    check_args(n, max_new_tokens, temperature, top_p, stop, batch_size)
    tok = policy.tokenizer
    prompts = [tuple(tok.encode_prompt(p.prompt)) for p in problems]
    rows = [i for i in range(len(problems)) for _ in range(n)]
    device = module_device(policy)
    eos = eos_ids(tok)
    kwargs: dict[str, Any] = dict(
        max_new_tokens=max_new_tokens,
        eos_token_id=list(eos),
        pad_token_id=tok.pad_id,
        return_dict_in_generate=True,
        output_scores=True,
    )
    if temperature > 0:
        kwargs.update(do_sample=True, temperature=float(temperature), top_p=float(top_p), top_k=0)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    if stop:
        kwargs.update(stop_strings=list(stop), tokenizer=tok.tok)
    module = policy.module
    was_training = module.training
    module.eval()
    out: list[Rollout] = []
    try:
        for b, lo in enumerate(range(0, len(rows), batch_size)):
            chunk = rows[lo : lo + batch_size]
            batch = [prompts[i] for i in chunk]
            width = max(map(len, batch))
            ids = torch.tensor(
                [[tok.pad_id] * (width - len(p)) + list(p) for p in batch], device=device
            )
            mask = torch.tensor(
                [[0] * (width - len(p)) + [1] * len(p) for p in batch], device=device
            )
            with (
                torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
                torch.inference_mode(),
            ):
                torch.manual_seed(seed * 1_000_003 + b)
                res = module.generate(input_ids=ids, attention_mask=mask, **kwargs)
            new = res.sequences[:, width:]  # (B, L)
            logp = torch.stack([s.float().log_softmax(-1) for s in res.scores], 1)  # (B, L, V)
            token_logp = logp.gather(-1, new[..., None]).squeeze(-1)  # (B, L)
            for r, i in enumerate(chunk):
                out.append(
                    Rollout(
                        problems[i].id,
                        batch[r],
                        *_row(policy, new[r].tolist(), token_logp[r].tolist(), stop, eos),
                    )
                )
    finally:
        module.train(was_training)
    return out


def _row(
    policy: Policy,
    token_ids: list[int],
    logprobs: list[float],
    stop: Sequence[str],
    eos: tuple[int, ...],
) -> tuple:
    """One generated row, cut as the builtin sampler cuts it (EOS, stop string or length)."""
    end = next((j + 1 for j, t in enumerate(token_ids) if t in eos), len(token_ids))
    stopped = None
    whole = policy.tokenizer.decode(token_ids[:end]) if stop else ""
    for j in (
        range(1, end + 1) if any(s in whole for s in stop) else ()
    ):  # the first prefix holding a stop string
        text = policy.tokenizer.decode(token_ids[:j])
        hits = [text.find(s) + len(s) for s in stop if s in text]
        if hits:
            stopped = (j, text[: min(hits)])
            break
    return finish_row(policy, token_ids, logprobs, stopped, eos)
