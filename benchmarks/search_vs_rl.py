"""Test-time compute against train-time compute: a base model with search vs its RL model.

Reads `reasonlab search` results (search.json) of a run's base model and of its RL model, at one or
more difficulty levels, optionally their greedy decodes (a search at temperature 0, N = 1), and the
run's RL stage (metrics.jsonl: the tokens RL sampled and trained on). RL's training FLOPs are
counted as experiments/matched.py counts them for the compute-matched arm (6 x parameters per
pretraining-equivalent token: 2 per token sampled or forwarded, 6 per token trained on). A query
costs what its search spent (search/base.py `Compute.flops`: 2 x parameters per token generated,
and per token the judge read). Over K queries, RL costs RL_train + K x f_rl and the base with search
K x f_search, so:

- "RL pays off after": for the cheapest search of the base at least as accurate as the RL model's
  one sample (or greedy decode), RL is cheaper from K* = RL_train / (f_search - f_rl) queries on;
- "at equal total FLOPs": for each K, the RL model (one sample, greedy) against the most accurate
  search of the base whose FLOPs per query fit in RL_train / K + f_rl.

    .venv/bin/python benchmarks/search_vs_rl.py --run RUN --base-search DIR [DIR...] \
        --rl-search DIR [DIR...] [--base-greedy DIR... --rl-greedy DIR...]   # same level order
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from reasonlab.config import config_from_dict, read_yaml
from reasonlab.experiments.matched import rl_compute, rl_rows

QUERIES = (100, 1_000, 10_000, 100_000, 1_000_000)

Config = tuple[str, int, float, float]  # (method, N, accuracy, FLOPs per query)


def rl_train_flops(run: Path) -> float:
    cfg = config_from_dict(read_yaml(run / "config.yaml"))
    params = json.loads((run / "summary.json").read_text())["model/params"]
    used = rl_compute(rl_rows(run / "metrics.jsonl"), cfg.rl)
    return 6.0 * params * used["pretrain_tokens"]


def configs(result: dict[str, Any]) -> list[Config]:
    """(method, N, accuracy, FLOPs per query) of every method and budget that ran."""
    rows = []
    for method, by_n in result["methods"].items():
        for n, cell in by_n.items():
            if cell:
                rows.append(
                    (method, int(n), cell["accuracy"], cell["compute"]["flops_per_problem"])
                )
    return rows


def single(result: dict[str, Any]) -> Config:
    """The one-sample configuration of a search result (any method at N = 1 samples once)."""
    return min((c for c in configs(result) if c[1] == 1), key=lambda c: c[0] != "best_of_n")


def level_of(result: dict[str, Any]) -> str:
    knobs = result.get("knobs") or {}
    return str(knobs.get("n_operands", "?"))


def break_even(base_rows: list[Config], acc: float, flops: float, train: float) -> dict[str, Any]:
    """The cheapest base search at least as accurate as `acc`, and the K from which RL is cheaper."""
    reaching = [c for c in base_rows if c[2] >= acc]
    cheapest = min(reaching, key=lambda c: c[3]) if reaching else None
    k = train / (cheapest[3] - flops) if cheapest and cheapest[3] > flops else None
    return {"cheapest": cheapest, "queries": k}


def at_equal_flops(
    base_rows: list[Config], acc: float, flops: float, train: float
) -> list[dict[str, Any]]:
    """For each K in QUERIES: the best base search within RL's amortised FLOPs per query."""
    out = []
    for k in QUERIES:
        budget = train / k + flops
        fitting = [c for c in base_rows if c[3] <= budget]
        best = max(fitting, key=lambda c: (c[2], -c[3])) if fitting else None
        out.append({"queries": k, "flops_per_query": budget, "base_best": best, "rl": acc})
    return out


