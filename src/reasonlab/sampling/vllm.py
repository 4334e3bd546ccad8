"""Sampling with vLLM on GPUs: the same signature and Rollouts as the builtin sampler.

vLLM is imported only when this backend is chosen (`hf.sampler: vllm`; `pip install 'reasonlab[vllm]'`).
One `vllm.LLM` engine is built per policy from its model folder (`policy.path`) and kept on the policy.
Prompts are token ids from `tokenizer.encode_prompt` (so the chat template is the policy's), EOS ids
are stop token ids, stop strings are kept in the text (as the builtin sampler keeps them).
Departures: the engine serves the weights saved in the folder, so RL (whose updates it would not see)
refuses this sampler; logprobs are vLLM's (by default those of the model's raw distribution, not
of the tempered one the builtin sampler reports); seeds are vLLM's per-request seeds.
Usage:

    reasonlab eval --model models/Qwen2.5-Math-7B --task aime24 -n 16 --sampler vllm
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reasonlab.errors import ConfigError
from reasonlab.models.base import Policy
from reasonlab.sampling.builtin import check_args, eos_ids
from reasonlab.types import Problem, Rollout


def _engine(policy: Policy) -> Any:
    engine = getattr(policy, "_vllm_engine", None)
    if engine is not None:
        return engine
    try:
        from vllm import LLM
    except ImportError:
        raise ConfigError(
            "hf.sampler: vllm is not installed (pip install 'reasonlab[vllm]', GPUs only)"
        ) from None
    if getattr(policy, "path", None) is None:
        raise ConfigError("hf.sampler: vllm needs a policy loaded from a Hugging Face model folder")
    dtype = str(next(policy.module.parameters()).dtype).removeprefix("torch.")
    engine = LLM(
        model=str(policy.path),
        dtype=dtype,
        gpu_memory_utilization=getattr(policy, "gpu_memory", 0.5),
        enable_prefix_caching=True,  # search expansions and n samples re-send shared prefixes
    )
    policy._vllm_engine = engine
    return engine


def generate(
    policy: Policy,
    problems: Sequence[Problem],
    n: int,
    seed: int,
    *,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_p: float = 1.0,
    stop: Sequence[str] = (),
    batch_size: int = 256,
) -> list[Rollout]:
    """Sample `n` completions of every problem's prompt with vLLM; problem-major."""
    check_args(n, max_new_tokens, temperature, top_p, stop, batch_size)
    engine = _engine(policy)
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    tok = policy.tokenizer
    eos = eos_ids(tok)
    prompts = [list(tok.encode_prompt(p.prompt)) for p in problems]
    params = SamplingParams(
        n=n,
        temperature=float(temperature),
        top_p=float(top_p),
        max_tokens=max_new_tokens,
        stop=list(stop) or None,
        stop_token_ids=list(eos),
        include_stop_str_in_output=True,
        logprobs=0,
        seed=seed,
    )
    results = engine.generate(
        [TokensPrompt(prompt_token_ids=ids) for ids in prompts], params, use_tqdm=False
    )
    out: list[Rollout] = []
    for problem, ids, res in zip(problems, prompts, results):
        for c in res.outputs:
            token_ids = tuple(c.token_ids)
            logprobs = tuple(float(step[t].logprob) for step, t in zip(c.logprobs or [], token_ids))
            if c.finish_reason == "length":
                reason = "length"
            elif isinstance(c.stop_reason, str):
                reason = "stop"
            else:
                reason = "eos"
            out.append(
                Rollout(
                    problem.id,
                    tuple(ids),
                    token_ids,
                    c.text,
                    logprobs,
                    (1,) * len(token_ids),
                    reason,
                )
            )
    return out
