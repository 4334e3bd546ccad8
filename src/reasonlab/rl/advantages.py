"""Advantage estimators for policy-gradient RL on completions: pure torch functions and a registry.

A batch holds B = P * G completions, in consecutive groups of G = `group_size` completions of the
same prompt. Rewards arrive per token, `token_rewards` (B, T): the trainer puts the sequence
reward on the last real token and may subtract a per-token KL penalty. `mask` (B, T) is 1 on
completion tokens and 0 on (right) padding. Each registered estimator maps
(AdvantageInputs, AdvantageParams) to (advantages (B, T), returns (B, T) or None); advantages
are zero on padding and `returns` is the critic's target (only `gae` has one).

Estimators, and the papers they follow:
- `grpo`: GRPO (Shao et al. 2024, DeepSeekMath), group-normalized sequence score.
- `dr_grpo`: Dr. GRPO (Liu et al. 2025), the same without the division by the std.
- `rloo`: RLOO (Ahmadian et al. 2024), leave-one-out baseline.
- `reinforce_pp`: REINFORCE++ (Hu 2025), discounted token returns whitened over the batch.
- `reinforce_pp_baseline`: REINFORCE++-baseline (Hu 2025), group-mean baseline, then whitened.
- `gae`: GAE (Schulman et al. 2016) with a critic.

Departures: a sequence's score is the sum of its masked token rewards (so a per-token KL penalty
folded into the rewards also enters the group-relative estimators); stds are unbiased (Bessel)
and the epsilon (`AdvantageParams.eps`, rl.std_eps: 1e-6 by default, where TRL uses 1e-4) is added
to the std, not the variance (verl's masked_whiten uses rsqrt(var + eps)); discounting and GAE
assume right padding, so a padding position never sits between two real tokens; the value after
the last real token is 0 (the episode ends there).

Usage:
    from reasonlab.rl.advantages import AdvantageInputs, AdvantageParams, get_advantage
    adv, returns = get_advantage("grpo")(AdvantageInputs(rewards, mask, group_size=8),
                                         AdvantageParams())
Tests: `python -m pytest -q tests/test_rl_advantages.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from reasonlab.registry import Registry

StdScaling = Literal["group", "batch", "none"]


@dataclass(frozen=True)
class AdvantageInputs:
    """What an estimator reads: per-token rewards, the completion mask, the group size, values."""

    token_rewards: torch.Tensor  # (B, T) reward per completion token
    mask: torch.Tensor  # (B, T) 1 on completion tokens, 0 on right padding
    group_size: int  # G: consecutive rows of the batch that share a prompt (B = P * G)
    values: torch.Tensor | None = None  # (B, T) critic values, only for `gae`


@dataclass(frozen=True)
class AdvantageParams:
    """Knobs of the estimators; each estimator reads only the ones it needs."""

    std_scaling: StdScaling = "group"  # grpo: divide by the group's std, the batch's, or none
    gamma: float = 1.0  # discount (reinforce_pp, gae)
    lam: float = 1.0  # GAE lambda
    eps: float = 1e-6  # added to a std before dividing (grpo, reinforce_pp[_baseline])


Estimator = Callable[[AdvantageInputs, AdvantageParams], tuple[torch.Tensor, torch.Tensor | None]]


# ---------------------------------------------------------------------------------------------
# Building blocks


def _check_groups(batch: int, group_size: int) -> None:
    """ValueError unless the batch splits into whole groups of at least 2 completions."""
    if group_size < 2:
        raise ValueError(
            f"group_size={group_size}: group estimators need >= 2 completions per prompt"
        )
    if batch % group_size != 0:
        raise ValueError(f"batch of {batch} rows does not split into groups of {group_size}")


def sequence_scores(token_rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sequence score: r_i = sum_t mask_it * reward_it, the return of the completion (gamma = 1)."""
    return (token_rewards * mask.to(token_rewards.dtype)).sum(-1)  # (B,)