def compare(
    run: Path,
    base: dict[str, Any],
    rl: dict[str, Any],
    train: float,
    base_greedy: dict[str, Any] | None = None,
    rl_greedy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One level: the RL model (one sample; greedy when given) against the base with every search."""
    _, _, rl_acc, rl_flops = single(rl)
    base_rows = configs(base)
    if base_greedy is not None:
        g = single(base_greedy)
        base_rows.append(("greedy", 1, g[2], g[3]))
    row: dict[str, Any] = {
        "run": run.name,
        "level": level_of(base),
        "problems": base["n_problems"],
        "seeds": len(base.get("seeds", [0])),
        "rl_single": rl_acc,
        "rl_single_flops": rl_flops,
        "rl_best": max(configs(rl), key=lambda c: (c[2], -c[3])),
        "base_single": single(base)[2],
        "base_greedy": single(base_greedy)[2] if base_greedy else None,
        "base_best": max(base_rows, key=lambda c: (c[2], -c[3])),
        "base_oracle": max(v["pass@n"] for v in base["oracle"].values()),
        "rl_train_flops": train,
        "vs_single": break_even(base_rows, rl_acc, rl_flops, train),
        "equal_flops_single": at_equal_flops(base_rows, rl_acc, rl_flops, train),
    }
    if rl_greedy is not None:
        _, _, g_acc, g_flops = single(rl_greedy)
        row["rl_greedy"] = g_acc
        row["rl_greedy_flops"] = g_flops
        row["vs_greedy"] = break_even(base_rows, g_acc, g_flops, train)
        row["equal_flops_greedy"] = at_equal_flops(base_rows, g_acc, g_flops, train)
    return row


def config_text(c: Config | None) -> str:
    return "none" if c is None else f"{c[2]:.0%} ({c[0]}, {c[1]})"


def payoff_text(r: dict[str, Any], key: str, rl_flops: float) -> str:
    cheap, k = r[key]["cheapest"], r[key]["queries"]
    if cheap is None:
        return "at once (no search of the base reaches it)"
    where = f"{cheap[0]} N={cheap[1]}: {cheap[3]:.3g} vs {rl_flops:.3g}"
    if k is None:
        return f"{where}; never (the base is as accurate for less per query)"
    return f"{where}; after {k:,.0f} queries"


def load(path: Path | None) -> dict[str, Any] | None:
    return None if path is None else json.loads((path / "search.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--base-search", type=Path, nargs="+", required=True)
    ap.add_argument("--rl-search", type=Path, nargs="+", required=True)
    ap.add_argument("--base-greedy", type=Path, nargs="+")
    ap.add_argument("--rl-greedy", type=Path, nargs="+")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    train = rl_train_flops(args.run)
    levels = len(args.base_search)
    base_greedy = args.base_greedy or [None] * levels
    rl_greedy = args.rl_greedy or [None] * levels
    rows = [
        compare(args.run, load(b), load(r), train, load(bg), load(rg))
        for b, r, bg, rg in zip(args.base_search, args.rl_search, base_greedy, rl_greedy)
    ]
    print(f"RL training: {train:.3g} FLOPs ({args.run})")
    print(
        "| run | operands | base: 1 sample / greedy | base + best search | base oracle pass@64 | "
        "RL: 1 sample / greedy | RL + best search | base search >= RL's sample: FLOPs / query; "
        "RL pays off | same against RL greedy |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        greedy = "-" if r["base_greedy"] is None else f"{r['base_greedy']:.0%}"
        rl_g = "-" if "rl_greedy" not in r else f"{r['rl_greedy']:.0%}"
        vs_g = "-" if "vs_greedy" not in r else payoff_text(r, "vs_greedy", r["rl_greedy_flops"])
        print(
            f"| {r['run']} | {r['level']} | {r['base_single']:.0%} / {greedy} | "
            f"{config_text(r['base_best'])} | {r['base_oracle']:.0%} | "
            f"{r['rl_single']:.0%} / {rl_g} | {config_text(r['rl_best'])} | "
            f"{payoff_text(r, 'vs_single', r['rl_single_flops'])} | {vs_g} |"
        )
    print("\nAt equal total FLOPs (RL's training amortised over K queries):\n")
    print(
        "| run | operands | K queries | FLOPs / query | best base search within them | RL, 1 sample | RL, greedy |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        greedy = r.get("equal_flops_greedy") or [None] * len(QUERIES)
        for e, g in zip(r["equal_flops_single"], greedy):
            print(
                f"| {r['run']} | {r['level']} | {e['queries']:,} | {e['flops_per_query']:.3g} | "
                f"{config_text(e['base_best'])} | {e['rl']:.0%} | "
                f"{'-' if g is None else format(g['rl'], '.0%')} |"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
