"""Rollout workers on Ray: an RL step with 0, 1 and 2 workers, the weight broadcast, sync vs async RL.

Three measurements, on a local Ray started by this script (one CPU per worker, `--worker-cpus`; an
object store of `--store-mb`, large enough for the 0.5B model's weights):
  * RL step: `train_rl` of the default config (configs/default.yaml: its model shape, task and RL
    settings, random-init weights, `--prompts` x `--group` completions of up to `--new-tokens` tokens)
    with rl.rollout_workers 0 (sampling in this process), 1 and 2. A step is the time between two
    `on_step` callbacks: sampling, judging, the update, publishing the weights, logging. Median of
    `--steps` steps after `--warmup`; also the medians of the step's sample / update parts.
  * Weight broadcast: `RolloutWorkers.publish` (the state dict as numpy arrays, one `ray.put`) and
    `RolloutWorkers.load` (every worker fetches them and copies them into its model), for the default
    tiny model (float32) and for a Hugging Face Qwen2 of Qwen2.5-0.5B's shape (896 wide, 24 layers, 14
    heads, 2 KV heads, SwiGLU 4864, vocab 151,936, tied embeddings: 494M parameters) built from a
    config with random weights and saved locally, in bfloat16 (`--hf-dtype`). Median of `--repeats`.
  * Sync vs async: RL steps per minute of the same run with `--async-workers` workers, rl.async off
    and on (async: step t+1's draw runs on the workers while step t updates).
Other processes' CPU use during each measurement is recorded (`foreign_cores`): rerun when it is not
near 0. Prints a summary and writes benchmarks/out/ray_rollouts.json. Usage:

    .venv/bin/python benchmarks/ray_rollouts.py                       # the full measurement
    .venv/bin/python benchmarks/ray_rollouts.py --prompts 2 --group 2 --new-tokens 4 --steps 2 \\
        --warmup 1 --hf-layers 1 --hf-vocab 1000 --repeats 1          # a quick check that it runs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import ray
import torch

from common import cpu_busy, machine, wait_quiet
from reasonlab.config import RunConfig, load_config
from reasonlab.models import CharTokenizer, TinyPolicy, TransformerConfig, load_policy
from reasonlab.rl.rollout_workers import RolloutWorkers, pack, packed_bytes
from reasonlab.rl.trainer import train_rl

OUT = Path(__file__).parent / "out" / "ray_rollouts.json"
QWEN2_05B = {  # Qwen2.5-0.5B's config.json, the shape only
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}


def run_config(
    args: argparse.Namespace, workers: int, run_async: bool = False, dtype: str = "auto"
) -> RunConfig:
    """The default config with this benchmark's step shape, `workers` rollout workers, on CPU."""
    return load_config(
        None,
        [
            "device=cpu",
            f"dtype={dtype}",
            f"rl.steps={args.warmup + args.steps}",
            f"rl.prompts_per_step={args.prompts}",
            f"rl.group_size={args.group}",
            f"rl.max_new_tokens={args.new_tokens}",
            f"rl.checkpoint_every={args.warmup + args.steps}",  # one checkpoint, after the timing
            f"rl.rollout_workers={workers}",
            f"rl.async={str(run_async).lower()}",
            f"ray.rollout_cpus={args.worker_cpus}",
            f"ray.object_store_mb={args.store_mb}",
        ],
    )


def tiny_base(cfg: RunConfig, folder: Path) -> Path:
    """A random-init tiny transformer of the config's shape, saved as a base model folder."""
    tok = CharTokenizer()
    m = cfg.model
    shape = TransformerConfig(
        vocab_size=tok.vocab_size,
        d_model=m.d_model,
        n_layers=m.n_layers,
        n_heads=m.n_heads,
        max_seq_len=m.max_seq_len,
    )
    TinyPolicy.create(shape, seed=cfg.seed).save(folder)
    return folder


def timed_run(cfg: RunConfig, base: Path, warmup: int) -> dict[str, Any]:
    """`train_rl` in a fresh folder; the medians of its steps after `warmup` (on_step to on_step)."""
    stamps: list[float] = []
    rows: list[dict[str, Any]] = []

    def on_step(done: int, total: int, row: dict[str, Any]) -> None:
        stamps.append(time.perf_counter())
        rows.append(row)

    with tempfile.TemporaryDirectory() as tmp:
        train_rl(cfg, Path(tmp), base, on_step=on_step)
        steps = [b - a for a, b in zip(stamps, stamps[1:])][warmup - 1 if warmup else 0 :]
    kept = rows[len(rows) - len(steps) :]
    median = statistics.median(steps)
    return {
        "median_step_s": median,
        "steps_per_minute": 60.0 / median,
        "steps_s": steps,
        "median_sample_s": statistics.median(r["rl/sample_s"] for r in kept),
        "median_update_s": statistics.median(r["rl/update_s"] for r in kept),
        "staleness": [r.get("rollout/staleness") for r in rows],
        "reward_mean": [r["reward/mean"] for r in rows],
    }


def measured(fn, *args: Any) -> dict[str, Any]:
    """fn(*args), and the cores other processes kept busy meanwhile."""
    busy0, own0, t0 = cpu_busy(), time.process_time(), time.perf_counter()
    out = fn(*args)
    wall = time.perf_counter() - t0
    foreign = (cpu_busy() - busy0) - (time.process_time() - own0)
    return {**out, "wall_s": wall, "foreign_cores": max(0.0, foreign / wall)}


