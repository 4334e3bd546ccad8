"""A sufficiency result (evaluate/sufficiency.py) -> sufficiency.md + sufficiency.html with PNG plots.

The headline comes first (reports/headline.py: the base's pass rates at the main level, whether it was
judged sufficient for RL and the verdict statements that decided it), then the coverage curves (pass@k
against k on a log axis, pass@1 and pass@n marked), every rule of the verdict in plain language (which
metrics say RL will pay off, which say improve the base first), the metrics per difficulty level, the
judge's best-of-N and the random-reward control as tables, the other plots (the learnable / never /
always shares per level, behaviour and validity rates per level, best-of-N against pass@1 and pass@N,
the control runs' gains and training curves) and the settings last. Shares are shown as percentages.
sufficiency.html inlines its images. Reads the result dict only, never sampling or training code.
Usage:

    write_sufficiency_report(json.loads(Path("runs/sufficiency/default_arith/sufficiency.json").read_text()),
                             Path("runs/sufficiency/default_arith"))
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from reasonlab.reports.headline import sufficiency_headline
from reasonlab.reports.toolkit import (
    Figure,
    Table,
    duration,
    fmt,
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

SAYS = {"rl": "RL pays off", "base": "improve the base", "neutral": "note"}
ROWS = (  # (key, label, how it is shown)
    ("pass@1", "pass@1", percent),
    ("headroom", "headroom pass@n - pass@1", percent),
    ("learnable", "learnable (0 < solved < n)", percent),
    ("never", "never solved", percent),
    ("always", "always solved", percent),
    ("check_rate", "samples that check", percent),
    ("backtrack_rate", "samples that backtrack", percent),
    ("process_valid_rate", "correct with every step valid", percent),
    ("distinct_correct", "distinct correct solutions", sig3),
    ("answer_entropy", "answer entropy (nats)", sig3),
    ("malformed_rate", "malformed", percent),
)
SELECTION = (  # the judge's selection table: (key, how it is shown)
    ("best_of_n", percent),
    ("majority", percent),
    ("pass@1", percent),
    ("pass@n", percent),
    ("gap", percent),
    ("auroc", sig3),
)
COVERAGE = "Coverage: pass@k per level"


def write_sufficiency_report(result: dict[str, Any], out_dir: Path) -> Path:
    """Write plots/, sufficiency.md and sufficiency.html in `out_dir`; returns the Markdown path."""
    out_dir = Path(out_dir)
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    levels = _by_level(result["levels"])
    figures = [
        (COVERAGE, plot_coverage(result, plots / "coverage.png")),
        (
            "Learnable, never and always solved problems",
            plot_outcomes(levels, plots / "learnable.png"),
        ),
        ("Behaviours and process validity", plot_behaviour(levels, plots / "behaviour.png")),
    ]
    judge = result.get("judge") or {}
    if judge.get("levels"):
        figures.append(
            (
                f"Best-of-{result['best_of']} with the judge ({judge.get('name')})",
                plot_selection(result, plots / "selection.png"),
            )
        )
    if result.get("control"):
        figures.append(
            ("Random-reward control", plot_control(result["control"], plots / "control.png"))
        )
    tables = report_tables(result)
    title = f"{result.get('model', 'model')} on {result['task']}"
    (out_dir / "sufficiency.md").write_text(_markdown(title, result, tables, figures))
    (out_dir / "sufficiency.html").write_text(_html(title, result, tables, figures))
    return out_dir / "sufficiency.md"


def report_tables(result: dict[str, Any]) -> list[Table]:
    """Metrics per level; the judge's selection per level; the control runs."""
    levels = _by_level(result["levels"])
    names = [str(lv) for lv in levels]
    n = result["n"]
    ks = sorted({int(k[5:]) for m in levels.values() for k in m if k.startswith("pass@")} - {1})
    rows = [
        [label, *(show(m.get(key)) for m in levels.values())]
        for key, label, show in [
            *ROWS[:1],
            *((f"pass@{k}", f"pass@{k}", percent) for k in ks if k in (16, n)),
            *ROWS[1:],
        ]
    ]
    knob = result.get("difficulty_knob") or "level"
    out: list[Table] = [
        (f"Metrics per level ({n} samples x {result['n_problems']} problems)", [knob, *names], rows)
    ]
    judge = result.get("judge") or {}
    if judge.get("levels"):
        sel = _by_level(judge["levels"])
        out.append(
            (
                f"Choosing one of the first {result['best_of']} samples ({judge.get('name')})",
                [knob, "best-of-N", "majority", "pass@1", "pass@N", "gap", "AUROC"],
                [[lv, *(show(g.get(k)) for k, show in SELECTION)] for lv, g in sel.items()],
            )
        )
    c = result.get("control")
    if c:
        out.append(
            (
                f"Random-reward control: {c['steps']} GRPO steps at level {result['main_level']}, pass@1 "
                f"from {c['samples']} samples",
                ["model", "pass@1", "gain"],
                [
                    ["base", percent(c["base_pass@1"]), ""],
                    [
                        "true reward (verifier)",
                        percent(c["outcome"]["pass@1"]),
                        points(c["outcome_gain"]),
                    ],
                    [
                        "random reward (fair coin)",
                        percent(c["random"]["pass@1"]),
                        points(c["random_gain"]),
                    ],
                ],
            )
        )
    return out


