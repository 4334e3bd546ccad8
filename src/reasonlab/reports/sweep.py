"""A sweep's results and report: each finished cell's metrics read from its run folder, and sweep.md +
sweep.html with plots from the state in sweep.json. Reads files only, never training code.

The report opens with a few sentences (reports/headline.py: cells finished and failed, the base metric
that best predicted RL's gain, the cell with the largest gain, RL against more pretraining) and the plot
of the gain in pass@1 against each base metric; then the tables, the other plots, and the sweep's
settings last. Pass rates are shown as percentages, gains in percentage points, times with their unit;
sweep.html inlines its images.

A cell's row: the base's sufficiency metrics (evaluate/sufficiency.level_metrics on the per-problem records of
eval/base.json), its generation-verification gaps when the judges ran (summary.json's best-of-N), the RL
model's pass rates and the gains (RL - base) from summary.json, the base's size and pretraining compute
(`compute`: params, pretrain_tokens, pretrain_flops = 6 x params x tokens, from summary.json's model/ keys;
None for a cell that ran before they were recorded), and the stage timings.

Plots: the RL gain in pass@1, and in pass@k (k = the eval's samples per problem), against each base metric,
one scatter panel per metric with every finished cell as a labelled point; with the compute-matched arm
(experiments/matched.py), RL's gain and more pretraining's gain at the same cost against the base's
pass@1. Tables: the cells (values,
base and RL pass rates, gains, wall time), the Spearman rank correlation of each base metric with each
gain (ties get their average rank; written here with numpy, scipy is not a dependency) with its 95%
percentile-bootstrap interval over the finished cells (`spearman_interval`), and the failed
cells with their errors, pass@1 by difficulty level (base -> RL) (and the compute-matched table:
both gains per cell and which is larger). Usage:

    from reasonlab.reports.sweep import write_sweep_report
    write_sweep_report(Path("runs/sweep"), json.loads(Path("runs/sweep/sweep.json").read_text()))
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter

from reasonlab.evaluate.sufficiency import generation_verification_gap, level_metrics
from reasonlab.evaluate.verdict import verdict
from reasonlab.fileio import read_json_or_none
from reasonlab.reports.headline import sweep_headline
from reasonlab.reports.toolkit import (
    Figure,
    Table,
    duration,
    html_figures,
    html_headline,
    html_page,
    html_tables,
    markdown_figures,
    markdown_headline,
    markdown_tables,
    percent,
    points,
    save_figure,
    sig3,
)

Row = dict[str, Any]
GAINS = ("pass@1", "pass@k")  # the two gains related to the base metrics


# ---- one cell's results, from its run folder -------------------------------------------------------------


def cell_results(folder: Path) -> dict[str, Any] | None:
    """k (samples per problem), base metrics, RL pass rates, gains (RL - base) and stage timings of a
    finished cell, from its summary.json and eval/base.json; None when either is missing."""
    summary = read_json_or_none(folder / "summary.json")
    result = read_json_or_none(folder / "eval" / "base.json")
    if summary is None or result is None:
        return None
    rl = {
        k.removeprefix("rl/"): v
        for k, v in summary.items()
        if k.startswith("rl/") and "pass@" in k and not k.startswith("rl/gain")
    }
    gain = {k: round(v - summary[f"base/{k}"], 4) for k, v in rl.items() if f"base/{k}" in summary}
    timings = {k.removeprefix("time/"): v for k, v in summary.items() if k.startswith("time/")}
    after = read_json_or_none(folder / "eval" / "rl.json")
    return {
        "k": result["n_samples"],
        "base": base_metrics(summary, result),
        "rl": rl,
        "gain": gain,
        "intervals": pass1_intervals(result["problems"], (after or {}).get("problems")),
        "verdict": cell_verdict(folder, result),
        "regions": {  # eval level -> in_range / edge / beyond / below, with a range corpus
            int(m[1]): v
            for k, v in summary.items()
            if (m := re.fullmatch(r"eval/d(\d+)/region", k))
        },
        "compute": {
            k: summary.get(f"model/{k}") for k in ("params", "pretrain_tokens", "pretrain_flops")
        },
        "timings": timings,
    }


PAYOFF = 0.10  # RL "paid off" on a base when it gained at least this much pass@1 (10 points)


def cell_verdict(folder: Path, result: dict[str, Any]) -> dict[str, Any] | None:
    """The sufficiency verdict (evaluate/verdict.py) on a cell's base, from its evals before RL: the main
    level (eval/base.json) and every extra level (eval/base_level<d>.json), no judge and no control run.
    Its call: "rl" when more of its statements say RL will pay off than say improve the base first,
    "base" when fewer, "tie" when as many; the metrics on each side are kept."""
    problems = result["problems"]
    if not problems:
        return None
    main = problems[0]["difficulty"]
    levels = {main: level_metrics(problems, result["n_samples"])}
    for path in sorted((folder / "eval").glob("base_level*.json")):
        other = read_json_or_none(path)
        if other and other.get("problems"):
            level = other["problems"][0]["difficulty"]
            levels.setdefault(level, level_metrics(other["problems"], other["n_samples"]))
    statements = verdict({"levels": levels, "n": result["n_samples"], "main_level": main})
    sides = {
        side: [s["metric"] for s in statements if s["says"] == side] for side in ("rl", "base")
    }
    n_rl, n_base = len(sides["rl"]), len(sides["base"])
    call = "rl" if n_rl > n_base else "base" if n_base > n_rl else "tie"
    return {"call": call, **sides}


def pass1_intervals(
    base: Sequence[dict[str, Any]],
    rl: Sequence[dict[str, Any]] | None,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Percentile-bootstrap intervals over problems for pass@1 of the base, of the RL model and of the
    gain: resample the problems with replacement `n_boot` times (numpy Generator seeded by `seed`) and
    average each problem's share of correct samples. The gain's resamples are paired (the same problems
    for both models: both evals draw the same test problems), so the interval reflects which problems
    were drawn, not the two models' independent luck. `rl` None or of other problems: the base's only.
    Sampling noise within a problem (its n samples) is not resampled; with 64 samples per problem it is
    small beside the spread between problems."""
    ids = [r["id"] for r in base]
    if not ids:
        return {}
    rates = {"base": np.array([r["n_correct"] / r["n"] for r in base])}  # (P,)
    if rl is not None and [r["id"] for r in rl] == ids:
        rates["rl"] = np.array([r["n_correct"] / r["n"] for r in rl])  # (P,)
        rates["gain"] = rates["rl"] - rates["base"]  # (P,) paired by problem
    picks = np.random.default_rng(seed).integers(0, len(ids), size=(n_boot, len(ids)))  # (B, P)
    bounds = [(1 - level) / 2, (1 + level) / 2]
    return {
        name: [round(float(q), 4) for q in np.quantile(x[picks].mean(axis=1), bounds)]
        for name, x in rates.items()
    }