def group_normalized(
    scores: torch.Tensor, group_size: int, std_scaling: StdScaling, eps: float
) -> torch.Tensor:
    """GRPO (Shao et al. 2024, DeepSeekMath): A_i = (r_i - mean_group(r)) / (std + eps).

    `std_scaling` picks the std: "group", the unbiased std of the completion's group (as TRL and
    verl); "batch", the unbiased std of all scores of the batch (TRL scale_rewards="batch");
    "none", no division at all (Dr. GRPO, Liu et al. 2025). A group whose scores are all equal
    gets advantages 0.
    """
    _check_groups(scores.shape[0], group_size)
    grouped = scores.view(-1, group_size)  # (P, G)
    centered = grouped - grouped.mean(-1, keepdim=True)  # (P, G)
    if std_scaling == "group":
        centered = centered / (grouped.std(-1, keepdim=True) + eps)  # (P, G)
    elif std_scaling == "batch":
        centered = centered / (scores.std() + eps)  # (P, G)
    elif std_scaling != "none":
        raise ValueError(f"std_scaling={std_scaling!r}: must be 'group', 'batch' or 'none'")
    return centered.reshape(-1)  # (B,)


def leave_one_out(scores: torch.Tensor, group_size: int) -> torch.Tensor:
    """RLOO (Ahmadian et al. 2024): A_i = r_i - mean_{j != i} r_j over the completion's group.

    Computed as r_i - (sum_group - r_i) / (G - 1).
    """
    _check_groups(scores.shape[0], group_size)
    grouped = scores.view(-1, group_size)  # (P, G)
    others = (grouped.sum(-1, keepdim=True) - grouped) / (group_size - 1)  # (P, G)
    return (grouped - others).reshape(-1)  # (B,)


def _reverse_discounted_cumsum(x: torch.Tensor, discount: float) -> torch.Tensor:
    """y_t = sum_{k >= t} discount^(k - t) x_k along the last dim of x (B, T).

    discount == 1 is one flipped cumsum; otherwise a reverse loop over time (columns, never rows),
    y_t = x_t + discount * y_{t+1}, as verl does: exact, with O(B) memory per step.
    """
    if discount == 1.0:
        return x.flip(-1).cumsum(-1).flip(-1)  # (B, T)
    out = torch.empty_like(x)  # (B, T)
    running = torch.zeros_like(x[:, 0])  # (B,)
    for t in range(x.shape[1] - 1, -1, -1):
        running = x[:, t] + discount * running
        out[:, t] = running
    return out


def discounted_returns(
    token_rewards: torch.Tensor, mask: torch.Tensor, gamma: float
) -> torch.Tensor:
    """Discounted return-to-go G_t = sum_{k >= t} gamma^(k - t) r_k over real tokens; 0 on padding.

    The return of REINFORCE / REINFORCE++ (Hu 2025). Assumes right padding.
    """
    m = mask.to(token_rewards.dtype)  # (B, T)
    return _reverse_discounted_cumsum(token_rewards * m, gamma) * m  # (B, T)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, eps: float) -> torch.Tensor:
    """(x - mean) / (std + eps) with mean and unbiased std over the real tokens of the whole batch.

    The batch-level normalization of REINFORCE++ (Hu 2025). Zero on padding; with a single real
    token the std is 0 (Bessel's denominator is clamped to 1).
    """
    m = mask.to(x.dtype)  # (B, T)
    n = m.sum()  # ()
    mean = (x * m).sum() / n.clamp(min=1)  # ()
    var = (((x - mean) * m) ** 2).sum() / (n - 1).clamp(min=1)  # ()
    return (x - mean) / (var.sqrt() + eps) * m  # (B, T)


