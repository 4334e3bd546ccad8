"""Sampling throughput: reasonlab's builtin sampler vs Hugging Face `generate`, and vs the FLOP floor.

Builds our tiny transformer and a Hugging Face LlamaForCausalLM of the same shape (random weights,
no hub access), samples the same left-padded prompts with both, and reports in one run:
  1. tokens/s at batch 64 (ours vs `model.generate(do_sample=True)`; EOS disabled on both sides so
     every sequence runs exactly --new-tokens steps);
  2. at batch 256, our ms per decode step (marginal cost: time(L) - time(1), divided by L - 1)
     against the FLOP floor 2 x parameters x batch / peak, where the peak is a big fp32 matmul
     measured in the same run. The KV-cache bytes each step must read are reported beside it.
Each number is the median of --repeats runs (ours and HF interleaved). The CPU time other
processes used during each run is recorded, since a busy neighbour distorts 2-thread timings.
Prints a Markdown table and writes benchmarks/out/sampling.json. Usage:

    .venv/bin/python benchmarks/sampling.py [--repeats 5] [--new-tokens 64] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections.abc import Callable
from datetime import date
from pathlib import Path

import torch

from common import machine, matmul_peak_gflops, timed, wait_quiet
from reasonlab.models import CharTokenizer, TinyPolicy, TransformerConfig
from reasonlab.sampling import generate
from reasonlab.types import Problem

OUT = Path(__file__).parent / "out" / "sampling.json"


class NoEosTokenizer(CharTokenizer):
    """EOS id that is never sampled, so every sequence runs the full length (as HF with EOS off)."""

    @property
    def eos_id(self) -> int:
        return -1


def make_problems(count: int) -> list[Problem]:
    """Prompts of 8 to 26 characters, so batches are left-padded."""
    return [
        Problem(
            id=str(i),
            task="bench",
            prompt=f"{(i * 7919) % 10 ** (1 + i % 6)}+{i * 31}=" + "?" * (i % 9),
            answer="",
            difficulty=1,
        )
        for i in range(count)
    ]


def build_models(d_model: int, n_layers: int, n_heads: int, d_ff: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = NoEosTokenizer()
    cfg = TransformerConfig(
        vocab_size=tok.vocab_size, d_model=d_model, n_layers=n_layers, n_heads=n_heads, d_ff=d_ff
    )
    ours = TinyPolicy.create(cfg, seed=0, tokenizer=tok)
    hf_cfg = LlamaConfig(
        vocab_size=tok.vocab_size,
        hidden_size=d_model,
        intermediate_size=d_ff,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=n_heads,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        rms_norm_eps=1e-6,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=None,
    )
    torch.manual_seed(0)
    hf = LlamaForCausalLM(hf_cfg).eval()
    hf.generation_config.eos_token_id = None
    return ours, hf


def hf_inputs(tok: CharTokenizer, problems: list[Problem]) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [[tok.bos_id, *tok.encode(p.prompt)] for p in problems]
    width = max(map(len, rows))
    ids = torch.tensor([[tok.pad_id] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return ids, mask


def run_hf(hf, ids: torch.Tensor, mask: torch.Tensor, new_tokens: int) -> None:
    with torch.inference_mode():
        out = hf.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=True,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            top_k=0,
            top_p=1.0,
            temperature=1.0,
            pad_token_id=0,
        )
    assert out.shape[1] == ids.shape[1] + new_tokens


def run_ours(policy, problems: list[Problem], new_tokens: int) -> None:
    rollouts = generate(
        policy, problems, 1, seed=0, max_new_tokens=new_tokens, batch_size=len(problems)
    )
    assert all(len(r.token_ids) == new_tokens for r in rollouts)


def median_of(
    fn: Callable[[], object], repeats: int, quiet_wait: float
) -> tuple[float, float, list[float]]:
    """Median wall seconds, median foreign load, and every run's seconds."""
    walls, foreign = [], []
    for _ in range(repeats):
        wait_quiet(quiet_wait)
        w, f = timed(fn)
        walls.append(w)
        foreign.append(f)
    return statistics.median(walls), statistics.median(foreign), walls


