"""Sampling: `generate(policy, problems, n, seed, ...) -> list[Rollout]` (problem-major).

The builtin backend (sampling/builtin.py) runs any Policy with its KV cache on CPU or GPU;
Hugging Face and vLLM backends will share this signature. Usage:

    from reasonlab.sampling import generate
    rollouts = generate(policy, problems, n=4, seed=0, temperature=1.0, stop=["\\n\\n"])
"""

from reasonlab.sampling.builtin import generate, sample_step, top_p_filter

__all__ = ["generate", "sample_step", "top_p_filter"]
