"""The builtin batched sampler: left-padded prompts, one prefill, then one cached token per step.

`generate` returns `len(problems) * n` Rollouts, problem-major. Each batch of up to `batch_size`
sequences is prefilled through `policy.decode_step` and decoded one token per step with the
policy's KV cache; every per-step operation is a batched tensor op (no Python loop over rows except
a cheap stop-string check, run only for rows whose new token can end a stop string).
Sampling is inverse-CDF with one uniform per (sequence, step), drawn up front from a local
`torch.Generator(seed)` in sequence order: a sequence's randomness does not depend on how the rows
are split into batches, so results are batch-size independent up to floating-point differences
in the logits (which can, rarely, flip a near-tie). Departures from Hugging Face `generate`:
temperature 0 means greedy; top-p keeps the smallest prefix of the sorted distribution whose mass
reaches `top_p` (always at least one token); logprobs are those of the distribution actually
sampled from (greedy: log-softmax of the raw logits). Usage:

    rollouts = generate(policy, problems, n=8, seed=0, max_new_tokens=64, stop=["\\n\\n"])
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from reasonlab.models.base import Policy, module_device
from reasonlab.types import Problem, Rollout


@dataclass(frozen=True)
class _Params:
    max_new_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...]
    eos_ids: tuple[int, ...]
    pad_id: int


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
    """Sample `n` completions of every problem's prompt (`tokenizer.encode_prompt`); problem-major order."""
    check_args(n, max_new_tokens, temperature, top_p, stop, batch_size)
    tok = policy.tokenizer
    params = _Params(
        max_new_tokens, float(temperature), float(top_p), tuple(stop), eos_ids(tok), tok.pad_id
    )
    prompts = [tuple(tok.encode_prompt(p.prompt)) for p in problems]
    rows = [i for i in range(len(problems)) for _ in range(n)]  # problem index of each sequence
    device = module_device(policy)
    triggers = _stop_triggers(policy, params.stop, device)
    generator = torch.Generator().manual_seed(seed)
    module = policy.module
    was_training = module.training
    module.eval()
    out: list[Rollout] = []
    try:
        with torch.inference_mode():
            for lo in range(0, len(rows), batch_size):
                chunk = rows[lo : lo + batch_size]
                # float32 draws (< 1 - 2^-24) held in float64, see sample_step
                uniforms = torch.rand(len(chunk), max_new_tokens, generator=generator).to(
                    device, torch.float64
                )
                batch_prompts = [prompts[i] for i in chunk]
                results = _generate_batch(policy, batch_prompts, uniforms, params, triggers)
                out.extend(
                    Rollout(problems[i].id, prompt, *res)
                    for i, prompt, res in zip(chunk, batch_prompts, results)
                )
    finally:
        module.train(was_training)
    return out


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


def _stop_triggers(
    policy: Policy, stop: tuple[str, ...], device: torch.device
) -> torch.Tensor | None:
    """Ids whose text contains the last character of some stop string: only they can complete one."""
    if not stop:
        return None
    return torch.tensor(
        _trigger_ids(policy.tokenizer, frozenset(s[-1] for s in stop)),
        dtype=torch.long,
        device=device,
    )


@functools.lru_cache(maxsize=16)
def _trigger_ids(tok: object, ends: frozenset[str]) -> tuple[int, ...]:
    """Cached per tokenizer: a real model's vocabulary takes a second or two to decode token by token."""
    return tuple(i for i in range(tok.vocab_size) if any(c in tok.decode([i]) for c in ends))


def _left_pad(
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


def _check_stops(
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


def _generate_batch(
    policy: Policy,
    prompts: list[tuple[int, ...]],
    uniforms: torch.Tensor,
    params: _Params,
    triggers: torch.Tensor | None,
) -> list[tuple]:
    """Decode one batch; returns per row (token_ids, text, logprobs, mask, finish_reason)."""
    steps_max, device = params.max_new_tokens, uniforms.device
    ids, mask = _left_pad(prompts, params.pad_id, steps_max, device)  # (B, P), (B, P + L)
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
                finished[_check_stops(policy, tokens, rows, t, params.stop, stop_at)] = True
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
