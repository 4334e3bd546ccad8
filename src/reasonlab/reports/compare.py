"""Several run folders side by side -> report.md + report.html + plots/ + compare.json. Reads files only.

The report shows, for two or more run folders (what `reasonlab run` or `reasonlab rl` writes):

- the runs: each one's label (its folder name, made unique) and path;
- the config fields that differ between the runs (dotted paths such as rl.lr, from each config.yaml;
  a field one run lacks shows as "n/a");
- the headline metrics in one table, base and RL: pass@1, pass@k at the largest k all runs share,
  greedy pass@1, maj@k, shortcut rate, malformed rate, mean length, and the RL stage's time. The
  best value of each row is marked (bold in Markdown, class `best` in HTML): higher is better for the
  pass rates and majority vote, lower for the shortcut and malformed rates and the time; mean length
  has no better direction and is never marked, nor is a row whose values are all equal or missing;
- the RL curves overlaid (reward and pass rate per RL step, from metrics.jsonl) and the pass@k curves
  overlaid (eval/base.json and eval/rl.json), one line per run, one colour per run.

report.html is self-contained (plots as base64 data URIs); report.md links plots/. compare.json holds
the runs and both tables; it marks the folder as a compare report, which a later compare may rewrite,
while any other non-empty folder is refused. Usage:

    from reasonlab.reports.compare import write_compare_report
    write_compare_report([Path("runs/default"), Path("runs/rloo")], Path("runs/compare-default-rloo"))
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from reasonlab.config import read_yaml
from reasonlab.errors import DataError, ReasonlabError, RunFolderError
from reasonlab.fileio import read_json_or_none, write_text_atomic
from reasonlab.reports.toolkit import (
    MISSING,
    Figure,
    fmt,
    html_figures,
    html_page,
    html_tables,
    markdown_figures,
    markdown_tables,
    save_figure,
)
from reasonlab.training.tracking import read_metrics

MARKER = "compare.json"  # present in every compare report folder
MODELS = (("base", "base"), ("rl", "RL"))  # (key in summary.json / eval/, label)
HIGHER, LOWER, NEUTRAL = 1, -1, 0  # which direction of a metric is better
# (label, metric, direction); "pass@K" / "maj@K" stand for the largest k every run has
HEADLINE = (
    ("pass@1", "pass@1", HIGHER),
    ("pass@K", "pass@K", HIGHER),
    ("greedy pass@1", "greedy_pass@1", HIGHER),
    ("maj@K", "maj@K", HIGHER),
    ("shortcut rate", "shortcut_rate", LOWER),
    ("malformed rate", "malformed_rate", LOWER),
    ("mean length (tokens)", "mean_length", NEUTRAL),
)
BEST_STYLE = "<style>td.best{font-weight:bold;background:#e3f2e1}</style>"


class Run:
    """One run folder as read for the comparison: label, config (raw YAML), summary, evals, metrics."""

    def __init__(self, path: Path, label: str) -> None:
        self.path, self.label = path, label
        self.config = read_yaml(path / "config.yaml")
        if not isinstance(self.config, dict):
            raise ReasonlabError(f"{path / 'config.yaml'} is not a mapping of config fields")
        self.summary = read_json_or_none(path / "summary.json")
        if not isinstance(self.summary, dict):
            raise DataError(f"{path / 'summary.json'}: not a JSON object of metrics")
        self.evals = {
            m: e["summary"]
            for m, _ in MODELS
            if isinstance(e := read_json_or_none(path / "eval" / f"{m}.json"), dict)
            and isinstance(e.get("summary"), dict)
        }
        self.metrics = read_metrics(path / "metrics.jsonl")

    def metric(self, model: str, name: str) -> Any:
        """`model/name` from summary.json, else `name` from eval/<model>.json's summary, else None."""
        value = self.summary.get(f"{model}/{name}")
        if value is None:
            value = self.evals.get(model, {}).get(name)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def ks(self, model: str, kind: str) -> set[int]:
        """The k of every `kind@k` metric this run has for `model` (kind: pass or maj)."""
        keys = [k.removeprefix(f"{model}/") for k in self.summary if k.startswith(f"{model}/")]
        keys += list(self.evals.get(model, {}))
        prefix = f"{kind}@"
        counts = [k[len(prefix) :] for k in keys if k.startswith(prefix)]
        return {int(c) for c in counts if c.isascii() and c.isdigit()}


def check_runs(runs: Sequence[Path]) -> None:
    """ReasonlabError naming the folder for fewer than two runs, a missing folder, a folder that is not
    a run (no config.yaml or summary.json), or the same folder twice."""
    if len(runs) < 2:
        raise ReasonlabError(f"compare needs at least two run folders, got {len(runs)}")
    seen: dict[Path, Path] = {}
    for path in runs:
        if not path.exists():
            raise ReasonlabError(f"{path}: no such folder")
        if not path.is_dir():
            raise ReasonlabError(f"{path} is a file, not a run folder")
        lacking = [f for f in ("config.yaml", "summary.json") if not (path / f).is_file()]
        if lacking:
            raise ReasonlabError(f"{path} is not a run folder (no {' or '.join(lacking)})")
        key = path.resolve()
        if key in seen:
            raise ReasonlabError(f"{path} is given twice (also as {seen[key]})")
        seen[key] = path


