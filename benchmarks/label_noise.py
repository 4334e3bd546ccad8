"""How many noisy human labels a PRM needs, and RL from human labels, end to end through the app.

The whole loop a lab would run, with simulated annotators in place of people (labeling/simulate.py):
the base's training records (reference solutions, injected errors and the base's own samples,
labelled exactly by the verifier, as the main job's PRM trains on them) are imported into a
labeling database (`reasonlab label import`); `reasonlab label serve` serves them; simulated
annotators label every item through the HTTP API with their first-wrong-step answer replaced by a
random one at rate `--noise`; `reasonlab label export` writes TRL stepwise JSONL; `reasonlab judge
train --data` trains a PRM on the first M labels and `reasonlab judge eval --policy` measures it
(step F1 on injected errors, and on the base's own samples). Noise 0 reproduces the exact labels,
so it is the exact-label PRM at the same M.

With `--rl`, the PRM trained on the most labels at each noise rate rewards `reasonlab rl` (the
judge alone: `rl.rewards={judge: 1.0}`) and its pass@1 and hacking gap are read from the run.

    .venv/bin/python benchmarks/label_noise.py --run runs/default --labels 250,1000,4000 \
        --noise 0,0.1,0.3 --out runs/label-noise [--rl]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

from common import machine
from reasonlab.config import config_from_dict, read_yaml
from reasonlab.judges.files import write_records
from reasonlab.judges.stage import training_records
from reasonlab.labeling.server import free_port, spawn
from reasonlab.labeling.simulate import simulate, truth_by_item
from reasonlab.labeling.store import Store
from reasonlab.models import load_policy
from reasonlab.tasks import get_task


def reasonlab(*args: str) -> str:
    """Run the reasonlab command as a user would; its output, or SystemExit with its error."""
    done = subprocess.run(
        [sys.executable, "-m", "reasonlab.cli", *args], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"reasonlab {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def records_file(run: Path, n: int, out: Path) -> Path:
    """`n` (shuffled, seeded) of the run's judge records, as JSONL (training and validation ones:
    `judge train --data` draws its own validation split by prompt)."""
    path = out / "records.jsonl"
    if path.exists():
        return path
    cfg = config_from_dict(read_yaml(run / "config.yaml"))
    task = get_task(cfg.task.name, **cfg.task.knobs)
    train, val = training_records(
        task, load_policy(run / "base"), cfg.judge, cfg.seed, cfg.eval.max_new_tokens
    )
    records = train + val
    random.Random(0).shuffle(records)
    write_records(path, records[:n])
    return path


def label(records: Path, noise: float, annotators: int, out: Path) -> Path:
    """Import, serve, label every item with simulated annotators, export: the stepwise labels."""
    exported = out / f"noise{noise}" / "human.jsonl"
    if exported.exists():
        return exported
    db = out / f"noise{noise}" / "labels.sqlite"
    db.parent.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    reasonlab("label", "import", str(records), "--db", str(db))
    with Store(db) as store:
        tokens = [store.add_annotator(f"sim-{i}") for i in range(annotators)]
    port = free_port()
    server = spawn(db, port, log=db.with_suffix(".log"))
    try:
        stats = simulate(
            f"http://127.0.0.1:{port}", tokens, truth_by_item(db), noise=noise, seconds=3600, seed=7
        )
    finally:
        server.kill()
        server.wait()
    (db.parent / "simulate.json").write_text(json.dumps(stats, indent=1))
    reasonlab("label", "export", "--db", str(db), "--format", "stepwise", "--out", str(exported))
    return exported


def train_and_eval(run: Path, labels: Path, m: int, folder: Path, head: str = "prm") -> dict:
    """A judge (`head`) trained on the first `m` exported records, measured on injected errors and
    on the base's own samples (step F1), and as best-of-16 on the base's samples."""
    judge, result = folder / f"{head}-{m}", folder / f"{head}-{m}-eval.json"
    if not result.exists():
        subset = folder / f"human-{m}.jsonl"
        subset.write_text("".join(labels.read_text().splitlines(keepends=True)[:m]))
        if not judge.exists():
            train = ["judge", "train", "--base", str(run), "--head", head, "--data", str(subset)]
            reasonlab(*train, "--out", str(judge))
        cfg = config_from_dict(read_yaml(run / "config.yaml"))
        knobs = [a for k, v in cfg.task.knobs.items() for a in ("--knob", f"{k}={v}")]
        evaluate = ["judge", "eval", "--judge", str(judge), "--policy", str(run / "base")]
        reasonlab(*evaluate, "--task", cfg.task.name, *knobs, "--out", str(result))
    res = json.loads(result.read_text())["judges"][judge.name]
    best = res["best_of_n"]
    return {
        "head": head,
        "injected_f1": res["injected"]["f1"],
        "policy_f1": res["policy"]["f1"],
        "policy_step_auroc": res["policy"]["step_auroc"],
        "best_of_16": best[max(best, key=int)],
    }


def evaluate(model: Path, out: Path) -> dict:
    """`reasonlab eval` of a model (a run folder: its RL model): pass@1 of 16 samples on 200 test
    problems, and the greedy decode's."""
    if not out.exists():
        reasonlab("eval", "--model", str(model), "-n", "16", "--problems", "200", "--out", str(out))
    greedy = out.with_name(out.stem + "-greedy.json")
    if not greedy.exists():
        args = ["eval", "--model", str(model), "-n", "1", "--problems", "200", "--temperature", "0"]
        reasonlab(*args, "--out", str(greedy))
    return {
        "pass@1": json.loads(out.read_text())["summary"]["pass@1"],
        "greedy": json.loads(greedy.read_text())["summary"]["pass@1"],
    }


