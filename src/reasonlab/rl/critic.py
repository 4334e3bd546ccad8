"""The PPO critic: a copy of the base model's trunk with a scalar value head.

As in verl and TRL's PPOTrainer the critic is a separate network initialised from the base (here the
policy's own weights, since no reward model exists to start from); its value head starts at zero,
so the first advantages are the plain returns. It needs a backbone that can return hidden states
(`Transformer.forward(..., hidden=True)`). Usage:

    critic = Critic.from_policy(policy); values = critic(input_ids, attention_mask)   # (B, T)
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from reasonlab.errors import ConfigError
from reasonlab.models.transformer import Transformer


class Critic(nn.Module):
    """V(prefix): one value per position, the value of the state after reading tokens [0..t]."""

    def __init__(self, body: Transformer) -> None:
        super().__init__()
        self.body = body
        self.value_head = nn.Linear(body.cfg.d_model, 1)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)

    @classmethod
    def from_policy(cls, policy: object) -> "Critic":
        module = getattr(policy, "module", None)
        if not isinstance(module, Transformer):
            raise ConfigError("rl.advantage: gae (PPO) needs a critic, available for tiny transformer bases only")
        return cls(copy.deepcopy(module))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.body(input_ids, attention_mask, hidden=True)  # (B, T, D)
        return self.value_head(h).squeeze(-1)  # (B, T)
