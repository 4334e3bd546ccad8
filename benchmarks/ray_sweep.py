"""A sweep on Ray against the same sweep in one process: wall time of `reasonlab sweep` on a 4-cell grid of
small bases (2 model widths x 2 pretraining learning rates, each cell a short pretraining, evaluation and
RL stage), run as a user runs it (one process, torch's default threads) and with `--ray local --ray-cpus
N` (N cells at once, each a task of `ray.task_cpus=1`, so one torch thread each), and, to separate
what Ray's scheduling gains from what torch's threads gain, in one process with one thread
(OMP_NUM_THREADS=1). The Ray wall time
includes starting and stopping the local Ray. Median of `--repeats` runs of each, alternating, each into
a fresh folder. Before each run the script waits (up to `--quiet-wait` s) for the machine to be quiet
and records the cores other processes were using then (`load_before`: rerun when it is not near 0; the
command's own Ray processes make a load measured during the run meaningless). Prints a table and writes
benchmarks/out/ray_sweep.json. Usage:

    .venv/bin/python benchmarks/ray_sweep.py                                 # the full measurement
    .venv/bin/python benchmarks/ray_sweep.py --tokens 5000 --rl-steps 1 --repeats 1 --quiet-wait 0
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from common import machine, wait_quiet

OUT = Path(__file__).parent / "out" / "ray_sweep.json"


def sweep_file(folder: Path, args: argparse.Namespace) -> Path:
    """The 4-cell sweep: widths x learning rates, every stage small."""
    body = {
        "name": "ray-bench",
        "set": {
            "device": "cpu",
            "pretrain": {
                "token_budget": args.tokens,
                "batch_size": 16,
                "seq_len": 64,
                "eval_every": 100,
                "checkpoint_every": 100,
                "corpus_docs": 2000,
            },
            "eval": {"n_problems": 32, "n_samples": 8, "levels": [], "max_new_tokens": 32},
            "rl.steps": args.rl_steps,
            "rl.prompts_per_step": 8,
            "rl.group_size": 4,
            "rl.max_new_tokens": 32,
            "judge.heads": [],
            "ray.task_cpus": 1,
        },
        "grid": {
            "model": [
                {"d_model": 48, "n_layers": 2, "n_heads": 2},
                {"d_model": 64, "n_layers": 2, "n_heads": 2},
            ],
            "pretrain.lr": [0.003, 0.001],
        },
        "labels": {"model": ["w48", "w64"]},
    }
    path = folder / "ray_bench.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def one_run(
    path: Path, out: Path, ray_cpus: int | None, load_before: float, threads: int | None = None
) -> dict[str, Any]:
    """Wall seconds of one `reasonlab sweep` into a fresh `out` (torch on `threads` threads when given,
    else its default), and its cells' statuses and times."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "reasonlab.cli", "sweep", "--config", str(path), "--out", str(out)]
    if ray_cpus is not None:
        cmd += ["--ray", "local", "--ray-cpus", str(ray_cpus)]
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    cells = json.loads((out / "sweep.json").read_text())["cells"]
    return {
        "wall_s": round(wall, 1),
        "load_before": round(load_before, 2),
        "statuses": [c["status"] for c in cells],
        "cell_wall_s": [c["timings"]["wall_s"] for c in cells],
        "nodes": len({c.get("node") for c in cells}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, default=1_500_000, help="pretraining tokens per cell")
    ap.add_argument("--rl-steps", type=int, default=30, help="RL steps per cell")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray (cells at once)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--quiet-wait", type=float, default=60, help="longest wait for a quiet machine (s)"
    )
    args = ap.parse_args()
    modes = {
        "one process": (None, None),
        "ray": (args.cpus, None),
        "one process, 1 thread": (None, 1),
    }
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory(prefix="ray-bench-") as tmp:
        path = sweep_file(Path(tmp), args)
        for i in range(args.repeats):
            for mode, (cpus, threads) in modes.items():
                load = wait_quiet(args.quiet_wait)
                out = Path(tmp) / f"out-{i}-{len(runs[mode])}-{mode.replace(' ', '_')}"
                runs[mode].append(one_run(path, out, cpus, load, threads))
                print(f"{mode} run {i + 1}: {runs[mode][-1]}", flush=True)
    median = {mode: statistics.median(r["wall_s"] for r in rs) for mode, rs in runs.items()}
    result = {
        "machine": machine(),
        "date": date.today().isoformat(),
        "settings": vars(args),
        "runs": runs,
        "median_wall_s": median,
        "speedup": round(median["one process"] / median["ray"], 2),
        "speedup_same_threads": round(median["one process, 1 thread"] / median["ray"], 2),
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"\n{result['machine']}, {result['date']}; 4 cells, {args.tokens:,} tokens, RL {args.rl_steps}"
    )
    print("| mode | wall, median (s) | runs (s) | load before, max (cores) |\n|---|---|---|---|")
    for mode, rs in runs.items():
        label = f"--ray local --ray-cpus {args.cpus}" if mode == "ray" else mode
        walls = ", ".join(f"{r['wall_s']:.0f}" for r in rs)
        load = max(r["load_before"] for r in rs)
        print(f"| {label} | {median[mode]:.1f} | {walls} | {load:.2f} |")
    print(
        f"speed-up on Ray: {result['speedup']:.2f}x over one process, "
        f"{result['speedup_same_threads']:.2f}x over one process of one thread per cell"
    )


if __name__ == "__main__":
    main()