def read_bandwidth(repeats: int, mbytes: int = 128) -> float:
    """Bytes/s of summing a tensor far larger than the caches: the ceiling for streaming the KV cache."""
    x = torch.randn(mbytes * 2**20 // 4)
    x.sum()
    return x.numel() * 4 / statistics.median(timed(x.sum)[0] for _ in range(repeats))


def versus_hf(
    ours, hf, problems: list[Problem], new_tokens: int, repeats: int, quiet_wait: float
) -> dict:
    """Tokens/s of our sampler and of HF generate on the same prompts, runs interleaved."""
    ids, mask = hf_inputs(ours.tokenizer, problems)
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "hf": []}
    for _ in range(repeats):
        wait_quiet(quiet_wait)
        runs["ours"].append(timed(lambda: run_ours(ours, problems, new_tokens)))
        wait_quiet(quiet_wait)
        runs["hf"].append(timed(lambda: run_hf(hf, ids, mask, new_tokens)))
    tokens = len(problems) * new_tokens
    out = {"batch": len(problems)}
    for name, rs in runs.items():
        out[f"{name}_tokens_per_s"] = tokens / statistics.median(w for w, _ in rs)
        out[f"{name}_runs_s"] = [w for w, _ in rs]
        out[f"{name}_foreign_cores"] = statistics.median(f for _, f in rs)
    out["speedup"] = out["ours_tokens_per_s"] / out["hf_tokens_per_s"]
    return out


