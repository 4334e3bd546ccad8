"""The test-time search report: search.md and search.html (self-contained) and plots/ from search.json.

`write_search_report(result, out)` takes what search/runner.py `run_search` returns (plus the model
and judge names the command adds) and writes, in `out`:

- the headline (1-3 sentences from the numbers): at the largest budget, the best method against
  best-of-N (else majority vote) and the oracle pass@N, and what the best method spent;
- plots: accuracy vs N (log2 x axis, one line per method, the oracle pass@N dashed, pass@1 dotted),
  accuracy vs FLOPs per problem (log x axis), and accuracy vs N per difficulty level when the
  problems have several levels;
- a table per budget: accuracy (and each seed's when there are several), candidates chosen among,
  tokens generated, judge tokens, FLOPs and seconds, per problem.

search.json itself is written by the caller (the CLI), not here. Usage:

    write_search_report(json.loads(Path("runs/search-default/search.json").read_text()),
                        Path("runs/search-default"))
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

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
    save_figure,
    sig3,
)

NAMES = {
    "majority": "majority vote",
    "best_of_n": "best-of-N",
    "weighted_best_of_n": "weighted best-of-N",
    "beam": "beam search",
    "dvts": "DVTS",
    "mcts": "MCTS",
}
JUDGES = {"prm": "the PRM", "orm": "the ORM", "pairwise": "the pairwise judge"}
NO_JUDGE = ("majority",)  # methods that never read the judge


def method_label(method: str, n: int | None = None, judge: str | None = None) -> str:
    """'best-of-16 with the PRM', 'majority vote', 'beam search with the verifier', ..."""
    name = NAMES.get(method, method)
    if n is not None:
        name = name.replace("-N", f"-{n}")
    if judge and method not in NO_JUDGE:
        name += f" with {JUDGES.get(judge, f'the {judge}')}"
    return name


def search_headline(result: dict[str, Any]) -> list[str]:
    """At the largest budget: the best method against best-of-N (else majority) and the oracle; the
    compute the best method spent per problem, and its ratio to the reference's."""
    methods, budgets = result.get("methods") or {}, result.get("budgets") or []
    if not methods or not budgets:
        return []
    n = max(budgets)
    judge = result.get("judge")
    cells = {m: by_n[str(n)] for m, by_n in methods.items() if str(n) in by_n}
    if not cells:
        return []
    best = max(cells, key=lambda m: cells[m]["accuracy"])
    others = sorted((m for m in cells if m != best), key=lambda m: -cells[m]["accuracy"])
    ref = next((m for m in ("best_of_n", "majority") if m in others), others[0] if others else None)
    oracle = (result.get("oracle") or {}).get(str(n)) or {}
    first = f"At N={n} {method_label(best, n, judge)} reaches {percent(cells[best]['accuracy'])}"
    if ref is not None:
        first += f" against {percent(cells[ref]['accuracy'])} for {method_label(ref, n, judge)}"
    if oracle:
        first += (
            f"{' and' if ref is not None else ','} {percent(oracle['pass@n'])} for the oracle "
            f"pass@{n} (pass@1 {percent(oracle['pass@1'])})"
        )
    sentences = [first + "."]
    spent = cells[best]["compute"]
    second = (
        f"It spends {sig3(spent['flops_per_problem'])} FLOPs and "
        f"{duration(spent['wall_s_per_problem'])} per problem"
    )
    ref_flops = cells[ref]["compute"]["flops_per_problem"] if ref is not None else 0
    if ref is not None and ref_flops > 0:
        second += f", {sig3(spent['flops_per_problem'] / ref_flops)} times the FLOPs of {method_label(ref, n)}"
    sentences.append(second + ".")
    ran = [b for b in budgets if str(b) in methods[best]]
    if len(ran) > 1:
        low = min(ran)
        low_acc = methods[best][str(low)].get("accuracy")
        top_acc = cells[best]["accuracy"]
        if low_acc is not None and percent(low_acc) == percent(top_acc):
            sentences.append(f"It stays at {percent(top_acc)} from N={low} to N={n}.")
        elif low_acc is not None:
            sentences.append(
                f"From N={low} to N={n} it goes from {percent(low_acc)} to {percent(top_acc)}."
            )
    return sentences


