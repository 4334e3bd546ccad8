"""Judges on the default task: exact-label vs Monte-Carlo-label PRMs, best-of-N, and RL with a learned reward.

From one finished run folder's base model (default: the seed-0 default run):
1. exact labels: the main job's judges stage (PRM, ORM, and the base as a zero-shot likelihood judge)
   on `judge.train_problems` problems, and a PRM on `--mc-problems` problems for a like-for-like row;
2. Monte-Carlo labels on the same `--mc-problems` problems with N continuations per step prefix
   (N from `--continuations`): their agreement with the exact labels, the PRM trained on them, and
   the seconds the labelling took;
3. every judge measured with the main job's protocol: ProcessBench F1 on held-out injected errors,
   step/outcome AUROC, and best-of-16 on the base's samples vs majority vote vs pass@1;
4. RL from the base with the exact PRM watching (rl.judge): once with the verifier's reward and once
   with the PRM's score as the only reward, 100 steps each, so the hacking gap (judge score minus
   verifier truth on the same rollouts) of the two can be compared step by step; both RL models are
   evaluated with the main job's protocol.
Everything runs in this process, one stage after another. Results: benchmarks/out/judges.json and
benchmarks/out/judges_hacking.png; run folders under benchmarks/out/judges/.
Run: python benchmarks/judges.py [--base benchmarks/out/run_default_seed0] [--continuations 1,4,16]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from common import machine
from reasonlab.config import load_config
from reasonlab.experiments.main_job import evaluate_stage
from reasonlab.experiments.main_job import summary_keys as eval_keys
from reasonlab.judges.likelihood import LikelihoodJudge
from reasonlab.judges.models import LearnedJudge
from reasonlab.judges.stage import (
    evaluate_judges,
    run_judges,
    summary_keys,
    training_records,
    tune_and_save,
)
from reasonlab.judges.train import train_reward_model
from reasonlab.models import load_policy
from reasonlab.rl.trainer import train_rl
from reasonlab.tasks import get_task

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"


def label_agreement(exact: list, other: list) -> dict[str, float]:
    """Share of step labels and of earliest-wrong-step indices on which two labellings agree."""
    pairs = [(a, b) for a, b in zip(exact, other) if a.labels is not None and b.labels is not None]
    steps = [(x, y) for a, b in pairs for x, y in zip(a.labels, b.labels)]
    return {
        "step_agreement": sum(x == y for x, y in steps) / max(len(steps), 1),
        "first_error_agreement": sum(a.first_error == b.first_error for a, b in pairs)
        / max(len(pairs), 1),
        "mc_says_wrong_where_exact_right": sum(x and not y for x, y in steps) / max(len(steps), 1),
        "mc_says_right_where_exact_wrong": sum(y and not x for x, y in steps) / max(len(steps), 1),
    }


def train_prm(cfg, task, policy, train, val, folder: Path) -> tuple[LearnedJudge, dict]:
    jc = cfg.judge
    judge = LearnedJudge.from_backbone(
        policy.module,
        policy.tokenizer,
        "prm",
        features=jc.features,
        train_backbone=jc.train_backbone,
        aggregation=jc.aggregation,
    )
    t = time.perf_counter()
    hist = train_reward_model(judge, train, val, jc, cfg.seed)
    info = {
        "steps": hist.steps,
        "best_step": hist.best_step,
        "train_s": round(time.perf_counter() - t, 1),
        "train_records": len(train),
    }
    tune_and_save(judge, task, val, jc, cfg.seed, folder, info)
    return judge, info


def rl_with_judge(cfg_path: Path, base_dir: Path, judge_dir: Path, rewards: str, out: Path) -> dict:
    """100 RL steps with the judge watching (and, if asked, rewarding); its hack/ curves and eval."""
    cfg = load_config(
        cfg_path, [f"rl.judge={judge_dir}", f"rl.rewards={rewards}", "eval.levels=[]"]
    )
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    t = time.perf_counter()
    policy = train_rl(cfg, out, base_dir)
    rl_s = time.perf_counter() - t
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    curve = {
        k: [r[k] for r in rows]
        for k in (
            "hack/judge_mean",
            "hack/verifier_mean",
            "hack/gap",
            "hack/false_accept",
            "rl/shortcut_rate",
            "rl/length_mean",
        )
    }
    evaluated = eval_keys("rl", evaluate_stage(policy, cfg, out, "rl"))
    return {
        "rewards": rewards,
        "rl_s": round(rl_s, 1),
        "curve": curve,
        **{
            k: evaluated[f"rl/{k}"]
            for k in ("pass@1", "pass@64", "shortcut_rate", "process_valid_rate")
        },
    }


def plot_hacking(runs: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (name, run) in zip(axes, runs.items()):
        c = run["curve"]
        steps = range(1, len(c["hack/gap"]) + 1)
        ax.plot(steps, c["hack/judge_mean"], label="PRM score (mean)")
        ax.plot(steps, c["hack/verifier_mean"], label="verifier: correct")
        ax.plot(steps, c["hack/false_accept"], label="wrong answers the PRM accepts")
        ax.set_title(f"RL reward: {name}")
        ax.set_xlabel("RL step")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--base", default=str(OUT / "run_default_seed0"), help="A finished run folder (its base/)."
    )
    ap.add_argument(
        "--continuations", default="1,4,16", help="Monte-Carlo N values, comma-separated."
    )
    ap.add_argument(
        "--mc-problems", type=int, default=500, help="Training problems for the Monte-Carlo rows."
    )
    ap.add_argument(
        "--parts",
        default="stage,labels,rl",
        help="Which parts to (re)run; the others keep their results in judges.json (rl needs stage's PRM).",
    )
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    base_run = Path(args.base)
    work = OUT / "judges"
    if "stage" in parts:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    cfg = load_config(base_run / "config.yaml")
    task = get_task(cfg.task.name, **cfg.task.knobs)
    policy = load_policy(base_run / "base")
    saved = OUT / "judges.json"
    result: dict = (
        json.loads(saved.read_text())
        if saved.is_file() and parts != {"stage", "labels", "rl"}
        else {}
    )
    result.update({"machine": machine(), "date": time.strftime("%Y-%m-%d"), "base": str(base_run)})
    if "stage" in parts:
        stage_part(result, cfg, work, policy)
        saved.write_text(json.dumps(result, indent=1) + "\n")
    if "labels" in parts:
        labels_part(result, args, base_run, cfg, task, policy, work)
        saved.write_text(json.dumps(result, indent=1) + "\n")
    if "rl" in parts:
        rl_part(result, base_run, work)
        saved.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {saved}")


def stage_part(result: dict, cfg, work: Path, policy) -> None:
    """1. the main job's judges stage (exact labels)."""
    t = time.perf_counter()
    stage = run_judges(cfg, work, policy)
    result["stage"] = {
        "summary": summary_keys(stage),
        "training": stage["training"],
        "by_source": {n: r["injected"]["by_source"] for n, r in stage["judges"].items()},
        "seconds": round(time.perf_counter() - t, 1),
    }
    print(json.dumps(result["stage"]["summary"], indent=1), flush=True)