def broadcast(cfg: RunConfig, base: Path, repeats: int) -> dict[str, Any]:
    """Median seconds of `publish` (ray.put) and `load` (every worker fetches and copies them)."""
    policy = load_policy(base, options=cfg.model_options())
    put, load = [], []
    with RolloutWorkers(cfg, base, policy, step=0) as workers:
        workers.load()
        for i in range(repeats):
            t = time.perf_counter()
            workers.publish(policy, step=i + 1)
            put.append(time.perf_counter() - t)
            t = time.perf_counter()
            workers.load()
            load.append(time.perf_counter() - t)
            assert workers.weights_steps() == [i + 1] * len(workers.actors)
    return {
        "workers": cfg.rl.rollout_workers,
        "parameters": sum(p.numel() for p in policy.module.parameters()),
        "megabytes": packed_bytes(pack(policy.module)) / 1e6,
        "dtype": str(next(policy.module.parameters()).dtype).removeprefix("torch."),
        "median_put_s": statistics.median(put),
        "median_load_s": statistics.median(load),
        "median_total_s": statistics.median(a + b for a, b in zip(put, load)),
        "put_s": put,
        "load_s": load,
    }


def qwen2_base(folder: Path, layers: int, vocab: int, dtype: torch.dtype) -> Path:
    """A Qwen2 causal LM of Qwen2.5-0.5B's shape (with `layers` layers and a `vocab` vocabulary),
    random weights, saved with a character tokenizer (benchmarks/rl_step.py's) as a local HF folder."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from rl_step import hf_tokenizer

    tok = hf_tokenizer()
    config = Qwen2Config(
        **QWEN2_05B,
        num_hidden_layers=layers,
        vocab_size=max(vocab, len(tok)),
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(dtype)
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    del model
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=32, help="prompts per RL step")
    ap.add_argument("--group", type=int, default=8, help="completions per prompt")
    ap.add_argument("--new-tokens", type=int, default=64, help="longest completion")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per run")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--workers", default="0,1,2", help="rollout worker counts of the RL step")
    ap.add_argument("--async-workers", type=int, default=1, help="workers of the sync/async runs")
    ap.add_argument("--worker-cpus", type=float, default=1.0, help="ray.rollout_cpus")
    ap.add_argument("--repeats", type=int, default=5, help="broadcasts timed per model")
    ap.add_argument("--hf-layers", type=int, default=24, help="layers of the Qwen2 model")
    ap.add_argument("--hf-vocab", type=int, default=151936, help="vocabulary of the Qwen2 model")
    ap.add_argument("--hf-dtype", choices=["bfloat16", "float32"], default="bfloat16")
    ap.add_argument("--skip-hf", action="store_true", help="no Hugging Face broadcast")
    ap.add_argument("--store-mb", type=int, default=4096, help="Ray object store (MiB)")
    ap.add_argument("--quiet-wait", type=float, default=30.0, help="max s to wait for an idle CPU")
    args = ap.parse_args()
    if args.warmup < 1:
        ap.error("--warmup must be at least 1 (a step is timed from the end of the one before)")
    counts = [int(c) for c in args.workers.split(",")]

    ray.init(
        num_cpus=max(
            os.cpu_count() or 1, int(max(counts + [args.async_workers]) * args.worker_cpus)
        ),
        include_dashboard=False,
        object_store_memory=args.store_mb * 1024**2,
        log_to_driver=False,
        configure_logging=False,
    )
    result: dict[str, Any] = {
        "date": date.today().isoformat(),
        "machine": machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "args": vars(args),
    }
    with tempfile.TemporaryDirectory() as tmp:
        cfg0 = run_config(args, 0)
        base = tiny_base(cfg0, Path(tmp) / "base")
        result["model"] = cfg0.model.model_dump()
        result["rl_step"] = {}
        for n in counts:
            wait_quiet(args.quiet_wait)
            result["rl_step"][str(n)] = measured(timed_run, run_config(args, n), base, args.warmup)
            print(f"rl step, {n} workers: {result['rl_step'][str(n)]['median_step_s']:.3f} s")
        result["sync_async"] = {}
        for mode in ("sync", "async"):
            wait_quiet(args.quiet_wait)
            cfg = run_config(args, args.async_workers, run_async=mode == "async")
            result["sync_async"][mode] = measured(timed_run, cfg, base, args.warmup)
            print(f"{mode}: {result['sync_async'][mode]['steps_per_minute']:.1f} RL steps/min")
        bcast = max(counts + [1])
        result["broadcast"] = {}
        wait_quiet(args.quiet_wait)
        result["broadcast"]["tiny"] = measured(
            broadcast, run_config(args, bcast), base, args.repeats
        )
        if not args.skip_hf:
            hf_dtype = getattr(torch, args.hf_dtype)
            folder = qwen2_base(Path(tmp) / "qwen2", args.hf_layers, args.hf_vocab, hf_dtype)
            cfg = run_config(args, bcast, dtype=args.hf_dtype)
            wait_quiet(args.quiet_wait)
            result["broadcast"]["qwen2_0.5b_shape"] = measured(broadcast, cfg, folder, args.repeats)
        for name, b in result["broadcast"].items():
            print(
                f"broadcast {name} ({b['parameters'] / 1e6:.1f}M params, {b['megabytes']:.0f} MB "
                f"{b['dtype']}, {b['workers']} workers): put {b['median_put_s']:.3f} s + load "
                f"{b['median_load_s']:.3f} s"
            )
    ray.shutdown()
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
