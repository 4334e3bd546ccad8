"""Policy-gradient losses: aggregations, surrogates, GSPO, KL, entropy, value loss, the objective."""

import math

import pytest
import torch

from reasonlab.errors import ConfigError
from reasonlab.rl.losses import (
    AGGREGATIONS,
    KL_ESTIMATORS,
    POLICY_LOSSES,
    ObjectiveParams,
    approx_kl,
    clipped_surrogate,
    entropy_from_logits,
    get_aggregation,
    get_kl_estimator,
    get_policy_loss,
    log_ratio,
    policy_objective,
    policy_ratio_level,
    value_loss,
)


def close(actual: torch.Tensor, expected, atol: float = 1e-5) -> None:
    expected = torch.tensor(expected, dtype=actual.dtype)
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0)


# --- aggregations ------------------------------------------------------------------------------

# ragged batch: row 0 has 1 real token (4), row 1 has 3 (1, 2, 3); padding holds garbage 100
PER_TOKEN = torch.tensor([[4.0, 100.0, 100.0], [1.0, 2.0, 3.0]])
RAGGED_MASK = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])


def test_aggregations_on_ragged_batch_differ():
    # seq_mean_token_mean: row means 4/1 = 4 and 6/3 = 2 -> (4 + 2) / 2 = 3
    close(get_aggregation("seq_mean_token_mean")(PER_TOKEN, RAGGED_MASK, 3), 3.0)
    # token_mean: (4 + 1 + 2 + 3) / 4 tokens = 2.5
    close(get_aggregation("token_mean")(PER_TOKEN, RAGGED_MASK, 3), 2.5)
    # seq_sum_norm: 10 / (B=2 * constant=3) = 1.666667
    close(get_aggregation("seq_sum_norm")(PER_TOKEN, RAGGED_MASK, 3), 10 / 6)


