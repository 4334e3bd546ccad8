"""The eager decoding loop of the builtin sampler and the pieces every sampler shares.

`generate_batch` decodes one batch: left-padded prompts (`left_pad`), one prefill through
`policy.decode_step`, then one cached token per step with the policy's own KV cache, every per-step
operation a batched tensor op (no Python loop over rows except a cheap stop-string check, run only for
rows whose new token can end a stop string: `stop_triggers`, `check_stops`). `sample_step` picks the
tokens (inverse-CDF with uniforms drawn up front; temperature 0 is greedy; `top_p_filter`), `finish_row`
cuts a row at its EOS or stop string. The static path (sampling/static.py) runs the same `sample_step` and
`finish_row` in its fixed-shape step, and `generate_batch` is its fallback. Usage:

    results = generate_batch(policy, prompts, uniforms, params, stop_triggers(policy, params.stop, device))
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from reasonlab.models.base import Policy


@dataclass(frozen=True)
class Params:
    max_new_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...]
    eos_ids: tuple[int, ...]
    pad_id: int


def eos_ids(tokenizer: object) -> tuple[int, ...]:
    """Every id that ends a completion: the tokenizer's `eos_ids` when it lists several, else `eos_id`."""
    return tuple(getattr(tokenizer, "eos_ids", None) or (tokenizer.eos_id,))


def check_args(
    n: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    stop: Sequence[str],
    batch_size: int,
) -> None:
    if n < 1 or max_new_tokens < 1 or batch_size < 1:
        raise ValueError("n, max_new_tokens and batch_size must be at least 1")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
    if isinstance(stop, str) or any(not s for s in stop):
        raise ValueError("stop must be a sequence of non-empty strings")


def stop_triggers(
    policy: Policy, stop: tuple[str, ...], device: torch.device
) -> torch.Tensor | None:
    """Ids whose text contains the last character of some stop string: only they can complete one."""
    if not stop:
        return None
    return torch.tensor(
        trigger_ids(policy.tokenizer, frozenset(s[-1] for s in stop)),
        dtype=torch.long,
        device=device,
    )


@functools.lru_cache(maxsize=16)
def trigger_ids(tok: object, ends: frozenset[str]) -> tuple[int, ...]:
    """Cached per tokenizer: a real model's vocabulary takes a second or two to decode token by token."""
    return tuple(i for i in range(tok.vocab_size) if any(c in tok.decode([i]) for c in ends))


