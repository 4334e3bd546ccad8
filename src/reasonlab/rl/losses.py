"""Policy-gradient losses: aggregations, clipped surrogates, KL estimators, entropy, value loss.

Pure torch functions on per-token tensors (B, T) with a completion mask (1 on real tokens, 0 on
padding), chosen by name from registries:
- AGGREGATIONS, per-token loss -> scalar: `seq_mean_token_mean` (original GRPO), `token_mean`
  (DAPO, Yu et al. 2025), `seq_sum_norm` (Dr. GRPO, Liu et al. 2025).
- POLICY_LOSSES, per-token clipped surrogate: `ppo_clip` (PPO, Schulman et al. 2017, with DAPO's
  clip-higher: separate eps_low / eps_high) and `gspo` (GSPO, Zheng et al. 2025: one
  length-normalized sequence ratio shared by all tokens of the sequence).
- KL_ESTIMATORS, per-token KL(pi || pi_ref) from samples of pi: `k1`, `k2`, `k3` (Schulman 2020,
  "Approximating KL divergence").
plus `entropy_from_logits`, `value_loss` (PPO's clipped critic loss) and `approx_kl` (a monitor).
`policy_objective` composes the policy's loss from them: aggregated surrogate (each token's term
optionally times an importance weight, e.g. rl/mismatch.py's TIS), plus beta x the aggregated KL
penalty, minus the entropy bonus.

Departures: log ratios are clamped to [-20, 20] before `exp` (in the surrogates, k3, the KL
importance correction and approx_kl), so a wildly off-policy token gives a large finite number, not
inf, and no gradient beyond the clamp (verl does the same; TRL does not clamp, which is identical in
normal ranges); GSPO's gradient flows through the sequence mean of the log ratios (the paper's GSPO,
not the GSPO-token variant); no dual-clip. The KL penalty's importance correction (DeepSeek-V3.2:
the per-token KL times the policy loss's ratio pi / pi_old, differentiable, so its gradient is the
unbiased reverse-KL gradient even on-policy) is optional and off by default; TRL 1.16 applies it
by default (`use_bias_correction_kl=True`): `kl_importance_correction=True` reproduces TRL's KL term.

Usage:
    from reasonlab.rl.losses import ObjectiveParams, get_aggregation, get_policy_loss
    from reasonlab.rl.losses import policy_objective
    loss, clipped = get_policy_loss("ppo_clip")(logp, old_logp, adv, mask, 0.2, 0.28)
    scalar = get_aggregation("token_mean")(loss, mask, max_new_tokens)
    scalar, terms = policy_objective(logp, old_logp, ref_logp, adv, mask,
                                     get_aggregation("token_mean"), max_new_tokens,
                                     ObjectiveParams(beta=0.04, kl_importance_correction=True))
Tests: `python -m pytest -q tests/test_rl_losses.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import torch

from reasonlab.registry import Registry

RatioLevel = Literal["token", "sequence"]
Aggregation = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]
PolicyLoss = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float, float],
    tuple[torch.Tensor, torch.Tensor],
]
KLEstimator = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
F = TypeVar("F", bound=Callable)

LOG_RATIO_CLAMP = 20.0  # |log ratio| bound before exp: exp(20) ~ 4.9e8 stays finite in fp32

AGGREGATIONS: Registry[Aggregation] = Registry("aggregation")
POLICY_LOSSES: Registry[PolicyLoss] = Registry("policy loss")
KL_ESTIMATORS: Registry[KLEstimator] = Registry("KL estimator")
RATIO_LEVELS: dict[str, RatioLevel] = {}  # policy loss name -> the level of its importance ratio


# ---------------------------------------------------------------------------------------------
# Aggregations: per-token loss (B, T) -> scalar


def register_aggregation(name: str) -> Callable[[F], F]:
    """Decorator: register `agg(per_token (B, T), mask (B, T), constant: int) -> scalar`."""
    return AGGREGATIONS.decorator(name)


def get_aggregation(name: str) -> Aggregation:
    """The aggregation registered as `name`; ConfigError (field rl.aggregation) otherwise."""
    return AGGREGATIONS.lookup(name, "rl.aggregation")


def aggregation_weights(aggregate: Aggregation, mask: torch.Tensor, constant: int) -> torch.Tensor:
    """The per-token weights (B, T) of a linear aggregation (every registered one is linear in the
    per-token losses): its gradient at zero, so `aggregate(x) == (weights * x).sum()`."""
    x = torch.zeros_like(mask, dtype=torch.float32, requires_grad=True)  # (B, T)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(aggregate(x, mask, constant), x)
    return grad


@register_aggregation("seq_mean_token_mean")
def seq_mean_token_mean(per_token: torch.Tensor, mask: torch.Tensor, constant: int) -> torch.Tensor:
    """Original GRPO (Shao et al. 2024): mean_i [ sum_t m_it l_it / |o_i| ]; `constant` unused.

    A sequence without real tokens counts as 0 (its length is clamped to 1).
    """
    m = mask.to(per_token.dtype)  # (B, T)
    per_seq = (per_token * m).sum(-1) / m.sum(-1).clamp(min=1)  # (B,)
    return per_seq.mean()


@register_aggregation("token_mean")
def token_mean(per_token: torch.Tensor, mask: torch.Tensor, constant: int) -> torch.Tensor:
    """DAPO (Yu et al. 2025) token-level loss: sum_it m_it l_it / sum_it m_it; `constant` unused."""
    m = mask.to(per_token.dtype)  # (B, T)
    return (per_token * m).sum() / m.sum().clamp(min=1)


@register_aggregation("seq_sum_norm")
def seq_sum_norm(per_token: torch.Tensor, mask: torch.Tensor, constant: int) -> torch.Tensor:
    """Dr. GRPO (Liu et al. 2025): sum_it m_it l_it / (B * constant), constant = e.g. the max
    completion length, so no sequence's tokens are weighted by its own length."""
    if constant < 1:
        raise ValueError(f"seq_sum_norm: constant={constant}, must be >= 1 (e.g. max length)")
    m = mask.to(per_token.dtype)  # (B, T)
    return (per_token * m).sum() / (per_token.shape[0] * constant)


