"""Test-time compute against train-time compute: a base model with search vs its RL model.

Reads `reasonlab search` results (search.json) of a run's base model and of its RL model, at one or
more difficulty levels, and the run's RL stage (metrics.jsonl: the tokens RL sampled and trained
on). RL's training FLOPs are counted as experiments/matched.py counts them for the compute-matched
arm (6 x parameters per pretraining-equivalent token: 2 per token sampled or forwarded, 6 per token
trained on). A query costs what its search spent (search/base.py `Compute.flops`: 2 x parameters
per token generated, and per token the judge read). Over K queries, RL costs RL_train + K x f_rl and
the base with search K x f_search; for a search that is at least as accurate as the RL model and
spends more per query, RL is cheaper from K* = RL_train / (f_search - f_rl) queries on.

    .venv/bin/python benchmarks/search_vs_rl.py --run RUN --base-search DIR [DIR...] \
        --rl-search DIR [DIR...]    # the search folders in the same level order
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from reasonlab.config import config_from_dict, read_yaml
from reasonlab.experiments.matched import rl_compute, rl_rows


def rl_train_flops(run: Path) -> float:
    cfg = config_from_dict(read_yaml(run / "config.yaml"))
    params = json.loads((run / "summary.json").read_text())["model/params"]
    used = rl_compute(rl_rows(run / "metrics.jsonl"), cfg.rl)
    return 6.0 * params * used["pretrain_tokens"]


def configs(result: dict[str, Any]) -> list[tuple[str, int, float, float]]:
    """(method, N, accuracy, FLOPs per query) of every method and budget that ran."""
    rows = []
    for method, by_n in result["methods"].items():
        for n, cell in by_n.items():
            if cell:
                rows.append(
                    (method, int(n), cell["accuracy"], cell["compute"]["flops_per_problem"])
                )
    return rows


def level_of(result: dict[str, Any]) -> str:
    knobs = result.get("knobs") or {}
    return str(knobs.get("n_operands", "?"))


def compare(run: Path, base: dict[str, Any], rl: dict[str, Any], train: float) -> dict[str, Any]:
    """One level: the RL model with one sample against the base with every search."""
    single = [c for c in configs(rl) if c[0] == "best_of_n" and c[1] == 1][0]
    rl_acc, rl_flops = single[2], single[3]
    base_rows = configs(base)
    best = max(base_rows, key=lambda c: (c[2], -c[3]))
    rl_best = max(configs(rl), key=lambda c: (c[2], -c[3]))
    reaching = [c for c in base_rows if c[2] >= rl_acc]
    cheapest = min(reaching, key=lambda c: c[3]) if reaching else None
    break_even = None
    if cheapest and cheapest[3] > rl_flops:
        break_even = train / (cheapest[3] - rl_flops)
    return {
        "run": run.name,
        "level": level_of(base),
        "problems": base["n_problems"],
        "rl_single": rl_acc,
        "rl_single_flops": rl_flops,
        "rl_best": rl_best,
        "base_single": [c for c in base_rows if c[0] == "best_of_n" and c[1] == 1][0][2],
        "base_best": best,
        "base_oracle": max(v["pass@n"] for v in base["oracle"].values()),
        "cheapest_reaching_rl": cheapest,
        "break_even_queries": break_even,
        "rl_train_flops": train,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--base-search", type=Path, nargs="+", required=True)
    ap.add_argument("--rl-search", type=Path, nargs="+", required=True)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    train = rl_train_flops(args.run)
    rows = []
    for b, r in zip(args.base_search, args.rl_search):
        base = json.loads((b / "search.json").read_text())
        rl = json.loads((r / "search.json").read_text())
        rows.append(compare(args.run, base, rl, train))
    print(f"RL training: {train:.3g} FLOPs ({args.run})")
    print(
        "| run | operands | base, 1 sample | base + best search (N) | base oracle pass@64 | "
        "RL, 1 sample | RL + best search (N) | cheapest base search >= RL 1 sample | "
        "RL pays off after |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        m, n, acc, _ = r["base_best"]
        rm, rn, racc, _ = r["rl_best"]
        cheap = r["cheapest_reaching_rl"]
        cheap_text = (
            f"{cheap[0]} N={cheap[1]}: {cheap[3]:.3g} vs {r['rl_single_flops']:.3g}"
            if cheap
            else "none"
        )
        k = r["break_even_queries"]
        if cheap is None:
            k_text = "at once (no search of the base reaches it)"
        elif k is None:
            k_text = "never (the base is as accurate for less per query)"
        else:
            k_text = f"{k:,.0f} queries"
        print(
            f"| {r['run']} | {r['level']} | {r['base_single']:.0%} | {acc:.0%} ({m}, {n}) | "
            f"{r['base_oracle']:.0%} | {r['rl_single']:.0%} | {racc:.0%} ({rm}, {rn}) | {cheap_text} | "
            f"{k_text} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
