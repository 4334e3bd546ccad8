"""The trainer against the sampler: how far the sampler's logprobs of the sampled tokens are from the
trainer's, and truncated importance sampling (TIS) to correct for it.

The rollouts' logprobs come from the sampler (vLLM's kernels, a bf16 KV cache, another batch shape, or
top-p, which the loss leaves out), the loss from the trainer's forward: the two distributions differ, so
even "on-policy" RL trains off-policy. Every RL step measures it on the tokens the loss learns from,
with the trainer's logprobs from one no-grad forward before the update:
- `rollout/logp_diff`: mean |log pi_trainer - log pi_sampler|;
- `rollout/kl_sampler`: mean k3 estimate of KL(pi_sampler || pi_trainer) (the tokens are the sampler's
  samples: exp(r) - 1 - r with r = log pi_trainer - log pi_sampler, `losses.approx_kl`);
- `rollout/ratio_max`: the largest pi_trainer / pi_sampler;
- with a TIS cap, `rollout/tis_clip_frac`: the share of tokens whose ratio the cap truncates.
`tis_weights` is TIS (Yao et al. 2025, "Your efficient RL framework secretly brings you off-policy RL
training"; verl's and TRL's `token_truncate`): per token w = min(pi_old / pi_sampler, cap), with pi_old
the trainer's probability before the update, no gradient, multiplying the per-token policy-gradient
loss before aggregation (`losses.policy_objective(is_weights=...)`); the PPO ratio's pi_old is then the
trainer's as well (rl/trainer.py), as in verl.
Departures: token-level weights only (no sequence-level or masking variants); the log ratio is clamped to
[-20, 20] before `exp` (as in rl/losses.py); a sampler logprob that is not a number (a backend that could
not score the token) counts as no mismatch (weight 1) and is left out of the metrics. Usage:

    sampler_logp = sampler_logprobs(rollouts, batch.completion_ids.shape[1])  # (B, L)
    metrics = mismatch_metrics(trainer_logp, sampler_logp, batch.completion_mask, cap=2.0)
    weights = tis_weights(trainer_logp, sampler_logp, batch.completion_mask, cap=2.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from reasonlab.rl.losses import LOG_RATIO_CLAMP, approx_kl
from reasonlab.types import Rollout


def sampler_logprobs(rollouts: Sequence[Rollout], length: int) -> torch.Tensor:
    """The sampler's logprob of every completion token, (B, length) in the rows and columns of
    `rollouts.make_batch` (rollouts in batch order, completions left-aligned), 0 on padding."""
    out = torch.zeros(len(rollouts), length)  # (B, L)
    for i, r in enumerate(rollouts):
        out[i, : len(r.logprobs)] = torch.tensor(r.logprobs, dtype=torch.float32)
    return out


def sampler_log_ratio(trainer_logp: torch.Tensor, sampler_logp: torch.Tensor) -> torch.Tensor:
    """log pi_trainer - log pi_sampler per token (B, L), NaN as 0, clamped to [-20, 20]."""
    diff = torch.nan_to_num(trainer_logp - sampler_logp, nan=0.0)  # (B, L)
    return diff.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)


def tis_weights(
    trainer_logp: torch.Tensor, sampler_logp: torch.Tensor, mask: torch.Tensor, cap: float
) -> torch.Tensor:
    """Truncated importance weights (B, L): min(pi_trainer / pi_sampler, cap) on the tokens of `mask`,
    0 elsewhere; detached (they scale the loss, they are not trained)."""
    r = sampler_log_ratio(trainer_logp.detach(), sampler_logp)  # (B, L)
    return r.exp().clamp(max=cap) * mask.to(r.dtype)  # (B, L)


def mismatch_metrics(
    trainer_logp: torch.Tensor,
    sampler_logp: torch.Tensor,
    mask: torch.Tensor,
    cap: float | None = None,
) -> dict[str, float]:
    """The `rollout/*` metrics over the tokens of `mask` (all (B, L)); {} when it holds none."""
    keep = mask.bool() & ~torch.isnan(sampler_logp)  # (B, L)
    if not keep.any():
        return {}
    trainer, sampler = trainer_logp.detach()[keep].float(), sampler_logp[keep].float()  # (N,), (N,)
    r = sampler_log_ratio(trainer, sampler)  # (N,)
    metrics = {
        "rollout/logp_diff": float((trainer - sampler).abs().mean()),
        "rollout/kl_sampler": float(approx_kl(trainer, sampler).mean()),
        "rollout/ratio_max": float(r.max().exp()),
    }
    if cap is not None:
        metrics["rollout/tis_clip_frac"] = float((r.exp() > cap).float().mean())
    return metrics


__all__ = ["mismatch_metrics", "sampler_log_ratio", "sampler_logprobs", "tis_weights"]