def check_out(out: Path) -> None:
    """RunFolderError unless `out` is missing, an empty folder or an earlier compare report."""
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"{out} is a file, not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise RunFolderError(
            f"{out} is not empty and holds no compare report; choose another --out"
        )


def run_labels(runs: Sequence[Path]) -> list[str]:
    """Each run's folder name; runs sharing a name get as many parent folders as tell them apart."""
    parts = [p.resolve().parts for p in runs]
    depth = [1] * len(runs)
    while True:
        labels = ["/".join(p[-d:]) for p, d in zip(parts, depth)]
        clashes = [i for i, lb in enumerate(labels) if labels.count(lb) > 1]
        if not clashes or all(depth[i] >= len(parts[i]) for i in clashes):
            break
        for i in clashes:
            depth[i] = min(depth[i] + 1, len(parts[i]))
    out: list[str] = []
    for (
        lb
    ) in labels:  # only when one path is a suffix of another's (cannot happen for real folders)
        out.append(lb if lb not in out else f"{lb} ({len(out) + 1})")
    return out


def default_out(runs: Sequence[Path], root: Path = Path("runs")) -> Path:
    """runs/compare-<label>-<label>... (run_labels), made safe for a folder name and cut to 80 characters."""
    names = "-".join(re.sub(r"[^A-Za-z0-9._-]+", "_", label) for label in run_labels(runs))
    return root / f"compare-{names[:80]}"


def config_differences(configs: dict[str, dict]) -> list[list[Any]]:
    """The config fields whose values differ between the runs: [dotted path, value per run...] in the
    order the fields first appear; a field a run lacks shows as "n/a". Nested mappings (task.knobs)
    are walked into; lists are compared whole."""
    flat = [_flatten(c) for c in configs.values()]
    fields = list(dict.fromkeys(k for f in flat for k in f))
    rows = []
    for name in fields:
        cells = [_config_cell(f[name]) if name in f else MISSING for f in flat]
        if len(set(cells)) > 1:
            rows.append([name, *cells])
    return rows


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): node}


def _config_cell(value: Any) -> str:
    """A config value as shown and compared: a string as it is, a float as Python writes it (0.0001,
    1e-06), anything else as JSON (null, true, 3, [3, 7], {})."""
    if isinstance(value, str):
        return value
    return repr(value) if isinstance(value, float) else json.dumps(value)


def headline_rows(runs: Sequence[Run]) -> list[tuple[list[Any], set[int]]]:
    """(row, indices of the best runs) per headline metric and model, then the RL time; the row is
    [label, value per run...] with values formatted, "n/a" where a run lacks the metric."""
    out = []
    for model, model_label in MODELS:
        if not any(r.metric(model, "pass@1") is not None for r in runs):
            continue
        for label, name, direction in HEADLINE:
            if "@K" in name:
                kind = name.split("@")[0]
                have = [r.ks(model, kind) for r in runs if r.ks(model, kind)]
                common = set.intersection(*have) if have else set()
                if not common or max(common) == 1:
                    continue
                name = label = f"{kind}@{max(common)}"
            values = [_number(r.metric(model, name)) for r in runs]
            out.append(([f"{model_label} {label}", *values], best_of(values, direction)))
    times = [_number(r.summary.get("time/rl_s")) for r in runs]
    if any(t != MISSING for t in times):
        out.append((["RL time (s)", *times], best_of(times, LOWER)))
    return out


def _number(x: Any) -> Any:
    """A metric cell: 3 decimals (fmt), 3 significant digits below 0.1 so small rates stay apart."""
    if isinstance(x, float) and 0 < abs(x) < 0.1:
        return float(f"{x:.3g}")
    return fmt(x)


def best_of(values: Sequence[Any], direction: int) -> set[int]:
    """The indices holding the best value (ties all marked); none when the metric has no better
    direction, fewer than two runs have it, or all the runs that have it are equal."""
    present = {i: v for i, v in enumerate(values) if isinstance(v, (int, float))}
    if direction == NEUTRAL or len(present) < 2 or len(set(present.values())) == 1:
        return set()
    target = (max if direction == HIGHER else min)(present.values())
    return {i for i, v in present.items() if v == target}