def rl_with(run: Path, judge: Path, out: Path) -> dict:
    """`reasonlab rl` rewarded by `judge` alone: the RL model's pass@1 (and greedy) and the hacking
    gap (hack/*) averaged over the last 10 RL steps."""
    if not (out / "rl" / "config.json").exists():
        reward = ["--set", f"rl.judge={judge}", "--set", "rl.rewards={judge: 1.0}"]
        reasonlab("rl", "--base", str(run), "--out", str(out), *reward)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    hacks = [r for r in rows if "hack/gap" in r][-10:]
    keys = ("hack/gap", "hack/false_accept", "hack/judge_mean", "hack/verifier_mean")
    return {
        **evaluate(out, out / "eval.json"),
        **{k: sum(r[k] for r in hacks) / len(hacks) for k in keys if hacks},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--labels", default="250,1000,4000")
    ap.add_argument("--noise", default="0,0.1,0.3")
    ap.add_argument("--annotators", type=int, default=4)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--rl", action="store_true")
    ap.add_argument(
        "--pairwise", action="store_true", help="Also a pairwise judge at the most labels."
    )
    args = ap.parse_args()
    counts = [int(x) for x in args.labels.split(",")]
    noises = [float(x) for x in args.noise.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    records = records_file(args.run, max(counts), args.out)
    rows = []
    for noise in noises:
        labels = label(records, noise, args.annotators, args.out)
        for m in counts:
            rows.append(
                {"noise": noise, "labels": m, **train_and_eval(args.run, labels, m, labels.parent)}
            )
        if args.pairwise:  # Bradley-Terry on the same labels (pairs of right and wrong solutions)
            m = max(counts)
            rows.append(
                {
                    "noise": noise,
                    "labels": m,
                    **train_and_eval(args.run, labels, m, labels.parent, "pairwise"),
                }
            )
    print(f"{machine()}; run {args.run}")
    print(
        "| label noise | labels | judge | step F1, injected errors "
        "| step F1, the base's own samples | step AUROC, own samples | best-of-16 |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        shown = [r[k] for k in ("injected_f1", "policy_f1", "policy_step_auroc", "best_of_16")]
        cells = " | ".join("-" if x is None else f"{x:.3f}" for x in shown)
        print(f"| {r['noise']:.0%} | {r['labels']:,} | {r['head']} | {cells} |")
    result = {"rows": rows}
    if args.rl:  # the run's own RL model was rewarded by the verifier: the reference
        result["rl"] = {"verifier": evaluate(args.run, args.out / "rl-verifier-eval.json")}
        print("RL rewarded by the verifier (the run's RL model):", result["rl"]["verifier"])
        for noise in noises:
            judge = args.out / f"noise{noise}" / f"prm-{max(counts)}"
            result["rl"][noise] = rl_with(args.run, judge, args.out / f"rl-noise{noise}")
            print(f"RL rewarded by the PRM from {noise:.0%}-noise labels:", result["rl"][noise])
    (args.out / "results.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
