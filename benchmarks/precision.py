"""float32 against bfloat16 on this CPU, side by side in one run: matmul peaks, training steps and sampling.

1. Matmul peaks: a 2048^3 product and a decode-sized (256 x 256) @ (256 x 688) one, in each dtype.
2. Training: one AdamW step of the tiny transformer (forward, masked loss, backward, clip, update) with
   float32 weights, in float32 and under `torch.autocast(bfloat16)` (what `dtype: bfloat16` does), at the
   default shape (d_model 128, 4 layers, 16 x 128 tokens) and wider ones; the two dtypes interleaved.
3. Sampling: the builtin sampler (KV cache, 64 new tokens, EOS never sampled) in float32 and in bfloat16
   (bf16 weight copies and a bf16 KV cache), at batch 256; the marginal decode step, (time(L) - time(1)) /
   (L - 1), against its floor in that dtype: the FLOPs at that dtype's matmul peak plus the bytes a step
   must read (weights and the KV cache, in that dtype) at the measured read bandwidth.
Each number is a median over --repeats runs; the dtypes alternate, so a busy neighbour hits both.
Writes benchmarks/out/precision.json and prints a Markdown table. Usage:

    .venv/bin/python benchmarks/precision.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import torch

from common import machine, wait_quiet
from reasonlab.models import CharTokenizer, TinyPolicy, TransformerConfig
from reasonlab.pretrain.trainer import masked_loss
from reasonlab.sampling import generate
from reasonlab.training.optim import make_optimizer
from reasonlab.types import Problem
from sampling import NoEosTokenizer

OUT = Path(__file__).parent / "out" / "precision.json"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
SHAPES = [  # (d_model, layers, heads, batch) for training
    (128, 4, 4, 16),
    (256, 4, 4, 16),
    (512, 8, 8, 16),
]


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall seconds of each function, the functions run in turn `repeats` times."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            wait_quiet(5.0)
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def matmul_gflops(m: int, k: int, n: int, dtype: torch.dtype, repeats: int) -> float:
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    reps = max(5, int(4e9 / (2 * m * k * n)))
    for _ in range(3):
        a @ b

    def run() -> None:
        for _ in range(reps):
            a @ b

    med = statistics.median(_time(run) for _ in range(repeats))
    return 2 * m * k * n * reps / med / 1e9


def _time(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def read_bandwidth(repeats: int) -> float:
    x = torch.randn(64 * 2**20)  # 256 MB, far beyond the caches
    x.sum()
    return x.numel() * 4 / statistics.median(_time(x.sum) for _ in range(repeats))


def training(d: int, layers: int, heads: int, batch: int, repeats: int) -> dict:
    tok = CharTokenizer()
    cfg = TransformerConfig(
        vocab_size=tok.vocab_size, d_model=d, n_layers=layers, n_heads=heads, max_seq_len=128
    )
    policy = TinyPolicy.create(cfg, seed=0)
    opt = make_optimizer(policy.module, 1e-3, 0.1)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(3, tok.vocab_size, (batch, 128), generator=g)
    y, w = torch.roll(x, -1, 1), torch.ones(batch, 128)

    def step(dtype: torch.dtype) -> Callable[[], None]:
        def run() -> None:
            policy.module.compute_dtype = dtype
            for _ in range(3):
                loss = masked_loss(policy.logits(x), y, w)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(policy.module.parameters(), 1.0)
                opt.step()

        return run

    for dt in DTYPES.values():  # warm-up
        step(dt)()
    med = interleaved({k: step(v) for k, v in DTYPES.items()}, repeats)
    return {
        "d_model": d,
        "layers": layers,
        "params": policy.num_parameters(),
        "tokens": batch * 128,
        **{f"{k}_step_ms": v / 3 * 1e3 for k, v in med.items()},
        "speedup": med["float32"] / med["bfloat16"],
    }


def sampling(
    d: int,
    layers: int,
    heads: int,
    batch: int,
    new_tokens: int,
    repeats: int,
    peaks: dict,
    bw: float,
) -> dict:
    tok = NoEosTokenizer()
    cfg = TransformerConfig(vocab_size=tok.vocab_size, d_model=d, n_layers=layers, n_heads=heads)
    policy = TinyPolicy.create(cfg, seed=0, tokenizer=tok)
    problems = [
        Problem(str(i), "bench", f"{(i * 7919) % 10 ** (1 + i % 6)}+{i * 31}=", "", 1)
        for i in range(batch)
    ]

    def run(dtype: torch.dtype, length: int) -> Callable[[], None]:
        def go() -> None:
            policy.module.compute_dtype = dtype
            generate(policy, problems, 1, seed=0, max_new_tokens=length, batch_size=batch)

        return go

    fns = {f"{k}_{n}": run(v, n) for k, v in DTYPES.items() for n in (1, new_tokens)}
    for fn in fns.values():
        fn()
    med = interleaved(fns, repeats)
    n_params, width = policy.num_parameters(), max(len(p.prompt) + 1 for p in problems)
    out = {"d_model": d, "layers": layers, "params": n_params, "batch": batch}
    for name, dtype in DTYPES.items():
        size = torch.finfo(dtype).bits // 8
        step_s = (med[f"{name}_{new_tokens}"] - med[f"{name}_1"]) / (new_tokens - 1)
        kv = 2 * cfg.n_layers * batch * cfg.d_model * (width + new_tokens / 2) * size
        flop_floor = 2 * n_params * batch / (peaks[name] * 1e9)
        read_floor = (n_params * size + kv) / bw
        out[name] = {
            "step_ms": step_s * 1e3,
            "tokens_per_s": batch * new_tokens / med[f"{name}_{new_tokens}"],
            "flop_floor_ms": flop_floor * 1e3,
            "read_floor_ms": read_floor * 1e3,
            "floor_ms": (flop_floor + read_floor) * 1e3,
            "x_floor": step_s / (flop_floor + read_floor),
        }
    out["speedup"] = out["float32"]["tokens_per_s"] and (
        out["bfloat16"]["tokens_per_s"] / out["float32"]["tokens_per_s"]
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    torch.manual_seed(0)
    peaks = {k: matmul_gflops(2048, 2048, 2048, v, args.repeats) for k, v in DTYPES.items()}
    small = {k: matmul_gflops(256, 256, 688, v, args.repeats) for k, v in DTYPES.items()}
    bw = read_bandwidth(args.repeats)
    train = [training(*s, args.repeats) for s in SHAPES]
    sample = [
        sampling(d, nl, nh, args.batch, args.new_tokens, args.repeats, peaks, bw)
        for d, nl, nh in ((128, 4, 4), (256, 4, 4))
    ]
    result = {
        "machine": machine(),
        "date": date.today().isoformat(),
        "matmul_2048_gflops": peaks,
        "matmul_decode_gflops": small,
        "read_gb_per_s": bw / 1e9,
        "training": train,
        "sampling": sample,
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['machine']}, {result['date']}; read bandwidth {bw / 1e9:.1f} GB/s\n")
    print("| measurement | float32 | bfloat16 | bf16 speed-up |\n|---|---|---|---|")
    print(
        f"| matmul 2048^3, GFLOP/s | {peaks['float32']:.0f} | {peaks['bfloat16']:.0f} | "
        f"{peaks['bfloat16'] / peaks['float32']:.2f}x |"
    )
    print(
        f"| matmul (256x256)@(256x688), GFLOP/s | {small['float32']:.0f} | {small['bfloat16']:.0f} | "
        f"{small['bfloat16'] / small['float32']:.2f}x |"
    )
    for r in train:
        print(
            f"| training step, d_model {r['d_model']} x {r['layers']} layers ({r['params']:,} params, "
            f"{r['tokens']} tokens), ms | {r['float32_step_ms']:.1f} | {r['bfloat16_step_ms']:.1f} | "
            f"{r['speedup']:.2f}x |"
        )
    for r in sample:
        f32, b16 = r["float32"], r["bfloat16"]
        print(
            f"| sampling, d_model {r['d_model']} ({r['params']:,} params), batch {r['batch']}: tokens/s | "
            f"{f32['tokens_per_s']:,.0f} | {b16['tokens_per_s']:,.0f} | {r['speedup']:.2f}x |"
        )
        print(
            f"| same: ms per decode step (its floor in that dtype; x floor) | {f32['step_ms']:.2f} "
            f"({f32['floor_ms']:.2f}; {f32['x_floor']:.1f}x) | {b16['step_ms']:.2f} ({b16['floor_ms']:.2f}; "
            f"{b16['x_floor']:.1f}x) | |"
        )


if __name__ == "__main__":
    main()
