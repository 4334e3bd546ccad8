"""Training throughput of the tiny transformer: tokens/s and achieved FLOP/s as a share of the
machine's fp32 matmul peak (measured in the same run).

FLOPs per step = 6 x (non-embedding parameters + the output head) x tokens
               + 12 x layers x d_model x seq_len x tokens / 2 (causal attention scores and values,
               forward and backward; PaLM's appendix B count, halved for the causal mask).
Run: python benchmarks/training.py [--d-model 128 --layers 4 --batch 32 --seq 128]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from common import machine, matmul_peak_gflops
from reasonlab.models import CharTokenizer, TinyPolicy, TransformerConfig
from reasonlab.pretrain.trainer import masked_loss
from reasonlab.training.optim import make_optimizer


def step_flops(policy: TinyPolicy, cfg: TransformerConfig, batch: int, seq: int) -> float:
    emb = cfg.vocab_size * cfg.d_model
    head = emb  # the tied output projection still costs a matmul per token
    dense = policy.num_parameters() - emb + head
    tokens = batch * seq
    return 6 * dense * tokens + 12 * cfg.n_layers * cfg.d_model * seq * tokens / 2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    tok = CharTokenizer()
    cfg = TransformerConfig(
        vocab_size=tok.vocab_size,
        d_model=args.d_model,
        n_layers=args.layers,
        n_heads=args.heads,
        max_seq_len=args.seq,
    )
    policy = TinyPolicy.create(cfg, seed=0)
    opt = make_optimizer(policy.module, 1e-3, 0.1)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(4, tok.vocab_size, (args.batch, args.seq + 1), generator=g)
    w = torch.ones(args.batch, args.seq)

    def step() -> None:
        loss = masked_loss(policy.logits(x[:, :-1]), x[:, 1:], w)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.module.parameters(), 1.0)
        opt.step()

    peak = matmul_peak_gflops()
    for _ in range(3):
        step()
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    peak_after = matmul_peak_gflops()
    sec = statistics.median(times)
    flops = step_flops(policy, cfg, args.batch, args.seq)
    peak = statistics.median([peak, peak_after])
    result = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "params": policy.num_parameters(),
        "batch": args.batch,
        "seq": args.seq,
        "median_step_s": sec,
        "tokens_per_s": args.batch * args.seq / sec,
        "achieved_gflops": flops / sec / 1e9,
        "matmul_peak_gflops": peak,
        "fraction_of_peak": flops / sec / 1e9 / peak,
    }
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "training.json").write_text(json.dumps(result, indent=2))
    print(
        "| params | batch x seq | median step | tokens/s | achieved GFLOP/s | matmul peak GFLOP/s | share of peak |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {result['params']:,} | {args.batch} x {args.seq} | {sec * 1000:.0f} ms | {result['tokens_per_s']:,.0f} "
        f"| {result['achieved_gflops']:.0f} | {peak:.0f} | {result['fraction_of_peak']:.0%} |"
    )


if __name__ == "__main__":
    main()