# ---------------------------------------------------------------------------------------------
# Policy losses


def log_ratio(
    logp: torch.Tensor, old_logp: torch.Tensor, mask: torch.Tensor, level: RatioLevel
) -> torch.Tensor:
    """Log importance ratio per token (B, T), 0 on padding.

    "token" (PPO): log pi(o_t) - log pi_old(o_t). "sequence" (GSPO, Zheng et al. 2025):
    (1 / |o|) sum_t [log pi(o_t) - log pi_old(o_t)], the log of the length-normalized sequence
    ratio, on every token of the sequence; the gradient flows through the mean.
    """
    m = mask.to(logp.dtype)  # (B, T)
    diff = (logp - old_logp) * m  # (B, T)
    if level == "token":
        return diff
    if level == "sequence":
        seq = diff.sum(-1) / m.sum(-1).clamp(min=1)  # (B,)
        return seq.unsqueeze(-1) * m  # (B, T)
    raise ValueError(f"level={level!r}: must be 'token' or 'sequence'")


def clipped_surrogate(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    eps_low: float,
    eps_high: float,
    level: RatioLevel,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO clipped surrogate (Schulman et al. 2017) with DAPO clip-higher (Yu et al. 2025).

    ratio = exp(log_ratio) (log ratio clamped to [-20, 20]);
    loss = -min(ratio * A, clamp(ratio, 1 - eps_low, 1 + eps_high) * A).
    Returns (loss (B, T), clipped (B, T) bool): `clipped` marks tokens where the clamped term is
    the smaller one and differs from the unclipped, i.e. whose gradient clipping zeroed
    (A > 0 and ratio > 1 + eps_high, or A < 0 and ratio < 1 - eps_low). 0 / False on padding.
    """
    m = mask.to(logp.dtype)  # (B, T)
    lr = log_ratio(logp, old_logp, mask, level).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (B, T)
    ratio = torch.exp(lr)  # (B, T)
    unclipped = ratio * advantages  # (B, T)
    clipped_term = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * advantages  # (B, T)
    loss = -torch.minimum(unclipped, clipped_term) * m  # (B, T)
    clipped = (clipped_term < unclipped) & (m > 0)  # (B, T)
    return loss, clipped


def register_policy_loss(name: str, ratio: RatioLevel = "token") -> Callable[[F], F]:
    """Decorator: register `loss(logp, old_logp, advantages, mask, eps_low, eps_high)`, all
    tensors (B, T), returning (loss (B, T), clipped (B, T) bool). `ratio` is the level of its
    importance ratio (`log_ratio`), which the KL importance correction reuses."""

    def decorate(fn: F) -> F:
        POLICY_LOSSES.register(name, fn)
        RATIO_LEVELS[name] = ratio
        return fn

    return decorate


def get_policy_loss(name: str) -> PolicyLoss:
    """The policy loss registered as `name`; ConfigError (field rl.policy_loss) otherwise."""
    return POLICY_LOSSES.lookup(name, "rl.policy_loss")


def policy_ratio_level(name: str) -> RatioLevel:
    """The importance-ratio level ("token" or "sequence") of the policy loss named `name`."""
    get_policy_loss(name)
    return RATIO_LEVELS.get(name, "token")


@register_policy_loss("ppo_clip", ratio="token")
def ppo_clip(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    eps_low: float,
    eps_high: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO / GRPO / DAPO clipped surrogate with a per-token ratio."""
    return clipped_surrogate(logp, old_logp, advantages, mask, eps_low, eps_high, "token")


@register_policy_loss("gspo", ratio="sequence")
def gspo(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    eps_low: float,
    eps_high: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GSPO (Zheng et al. 2025) clipped surrogate with the length-normalized sequence ratio.

    GSPO's paper clips much tighter than PPO (eps around 3e-4 / 4e-4).
    """
    return clipped_surrogate(logp, old_logp, advantages, mask, eps_low, eps_high, "sequence")


# ---------------------------------------------------------------------------------------------
# KL estimators, entropy, value loss, monitoring


def register_kl_estimator(name: str) -> Callable[[F], F]:
    """Decorator: register `kl(logp (B, T), ref_logp (B, T)) -> (B, T)`."""
    return KL_ESTIMATORS.decorator(name)


def get_kl_estimator(name: str) -> KLEstimator:
    """The KL estimator registered as `name`; ConfigError (field rl.kl_estimator) otherwise."""
    return KL_ESTIMATORS.lookup(name, "rl.kl_estimator")


@register_kl_estimator("k1")
def k1(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k1 (Schulman 2020): -d with d = log pi_ref - log pi; unbiased, high variance, can be < 0."""
    return logp - ref_logp  # (B, T)


@register_kl_estimator("k2")
def k2(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k2 (Schulman 2020): d^2 / 2 with d = log pi_ref - log pi; biased, low variance, >= 0."""
    return 0.5 * (ref_logp - logp) ** 2  # (B, T)


@register_kl_estimator("k3")
def k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k3 (Schulman 2020): exp(d) - d - 1 with d = log pi_ref - log pi; unbiased, >= 0.

    d is clamped to [-20, 20] first (for the whole expression), so exp never overflows.
    """
    d = (ref_logp - logp).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (B, T)
    return torch.exp(d) - d - 1.0  # (B, T)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy H = -sum_v p_v log p_v of each position's distribution: (B, T, V) -> (B, T).

    Uses log_softmax (stable for large logits); -inf logits (masked vocabulary) contribute 0 with
    a finite gradient. Computed in the logits' dtype.
    """
    logp = torch.log_softmax(logits, dim=-1)  # (B, T, V)
    finite_logp = logp.clamp(min=torch.finfo(logp.dtype).min)  # (B, T, V) avoids 0 * -inf
    return -(logp.exp() * finite_logp).sum(-1)  # (B, T)


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip: float | None,
) -> torch.Tensor:
    """Critic loss per token (B, T), 0 on padding.

    Unclipped: 0.5 (V - R)^2. With `clip` (PPO, Schulman et al. 2017, as in OpenAI baselines):
    0.5 max((V - R)^2, (V_old + clamp(V - V_old, -clip, clip) - R)^2).
    """
    m = mask.to(values.dtype)  # (B, T)
    loss = (values - returns) ** 2  # (B, T)
    if clip is not None:
        clipped_values = old_values + torch.clamp(values - old_values, -clip, clip)  # (B, T)
        loss = torch.maximum(loss, (clipped_values - returns) ** 2)  # (B, T)
    return 0.5 * loss * m  # (B, T)


def approx_kl(logp: torch.Tensor, old_logp: torch.Tensor) -> torch.Tensor:
    """Monitoring metric: k3 estimate of KL(pi_old || pi) from tokens sampled by pi_old.

    With r = log pi - log pi_old (clamped to [-20, 20]): exp(r) - 1 - r, >= 0; its mean over
    pi_old's samples is E_old[pi/pi_old] - 1 - E_old[log(pi/pi_old)] = KL(pi_old || pi). This is
    TRL's / verl's "approx_kl" (verl's low_var_kl applied to new/old). Not masked: (B, T).
    """
    r = (logp - old_logp).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (B, T)
    return torch.exp(r) - 1.0 - r  # (B, T)


# ---------------------------------------------------------------------------------------------
# The policy's objective


@dataclass(frozen=True)
class ObjectiveParams:
    """The knobs of `policy_objective` (rl/trainer.py fills them from RLConfig)."""

    policy_loss: str = "ppo_clip"  # registered policy loss (POLICY_LOSSES)
    eps_low: float = 0.2  # ratio >= 1 - eps_low
    eps_high: float = 0.28  # ratio <= 1 + eps_high
    beta: float = 0.0  # weight of the KL penalty in the loss; 0 = no KL term (e.g. kl_in: reward)
    kl_estimator: str = "k3"  # registered KL estimator (KL_ESTIMATORS)
    kl_importance_correction: bool = False  # KL penalty x the policy loss's ratio pi / pi_old
    entropy_coef: float = 0.0  # weight of the entropy bonus; 0 = none


@dataclass(frozen=True)
class ObjectiveTerms:
    """The per-token pieces of `policy_objective`, each (B, T)."""

    policy: torch.Tensor  # surrogate loss (times the importance weights, if any), 0 on padding
    clipped: torch.Tensor  # bool: tokens whose gradient the clip zeroed, False on padding
    kl: torch.Tensor | None  # KL(pi || pi_ref) estimate, uncorrected; None without ref_logp
    kl_penalty: torch.Tensor | None  # what enters the loss times beta; None when beta == 0


def policy_objective(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    ref_logp: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    aggregate: Aggregation,
    constant: int,
    params: ObjectiveParams,
    entropy: torch.Tensor | None = None,
    is_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, ObjectiveTerms]:
    """The policy's loss: agg(w x surrogate) + beta agg(KL penalty) - entropy_coef agg(entropy).

    logp (B, T) carries the gradient; old_logp, ref_logp, advantages, mask (B, T) do not;
    `aggregate` and `constant` are an aggregation and its constant; `entropy` (B, T) is needed
    when entropy_coef > 0. The KL penalty is the estimator's per-token KL(pi || pi_ref), with
    `kl_importance_correction` times exp(log ratio), the same clamped (token or sequence) log ratio
    as the policy loss's, gradient included (DeepSeek-V3.2; TRL's use_bias_correction_kl).
    `is_weights` (B, T), no gradient, multiplies each token's surrogate before aggregation (TIS,
    rl/mismatch.py; as in verl, the KL penalty and the entropy bonus are not weighted); None = 1.
    Returns (loss (), ObjectiveTerms).
    """
    per_token, clipped = get_policy_loss(params.policy_loss)(
        logp, old_logp, advantages, mask, params.eps_low, params.eps_high
    )  # (B, T), (B, T)
    if is_weights is not None:
        per_token = per_token * is_weights.detach()  # (B, T)
    loss = aggregate(per_token, mask, constant)
    kl = penalty = None
    if ref_logp is not None:
        kl = get_kl_estimator(params.kl_estimator)(logp, ref_logp)  # (B, T)
    if params.beta > 0:
        if kl is None:
            raise ValueError("policy_objective: beta > 0 needs ref_logp")
        penalty = kl  # (B, T)
        if params.kl_importance_correction:
            level = policy_ratio_level(params.policy_loss)
            lr = log_ratio(logp, old_logp, mask, level).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
            penalty = kl * torch.exp(lr)  # (B, T)
        loss = loss + params.beta * aggregate(penalty, mask, constant)
    if params.entropy_coef > 0:
        if entropy is None:
            raise ValueError("policy_objective: entropy_coef > 0 needs the entropy")
        loss = loss - params.entropy_coef * aggregate(entropy, mask, constant)
    return loss, ObjectiveTerms(per_token, clipped, kl, penalty)


__all__ = [
    "AGGREGATIONS",
    "KL_ESTIMATORS",
    "POLICY_LOSSES",
    "RATIO_LEVELS",
    "ObjectiveParams",
    "ObjectiveTerms",
    "approx_kl",
    "clipped_surrogate",
    "entropy_from_logits",
    "get_aggregation",
    "get_kl_estimator",
    "get_policy_loss",
    "log_ratio",
    "policy_objective",
    "policy_ratio_level",
    "register_aggregation",
    "register_kl_estimator",
    "register_policy_loss",
    "seq_mean_token_mean",
    "seq_sum_norm",
    "token_mean",
    "value_loss",
]