def base_metrics(summary: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The base's sufficiency metrics (evaluate/sufficiency.level_metrics on its per-problem eval records),
    its other pass rates from summary.json (greedy, extra levels) and the generation-verification gaps."""
    out = {
        k: round(float(v), 4)
        for k, v in level_metrics(result["problems"], result["n_samples"]).items()
    }
    for key, value in summary.items():
        if key.startswith("base/") and "pass@" in key:
            out.setdefault(key.removeprefix("base/"), value)
    out.update(verification_gaps(summary))
    return out


def verification_gaps(summary: dict[str, Any]) -> dict[str, float | None]:
    """gv_gap/<selector> from the judges' best-of-N in summary.json (judge/bo<N>/<selector>): how much of
    what N samples hold the selector recovers (evaluate/sufficiency.generation_verification_gap)."""
    out: dict[str, float | None] = {}
    for key, best in summary.items():
        found = re.fullmatch(r"judge/bo(\d+)/([A-Za-z_]+)", key)
        n = found[1] if found else None
        p1, pn = summary.get(f"judge/bo{n}/pass@1"), summary.get(f"judge/bo{n}/pass@{n}")
        if found and None not in (best, p1, pn):
            gap = generation_verification_gap(best, p1, pn)
            out[f"gv_gap/{found[2]}"] = None if gap is None else round(gap, 4)
    return out


# ---- rank correlation ---------------------------------------------------------------------------------


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n; tied values share the mean of the ranks they span (e.g. [10, 20, 20] -> [1, 2.5, 2.5])."""
    x = np.asarray(values, dtype=float)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and x[order[j + 1]] == x[order[i]]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float | None], y: Sequence[float | None]) -> float:
    """Spearman's rho: the Pearson correlation of the average ranks. Pairs with a missing value are left
    out; NaN with fewer than two pairs or when either side is constant."""
    pairs = [(a, b) for a, b in zip(x, y) if _finite(a) and _finite(b)]
    if len(pairs) < 2:
        return math.nan
    rx, ry = (average_ranks(side) - (len(pairs) + 1) / 2 for side in zip(*pairs))
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / denom if denom > 0 else math.nan


