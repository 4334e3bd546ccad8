"""The PPO critic: a copy of the base model's trunk with a scalar value head.

As in verl and TRL's PPOTrainer the critic is a separate network initialised from the base (here the
policy's own weights, since no reward model exists to start from); its value head starts at zero,
so the first advantages are the plain returns. Its trunk is the module the policy offers for it
(`policy.critic_body()`, models/base.py), which returns hidden states (`body(ids, mask, hidden=True)`);
the tiny transformer does, a Hugging Face policy does not (it is refused). Usage:

    critic = Critic.from_policy(policy); values = critic(input_ids, attention_mask)   # (B, T)
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from reasonlab.errors import ConfigError
from reasonlab.models.base import Policy, module_device


class Critic(nn.Module):
    """V(prefix): one value per position, the value of the state after reading tokens [0..t]."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.value_head = nn.Linear(body.cfg.d_model, 1)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)

    @classmethod
    def from_policy(cls, policy: Policy) -> Critic:
        body = policy.critic_body()
        if body is None:
            raise ConfigError(
                "rl.advantage: gae (PPO) needs a critic, available for tiny transformer bases only"
            )
        return cls(copy.deepcopy(body)).to(module_device(policy))  # the value head joins the body

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.body(input_ids, attention_mask, hidden=True)  # (B, T, D)
        return self.value_head(h).squeeze(-1)  # (B, T)