def gae(
    token_rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE (Schulman et al. 2016): A_t = sum_{k >= t} (gamma lam)^(k - t) delta_k, returns = A + V.

    delta_t = r_t + gamma V_{t+1} - V_t, with V = 0 after the last real token (the episode ends
    there). Advantages and returns are zero on padding. Assumes right padding.
    """
    m = mask.to(token_rewards.dtype)  # (B, T)
    v = values * m  # (B, T)
    next_v = torch.cat([v[:, 1:], torch.zeros_like(v[:, :1])], dim=1)  # (B, T) V_{t+1}
    deltas = (token_rewards + gamma * next_v - v) * m  # (B, T)
    advantages = _reverse_discounted_cumsum(deltas, gamma * lam) * m  # (B, T)
    return advantages, (advantages + v) * m


# ---------------------------------------------------------------------------------------------
# Registry

ADVANTAGES: Registry[Estimator] = Registry("advantage estimator")
_GROUP_ESTIMATORS: set[str] = set()
_VALUE_ESTIMATORS: set[str] = set()


def register_advantage(
    name: str, *, groups: bool = False, values: bool = False
) -> Callable[[Estimator], Estimator]:
    """Decorator: register an estimator under `name`; `groups` / `values` declare that it needs
    group_size >= 2 / critic values (see `needs_groups`, `needs_values`)."""

    def decorate(fn: Estimator) -> Estimator:
        ADVANTAGES.register(name, fn)
        _GROUP_ESTIMATORS.discard(name)
        _VALUE_ESTIMATORS.discard(name)
        if groups:
            _GROUP_ESTIMATORS.add(name)
        if values:
            _VALUE_ESTIMATORS.add(name)
        return fn

    return decorate


def get_advantage(name: str) -> Estimator:
    """The estimator registered as `name`; ConfigError naming the known ones otherwise."""
    return ADVANTAGES.lookup(name, "rl.advantage", noun="estimator")


def needs_groups(name: str) -> bool:
    """Whether estimator `name` needs groups of >= 2 completions per prompt."""
    return name in _GROUP_ESTIMATORS


def needs_values(name: str) -> bool:
    """Whether estimator `name` needs critic values (AdvantageInputs.values)."""
    return name in _VALUE_ESTIMATORS


def _broadcast(seq_adv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A sequence advantage (B,) on every real token of its sequence: (B, T), 0 on padding."""
    return seq_adv.unsqueeze(-1) * mask.to(seq_adv.dtype)  # (B, T)


@register_advantage("grpo", groups=True)
def grpo(inputs: AdvantageInputs, params: AdvantageParams) -> tuple[torch.Tensor, None]:
    """GRPO: group-normalized sequence score (std per `params.std_scaling`) on every token."""
    scores = sequence_scores(inputs.token_rewards, inputs.mask)  # (B,)
    adv = group_normalized(scores, inputs.group_size, params.std_scaling, params.eps)  # (B,)
    return _broadcast(adv, inputs.mask), None


@register_advantage("dr_grpo", groups=True)
def dr_grpo(inputs: AdvantageInputs, params: AdvantageParams) -> tuple[torch.Tensor, None]:
    """Dr. GRPO: score minus group mean, never divided by a std (whatever params.std_scaling says).

    Dr. GRPO's other half, no length normalization, is the `seq_sum_norm` loss aggregation.
    """
    scores = sequence_scores(inputs.token_rewards, inputs.mask)  # (B,)
    adv = group_normalized(scores, inputs.group_size, "none", params.eps)  # (B,)
    return _broadcast(adv, inputs.mask), None


@register_advantage("rloo", groups=True)
def rloo(inputs: AdvantageInputs, params: AdvantageParams) -> tuple[torch.Tensor, None]:
    """RLOO: score minus the mean score of the other completions of the group, on every token."""
    scores = sequence_scores(inputs.token_rewards, inputs.mask)  # (B,)
    return _broadcast(leave_one_out(scores, inputs.group_size), inputs.mask), None


@register_advantage("reinforce_pp")
def reinforce_pp(inputs: AdvantageInputs, params: AdvantageParams) -> tuple[torch.Tensor, None]:
    """REINFORCE++: discounted token returns (params.gamma), whitened over the batch's tokens."""
    returns = discounted_returns(inputs.token_rewards, inputs.mask, params.gamma)  # (B, T)
    return masked_whiten(returns, inputs.mask, params.eps), None


@register_advantage("reinforce_pp_baseline", groups=True)
def reinforce_pp_baseline(
    inputs: AdvantageInputs, params: AdvantageParams
) -> tuple[torch.Tensor, None]:
    """REINFORCE++-baseline: score minus group mean on every token, whitened over the batch."""
    scores = sequence_scores(inputs.token_rewards, inputs.mask)  # (B,)
    centered = group_normalized(scores, inputs.group_size, "none", params.eps)  # (B,)
    return masked_whiten(_broadcast(centered, inputs.mask), inputs.mask, params.eps), None


@register_advantage("gae", values=True)
def gae_estimator(
    inputs: AdvantageInputs, params: AdvantageParams
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE with the critic's values; returns (advantages, returns = advantages + values)."""
    if inputs.values is None:
        raise ValueError("advantage 'gae' needs critic values (AdvantageInputs.values is None)")
    return gae(inputs.token_rewards, inputs.values, inputs.mask, params.gamma, params.lam)


__all__ = [
    "ADVANTAGES",
    "AdvantageInputs",
    "AdvantageParams",
    "Estimator",
    "discounted_returns",
    "gae",
    "get_advantage",
    "group_normalized",
    "leave_one_out",
    "masked_whiten",
    "needs_groups",
    "needs_values",
    "register_advantage",
    "sequence_scores",
]
