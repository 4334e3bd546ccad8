"""Which learning rate should the compute-matched arm re-warm to? More pretraining of one finished sweep
cell's base, with the FLOPs its RL stage spent (experiments/matched.py), at several peak learning rates:
held-out loss and pass@1 / pass@64 on the sweep's main evaluation (200 test problems x 64 samples). A fair
comparison gives pretraining its best schedule; the sweep uses the winner. Usage:

    python benchmarks/matched_lr.py runs/sweep/cells/token_budget-500k__traces-shortcut 0.003 0.001 0.0003
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import machine
from reasonlab.config import load_config
from reasonlab.evaluate.runner import SamplingParams, evaluate_policy
from reasonlab.experiments.matched import MatchedConfig, matched_tokens
from reasonlab.pretrain.trainer import continue_pretraining
from reasonlab.tasks import get_task
from reasonlab.training.tracking import read_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cell", type=Path, help="a finished sweep cell (its base and RL stage)")
    parser.add_argument("peaks", type=float, nargs="+", help="peak learning rates to re-warm to")
    args = parser.parse_args()
    cfg = load_config(args.cell / "config.yaml")
    extra = matched_tokens(args.cell, cfg, MatchedConfig())["extra_tokens"]
    ec = cfg.eval
    task = get_task(cfg.task.name, **cfg.task.knobs)
    problems = task.sample("test", ec.n_problems, cfg.seed + 1)
    params = SamplingParams(
        n=ec.n_samples,
        seed=cfg.seed,
        temperature=ec.temperature,
        top_p=ec.top_p,
        max_new_tokens=ec.max_new_tokens,
        batch_size=ec.batch_size,
    )
    summary = json.loads((args.cell / "summary.json").read_text())
    print(f"{machine()}; {args.cell.name}: {extra:,} extra tokens (the FLOPs of its RL stage)")
    print(
        f"base: held-out loss {summary['base/loss']}, pass@1 {summary['base/pass@1']}, "
        f"pass@{ec.n_samples} {summary[f'base/pass@{ec.n_samples}']}"
    )
    print("| peak lr | pretraining (s) | held-out loss | pass@1 | pass@64 |")
    print("|---|---|---|---|---|")
    for peak in args.peaks:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            policy = continue_pretraining(cfg, args.cell, Path(tmp), extra, peak)
            seconds = time.perf_counter() - t
            loss = [
                r["eval/loss"]
                for r in read_metrics(Path(tmp) / "metrics.jsonl")
                if "eval/loss" in r
            ][-1]
        s = evaluate_policy(policy, task, problems, params)["summary"]
        print(
            f"| {peak:g} | {seconds:.0f} | {loss:.4f} | {s['pass@1']:.4f} | {s[f'pass@{ec.n_samples}']:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