def test_seq_mean_token_mean_empty_sequence_counts_as_zero():
    per_token = torch.tensor([[2.0, 4.0], [7.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    close(get_aggregation("seq_mean_token_mean")(per_token, mask, 2), 1.5)  # (3 + 0) / 2


def test_aggregation_registry():
    assert set(AGGREGATIONS) == {"seq_mean_token_mean", "token_mean", "seq_sum_norm"}


# --- clipped surrogate -------------------------------------------------------------------------

# eps_low 0.2, eps_high 0.28: the ratio is clamped to [0.8, 1.28]; old_logp = 0, logp = log(ratio)
RATIOS = [1.1, 1.5, 0.5, 0.5, 1.5, 1.25, 0.75, 1.0]
ADVS = [1.0, 1.0, 1.0, -1.0, -1.0, 2.0, -2.0, 5.0]
MASK_LAST_PAD = [1.0] * 7 + [0.0]


def test_clipped_surrogate_by_hand():
    logp = torch.tensor([RATIOS]).log().requires_grad_()
    old_logp = torch.zeros(1, 8)
    adv = torch.tensor([ADVS])
    mask = torch.tensor([MASK_LAST_PAD])
    loss, clipped = clipped_surrogate(logp, old_logp, adv, mask, 0.2, 0.28, "token")
    expected = [
        -1.1,  # A>0, 1.1 inside: -1.1 * 1
        -1.28,  # A>0, 1.5 > 1.28: -min(1.5, 1.28) -> clipped
        -0.5,  # A>0, 0.5 < 0.8: -min(0.5, 0.8) = -0.5, unclipped term chosen
        0.8,  # A<0, 0.5 < 0.8: -min(-0.5, -0.8) = 0.8 -> clipped
        1.5,  # A<0, 1.5 > 1.28: -min(-1.5, -1.28) = 1.5, unclipped term chosen
        -2.5,  # A=2, 1.25 inside [0.8, 1.28] (would clip with a symmetric eps 0.2): -2.5
        1.6,  # A=-2, 0.75 < 0.8: -min(-1.5, -1.6) = 1.6 -> clipped
        0.0,  # padding
    ]
    close(loss, [expected])
    assert clipped.tolist() == [[False, True, False, True, False, False, True, False]]
    # d loss / d logp = -A * ratio where unclipped, 0 where clipped (and on padding)
    loss.sum().backward()
    grad = [0.0 if c else -a * r for a, r, c in zip(ADVS, RATIOS, clipped[0].tolist())]
    grad[-1] = 0.0
    close(logp.grad, [grad])


def test_ppo_clip_is_token_level_surrogate():
    logp = torch.tensor([RATIOS]).log()
    args = (logp, torch.zeros(1, 8), torch.tensor([ADVS]), torch.tensor([MASK_LAST_PAD]), 0.2, 0.28)
    loss, clipped = get_policy_loss("ppo_clip")(*args)
    ref_loss, ref_clipped = clipped_surrogate(*args, "token")
    torch.testing.assert_close(loss, ref_loss)
    assert torch.equal(clipped, ref_clipped)


def test_gspo_sequence_ratio_and_uniform_gradient():
    g = torch.Generator().manual_seed(0)
    old_logp = -torch.rand(2, 4, generator=g) * 3
    logp = (old_logp + 0.01 * torch.randn(2, 4, generator=g)).requires_grad_()
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    adv = torch.tensor([[1.0], [-1.0]]) * mask
    # sequence log ratio = mean over real tokens of (logp - old_logp), on every real token
    lr = log_ratio(logp, old_logp, mask, "sequence")
    means = [((logp - old_logp)[i, : int(mask[i].sum())]).mean().item() for i in range(2)]
    close(lr, [[means[0]] * 3 + [0.0], [means[1]] * 2 + [0.0, 0.0]])
    # ratios are within [1 - 0.2, 1 + 0.2], so loss = -exp(mean) * A on every real token
    loss, clipped = get_policy_loss("gspo")(logp, old_logp, adv, mask, 0.2, 0.2)
    r0, r1 = math.exp(means[0]), math.exp(means[1])
    close(loss, [[-r0, -r0, -r0, 0.0], [r1, r1, 0.0, 0.0]])
    assert not clipped.any()
    # the gradient goes through the mean: equal on every real token of a sequence, 0 on padding
    loss.sum().backward()
    # row 0: 3 tokens each -r0 -> d/dlogp_t = 3 * (-r0) / 3 = -r0; row 1: 2 * r1 / 2 = r1
    close(logp.grad, [[-r0, -r0, -r0, 0.0], [r1, r1, 0.0, 0.0]])


def test_policy_loss_registry_and_unknown_names():
    assert set(POLICY_LOSSES) == {"ppo_clip", "gspo"}
    with pytest.raises(ConfigError, match=r"rl\.policy_loss: unknown policy loss 'cispo' \("):
        get_policy_loss("cispo")
    with pytest.raises(ConfigError, match=r"rl\.aggregation: unknown aggregation 'sum' \(known: "):
        get_aggregation("sum")
    with pytest.raises(ConfigError, match=r"rl\.kl_estimator: unknown KL estimator 'k4' \("):
        get_kl_estimator("k4")


# --- KL, entropy, value loss, approx_kl --------------------------------------------------------


def test_kl_estimators_by_hand():
    assert set(KL_ESTIMATORS) == {"k1", "k2", "k3"}
    logp = torch.tensor([[-1.0, -2.0, -1.5]])
    ref_logp = torch.tensor([[-2.0, -1.0, -1.5]])
    # d = ref - logp = [-1, 1, 0]
    close(get_kl_estimator("k1")(logp, ref_logp), [[1.0, -1.0, 0.0]])  # -d
    close(get_kl_estimator("k2")(logp, ref_logp), [[0.5, 0.5, 0.0]])  # d^2 / 2
    # exp(d) - d - 1: e^-1 + 1 - 1 = 0.367879; e - 1 - 1 = 0.718282; 1 - 0 - 1 = 0
    close(get_kl_estimator("k3")(logp, ref_logp), [[math.exp(-1), math.e - 2, 0.0]])


def test_k3_is_nonnegative_and_finite():
    g = torch.Generator().manual_seed(0)
    logp, ref_logp = torch.randn(8, 16, generator=g) * 5, torch.randn(8, 16, generator=g) * 5
    assert (get_kl_estimator("k3")(logp, ref_logp) >= 0).all()
    # d = 0 - (-200) = 200 is clamped to 20: exp(20) - 20 - 1
    extreme = get_kl_estimator("k3")(torch.tensor([[-200.0]]), torch.tensor([[0.0]]))
    close(extreme, [[math.exp(20) - 21]], atol=1e2)


def test_entropy_of_uniform_logits_is_log_v():
    close(entropy_from_logits(torch.zeros(2, 3, 7)), [[math.log(7)] * 3] * 2)
    # huge logits stay finite: a shifted uniform distribution
    close(entropy_from_logits(torch.full((1, 1, 5), 1e4)), [[math.log(5)]])


def test_entropy_with_masked_vocabulary_has_finite_gradient():
    logits = torch.tensor([[[0.0, 0.0, -float("inf")]]], requires_grad=True)
    h = entropy_from_logits(logits)
    close(h, [[math.log(2)]])
    h.sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_value_loss_clipped_and_unclipped():
    values = torch.tensor([[1.0, 2.0, 3.0, 9.0]])
    old = torch.tensor([[0.5, 2.0, 2.5, 0.0]])
    returns = torch.tensor([[2.0, 0.0, 2.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    # unclipped 0.5 (V - R)^2: 0.5 * 1 = 0.5; 0.5 * 4 = 2; 0.5 * 1 = 0.5; padding 0
    close(value_loss(values, old, returns, mask, None), [[0.5, 2.0, 0.5, 0.0]])
    # clip 0.2: token 0: V_clip = 0.5 + 0.2 = 0.7, (0.7 - 2)^2 = 1.69 > 1 -> 0.845
    #           token 1: V - old = 0 -> same 4 -> 2
    #           token 2: V_clip = 2.7, (2.7 - 2)^2 = 0.49 < 1 -> max keeps 1 -> 0.5
    close(value_loss(values, old, returns, mask, 0.2), [[0.845, 2.0, 0.5, 0.0]])


def test_approx_kl():
    logp = torch.tensor([[math.log(2.0), 0.0, -1.0]])
    old_logp = torch.tensor([[0.0, 0.0, 0.0]])
    # r = log 2: 2 - 1 - 0.693147 = 0.306853; r = 0: 0; r = -1: e^-1 - 1 + 1 = 0.367879
    close(approx_kl(logp, old_logp), [[2 - 1 - math.log(2), 0.0, math.exp(-1)]])


def test_aggregation_weights_reproduce_each_aggregation():
    from reasonlab.rl.losses import aggregation_weights

    for name in AGGREGATIONS:
        agg = get_aggregation(name)
        weights = aggregation_weights(agg, RAGGED_MASK, 3)
        close((weights * PER_TOKEN).sum(), agg(PER_TOKEN, RAGGED_MASK, 3).item())
    # token_mean weighs the 4 real tokens equally and padding not at all
    close(
        aggregation_weights(get_aggregation("token_mean"), RAGGED_MASK, 3),
        (RAGGED_MASK / 4).tolist(),
    )


# --- the policy objective ----------------------------------------------------------------------


def objective_inputs(seed: int = 0):
    """logp (with grad), old_logp, ref_logp, advantages, mask: (2, 4), row 1 with 2 real tokens."""
    g = torch.Generator().manual_seed(seed)
    old_logp = -torch.rand(2, 4, generator=g) * 3
    logp = (old_logp + 0.3 * torch.randn(2, 4, generator=g)).requires_grad_()
    ref_logp = old_logp + 0.5 * torch.randn(2, 4, generator=g)
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
    adv = torch.tensor([[1.0], [-0.5]]) * mask
    return logp, old_logp, ref_logp, adv, mask


def test_policy_objective_is_surrogate_plus_kl_minus_entropy():
    logp, old_logp, ref_logp, adv, mask = objective_inputs()
    entropy = torch.rand(2, 4, generator=torch.Generator().manual_seed(1))
    agg = get_aggregation("seq_mean_token_mean")
    params = ObjectiveParams(beta=0.1, entropy_coef=0.01)
    loss, terms = policy_objective(logp, old_logp, ref_logp, adv, mask, agg, 4, params, entropy)
    surrogate, clipped = get_policy_loss("ppo_clip")(logp, old_logp, adv, mask, 0.2, 0.28)
    kl = get_kl_estimator("k3")(logp, ref_logp)
    expected = agg(surrogate, mask, 4) + 0.1 * agg(kl, mask, 4) - 0.01 * agg(entropy, mask, 4)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(terms.kl_penalty, kl)
    assert torch.equal(terms.clipped, clipped)
    # beta 0: the KL is still estimated (a monitor) but stays out of the loss
    loss0, terms0 = policy_objective(logp, old_logp, ref_logp, adv, mask, agg, 4, ObjectiveParams())
    torch.testing.assert_close(loss0, agg(surrogate, mask, 4))
    assert terms0.kl_penalty is None and terms0.kl is not None
    with pytest.raises(ValueError, match="ref_logp"):
        policy_objective(logp, old_logp, None, adv, mask, agg, 4, params)


def test_kl_importance_correction_on_policy_gives_the_reverse_kl_gradient():
    """On-policy the ratio is 1, so the loss is unchanged, but its gradient is not: d/dlogp of
    k3 x exp(logp - sg(logp)) = (1 - e^d) + (e^d - d - 1) = -d = logp - ref (d = ref - logp),
    the reverse-KL gradient E[(log pi - log pi_ref) grad log pi]; plain k3 gives 1 - e^d."""
    logp, _, ref_logp, _, mask = objective_inputs()
    agg = get_aggregation("token_mean")
    weights = mask / mask.sum()  # (B, T) token_mean's per-token weights
    results = {}
    for correction in (False, True):
        logp.grad = None
        params = ObjectiveParams(beta=1.0, kl_importance_correction=correction)
        loss, _ = policy_objective(
            logp, logp.detach(), ref_logp, torch.zeros_like(mask), mask, agg, 4, params
        )
        loss.backward()
        results[correction] = (loss.detach(), logp.grad.clone())
    torch.testing.assert_close(results[True][0], results[False][0])
    d = (ref_logp - logp).detach()
    torch.testing.assert_close(results[False][1], weights * (1 - d.exp()))
    torch.testing.assert_close(results[True][1], weights * -d)


@pytest.mark.parametrize("policy_loss, level", [("ppo_clip", "token"), ("gspo", "sequence")])
def test_kl_importance_correction_uses_the_policy_loss_ratio(policy_loss, level):
    logp, old_logp, ref_logp, adv, mask = objective_inputs()
    params = ObjectiveParams(policy_loss, beta=0.1, kl_importance_correction=True)
    agg = get_aggregation("token_mean")
    _, terms = policy_objective(logp, old_logp, ref_logp, adv, mask, agg, 4, params)
    assert policy_ratio_level(policy_loss) == level
    ratio = log_ratio(logp, old_logp, mask, level).exp()  # (B, T), 1 on padding
    torch.testing.assert_close(terms.kl_penalty, terms.kl * ratio)
    # a wildly off-policy token: the log ratio is clamped to 20, the penalty stays finite
    far = old_logp - 100.0
    _, terms = policy_objective(logp, far, ref_logp, adv, mask, agg, 4, params)
    assert torch.isfinite(terms.kl_penalty).all()


def test_policy_ratio_level_of_an_unknown_loss_is_a_config_error():
    with pytest.raises(ConfigError, match=r"rl\.policy_loss"):
        policy_ratio_level("cispo")