def report_tables(result: dict[str, Any]) -> list[Table]:
    """One table per budget: each method, then the oracle pass@N and pass@1."""
    seeds = len(result.get("seeds") or [0])
    judge = result.get("judge")
    header = ["method", "accuracy"]
    header += ["per seed"] if seeds > 1 else []
    header += ["candidates", "tokens", "judge tokens", "FLOPs", "seconds"]
    tables: list[Table] = []
    for n in result["budgets"]:
        rows = []
        for method, by_n in result["methods"].items():
            cell = by_n.get(str(n))
            if cell is None:
                continue
            c = cell["compute"]
            row = [method_label(method, n, judge), percent(cell["accuracy"])]
            row += [", ".join(percent(v) for v in cell["per_seed"])] if seeds > 1 else []
            row += [
                sig3(cell.get("candidates")),
                sig3(c["generated_tokens_per_problem"]),
                sig3(c["judge_tokens_per_problem"]),
                sig3(c["flops_per_problem"]),
                duration(c["wall_s_per_problem"]),
            ]
            rows.append(row)
        oracle = result.get("oracle", {}).get(str(n))
        if oracle:
            c = oracle["compute"]
            for key, label in (("pass@n", f"oracle pass@{n}"), ("pass@1", "pass@1")):
                row = [label, percent(oracle[key])]
                row += (
                    [", ".join(percent(v) for v in oracle[f"{key}_per_seed"])] if seeds > 1 else []
                )
                row += [
                    sig3(n if key == "pass@n" else 1),
                    sig3(c["generated_tokens_per_problem"] / (1 if key == "pass@n" else n)),
                    "0",
                    sig3(c["flops_per_problem"] / (1 if key == "pass@n" else n)),
                    duration(c["wall_s_per_problem"] / (1 if key == "pass@n" else n)),
                ]
                rows.append(row)
        tables.append(
            (
                f"N = {n} ({result['n_problems']} problems x {seeds} seed{'s' * (seeds > 1)}, "
                "compute per problem)",
                header,
                rows,
            )
        )
    return tables