def labels_part(result: dict, args, base_run: Path, cfg, task, policy, work: Path) -> None:
    """2. exact vs Monte-Carlo labels on the same, smaller set of problems."""
    rows = {}
    small = load_config(base_run / "config.yaml", [f"judge.train_problems={args.mc_problems}"])
    t = time.perf_counter()
    exact_train, exact_val = training_records(
        task, policy, small.judge, small.seed, small.eval.max_new_tokens
    )
    label_s = time.perf_counter() - t
    judge, info = train_prm(small, task, policy, exact_train, exact_val, work / "prm_exact_small")
    rows[f"exact ({args.mc_problems} problems)"] = (judge, {**info, "label_s": round(label_s, 1)})
    for n in [int(x) for x in args.continuations.split(",")]:
        mc_cfg = load_config(
            base_run / "config.yaml",
            [
                f"judge.train_problems={args.mc_problems}",
                "judge.labels=montecarlo",
                f"judge.continuations={n}",
            ],
        )
        t = time.perf_counter()
        mc_train, mc_val = training_records(
            task, policy, mc_cfg.judge, mc_cfg.seed, mc_cfg.eval.max_new_tokens
        )
        label_s = time.perf_counter() - t
        agreement = label_agreement(exact_train + exact_val, mc_train + mc_val)
        judge, info = train_prm(mc_cfg, task, policy, mc_train, mc_val, work / f"prm_mc{n}")
        rows[f"montecarlo N={n} ({args.mc_problems} problems)"] = (
            judge,
            {**info, "label_s": round(label_s, 1), **agreement},
        )
        print(n, agreement, info, flush=True)
    judges = {name: j for name, (j, _) in rows.items()} | {
        "likelihood (zero-shot)": LikelihoodJudge(policy)
    }
    measured = evaluate_judges(judges, task, policy, cfg.judge, cfg.seed, cfg.eval.max_new_tokens)
    result["labels"] = {
        name: {**info, **summary_of(measured, name)} for name, (_, info) in rows.items()
    }
    result["labels"]["likelihood (zero-shot)"] = summary_of(measured, "likelihood (zero-shot)")
    result["baselines"] = measured["baselines"]
    print(json.dumps(result["labels"], indent=1), flush=True)


def rl_part(result: dict, base_run: Path, work: Path) -> None:
    """3. RL with the PRM watching: the verifier's reward vs the PRM's score as the only reward."""
    runs = {}
    for name, rewards in (("verifier (outcome)", "{outcome: 1.0}"), ("PRM only", "{judge: 1.0}")):
        runs[name] = rl_with_judge(
            base_run / "config.yaml",
            base_run / "base",
            work / "judges" / "prm",
            rewards,
            work / f"rl_{'verifier' if 'verifier' in name else 'prm'}",
        )
        print(name, {k: v for k, v in runs[name].items() if k != "curve"}, flush=True)
    result["rl"] = runs
    plot_hacking(runs, OUT / "judges_hacking.png")


def summary_of(measured: dict, name: str) -> dict:
    r = measured["judges"][name]
    inj, pol = r["injected"], r["policy"]
    n = measured["best_of"]
    return {
        "f1": inj["f1"],
        "acc_error": inj["acc_error"],
        "acc_correct": inj["acc_correct"],
        "step_auroc": inj["step_auroc"],
        "outcome_auroc": inj["outcome_auroc"],
        "policy_f1": pol["f1"],
        f"best_of_{n}": r["best_of_n"][str(n)],
    }


if __name__ == "__main__":
    main()
