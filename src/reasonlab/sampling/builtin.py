"""The builtin batched sampler: left-padded prompts, one prefill, then one cached token per step.

`generate` returns `len(problems) * n` Rollouts, problem-major. Each batch of up to `batch_size`
sequences is decoded by the eager loop (sampling/eager.py: the policy's own KV cache, one token per
step) or, when the policy's `decode` asks for it (`static`, or `auto` on a GPU) and the model has one,
by the static path (sampling/static.py: a preallocated cache and the decode step captured as a CUDA
graph); both give the same rollouts up to float rounding.
Sampling is inverse-CDF with one uniform per (sequence, step), drawn up front from a local
`torch.Generator(seed)` in sequence order: a sequence's randomness does not depend on how the rows
are split into batches, so results are batch-size independent up to floating-point differences
in the logits (which can, rarely, flip a near-tie). Departures from Hugging Face `generate`:
temperature 0 means greedy; top-p keeps the smallest prefix of the sorted distribution whose mass
reaches `top_p` (always at least one token); logprobs are those of the distribution actually
sampled from (greedy: log-softmax of the raw logits). `first_row` samples a contiguous share of a
larger draw exactly as the whole draw samples it (rollout workers, rl/rollout_workers.py): the
uniforms of the `first_row` sequences before the share are drawn from the generator and discarded.
Usage:

    rollouts = generate(policy, problems, n=8, seed=0, max_new_tokens=64, stop=["\\n\\n"])
    share = generate(policy, problems[3:], n=8, seed=0, first_row=3 * 8)  # == rollouts[24:]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from reasonlab.models.base import Policy, module_device
from reasonlab.sampling import static
from reasonlab.sampling.eager import Params, check_args, eos_ids, generate_batch, stop_triggers
from reasonlab.types import Problem, Rollout


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
    first_row: int = 0,
) -> list[Rollout]:
    """Sample `n` completions of every problem's prompt (`tokenizer.encode_prompt`); problem-major order.
    `first_row`: the index of the first of these sequences in a larger draw with this seed (0: the
    draw starts here)."""
    check_args(n, max_new_tokens, temperature, top_p, stop, batch_size)
    if first_row < 0:
        raise ValueError(f"first_row must be at least 0, got {first_row}")
    tok = policy.tokenizer
    params = Params(
        max_new_tokens, float(temperature), float(top_p), tuple(stop), eos_ids(tok), tok.pad_id
    )
    prompts = [tuple(tok.encode_prompt(p.prompt)) for p in problems]
    rows = [i for i in range(len(problems)) for _ in range(n)]  # problem index of each sequence
    device = module_device(policy)
    triggers = stop_triggers(policy, params.stop, device)
    generator = torch.Generator().manual_seed(seed)
    for lo in range(0, first_row, batch_size):  # the uniforms of the draw's earlier sequences
        torch.rand(min(batch_size, first_row - lo), max_new_tokens, generator=generator)
    decode_batch = static.generate_batch if static.uses_static(policy, device) else generate_batch
    module = policy.module
    was_training = module.training
    module.eval()
    out: list[Rollout] = []
    try:
        with torch.inference_mode():
            for lo in range(0, len(rows), batch_size):
                chunk = rows[lo : lo + batch_size]
                # float32 draws (< 1 - 2^-24) held in float64, see sample_step
                uniforms = torch.rand(len(chunk), max_new_tokens, generator=generator).to(
                    device, torch.float64
                )
                batch_prompts = [prompts[i] for i in chunk]
                results = decode_batch(policy, batch_prompts, uniforms, params, triggers)
                out.extend(
                    Rollout(problems[i].id, prompt, *res)
                    for i, prompt, res in zip(chunk, batch_prompts, results)
                )
    finally:
        module.train(was_training)
    return out
