"""Sampling a Hugging Face model: the builtin sampler (the model's own KV cache) vs `model.generate`.

Builds a tiny Qwen2 model locally (random weights, models/tiny_hf.py; --hidden, --layers set its size),
loads it as a reasonlab HFPolicy and samples the same left-padded chat prompts three ways, runs
interleaved, in one process:
  builtin   reasonlab.sampling.generate with the builtin sampler (decode_step -> DynamicCache)
  hf        reasonlab's `hf` backend (model.generate + Rollouts with logprobs from output_scores)
  generate  bare `model.generate(do_sample=True)` on the same ids (no logprobs, no Rollouts)
EOS is disabled on every side (min_new_tokens for generate, an EOS id that is never sampled for the
builtin sampler), so each sequence runs exactly --new-tokens steps. Reports tokens/s as the median of
--repeats runs, and the CPU other processes used meanwhile. Writes benchmarks/out/hf_sampling.json.
Usage:

    .venv/bin/python benchmarks/hf_sampling.py [--batch 64] [--new-tokens 64] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from datetime import date
from pathlib import Path

import torch

from common import machine, timed, wait_quiet
from reasonlab.models import load_policy
from reasonlab.models.tiny_hf import build_tiny_hf
from reasonlab.sampling import generate
from reasonlab.types import Problem

OUT = Path(__file__).parent / "out" / "hf_sampling.json"


def problems(count: int) -> list[Problem]:
    """Prompts of different lengths, so the batch is left-padded."""
    return [
        Problem(
            id=str(i),
            task="bench",
            prompt=f"Compute {(i * 7919) % 10 ** (1 + i % 6)} + {i * 31}." + " ok" * (i % 7),
            answer="",
            difficulty=0,
        )
        for i in range(count)
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--quiet-wait", type=float, default=10.0)
    args = ap.parse_args()
    folder = build_tiny_hf(
        Path(tempfile.mkdtemp()) / "qwen2", "qwen2", seed=0, hidden=args.hidden, layers=args.layers
    )
    builtin = load_policy(folder)
    builtin.tokenizer.eos_ids = (-1,)  # never sampled: every row runs the full length
    hf_backend = load_policy(folder, options={"sampler": "hf"})
    hf_backend.tokenizer.eos_ids = (-1,)
    probs = problems(args.batch)
    prompts = [builtin.tokenizer.encode_prompt(p.prompt) for p in probs]
    width = max(map(len, prompts))
    pad = builtin.tokenizer.pad_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    model = builtin.module
    n, L = args.batch, args.new_tokens

    def run_builtin() -> None:
        out = generate(builtin, probs, 1, seed=0, max_new_tokens=L, batch_size=n)
        assert all(len(r.token_ids) == L for r in out)

    def run_hf_backend() -> None:
        out = generate(hf_backend, probs, 1, seed=0, max_new_tokens=L, batch_size=n)
        assert all(len(r.token_ids) == L for r in out)

    def run_generate() -> None:
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                do_sample=True,
                max_new_tokens=L,
                min_new_tokens=L,
                top_k=0,
                top_p=1.0,
                temperature=1.0,
                pad_token_id=pad,
            )
        assert out.shape[1] == width + L

    runs = {"builtin": run_builtin, "hf": run_hf_backend, "generate": run_generate}
    for fn in runs.values():  # warm-up
        fn()
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            wait_quiet(args.quiet_wait)
            times[name].append(timed(fn))
    result = {
        "machine": machine(),
        "date": str(date.today()),
        "batch": n,
        "new_tokens": L,
        "params": builtin.num_parameters(),
        "prompt_width": width,
        "hidden": args.hidden,
        "layers": args.layers,
    }
    for name, rs in times.items():
        result[f"{name}_tokens_per_s"] = n * L / statistics.median(w for w, _ in rs)
        result[f"{name}_runs_s"] = [round(w, 4) for w, _ in rs]
        result[f"{name}_foreign_cores"] = statistics.median(f for _, f in rs)
    result["builtin_vs_generate"] = result["builtin_tokens_per_s"] / result["generate_tokens_per_s"]
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"| sampler | tokens/s (median of {args.repeats}) | other processes (cores) |\n|---|---|---|"
    )
    for name in runs:
        print(
            f"| {name} | {result[f'{name}_tokens_per_s']:.0f} | {result[f'{name}_foreign_cores']:.2f} |"
        )
    print(
        f"builtin / generate = {result['builtin_vs_generate']:.2f}x; "
        f"{result['params']:,} parameters; {result['machine']}"
    )


if __name__ == "__main__":
    main()
