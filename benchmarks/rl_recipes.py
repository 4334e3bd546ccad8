"""RL recipes side by side on one base: what each algorithm and reward does to pass@1 and pass@64.

Every recipe starts from the same base model (a finished run folder's base/), runs the default
config's RL budget (rl.steps steps of rl.prompts_per_step x rl.group_size completions) with only its
own fields changed, and is evaluated with the main job's protocol (the same test problems, 64
samples each, greedy accuracy). Recipes run one after another in this process, so their RL
times are comparable; each one's run folder is kept under benchmarks/out/rl_recipes/<name>/.
Run: python benchmarks/rl_recipes.py --base benchmarks/out/run_default_seed0 [--only grpo,rloo]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from common import machine
from reasonlab.config import load_config
from reasonlab.experiments.main_job import evaluate_stage, summary_keys
from reasonlab.rl.trainer import train_rl

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "rl_recipes"

RECIPES: dict[str, list[str]] = {
    "grpo (default)": [],
    "grpo + process reward": ["rl.rewards={outcome: 1.0, process: 0.5}"],
    "grpo + first-error penalty": ["rl.rewards={outcome: 1.0, first_error: 0.5}"],
    "grpo + KL (beta 0.04, k3 in loss)": ["rl.beta=0.04"],
    "dr_grpo (no std, seq_sum_norm)": ["rl.advantage=dr_grpo", "rl.aggregation=seq_sum_norm"],
    "grpo, seq-mean (original GRPO loss)": [
        "rl.aggregation=seq_mean_token_mean",
        "rl.epsilon_high=0.2",
    ],
    "dapo (dynamic sampling, overlong penalty)": [
        "rl.dynamic_sampling=true",
        "rl.overlong=penalty",
    ],
    "gspo": [
        "rl.policy_loss=gspo",
        "rl.epsilon_low=0.0003",
        "rl.epsilon_high=0.0004",
        "rl.aggregation=seq_mean_token_mean",
        "rl.num_iterations=2",
        "rl.minibatches=2",
    ],
    "rloo": ["rl.advantage=rloo"],
    "reinforce_pp (batch whitening, KL in reward)": [
        "rl.advantage=reinforce_pp",
        "rl.beta=0.01",
        "rl.kl_in=reward",
        "rl.kl_estimator=k1",
    ],
    "reinforce_pp_baseline": ["rl.advantage=reinforce_pp_baseline"],
    "ppo (gae, critic)": ["rl.advantage=gae", "rl.lam=1.0"],
}
KEYS = (
    "pass@1",
    "pass@8",
    "pass@64",
    "maj@64",
    "greedy_pass@1",
    "shortcut_rate",
    "stepwise_accuracy",
    "process_valid_rate",
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--base",
        default=str(ROOT / "benchmarks" / "out" / "run_default_seed0"),
        help="A finished run folder (its base/ and eval/base.json are used).",
    )
    ap.add_argument("--only", default="", help="Comma-separated recipe names (prefix match).")
    args = ap.parse_args()
    base_run = Path(args.base)
    cfg0 = load_config(base_run / "config.yaml")
    base = json.loads((base_run / "summary.json").read_text())
    rows = [{"recipe": "base (no RL)", "rl_s": 0.0, **{k: base.get(f"base/{k}") for k in KEYS}}]
    chosen = [
        n for n in RECIPES if not args.only or any(n.startswith(o) for o in args.only.split(","))
    ]
    for name in chosen:
        cfg = load_config(base_run / "config.yaml", RECIPES[name] + ["eval.levels=[]"])
        run_dir = OUT / _slug(name)
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        t = time.perf_counter()
        policy = train_rl(cfg, run_dir, base_run / "base")
        rl_s = time.perf_counter() - t
        s = summary_keys("rl", evaluate_stage(policy, cfg, run_dir, "rl"))
        rows.append({"recipe": name, "rl_s": round(rl_s, 1), **{k: s.get(f"rl/{k}") for k in KEYS}})
        print(json.dumps(rows[-1]), flush=True)
    result = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "base": str(base_run),
        "steps": cfg0.rl.steps,
        "rows": rows,
    }
    (OUT.parent / "rl_recipes.json").write_text(json.dumps(result, indent=2))
    print(
        f"\nbase {base_run}, {cfg0.rl.steps} RL steps each, {result['machine']}, {result['date']}\n"
    )
    print("| recipe | RL time | " + " | ".join(KEYS) + " |")
    print("|---|---|" + "---|" * len(KEYS))
    for r in rows:
        cells = " | ".join("-" if r[k] is None else f"{r[k]:.3f}" for k in KEYS)
        print(f"| {r['recipe']} | {r['rl_s']:.0f} s | {cells} |")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


if __name__ == "__main__":
    main()