LEVEL = 0.95  # the bootstrap intervals' confidence level
MIN_BOOT_CELLS = 4  # fewer finished cells than this get no bootstrap interval
MIN_DEFINED = 0.5  # the share of resamples with a defined rho below which there is no interval


def spearman_interval(
    x: Sequence[float | None],
    y: Sequence[float | None],
    n_boot: int = 2000,
    level: float = LEVEL,
    seed: int = 0,
) -> tuple[float, float] | None:
    """A percentile-bootstrap interval (Efron) for Spearman's rho over the cells: resample the (x, y)
    pairs with replacement `n_boot` times (a numpy Generator seeded with `seed`), compute rho on each
    resample and take the (1 - level) / 2 and (1 + level) / 2 percentiles of the rhos. Pairs with a
    missing value are left out first; resamples where rho is undefined (a side constant, e.g. one pair
    drawn n times) are skipped. None with fewer than 4 pairs or when under half the resamples give a rho.

    With few cells the interval is rough: a resample holds only a few distinct pairs, so rho takes few
    values and piles up at +-1, and the percentile interval covers less often than its level says (it does
    not correct for bias or skew); read it as how fragile the ranking is, not as exact coverage."""
    pairs = np.array([(a, b) for a, b in zip(x, y) if _finite(a) and _finite(b)], dtype=float)
    n = len(pairs)
    if n < MIN_BOOT_CELLS:
        return None
    picks = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))  # (n_boot, n) pair indices
    rhos = np.array([spearman(*pairs[idx].T) for idx in picks])  # (n_boot,), NaN where undefined
    rhos = rhos[~np.isnan(rhos)]
    if len(rhos) < MIN_DEFINED * n_boot:
        return None
    lo, hi = np.quantile(rhos, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# ---- what is related to what ----------------------------------------------------------------------------


def finished(rows: Sequence[Row]) -> list[Row]:
    return [r for r in rows if r.get("status") == "finished"]


def gain(row: Row, which: str) -> float | None:
    """The RL gain of a finished row in pass@1 or pass@k (k = its eval's samples per problem)."""
    key = f"pass@{row['k']}" if which == "pass@k" else which
    return row["gain"].get(key)


def related_metrics(rows: Sequence[Row]) -> list[str]:
    """The base metrics to plot against the gain, in first-seen order: all but the intermediate pass@j
    (only pass@1 and pass@k stay) and the extra difficulty levels."""
    out: list[str] = []
    for row in finished(rows):
        for key in row["base"]:
            j = re.fullmatch(r"pass@(\d+)", key)
            skip = (j and int(j[1]) not in (1, row["k"])) or re.match(r"d\d+/", key)
            if not skip and key not in out:
                out.append(key)
    return out


def base_value(row: Row, metric: str) -> float | None:
    return row["base"].get(metric)


def correlations(rows: Sequence[Row], metrics: Sequence[str]) -> dict[str, dict[str, Any]]:
    """metric -> {pass@1: rho, pass@k: rho, cells: how many finished cells have the metric, interval:
    {pass@1: [lo, hi], pass@k: [lo, hi]}} (rho None if undefined; an interval None with too few cells,
    see spearman_interval)."""
    done = finished(rows)
    out = {}
    for m in metrics:
        xs = [base_value(r, m) for r in done]
        ys = {g: [gain(r, g) for r in done] for g in GAINS}
        rhos = {g: spearman(xs, ys[g]) for g in GAINS}
        intervals = {g: spearman_interval(xs, ys[g]) for g in GAINS}
        out[m] = {
            **{g: None if math.isnan(v) else round(v, 4) for g, v in rhos.items()},
            "cells": sum(_finite(x) for x in xs),
            "interval": {
                g: None if ci is None else [round(b, 4) for b in ci] for g, ci in intervals.items()
            },
        }
    return out


# ---- plots ----------------------------------------------------------------------------------------------


def plot_gain(
    rows: Sequence[Row],
    metrics: Sequence[str],
    which: str,
    k_label: str,
    corr: dict[str, dict[str, Any]],
    path: Path,
) -> Path:
    """One scatter panel per base metric: x = the base metric, y = the RL gain; points labelled by cell."""
    done = finished(rows)
    cols = min(4, len(metrics))
    nrows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.3 * cols, 2.9 * nrows), squeeze=False)
    ylabel = f"RL gain in {k_label if which == 'pass@k' else which}"
    colors = {
        r["name"]: f"C{i % 10}" for i, r in enumerate(done)
    }  # one colour per cell in every panel
    for ax, metric in zip(axes.flat, metrics):
        points = [(base_value(r, metric), gain(r, which), r) for r in done]
        points = [p for p in points if _finite(p[0]) and _finite(p[1])]
        for x, y, r in points:
            ax.scatter(x, y, s=18, color=colors[r["name"]])
            ax.annotate(r["label"], (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        if not points:
            ax.text(
                0.5,
                0.5,
                "no cell has a value",
                ha="center",
                va="center",
                fontsize=8,
                transform=ax.transAxes,
            )
        rho = corr.get(metric, {}).get(which)
        ax.set_title(f"{metric}  (rho {rho:+.2f})" if rho is not None else metric, fontsize=9)
        ax.axhline(0, color="gray", linewidth=0.6)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.set_ylabel(ylabel, fontsize=7)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    return save_figure(fig, path, dpi=100)


def compute_rows(rows: Sequence[Row]) -> list[Row]:
    """The finished cells that record their pretraining FLOPs, when they span at least two budgets."""
    done = [r for r in finished(rows) if _finite((r.get("compute") or {}).get("pretrain_flops"))]
    return done if len({r["compute"]["pretrain_flops"] for r in done}) >= 2 else []


def plot_compute(rows: Sequence[Row], path: Path) -> Path:
    """Along pretraining compute (FLOPs, log scale), one line per model size: the base's pass@1 and the RL
    model's at the main level, RL's gain in pass@1 with its 95% interval over problems, and both models'
    pass@1 at the edge (the first level above a range corpus's range; without one, the farthest level
    evaluated)."""
    done = compute_rows(rows)
    sizes = sorted({r["compute"]["params"] for r in done})
    levels = {
        int(m[1]) for r in done for k in r["base"] if (m := re.fullmatch(r"d(\d+)/pass@1", k))
    }
    edges = {
        int(d) for r in done for d, region in (r.get("regions") or {}).items() if region == "edge"
    }
    far = min(edges & levels) if edges & levels else max(levels, default=None)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for i, size in enumerate(sizes):
        line = sorted((r for r in done if r["compute"]["params"] == size), key=_flops)
        x = [_flops(r) for r in line]
        color, label = f"C{i % 10}", f"{size / 1e6:.2g}M params"
        axes[0].plot(x, [r["base"].get("pass@1") for r in line], "o--", color=color, label=label)
        axes[0].plot(x, [r["rl"].get("pass@1") for r in line], "o-", color=color)
        gains = [gain(r, "pass@1") for r in line]
        bounds = [(r.get("intervals") or {}).get("gain") or [g, g] for r, g in zip(line, gains)]
        spread = [
            [g - lo for g, (lo, _) in zip(gains, bounds)],
            [hi - g for g, (_, hi) in zip(gains, bounds)],
        ]
        axes[1].errorbar(x, gains, yerr=spread, fmt="o-", color=color, capsize=3, label=label)
        if far is not None:
            key = f"d{far}/pass@1"
            axes[2].plot(x, [r["base"].get(key) for r in line], "o--", color=color, label=label)
            axes[2].plot(x, [r["rl"].get(key) for r in line], "o-", color=color)
    titles = (
        "pass@1 at the main level (dashed: base, solid: RL)",
        "RL gain in pass@1 (95% interval over problems)",
        f"pass@1 at level {far}{' (the edge)' if far in edges else ''} (dashed: base, solid: RL)"
        if far is not None
        else "no extra level",
    )
    for ax, title in zip(axes, titles):
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(
            NullFormatter()
        )  # within a decade or two, minor labels overlap
        ax.set_xlabel("pretraining FLOPs", fontsize=8)
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=7)
    axes[1].axhline(0, color="gray", linewidth=0.6)
    return save_figure(fig, path, dpi=100)


def _flops(row: Row) -> float:
    return float(row["compute"]["pretrain_flops"])


# ---- tables and pages -----------------------------------------------------------------------------------


def k_label(rows: Sequence[Row]) -> str:
    ks = {r["k"] for r in finished(rows)}
    return f"pass@{ks.pop()}" if len(ks) == 1 else "pass@k"


def cells_table(state: dict[str, Any], kl: str) -> Table:
    keys = [a["key"] for a in state["axes"]]
    header = [
        "cell",
        *keys,
        "status",
        "base pass@1",
        f"base {kl}",
        "RL pass@1",
        f"RL {kl}",
        "gain pass@1",
        f"gain {kl}",
        "wall time",
    ]
    rows = []
    for r in state["cells"]:
        labels = r["label"].split(" ")
        shown = ["", "", "", "", "", ""]
        if r["status"] == "finished":
            pk = f"pass@{r['k']}"
            rates = [
                r["base"].get("pass@1"),
                r["base"].get(pk),
                r["rl"].get("pass@1"),
                r["rl"].get(pk),
            ]
            shown = [*map(percent, rates), points(gain(r, "pass@1")), points(gain(r, "pass@k"))]
        wall = r.get("timings", {}).get("wall_s")
        rows.append([r["name"], *labels, r["status"], *shown, duration(wall)])
    return "Cells", header, rows


def correlation_table(state: dict[str, Any], kl: str) -> Table:
    """Each base metric's rho with each gain and its bootstrap interval, e.g. `+0.94 [+0.60, +1.00]`."""
    corr = state.get("correlations") or {}
    rows = [
        [
            m,
            *(_rho_with_interval(c[g], (c.get("interval") or {}).get(g)) for g in GAINS),
            c["cells"],
        ]
        for m, c in corr.items()
    ]
    return (
        "Spearman rank correlation of each base metric with the RL gain, "
        f"{100 * LEVEL:.0f}% bootstrap interval over bases in brackets",
        ["base metric", "rho with gain in pass@1", f"rho with gain in {kl}", "cells"],
        rows,
    )


def _rho(rho: float | None) -> str:
    """A rank correlation with its sign and 2 decimals, as the plots' titles and the headline show it."""
    return "n/a" if rho is None else f"{rho:+.2f}"


def _rho_with_interval(rho: float | None, interval: Sequence[float] | None) -> str:
    if rho is None or interval is None:
        return _rho(rho)
    return f"{_rho(rho)} [{_rho(interval[0])}, {_rho(interval[1])}]"


def intervals_table(state: dict[str, Any]) -> Table | None:
    """Pass@1 of the base and of the RL model, and the gain, each with its 95% bootstrap interval over
    the problems (pass1_intervals)."""
    done = [r for r in finished(state["cells"]) if r.get("intervals")]
    if not done:
        return None

    def shown(value: float | None, interval: Sequence[float] | None, fmt: Callable) -> str:
        if value is None:
            return "n/a"
        return (
            fmt(value) if not interval else f"{fmt(value)} [{fmt(interval[0])}, {fmt(interval[1])}]"
        )

    rows = [
        [
            r["name"],
            shown(r["base"].get("pass@1"), r["intervals"].get("base"), percent),
            shown(r["rl"].get("pass@1"), r["intervals"].get("rl"), percent),
            shown(gain(r, "pass@1"), r["intervals"].get("gain"), _signed_points),
        ]
        for r in done
    ]
    return (
        "Pass@1 at the main level, 95% bootstrap interval over problems in brackets",
        ["cell", "base pass@1", "RL pass@1", "gain pass@1 (points)"],
        rows,
    )


def verdict_table(state: dict[str, Any]) -> Table | None:
    """The sufficiency verdict's call on each base against what RL then did (gain pass@1 >= PAYOFF):
    the cells in each box of the confusion table."""
    done = [
        r for r in finished(state["cells"]) if r.get("verdict") and gain(r, "pass@1") is not None
    ]
    if not done:
        return None
    rows = []
    for call, said in (
        ("rl", "RL will pay off"),
        ("tie", "as many each way"),
        ("base", "improve the base"),
    ):
        boxes = [
            [
                r["name"]
                for r in done
                if r["verdict"]["call"] == call and (gain(r, "pass@1") >= PAYOFF) is won
            ]
            for won in (True, False)
        ]
        rows.append(
            [f"{said} ({call})", *(f"{len(b)}: {', '.join(b)}" if b else "0" for b in boxes)]
        )
    return (
        "The sufficiency verdict on each base against RL's gain (its call: more statements say rl than base)",
        ["verdict before RL", f"RL gained >= {points(PAYOFF)}", f"RL gained < {points(PAYOFF)}"],
        rows,
    )


def _signed_points(x: float) -> str:
    """A change in percentage points, short: +4.5 (the column says points)."""
    return f"{100 * x:+.1f}"


def levels_table(state: dict[str, Any]) -> Table | None:
    """Pass@1 of the base and the RL model at the main level and at each extra eval level, per cell."""
    done = finished(state["cells"])
    levels = sorted(
        {int(m[1]) for r in done for k in r["base"] if (m := re.fullmatch(r"d(\d+)/pass@1", k))}
    )
    if not levels:
        return None
    keys = ["pass@1", *(f"d{level}/pass@1" for level in levels)]
    rows = [[r["name"], *(_change(r["base"].get(k), r["rl"].get(k)) for k in keys)] for r in done]
    return (
        "Pass@1 by difficulty level: base -> RL (gain)",
        ["cell", "main level", *(f"level {x}" for x in levels)],
        rows,
    )


def _change(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return "n/a"
    return f"{percent(before)} -> {percent(after)} ({points(after - before)})"


def matched_rows(rows: Sequence[Row]) -> list[Row]:
    return [r for r in finished(rows) if "more_gain" in r]


def matched_table(state: dict[str, Any], kl: str) -> Table | None:
    """RL against more pretraining at the same cost, per cell: the budget, the wall times, both gains."""
    done = matched_rows(state["cells"])
    if not done:
        return None
    compute = done[0]["matched"]["compute"]
    header = [
        "cell",
        "extra pretraining tokens",
        "RL time",
        "more pretraining time",
        "gain pass@1 RL",
        "gain pass@1 more pretraining",
        f"gain {kl} RL",
        f"gain {kl} more pretraining",
        "pass@1 winner",
        f"{kl} winner",
    ]
    rows = []
    for r in done:
        pk = f"pass@{r['k']}"
        gains = [
            gain(r, "pass@1"),
            r["more_gain"].get("pass@1"),
            gain(r, "pass@k"),
            r["more_gain"].get(pk),
        ]
        m = r["matched"]
        rows.append(
            [
                r["label"],
                sig3(m["extra_tokens"]),
                duration(m["rl_s"]),
                duration(m.get("more_pretrain_s")),
                *(points(g) for g in gains),
                _winner(gains[0], gains[1]),
                _winner(gains[2], gains[3]),
            ]
        )
    return (
        f"Compute-matched: RL against more pretraining of the same base ({compute}-matched)",
        header,
        rows,
    )


def _winner(rl: float | None, more: float | None) -> str:
    if rl is None or more is None:
        return "n/a"
    return "tie" if rl == more else ("RL" if rl > more else "more pretraining")


def plot_matched(rows: Sequence[Row], kl: str, path: Path) -> Path:
    """Two panels (gain in pass@1, in pass@k) against the base's pass@1: RL (circles) and more pretraining at
    the same cost (squares), a line joining the two of each cell."""
    done = matched_rows(rows)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, which in zip(axes, GAINS):
        for i, r in enumerate(done):
            x = base_value(r, "pass@1")
            key = f"pass@{r['k']}" if which == "pass@k" else which
            ys = gain(r, which), r["more_gain"].get(key)
            if not _finite(x) or not all(_finite(y) for y in ys):
                continue
            ax.plot([x, x], ys, color=f"C{i % 10}", linewidth=0.8)
            ax.scatter([x], [ys[0]], marker="o", color=f"C{i % 10}", label="RL" if i == 0 else None)
            ax.scatter(
                [x],
                [ys[1]],
                marker="s",
                facecolor="none",
                edgecolor=f"C{i % 10}",
                label="more pretraining" if i == 0 else None,
            )
            ax.annotate(
                r["label"], (x, max(ys)), fontsize=6, xytext=(3, 3), textcoords="offset points"
            )
        ax.axhline(0, color="gray", linewidth=0.6)
        ax.set_xlabel("base pass@1", fontsize=8)
        ax.set_ylabel(f"gain in {kl if which == 'pass@k' else which}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=7)
    return save_figure(fig, path, dpi=100)


def failed_table(state: dict[str, Any]) -> Table | None:
    rows = [[r["name"], r.get("error", "")] for r in state["cells"] if r["status"] == "failed"]
    rows += [
        [f"{r['name']} (more pretraining)", r["matched_error"]]
        for r in state["cells"]
        if "matched_error" in r
    ]
    return (
        ("Failed cells (rerun the sweep to retry them)", ["cell", "error"], rows) if rows else None
    )


def write_sweep_report(out: Path, state: dict[str, Any]) -> Path:
    """Write plots/, sweep.md and sweep.html in `out`; returns the Markdown path."""
    out = Path(out)
    kl = k_label(state["cells"])
    metrics = state.get("metrics") or related_metrics(state["cells"])
    corr = state.get("correlations") or correlations(state["cells"], metrics)
    figures = []
    if finished(state["cells"]) and metrics:
        (out / "plots").mkdir(parents=True, exist_ok=True)
        for which, stem in (("pass@1", "gain_pass1"), ("pass@k", "gain_passk")):
            label = kl if which == "pass@k" else which
            figures.append(
                (
                    f"RL gain in {label} against each base metric",
                    plot_gain(
                        state["cells"], metrics, which, kl, corr, out / "plots" / f"{stem}.png"
                    ),
                )
            )
        if compute_rows(state["cells"]):
            figures.append(
                (
                    "Along pretraining compute, one line per model size",
                    plot_compute(state["cells"], out / "plots" / "compute.png"),
                )
            )
        if matched_rows(state["cells"]):
            figures.append(
                (
                    "RL against more pretraining at the same cost",
                    plot_matched(state["cells"], kl, out / "plots" / "matched.png"),
                )
            )
    tables = [cells_table(state, kl), correlation_table({**state, "correlations": corr}, kl)]
    extra = (
        intervals_table(state),
        verdict_table(state),
        levels_table(state),
        matched_table(state, kl),
        failed_table(state),
    )
    tables += [t for t in extra if t]
    headline = sweep_headline({**state, "correlations": corr})
    settings = _settings(state)
    (out / "sweep.md").write_text(_markdown(state["name"], headline, tables, figures, settings))
    (out / "sweep.html").write_text(_html(state["name"], headline, tables, figures, settings))
    return out / "sweep.md"


def _settings(state: dict[str, Any]) -> str:
    axes = ", ".join(f"{a['path']} ({len(a['values'])})" for a in state["axes"])
    text = f"Grid: {axes}{' (--quick)' if state.get('quick') else ''}"
    if state.get("elapsed_s") is not None:
        text += f"; this invocation took {duration(state['elapsed_s'])}"
    return text + f"; sweep file: {state.get('source')}."


def _markdown(
    title: str, headline: list[str], tables: list[Table], figures: list[Figure], settings: str
) -> str:
    lines = [
        f"# reasonlab sweep: {title}",
        "",
        *markdown_headline(headline),
        *markdown_figures(figures[:1]),
        *markdown_tables(tables),
        *markdown_figures(figures[1:]),
        "## Settings",
        "",
        settings,
    ]
    return "\n".join(lines) + "\n"


def _html(
    title: str, headline: list[str], tables: list[Table], figures: list[Figure], settings: str
) -> str:
    body = (
        f"<h1>reasonlab sweep: {html.escape(title)}</h1>{html_headline(headline)}"
        f"{html_figures(figures[:1])}{html_tables(tables)}{html_figures(figures[1:])}"
        f"<h2>Settings</h2><p>{html.escape(settings)}</p>"
    )
    return html_page(f"reasonlab sweep: {title}", body, width="72em")
