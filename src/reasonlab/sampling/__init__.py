"""Sampling: `generate(policy, problems, n, seed, ...) -> list[Rollout]` (problem-major).

Three backends share this signature; the policy's `sampler` attribute picks one (`hf.sampler` in the
config for a Hugging Face model; the tiny model always uses the builtin one):

- builtin (sampling/builtin.py): any Policy with its KV cache, on CPU or GPU; the policy's `decode`
  (config `decode`) may switch it to a static KV cache and a decode step captured as CUDA graphs
  (sampling/static.py: the tiny transformer and Hugging Face Llama, Qwen2, Qwen3, Mistral);
- hf (sampling/hf.py): Hugging Face `model.generate`;
- vllm (sampling/vllm.py): vLLM on GPUs, imported only when chosen (`pip install 'reasonlab[vllm]'`).
Usage:

    from reasonlab.sampling import generate
    rollouts = generate(policy, problems, n=4, seed=0, temperature=1.0, stop=["\\n\\n"])
    check_fits(policy, problems, max_new_tokens=64, what="rl.max_new_tokens")  # before a long job
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from reasonlab.errors import ConfigError
from reasonlab.models import Policy
from reasonlab.sampling.eager import sample_step, top_p_filter
from reasonlab.types import Problem, Rollout

BACKENDS = {
    "builtin": "reasonlab.sampling.builtin",
    "hf": "reasonlab.sampling.hf",
    "vllm": "reasonlab.sampling.vllm",
}


def generate(
    policy: Policy, problems: Sequence[Problem], n: int, seed: int, **kwargs: Any
) -> list[Rollout]:
    """Sample `n` completions of every problem with the policy's sampler (keyword arguments as in
    sampling/builtin.py: max_new_tokens, temperature, top_p, stop, batch_size)."""
    name = getattr(policy, "sampler", "builtin")
    if name not in BACKENDS:
        raise ConfigError(f"hf.sampler: unknown sampler {name!r} (known: {', '.join(BACKENDS)})")
    return importlib.import_module(BACKENDS[name]).generate(policy, problems, n, seed, **kwargs)


def longest_prompt(policy: Policy, problems: Sequence[Problem]) -> int:
    """The most tokens any of `problems` takes as a prompt, as the samplers encode it (BOS or chat
    template included); ConfigError when the tokenizer cannot encode a prompt."""
    try:
        return max(len(policy.tokenizer.encode_prompt(p.prompt)) for p in problems)
    except (ValueError, KeyError) as err:
        raise ConfigError(
            f"the model's tokenizer cannot encode the prompts of task {problems[0].task!r} ({err})"
        ) from None


def check_fits(policy: Policy, problems: Sequence[Problem], max_new_tokens: int, what: str) -> None:
    """ConfigError naming `what` when a prompt of `problems` plus `max_new_tokens` new tokens exceeds the
    longest sequence the model holds (`policy.max_seq_len`; None: no limit)."""
    longest, limit = longest_prompt(policy, problems), policy.max_seq_len
    if limit is not None and longest + max_new_tokens > limit:
        raise ConfigError(
            f"{what}: prompts of {longest} tokens + {max_new_tokens} new tokens exceed the "
            f"model's max_seq_len {limit} on task {problems[0].task!r}"
        )


__all__ = ["BACKENDS", "check_fits", "generate", "longest_prompt", "sample_step", "top_p_filter"]