def versus_floor(
    ours,
    problems: list[Problem],
    new_tokens: int,
    repeats: int,
    quiet_wait: float,
    peak: float,
    bandwidth: float,
) -> dict:
    """Marginal ms per decode step, (time(L) - time(1)) / (L - 1), against the FLOP and KV-read floors."""
    full, full_f, full_runs = median_of(
        lambda: run_ours(ours, problems, new_tokens), repeats, quiet_wait
    )
    one, one_f, _ = median_of(lambda: run_ours(ours, problems, 1), repeats, quiet_wait)
    cfg, b, n = ours.config, len(problems), ours.num_parameters()
    step_ms = (full - one) / (new_tokens - 1) * 1e3
    width = max(len(p.prompt) + 1 for p in problems)  # left-padded prompt width, BOS included
    kv_bytes = (
        2 * cfg.n_layers * b * cfg.d_model * (width + new_tokens / 2) * 4
    )  # read per step, on average
    real_tokens = sum(len(p.prompt) + 1 for p in problems) + b * new_tokens
    return {
        "batch": b,
        "step_ms": step_ms,
        "flop_floor_ms": 2 * n * b / peak * 1e3,
        "kv_read_mb_per_step": kv_bytes / 1e6,
        "kv_read_floor_ms": kv_bytes / bandwidth * 1e3,
        "whole_call_s": full,
        "whole_call_runs_s": full_runs,
        "whole_call_flop_floor_s": 2 * n * real_tokens / peak,
        "tokens_per_s": b * new_tokens / full,
        "foreign_cores": max(full_f, one_f),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--small-batch", type=int, default=64)
    ap.add_argument("--large-batch", type=int, default=256)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--n-layers", type=int, default=4)
    ap.add_argument("--n-heads", type=int, default=4)
    ap.add_argument("--d-ff", type=int, default=688, help="SwiGLU width (~8/3 d_model, as Llama)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument(
        "--quiet-wait", type=float, default=60.0, help="max seconds to wait for an idle CPU per run"
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    L, R, W = args.new_tokens, args.repeats, args.quiet_wait

    ours, hf = build_models(args.d_model, args.n_layers, args.n_heads, args.d_ff)
    small, large = make_problems(args.small_batch), make_problems(args.large_batch)
    run_ours(ours, small[:8], 4)  # warm-up
    run_hf(hf, *hf_inputs(ours.tokenizer, small[:8]), 4)
    wait_quiet(W)
    peak = matmul_peak_gflops(repeats=max(R, 5)) * 1e9
    bandwidth = read_bandwidth(max(R, 5))
    result = {
        "date": date.today().isoformat(),
        "machine": machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "model": {
            "d_model": args.d_model,
            "n_layers": args.n_layers,
            "n_heads": args.n_heads,
            "d_ff": args.d_ff,
            "vocab": ours.tokenizer.vocab_size,
            "params_ours": ours.num_parameters(),
            "params_hf": sum(p.numel() for p in hf.parameters()),
        },
        "new_tokens": L,
        "repeats": R,
        "matmul_peak_gflops": peak / 1e9,
        "read_bandwidth_gbs": bandwidth / 1e9,
        "batch_small": versus_hf(ours, hf, small, L, R, W),
        "batch_large": versus_floor(ours, large, L, R, W, peak, bandwidth),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))


def markdown(r: dict) -> str:
    s, g, m = r["batch_small"], r["batch_large"], r["model"]
    return "\n".join(
        [
            f"Model: d_model {m['d_model']}, {m['n_layers']} layers, {m['n_heads']} heads, d_ff {m['d_ff']}, "
            f"vocab {m['vocab']}: {m['params_ours']:,} parameters (HF: {m['params_hf']:,}); {r['new_tokens']} new "
            f"tokens per sequence; median of {r['repeats']}; {r['machine']}; fp32 matmul peak "
            f"{r['matmul_peak_gflops']:.0f} GFLOP/s; read bandwidth {r['read_bandwidth_gbs']:.1f} GB/s.",
            "",
            "| measurement | reasonlab | reference | ratio |",
            "|---|---|---|---|",
            f"| batch {s['batch']}: tokens/s, ours vs HF `generate` | {s['ours_tokens_per_s']:,.0f} | "
            f"{s['hf_tokens_per_s']:,.0f} | {s['speedup']:.2f}x faster |",
            f"| batch {g['batch']}: ms per decode step vs FLOP floor | {g['step_ms']:.2f} | "
            f"{g['flop_floor_ms']:.2f} | {g['step_ms'] / g['flop_floor_ms']:.2f}x floor |",
            f"| batch {g['batch']}: ms per decode step vs FLOP + KV-read floor | {g['step_ms']:.2f} | "
            f"{g['flop_floor_ms'] + g['kv_read_floor_ms']:.2f} | "
            f"{g['step_ms'] / (g['flop_floor_ms'] + g['kv_read_floor_ms']):.2f}x floor |",
            f"| batch {g['batch']}: whole call (prefill included), s vs FLOP floor | {g['whole_call_s']:.3f} | "
            f"{g['whole_call_flop_floor_s']:.3f} | {g['whole_call_s'] / g['whole_call_flop_floor_s']:.2f}x floor |",
            "",
            f"The KV-read floor is the ~{g['kv_read_mb_per_step']:.0f} MB of keys and values a decode step reads at "
            f"batch {g['batch']}, at the measured read bandwidth. Other processes' CPU use during the runs (cores): "
            f"ours {s['ours_foreign_cores']:.2f}, HF {s['hf_foreign_cores']:.2f}, batch {g['batch']} "
            f"{g['foreign_cores']:.2f}.",
        ]
        + (
            []
            if max(s["ours_foreign_cores"], s["hf_foreign_cores"], g["foreign_cores"]) < 0.25
            else [
                "",
                "WARNING: other processes kept a core busy during the runs; with torch's default threads every "
                "parallel op then waits for that core, so these timings are distorted. Rerun on an idle machine.",
            ]
        )
    )


if __name__ == "__main__":
    main()