def plot_accuracy_vs_n(result: dict[str, Any], path: Path, level: str | None = None) -> Path:
    """Accuracy per budget, one line per method; the oracle pass@N dashed, pass@1 dotted."""
    budgets = result["budgets"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    _accuracy_lines(ax, result, level)
    ax.set_xscale("log", base=2)
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.set_xlabel("budget N (completions per problem)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_accuracy_by_level(result: dict[str, Any], path: Path) -> Path:
    """Accuracy vs N, one panel per difficulty level."""
    levels = [str(lv) for lv in result["difficulties"]]
    budgets = result["budgets"]
    fig, axes = plt.subplots(
        1, len(levels), figsize=(3.6 * len(levels), 3.6), sharey=True, squeeze=False
    )
    for ax, level in zip(axes[0], levels):
        _accuracy_lines(ax, result, level)
        ax.set_xscale("log", base=2)
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.set_title(f"difficulty {level}")
        ax.set_xlabel("budget N")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy")
    axes[0][-1].legend(fontsize=7)
    return save_figure(fig, path)


def plot_accuracy_vs_flops(result: dict[str, Any], path: Path) -> Path:
    """Accuracy against FLOPs per problem (log x), one line per method and one for the oracle."""
    budgets = result["budgets"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for method, by_n in result["methods"].items():
        pts = [
            (by_n[str(n)]["compute"]["flops_per_problem"], by_n[str(n)]["accuracy"])
            for n in budgets
            if str(n) in by_n
        ]
        pts = [(x, y) for x, y in pts if x > 0]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=method_label(method, None, result.get("judge")))
    oracle = result.get("oracle") or {}
    pts = [
        (oracle[str(n)]["compute"]["flops_per_problem"], oracle[str(n)]["pass@n"])
        for n in budgets
        if str(n) in oracle and oracle[str(n)]["compute"]["flops_per_problem"] > 0
    ]
    if pts:
        ax.plot(*zip(*pts), "k--", marker="x", label="oracle pass@N (sampling only)")
    if ax.has_data():
        ax.set_xscale("log")
    ax.set_xlabel("FLOPs per problem (2 x parameters x tokens, policy + judge)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    if ax.has_data():
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def _accuracy_lines(ax: Any, result: dict[str, Any], level: str | None) -> None:
    budgets = result["budgets"]

    def value(cell: dict[str, Any], key: str) -> float | None:
        if level is None:
            return cell.get(key)
        by_level = cell.get("by_difficulty", {}).get(level)
        return by_level.get(key) if isinstance(by_level, dict) else by_level

    for method, by_n in result["methods"].items():
        xs = [n for n in budgets if str(n) in by_n]
        ys = [value(by_n[str(n)], "accuracy") for n in xs]
        ax.plot(xs, ys, marker="o", label=method_label(method, None, result.get("judge")))
    oracle = result.get("oracle") or {}
    xs = [n for n in budgets if str(n) in oracle]
    if xs:
        ax.plot(xs, [value(oracle[str(n)], "pass@n") for n in xs], "k--", label="oracle pass@N")
        ax.plot(xs, [value(oracle[str(n)], "pass@1") for n in xs], "k:", label="pass@1")


def write_search_report(result: dict[str, Any], out: Path) -> Path:
    """Write plots/, search.md and search.html in `out`; returns the HTML path."""
    out = Path(out)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    figures: list[Figure] = [
        ("Accuracy vs budget N", plot_accuracy_vs_n(result, plots / "accuracy_vs_n.png")),
        ("Accuracy vs compute", plot_accuracy_vs_flops(result, plots / "accuracy_vs_flops.png")),
    ]
    if len(result.get("difficulties") or []) > 1:
        figures.append(
            (
                "Accuracy vs budget N per difficulty level",
                plot_accuracy_by_level(result, plots / "accuracy_by_level.png"),
            )
        )
    tables = report_tables(result)
    headline = search_headline(result)
    title = _title(result)
    settings = _settings(result)
    md = [f"# {title}", "", *markdown_headline(headline), *markdown_figures(figures)]
    md += [*markdown_tables(tables), "## Settings", "", *(f"- {s}" for s in settings), ""]
    (out / "search.md").write_text("\n".join(md))
    esc = html.escape
    body = f"<h1>{esc(title)}</h1>" + html_headline(headline) + html_figures(figures)
    body += html_tables(tables) + "<h2>Settings</h2><ul>"
    body += "".join(f"<li>{esc(s)}</li>" for s in settings) + "</ul>"
    (out / "search.html").write_text(html_page(f"reasonlab search: {title}", body))
    return out / "search.html"


def _title(result: dict[str, Any]) -> str:
    model = result.get("model_name") or result.get("model") or "model"
    judge = result.get("judge") or "no judge"
    return f"Test-time search: {model} on {result['task']} (judge: {judge})"


def _settings(result: dict[str, Any]) -> list[str]:
    s = result.get("settings") or {}
    lines = [
        f"model: {result.get('model', 'n/a')} ({sig3(result.get('policy_params'))} parameters)",
        f"judge: {result.get('judge_spec', result.get('judge')) or 'none'} "
        f"({sig3(result.get('judge_params'))} parameters)",
        f"task: {result['task']} {result.get('knobs') or ''}".rstrip(),
        f"{result['n_problems']} test problems, seeds {', '.join(map(str, result['seeds']))}",
        "sampling: "
        + ", ".join(
            f"{k} {v}" for k, v in s.items() if k in ("temperature", "top_p", "max_new_tokens")
        ),
        "search: "
        + ", ".join(
            f"{k} {v}"
            for k, v in s.items()
            if k in ("beam_width", "aggregation", "c_puct", "max_expansions", "mcts_terminal")
        ),
    ]
    for method, skipped in (result.get("skipped") or {}).items():
        if skipped:
            lines.append(
                f"{method_label(method)} skipped N = {', '.join(map(str, skipped))} "
                "(below the beam width)"
            )
    if result.get("command"):
        lines.append(f"command: {result['command']}")
    return lines
