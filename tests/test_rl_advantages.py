"""Advantage estimators: hand-computed values, masking, validation and the registry."""

import math

import pytest
import torch

from reasonlab.errors import ConfigError
from reasonlab.rl.advantages import (
    ADVANTAGES,
    AdvantageInputs,
    AdvantageParams,
    discounted_returns,
    gae,
    get_advantage,
    group_normalized,
    leave_one_out,
    masked_whiten,
    needs_groups,
    needs_values,
    sequence_scores,
)


def close(actual: torch.Tensor, expected, atol: float = 1e-5) -> None:
    expected = torch.tensor(expected, dtype=actual.dtype)
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0)


def last_token_rewards(scores: list[float], lengths: list[int], T: int):
    """Each score on the last real token of a right-padded row: (rewards (B, T), mask (B, T))."""
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).float()
    rewards = torch.zeros(len(scores), T)
    rewards[torch.arange(len(scores)), torch.tensor(lengths) - 1] = torch.tensor(scores)
    return rewards, mask


# --- building blocks ---------------------------------------------------------------------------


def test_sequence_scores_sum_masked_tokens():
    rewards = torch.tensor([[0.5, -0.1, 1.0], [2.0, 9.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    close(sequence_scores(rewards, mask), [1.4, 2.0])  # 0.5 - 0.1 + 1.0; padding 9s ignored


SCORES = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])  # two groups of 4


def test_group_normalized_group_std():
    # group 1: mean 0.5, deviations +-0.5, sum of squares 4 * 0.25 = 1, unbiased var 1/3,
    # std 0.577350 -> +-0.5 / 0.577350 = +-0.866025 (sqrt(3)/2). Group 2: all equal -> 0.
    a = group_normalized(SCORES, 4, "group", 1e-6)
    h = math.sqrt(3) / 2
    close(a, [h, -h, -h, h, 0, 0, 0, 0])


def test_group_normalized_batch_std():
    # batch mean 6/8 = 0.75; squares: six 0.25^2 = 0.375, two 0.75^2 = 1.125; total 1.5;
    # unbiased var 1.5 / 7 = 0.214286, std 0.462910 -> +-0.5 / 0.462910 = +-1.080123; group 2: 0.
    a = group_normalized(SCORES, 4, "batch", 1e-6)
    b = 0.5 / math.sqrt(1.5 / 7)
    close(a, [b, -b, -b, b, 0, 0, 0, 0])


def test_group_normalized_no_std():
    close(group_normalized(SCORES, 4, "none", 1e-6), [0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0])


def test_leave_one_out():
    # [1, 0, 0]: 1 - (0+0)/2 = 1; 0 - (1+0)/2 = -0.5; same for the third.
    close(leave_one_out(torch.tensor([1.0, 0.0, 0.0]), 3), [1.0, -0.5, -0.5])
    # RLOO = G/(G-1) * (r - mean): [2, 4] -> [-1, 1] * 2 = [-2, 2]
    close(leave_one_out(torch.tensor([2.0, 4.0]), 2), [-2.0, 2.0])


def test_discounted_returns_gamma_one_and_half():
    rewards, mask = last_token_rewards([1.0, 3.0], [3, 2], T=3)
    rewards[0, 0] = 0.5  # row 0 rewards [0.5, 0, 1]
    # gamma 1: reverse cumsum: [1.5, 1, 1]; row 1 [3, 3, pad 0]
    close(discounted_returns(rewards, mask, 1.0), [[1.5, 1.0, 1.0], [3.0, 3.0, 0.0]])
    # gamma 0.5: row 0: G2 = 1, G1 = 0 + 0.5 * 1 = 0.5, G0 = 0.5 + 0.5 * 0.5 = 0.75;
    # row 1: G1 = 3, G0 = 1.5
    close(discounted_returns(rewards, mask, 0.5), [[0.75, 0.5, 1.0], [1.5, 3.0, 0.0]])


def test_masked_whiten_over_real_tokens():
    x = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    # real tokens 1,1,1,0,0: mean 0.6; squares 3 * 0.16 + 2 * 0.36 = 1.2; unbiased var 1.2/4 = 0.3
    # std 0.547723: 0.4 / std = 0.730297, -0.6 / std = -1.095445; padding 7 -> 0
    p, n = 0.4 / math.sqrt(0.3), -0.6 / math.sqrt(0.3)
    close(masked_whiten(x, mask, 1e-6), [[p, p, p], [n, n, 0.0]])


def test_gae_gamma_lam_one_is_returns_minus_values():
    g = torch.Generator().manual_seed(0)
    rewards = torch.randn(4, 6, generator=g)
    values = torch.randn(4, 6, generator=g)
    mask = (torch.arange(6)[None, :] < torch.tensor([6, 3, 1, 4])[:, None]).float()
    adv, ret = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    # A_t = sum_{k>=t} (r_k + V_{k+1} - V_k) telescopes to G_t - V_t (V after the end is 0)
    expected_ret = discounted_returns(rewards, mask, 1.0)
    torch.testing.assert_close(adv, (expected_ret - values) * mask)
    torch.testing.assert_close(ret, expected_ret)


def test_gae_by_hand():
    # gamma 0.9, lam 0.5, r = [0, 0, 1], V = [0.5, 0.6, 0.7], then one padding token whose
    # (garbage) value 5 and reward 9 must be ignored: V after the last real token is 0.
    rewards = torch.tensor([[0.0, 0.0, 1.0, 9.0]])
    values = torch.tensor([[0.5, 0.6, 0.7, 5.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    adv, ret = gae(rewards, values, mask, gamma=0.9, lam=0.5)
    # delta2 = 1 + 0.9 * 0 - 0.7 = 0.3
    # delta1 = 0 + 0.9 * 0.7 - 0.6 = 0.03
    # delta0 = 0 + 0.9 * 0.6 - 0.5 = 0.04
    # A2 = 0.3; A1 = 0.03 + 0.45 * 0.3 = 0.165; A0 = 0.04 + 0.45 * 0.165 = 0.11425
    close(adv, [[0.11425, 0.165, 0.3, 0.0]])
    # returns = A + V = [0.61425, 0.765, 1.0]
    close(ret, [[0.61425, 0.765, 1.0, 0.0]])


# --- registered estimators ---------------------------------------------------------------------


def test_registry_and_needs():
    group = {"grpo", "dr_grpo", "rloo", "reinforce_pp_baseline"}
    assert set(ADVANTAGES) == group | {"reinforce_pp", "gae"}
    assert {n for n in ADVANTAGES if needs_groups(n)} == group
    assert {n for n in ADVANTAGES if needs_values(n)} == {"gae"}


def test_unknown_estimator_is_config_error():
    known = r"\(known: dr_grpo, gae, grpo, reinforce_pp, reinforce_pp_baseline, rloo\)"
    with pytest.raises(ConfigError, match=r"rl\.advantage: unknown estimator 'ppo' " + known):
        get_advantage("ppo")


def test_grpo_broadcasts_over_mask():
    rewards, mask = last_token_rewards([1.0, 0.0], [1, 3], T=3)
    adv, ret = get_advantage("grpo")(AdvantageInputs(rewards, mask, 2), AdvantageParams())
    # scores [1, 0]: mean 0.5, unbiased std sqrt(0.5) = 0.707107 -> +-0.707107
    s = 0.5 / math.sqrt(0.5)
    close(adv, [[s, 0.0, 0.0], [-s, -s, -s]])
    assert ret is None


def test_dr_grpo_ignores_std_scaling():
    rewards, mask = last_token_rewards([1.0, 0.0, 0.0, 1.0], [2, 2, 2, 2], T=2)
    params = AdvantageParams(std_scaling="group")
    adv, _ = get_advantage("dr_grpo")(AdvantageInputs(rewards, mask, group_size=4), params)
    close(adv, [[0.5, 0.5], [-0.5, -0.5], [-0.5, -0.5], [0.5, 0.5]])


def test_rloo_estimator():
    rewards, mask = last_token_rewards([1.0, 0.0, 0.0], [1, 2, 1], T=2)
    adv, _ = get_advantage("rloo")(AdvantageInputs(rewards, mask, group_size=3), AdvantageParams())
    close(adv, [[1.0, 0.0], [-0.5, -0.5], [-0.5, 0.0]])


def test_reinforce_pp_whitens_token_returns():
    # returns (gamma 1): row 0 [1, 1, 1], row 1 [0, 0, pad] -> whitened as in
    # test_masked_whiten_over_real_tokens: 0.730297 and -1.095445
    rewards, mask = last_token_rewards([1.0, 0.0], [3, 2], T=3)
    adv, ret = get_advantage("reinforce_pp")(AdvantageInputs(rewards, mask, 1), AdvantageParams())
    p, n = 0.4 / math.sqrt(0.3), -0.6 / math.sqrt(0.3)
    close(adv, [[p, p, p], [n, n, 0.0]])
    assert ret is None


def test_reinforce_pp_baseline():
    # one group of 2, scores [3, 1]: minus group mean 2 -> [1, -1]; on tokens: row 0 (3 tokens)
    # 1, 1, 1; row 1 (1 token) -1. Whiten: mean (3 - 1)/4 = 0.5; squares 3 * 0.25 + 2.25 = 3;
    # unbiased var 3/3 = 1 -> [0.5, 0.5, 0.5], [-1.5, 0, 0]
    rewards, mask = last_token_rewards([3.0, 1.0], [3, 1], T=3)
    estimator = get_advantage("reinforce_pp_baseline")
    adv, _ = estimator(AdvantageInputs(rewards, mask, group_size=2), AdvantageParams())
    close(adv, [[0.5, 0.5, 0.5], [-1.5, 0.0, 0.0]])


def test_gae_estimator_needs_values():
    rewards, mask = last_token_rewards([1.0], [3], T=3)
    with pytest.raises(ValueError, match="values"):
        get_advantage("gae")(AdvantageInputs(rewards, mask, group_size=1), AdvantageParams())
    values = torch.tensor([[0.5, 0.6, 0.7]])
    adv, ret = get_advantage("gae")(
        AdvantageInputs(rewards, mask, 1, values=values), AdvantageParams(gamma=0.9, lam=0.5)
    )
    close(adv, [[0.11425, 0.165, 0.3]])  # same numbers as test_gae_by_hand
    close(ret, [[0.61425, 0.765, 1.0]])


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo", "reinforce_pp_baseline"])
def test_group_estimators_validate_group_size(name):
    rewards, mask = last_token_rewards([1.0, 0.0, 1.0, 0.0], [2, 2, 2, 2], T=2)
    with pytest.raises(ValueError, match="group_size=1"):
        get_advantage(name)(AdvantageInputs(rewards, mask, group_size=1), AdvantageParams())
    with pytest.raises(ValueError, match="groups of 3"):
        get_advantage(name)(AdvantageInputs(rewards, mask, group_size=3), AdvantageParams())


@pytest.mark.parametrize("name", sorted(ADVANTAGES))
def test_every_estimator_is_zero_on_padding(name):
    g = torch.Generator().manual_seed(1)
    rewards = torch.randn(4, 5, generator=g)
    mask = (torch.arange(5)[None, :] < torch.tensor([5, 2, 3, 1])[:, None]).float()
    values = torch.randn(4, 5, generator=g)
    params = AdvantageParams(gamma=0.9, lam=0.8)
    adv, ret = get_advantage(name)(AdvantageInputs(rewards, mask, 2, values), params)
    assert adv.shape == (4, 5) and torch.isfinite(adv).all()
    assert (adv[mask == 0] == 0).all()
    if ret is not None:
        assert (ret[mask == 0] == 0).all()
