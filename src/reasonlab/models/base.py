"""The Policy protocol: what every model offers to sampling, training, judging and search.

A policy is NOT itself an nn.Module: it holds one (`policy.module`, whose parameters are trained,
moved and saved) plus a tokenizer, and exposes a full forward (`logits`, differentiable, for
training), the training forward of RL batches (`completion_logits`) and an incremental one
(`new_cache` + `decode_step`, inference only, for sampling).
This mirrors a Hugging Face causal LM (`model(input_ids, attention_mask).logits`, `past_key_values`)
so a wrapper around one can implement it with no change elsewhere. Batches are LEFT-padded:
`attention_mask` is 1 on real tokens and 0 on padding, and positions are `cumsum(mask) - 1`.
Usage:

    def score(policy: Policy, ids, mask): return policy.logits(ids, mask).log_softmax(-1)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class Tokenizer(Protocol):
    """Text <-> ids. `encode` adds no special tokens; `decode` skips them; `encode_prompt` gives the ids a
    completion is conditioned on (BOS + prompt for the character tokenizer, the chat template's user turn
    and generation prompt for a chat model). A tokenizer may also list several `eos_ids` (chat models
    end a turn with one token and a document with another); `eos_id` is then the first."""

    @property
    def vocab_size(self) -> int: ...
    @property
    def pad_id(self) -> int: ...
    @property
    def bos_id(self) -> int: ...
    @property
    def eos_id(self) -> int: ...
    def encode(self, text: str) -> list[int]: ...
    def encode_prompt(self, prompt: str) -> list[int]: ...
    def decode(self, ids: Iterable[int]) -> str: ...


@runtime_checkable
class Policy(Protocol):
    """A causal language model with its tokenizer.

    - `module`: the nn.Module holding every parameter (optimise `policy.module.parameters()`,
      call `policy.module.train()/eval()`, move it with `.to(device)`).
    - `logits(input_ids (B,T), attention_mask (B,T) | None) -> (B,T,V)`: full forward, with autograd.
    - `completion_logits(prompt_ids (P,W), prompt_mask (P,W), completion_ids (B,L), completion_mask (B,L),
      group (B,)) -> (B,L,V)`: with autograd, the logits whose position j predicts token j of completion b,
      which follows prompt `group[b]` (prompts left-padded, completions right-padded, masks 1 on real
      tokens); what the full forward of [prompt | completion] gives at positions W-1 .. W+L-2. A policy
      may compute each prompt once for all its completions. Logits at completion padding are unspecified.
    - `max_seq_len`: the longest sequence the model is built for, or None when it does not say.
    - `critic_body()`: the module a PPO critic copies as its trunk (`body(ids, mask, hidden=True)` gives
      hidden states (B,T,D), `body.cfg.d_model` their width), or None when the policy offers none.
    - `new_cache(batch_size, max_len)`: an opaque cache for at most `max_len` positions.
    - `decode_step(input_ids (B,T_new), attention_mask (B,T_past+T_new), cache) -> (B,T_new,V)`:
      runs the new tokens against the cache and appends them to it (prefill with the whole prompt,
      then one token per step). Inference only (no autograd). Logits at padding positions are
      unspecified. A cache belongs to the weights it was made with: make a new one after an update.
    - `num_parameters()`, `save(dir)` (reload with `reasonlab.models.load_policy(dir)`).
    """

    tokenizer: Tokenizer
    module: torch.nn.Module

    @property
    def max_seq_len(self) -> int | None: ...

    def logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor: ...

    def completion_logits(
        self,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        completion_ids: torch.Tensor,
        completion_mask: torch.Tensor,
        group: torch.Tensor,
    ) -> torch.Tensor: ...

    def critic_body(self) -> torch.nn.Module | None: ...

    def new_cache(self, batch_size: int, max_len: int) -> Any: ...

    def decode_step(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache: Any
    ) -> torch.Tensor: ...

    def num_parameters(self) -> int: ...

    def save(self, directory: str | Path) -> None: ...


def module_device(policy: Policy) -> torch.device:
    """The device of the policy's parameters (CPU for a module without any)."""
    for p in policy.module.parameters():
        return p.device
    return torch.device("cpu")
