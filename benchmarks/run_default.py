"""The main job as a user runs it: wall time and peak memory of `reasonlab run` on a config, and
the headline numbers of the base and RL models (pass@1, pass@64, greedy accuracy).

Peak memory is the maximum resident set size reported by GNU time for the whole process.
Run: python benchmarks/run_default.py [--config configs/default.yaml] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import machine

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(ROOT / "configs" / "default.yaml"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    name = Path(args.config).stem
    out = ROOT / "benchmarks" / "out" / f"run_{name}_seed{args.seed}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "reasonlab.cli",
        "run",
        "--config",
        args.config,
        "--out",
        str(out),
        "--set",
        f"seed={args.seed}",
    ]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"reasonlab run failed:\n{proc.stderr[-2000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    s = json.loads((out / "summary.json").read_text())
    row = {
        "config": name,
        "seed": args.seed,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "wall_s": round(wall, 1),
        "peak_rss_mib": round(rss_kb / 1024),
        "pretrain_s": s["time/pretrain_s"],
        "eval_s": s["time/eval_s"],
        "rl_s": s.get("time/rl_s"),
        "rl_eval_s": s.get("time/rl_eval_s"),
        "params": s["model/params"],
        **{
            f"{m}/{k}": s.get(f"{m}/{k}")
            for m in ("base", "rl")
            for k in ("pass@1", "pass@64", "greedy_pass@1")
        },
    }
    (out.parent / f"run_{name}_seed{args.seed}.json").write_text(json.dumps(row, indent=2))
    print(
        "| config | seed | wall | peak RSS | pretrain | RL | evals | pass@1 base -> RL | pass@64 base -> RL "
        "| greedy base -> RL |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {name} | {args.seed} | {row['wall_s']:.0f} s | {row['peak_rss_mib']} MiB | {row['pretrain_s']:.0f} s "
        f"| {row['rl_s'] or 0:.0f} s | {row['eval_s'] + (row['rl_eval_s'] or 0):.0f} s "
        f"| {_pair(row, 'pass@1')} | {_pair(row, 'pass@64')} | {_pair(row, 'greedy_pass@1')} |"
    )


def _pair(row: dict, key: str) -> str:
    base, rl = row[f"base/{key}"], row[f"rl/{key}"]
    return f"{base:.3f}" if rl is None else f"{base:.3f} -> {rl:.3f}"


if __name__ == "__main__":
    main()
