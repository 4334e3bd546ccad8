"""Sampling: `generate(policy, problems, n, seed, ...) -> list[Rollout]` (problem-major).

Three backends share this signature; the policy's `sampler` attribute picks one (`hf.sampler` in the
config for a Hugging Face model; the tiny model always uses the builtin one):

- builtin (sampling/builtin.py): any Policy with its KV cache, on CPU or GPU;
- hf (sampling/hf.py): Hugging Face `model.generate`;
- vllm (sampling/vllm.py): vLLM on GPUs, imported only when chosen (`pip install 'reasonlab[vllm]'`).
Usage:

    from reasonlab.sampling import generate
    rollouts = generate(policy, problems, n=4, seed=0, temperature=1.0, stop=["\\n\\n"])
"""

from __future__ import annotations

import importlib
from typing import Any, Sequence

from reasonlab.errors import ConfigError
from reasonlab.sampling.builtin import sample_step, top_p_filter
from reasonlab.types import Problem, Rollout

BACKENDS = {"builtin": "reasonlab.sampling.builtin", "hf": "reasonlab.sampling.hf", "vllm": "reasonlab.sampling.vllm"}


def generate(policy: Any, problems: Sequence[Problem], n: int, seed: int, **kwargs: Any) -> list[Rollout]:
    """Sample `n` completions of every problem with the policy's sampler (keyword arguments as in
    sampling/builtin.py: max_new_tokens, temperature, top_p, stop, batch_size)."""
    name = getattr(policy, "sampler", "builtin")
    if name not in BACKENDS:
        raise ConfigError(f"hf.sampler: unknown sampler {name!r} (known: {', '.join(BACKENDS)})")
    return importlib.import_module(BACKENDS[name]).generate(policy, problems, n, seed, **kwargs)


__all__ = ["BACKENDS", "generate", "sample_step", "top_p_filter"]