def left_pad(
    prompts: list[tuple[int, ...]], pad_id: int, extra: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """ids (B, P) left-padded and a mask (B, P + extra) that is 1 on prompt tokens and all new ones."""
    width = max(len(p) for p in prompts)
    ids = [[pad_id] * (width - len(p)) + list(p) for p in prompts]
    mask = [[0] * (width - len(p)) + [1] * (len(p) + extra) for p in prompts]
    return torch.tensor(ids, device=device), torch.tensor(mask, device=device)


def sample_step(
    logits: torch.Tensor, u: torch.Tensor, temperature: float, top_p: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick one token per row of logits (B, V) with uniforms u (B,): (tokens (B,), logprobs (B,))."""
    if temperature == 0.0:
        logp = torch.log_softmax(logits.float(), dim=-1)  # (B, V)
        tokens = logits.argmax(dim=-1)
    else:
        logits = logits.float() / temperature if temperature != 1.0 else logits.float()
        if top_p < 1.0:
            logits = top_p_filter(logits, top_p)
        logp = torch.log_softmax(logits, dim=-1)  # (B, V)
        cdf = logp.exp().cumsum(dim=-1, dtype=torch.float64)  # (B, V)
        # u < 1 - 2^-24 (a float32 draw), so u * total < total in float64: the search never runs off the end
        target = u.to(torch.float64)[:, None] * cdf[:, -1:]  # (B, 1)
        tokens = (
            torch.searchsorted(cdf, target, right=True).squeeze(-1).clamp_max_(logits.shape[-1] - 1)
        )
    return tokens, logp.gather(-1, tokens[:, None]).squeeze(-1)


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Set to -inf every logit outside the smallest top set whose probability reaches top_p: (B, V)."""
    sorted_logits, order = logits.sort(dim=-1, descending=True, stable=True)  # (B, V)
    probs = sorted_logits.softmax(dim=-1)
    drop_sorted = (
        probs.cumsum(dim=-1) - probs
    ) >= top_p  # mass before the token already reaches top_p
    drop = torch.empty_like(drop_sorted).scatter_(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def check_stops(
    policy: Policy,
    tokens: torch.Tensor,
    rows: list[int],
    t: int,
    stop: tuple[str, ...],
    stop_at: dict[int, tuple[int, str]],
) -> list[int]:
    """Rows whose completion now contains a stop string; records (length, cut text) in stop_at."""
    hit = []
    for r in rows:
        text = policy.tokenizer.decode(tokens[r, : t + 1].tolist())
        ends = [text.find(s) + len(s) for s in stop if s in text]
        if ends:
            stop_at[r] = (t + 1, text[: min(ends)])
            hit.append(r)
    return hit


def generate_batch(
    policy: Policy,
    prompts: list[tuple[int, ...]],
    uniforms: torch.Tensor,
    params: Params,
    triggers: torch.Tensor | None,
) -> list[tuple]:
    """Decode one batch; returns per row (token_ids, text, logprobs, mask, finish_reason)."""
    steps_max, device = params.max_new_tokens, uniforms.device
    ids, mask = left_pad(prompts, params.pad_id, steps_max, device)  # (B, P), (B, P + L)
    b, width = ids.shape
    cache = policy.new_cache(b, width + steps_max)
    logits = policy.decode_step(ids, mask[:, :width], cache)[:, -1]  # (B, V)
    tokens = torch.empty(b, steps_max, dtype=torch.long, device=device)  # (B, L)
    logps = torch.empty(b, steps_max, dtype=torch.float32, device=device)  # (B, L)
    finished = torch.zeros(b, dtype=torch.bool, device=device)  # (B,)
    eos = torch.tensor(params.eos_ids, device=device)
    stop_at: dict[int, tuple[int, str]] = {}
    steps = steps_max
    for t in range(steps_max):
        tok, logp = sample_step(logits, uniforms[:, t], params.temperature, params.top_p)
        tokens[:, t] = tok
        logps[:, t] = logp
        finished |= torch.isin(tok, eos)
        if triggers is not None:
            rows = (torch.isin(tok, triggers) & ~finished).nonzero().flatten().tolist()
            if rows:
                finished[check_stops(policy, tokens, rows, t, params.stop, stop_at)] = True
        if t + 1 == steps_max or bool(finished.all()):
            steps = t + 1
            break
        logits = policy.decode_step(tok[:, None], mask[:, : width + t + 1], cache)[:, -1]  # (B, V)
    return [
        finish_row(policy, tok_row, lp_row, stop_at.get(r), params.eos_ids)
        for r, (tok_row, lp_row) in enumerate(
            zip(tokens[:, :steps].tolist(), logps[:, :steps].tolist())
        )
    ]


def finish_row(
    policy: Policy,
    token_ids: list[int],
    logprobs: list[float],
    stopped: tuple[int, str] | None,
    eos: tuple[int, ...],
) -> tuple:
    """Cut one row at its EOS or stop string: (token_ids, text, logprobs, mask, finish_reason)."""
    eos_at = next((i + 1 for i, t in enumerate(token_ids) if t in eos), None)
    if stopped is not None and (eos_at is None or stopped[0] < eos_at):
        end, text, reason = stopped[0], stopped[1], "stop"
    elif eos_at is not None:
        end, reason = eos_at, "eos"
        text = policy.tokenizer.decode(token_ids[: end - 1])
    else:
        end, reason = len(token_ids), "length"
        text = policy.tokenizer.decode(token_ids)
    return tuple(token_ids[:end]), text, tuple(logprobs[:end]), (1,) * end, reason