def plot_coverage(result: dict[str, Any], path: Path) -> Path:
    """pass@k against k (log axis) per level, pass@1 and pass@n marked."""
    fig, ax = plt.subplots(figsize=(6, 4))
    n = result["n"]
    for level, curve in _by_level(result["coverage"]).items():
        ks = list(range(1, len(curve) + 1))
        (line,) = ax.plot(
            ks,
            curve,
            label=f"level {level}: pass@1 {percent(curve[0])}, pass@{ks[-1]} {percent(curve[-1])}",
        )
        ax.scatter([1, ks[-1]], [curve[0], curve[-1]], color=line.get_color(), zorder=3)
    ax.set_xscale("log", base=2)
    ax.set_xlabel(f"k (samples; pass@1 and pass@{n} marked)")
    ax.set_ylabel("pass@k (share of problems solved)")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return save_figure(fig, path)


def plot_outcomes(levels: dict[str, dict[str, float]], path: Path) -> Path:
    """Stacked bars per level: never, learnable and always solved shares of the problems."""
    fig, ax = plt.subplots(figsize=(6, 4))
    names = list(levels)
    bottom = [0.0] * len(names)
    for key, color in (("never", "#c44e52"), ("learnable", "#55a868"), ("always", "#4c72b0")):
        values = [levels[lv][key] for lv in names]
        ax.bar(names, values, bottom=bottom, color=color, label=key)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_xlabel("level")
    ax.set_ylabel("share of problems")
    ax.set_ylim(0, 1.0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return save_figure(fig, path)


def plot_behaviour(levels: dict[str, dict[str, float]], path: Path) -> Path:
    """Grouped bars per level: check, backtrack, malformed rates and process validity."""
    return _grouped(
        levels,
        (
            ("check_rate", "checks"),
            ("backtrack_rate", "backtracks"),
            ("process_valid_rate", "correct with valid steps"),
            ("malformed_rate", "malformed"),
        ),
        "share",
        path,
    )


def plot_selection(result: dict[str, Any], path: Path) -> Path:
    """Grouped bars per level: pass@1, majority, best-of-N by the judge, pass@N (oracle)."""
    n = result["best_of"]
    return _grouped(
        _by_level(result["judge"]["levels"]),
        (
            ("pass@1", "pass@1"),
            ("majority", f"majority of {n}"),
            ("best_of_n", f"best-of-{n} by judge"),
            ("pass@n", f"pass@{n} (oracle)"),
        ),
        "accuracy",
        path,
    )


def plot_control(control: dict[str, Any], path: Path) -> Path:
    """Left: pass@1 of the base and of both control runs. Right: the runs' pass rate per GRPO step."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    names = ["base", "true reward", "random reward"]
    values = [control["base_pass@1"], control["outcome"]["pass@1"], control["random"]["pass@1"]]
    bars = left.bar(names, values, color=["gray", "#55a868", "#dd8452"])
    for bar, v in zip(bars, values):
        left.annotate(
            percent(v), (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=8
        )
    left.set_ylabel("pass@1")
    left.set_ylim(0, 1.05)
    for key, label in (("outcome", "true reward"), ("random", "random reward")):
        rates = control[key]["pass_rate"]
        right.plot(
            range(1, len(rates) + 1), rates, marker="." if len(rates) < 40 else None, label=label
        )
    right.set_xlabel("GRPO step")
    right.set_ylabel("pass rate of the step's samples")
    right.set_ylim(0, 1.05)
    right.grid(alpha=0.3)
    right.legend(loc="best", fontsize=8)
    return save_figure(fig, path)


def _grouped(
    levels: dict[str, dict[str, Any]], series: tuple[tuple[str, str], ...], ylabel: str, path: Path
) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    names = list(levels)
    width = 0.8 / len(series)
    for i, (key, label) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(names))]
        ax.bar(xs, [levels[lv].get(key) or 0.0 for lv in names], width=width, label=label)
    ax.set_xticks(range(len(names)), names)
    ax.set_xlabel("level")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.05)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return save_figure(fig, path)


def _by_level(mapping: dict[Any, Any]) -> dict[str, Any]:
    """Entries ordered by difficulty, keyed by its text."""
    return {str(k): mapping[k] for k in sorted(mapping, key=lambda k: int(k))}


def _settings(result: dict[str, Any]) -> list[str]:
    t = result.get("time", {})
    return [
        f"task `{result['task']}` with knobs `{result.get('knobs', {})}`; main level {result['main_level']}; "
        f"{result['n']} samples x {result['n_problems']} problems per level; judge `{result['judge']['name']}` "
        f"on the first {result['best_of']} samples; seed {result['seed']}; "
        f"{duration(t.get('total_s'))} (sampling {duration(t.get('sample_s'))}, judging "
        f"{duration(t.get('judge_s'))}, control {duration(t.get('control_s'))})"
    ]


def _split(figures: list[Figure]) -> tuple[list[Figure], list[Figure]]:
    """(the coverage plot, the others)."""
    return [f for f in figures if f[0] == COVERAGE], [f for f in figures if f[0] != COVERAGE]


def _markdown(
    title: str, result: dict[str, Any], tables: list[Table], figures: list[Figure]
) -> str:
    lead, rest = _split(figures)
    lines = [
        f"# Is the base sufficient for RL? {title}",
        "",
        *markdown_headline(sufficiency_headline(result)),
        *markdown_figures(lead),
        "## The verdict, rule by rule",
        "",
        f"**Verdict.** {result['headline']}",
        "",
    ]
    lines += [
        f"- **{SAYS[s['says']]}** ({s['metric']} = {fmt(s['value'])}): {s['text']}"
        for s in result["verdict"]
    ]
    lines += [
        "",
        *markdown_tables(tables),
        *markdown_figures(rest),
        "## Settings",
        "",
        *_settings(result),
    ]
    return "\n".join(lines) + "\n"


def _html(title: str, result: dict[str, Any], tables: list[Table], figures: list[Figure]) -> str:
    esc = html.escape
    lead, rest = _split(figures)
    items = "".join(
        f"<li><b>{esc(SAYS[s['says']])}</b> ({esc(s['metric'])} = {esc(str(fmt(s['value'])))}): "
        f"{esc(s['text'])}</li>"
        for s in result["verdict"]
    )
    body = f"<h1>Is the base sufficient for RL? {esc(title)}</h1>"
    body += html_headline(sufficiency_headline(result)) + html_figures(lead)
    body += "<h2>The verdict, rule by rule</h2>"
    body += f"<p><b>Verdict.</b> {esc(result['headline'])}</p><ul>{items}</ul>"
    body += html_tables(tables) + html_figures(rest)
    body += "<h2>Settings</h2>" + "".join(f"<p>{esc(line)}</p>" for line in _settings(result))
    return html_page(f"reasonlab sufficiency: {title}", body)