def plot_rl_curves(runs: Sequence[Run], path: Path) -> Path:
    """Reward (mean) and pass rate per RL step, one line per run."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for ax, (key, ylabel) in zip(
        axes, (("reward/mean", "reward (mean)"), ("rl/pass_rate", "pass rate"))
    ):
        for i, run in enumerate(runs):
            points = [
                (r["step"], r[key])
                for r in run.metrics
                if "reward/mean" in r and isinstance(r.get(key), (int, float))
            ]
            if points:
                ax.plot(*zip(*points), color=_colour(i), label=run.label)
        ax.set_xlabel("RL step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_passk_curves(runs: Sequence[Run], path: Path) -> Path:
    """pass@k against k, base and RL side by side, one line per run."""
    models = [(m, lb) for m, lb in MODELS if any(m in r.evals for r in runs)]
    fig, axes = plt.subplots(
        1, len(models), figsize=(5 * len(models), 4), squeeze=False, sharey=True
    )
    for ax, (model, model_label) in zip(axes[0], models):
        for i, run in enumerate(runs):
            s = run.evals.get(model, {})
            ks = sorted(int(k.split("@")[1]) for k in s if re.fullmatch(r"pass@\d+", k))
            if ks:
                ax.plot(ks, [s[f"pass@{k}"] for k in ks], color=_colour(i), label=run.label)
        ax.set_title(f"{model_label} model")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("k (samples)")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    axes[0][0].set_ylabel("pass@k")
    return save_figure(fig, path)


def _colour(i: int) -> Any:
    return plt.get_cmap("tab10")(i % 10)


def write_compare_report(runs: list[Path], out: Path) -> Path:
    """Write report.md, report.html, plots/ and compare.json in `out`; returns the Markdown path.

    ReasonlabError (one line naming the folder) for a bad list of runs or an `out` that holds
    something other than an earlier compare report; nothing is written then."""
    runs, out = [Path(p) for p in runs], Path(out)
    check_runs(runs)
    check_out(out)
    loaded = [Run(p, label) for p, label in zip(runs, run_labels(runs))]
    labels = [r.label for r in loaded]
    differences = config_differences({r.label: r.config for r in loaded})
    headline = headline_rows(loaded)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    figures: list[Figure] = []
    if any(any("reward/mean" in m for m in r.metrics) for r in loaded):
        figures.append(("RL training curves", plot_rl_curves(loaded, plots / "rl.png")))
    if any(r.evals for r in loaded):
        figures.append(("pass@k on the test split", plot_passk_curves(loaded, plots / "passk.png")))
    runs_table = ("Runs", ["run", "folder"], [[r.label, str(r.path)] for r in loaded])
    diff_table = ("Config differences", ["field", *labels], differences)
    title = "reasonlab compare: " + ", ".join(labels)
    md = [f"# {title}", "", *markdown_tables([runs_table])]
    md += _markdown_differences(diff_table)
    md += _markdown_headline(labels, headline)
    md += markdown_figures(figures)
    write_text_atomic(out / "report.md", "\n".join(md) + "\n")
    body = f"<h1>{html.escape(title)}</h1>{BEST_STYLE}{html_tables([runs_table])}"
    body += html_tables([diff_table]) if differences else _html_none(diff_table[0])
    body += _html_headline(labels, headline) + html_figures(figures)
    write_text_atomic(out / "report.html", html_page(title, body, width="75em"))
    record = {
        "runs": [{"label": r.label, "path": str(r.path)} for r in loaded],
        "config_differences": differences,
        "headline": [{"row": row, "best": sorted(best)} for row, best in headline],
    }
    write_text_atomic(out / MARKER, json.dumps(record, indent=2) + "\n")
    return out / "report.md"


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|")


def _markdown_differences(table: tuple[str, list[str], list[list[Any]]]) -> list[str]:
    caption, header, rows = table
    if not rows:
        return [f"## {caption}", "", "None: the runs share every config field.", ""]
    return markdown_tables([(caption, header, [[_md_cell(c) for c in row] for row in rows])])


def _markdown_headline(labels: list[str], rows: list[tuple[list[Any], set[int]]]) -> list[str]:
    caption = "Headline metrics (test split; best in bold)"
    if not rows:
        return [f"## {caption}", "", "None of the runs has evaluation results.", ""]
    marked = [[row[0], *_marked(row[1:], best, "**{}**", "{}")] for row, best in rows]
    return markdown_tables([(caption, ["metric", *labels], marked)])


def _marked(values: Sequence[Any], best: set[int], mark: str, plain: str) -> list[str]:
    return [(mark if i in best else plain).format(v) for i, v in enumerate(values)]


def _html_none(caption: str) -> str:
    return f"<h2>{html.escape(caption)}</h2><p>None: the runs share every config field.</p>"


def _html_headline(labels: list[str], rows: list[tuple[list[Any], set[int]]]) -> str:
    esc = html.escape
    caption = "<h2>Headline metrics (test split; best highlighted)</h2>"
    if not rows:
        return caption + "<p>None of the runs has evaluation results.</p>"
    head = "".join(f"<th>{esc(h)}</th>" for h in ["metric", *labels])
    body = "".join(
        f"<tr><td>{esc(str(row[0]))}</td>"
        + "".join(
            _marked([esc(str(v)) for v in row[1:]], best, "<td class='best'>{}</td>", "<td>{}</td>")
        )
        + "</tr>"
        for row, best in rows
    )
    return f"{caption}<table><tr>{head}</tr>{body}</table>"
