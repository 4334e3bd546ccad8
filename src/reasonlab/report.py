"""Run folder -> report.md + report.html with PNG plots. Reads files only, never training code.

Plots: the pass@k curve of every evaluated model (eval/<name>.json), the pretraining loss curve
(train and held-out, from metrics.jsonl), and pass@1 by difficulty when extra levels were evaluated.
The report also shows summary.json as a table and a few sampled solutions with their verdicts.
Usage:

    reasonlab report runs/default
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from reasonlab.tracking import read_metrics  # noqa: E402

MODELS = ("base", "rl")  # evaluated models in the order they are drawn


def write_report(run_dir: Path) -> Path:
    """Write plots/, report.md and report.html in `run_dir`; returns the Markdown path."""
    run_dir = Path(run_dir)
    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    summary = _read_json(run_dir / "summary.json") or {}
    evals = {m: e for m in MODELS if (e := _read_json(run_dir / "eval" / f"{m}.json"))}
    figures = []
    if evals:
        figures.append(("pass@k on the test split", plot_passk(evals, plots / "passk.png")))
    metrics = read_metrics(run_dir / "metrics.jsonl")
    if any("train/loss" in r for r in metrics):
        figures.append(("Pretraining loss", plot_loss(metrics, plots / "loss.png")))
    levels = _level_results(run_dir)
    if levels:
        figures.append(("pass@1 by difficulty", plot_levels(levels, plots / "difficulty.png")))
    samples = _samples(evals.get("base"))
    md = _markdown(run_dir.name, summary, figures, samples)
    (run_dir / "report.md").write_text(md)
    (run_dir / "report.html").write_text(_html(run_dir.name, summary, figures, samples))
    return run_dir / "report.md"


def plot_passk(evals: dict[str, dict[str, Any]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, result in evals.items():
        s = result["summary"]
        ks = sorted(int(k.split("@")[1]) for k in s if k.startswith("pass@"))
        ax.plot(ks, [s[f"pass@{k}"] for k in ks], marker=".", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples)")
    ax.set_ylabel("pass@k")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_loss(metrics: list[dict[str, Any]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    train = [(r["train/tokens"], r["train/loss"]) for r in metrics if "train/loss" in r and "train/tokens" in r]
    held = [(r["train/tokens"], r["eval/loss"]) for r in metrics if "eval/loss" in r and "train/tokens" in r]
    if train:
        ax.plot(*zip(*train), alpha=0.6, label="train")
    if held:
        ax.plot(*zip(*held), marker="o", label="held-out (test split)")
    ax.set_xlabel("tokens")
    ax.set_ylabel("loss (nats per solution token)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_levels(levels: dict[str, dict[int, float]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, by_level in levels.items():
        xs = sorted(by_level)
        ax.plot(xs, [by_level[x] for x in xs], marker="o", label=name)
        ax.set_xticks(xs)
    ax.set_xlabel("difficulty")
    ax.set_ylabel("pass@1")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def _level_results(run_dir: Path) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for model in MODELS:
        for path in sorted((run_dir / "eval").glob(f"{model}_level*.json")):
            result = _read_json(path)
            if result:
                level = int(path.stem.removeprefix(f"{model}_level"))
                out.setdefault(model, {})[level] = result["summary"]["pass@1"]
        main = _read_json(run_dir / "eval" / f"{model}.json")
        if model in out and main:
            for level, s in main["by_difficulty"].items():
                out[model][int(level)] = s["pass@1"]
    return out


def _samples(result: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The first kept sample of each kind: (shortcut or stepwise) x (correct or not)."""
    if not result:
        return []
    chosen: dict[tuple[bool, str], dict[str, Any]] = {}
    for p in result["problems"]:
        for sample in p["samples"]:
            kind = (sample.get("shortcut", False), sample["outcome"])
            chosen.setdefault(kind, {"prompt": p["prompt"], "reference": p["answer"], **sample})
    return [chosen[k] for k in sorted(chosen)]


def _markdown(title: str, summary: dict[str, Any], figures: list[tuple[str, Path]], samples: list[dict]) -> str:
    lines = [f"# reasonlab run: {title}", "", "## Summary", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in summary.items()]
    for caption, path in figures:
        lines += ["", f"## {caption}", "", f"![{caption}](plots/{path.name})"]
    if samples:
        lines += ["", "## Sampled solutions of the base model", ""]
        for s in samples:
            lines += [f"Prompt `{s['prompt'].strip()}` (reference {s['reference']}): **{s['outcome']}**, "
                      f"first wrong step {s['first_error']}", "", "```", s["text"].rstrip(), "```", ""]
    return "\n".join(lines) + "\n"


def _html(title: str, summary: dict[str, Any], figures: list[tuple[str, Path]], samples: list[dict]) -> str:
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(str(k))}</td><td>{esc(str(v))}</td></tr>" for k, v in summary.items())
    figs = "".join(f"<h2>{esc(c)}</h2><img src='plots/{esc(p.name)}' alt='{esc(c)}'>" for c, p in figures)
    sample_html = "".join(
        f"<p>Prompt <code>{esc(s['prompt'].strip())}</code> (reference {esc(str(s['reference']))}): "
        f"<b>{esc(s['outcome'])}</b>, first wrong step {esc(str(s['first_error']))}</p><pre>{esc(s['text'])}</pre>"
        for s in samples)
    if sample_html:
        sample_html = "<h2>Sampled solutions of the base model</h2>" + sample_html
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>reasonlab: {esc(title)}</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td{padding:2px 12px}"
            "img{max-width:100%}</style></head>"
            f"<body><h1>reasonlab run: {esc(title)}</h1><h2>Summary</h2><table>{rows}</table>"
            f"{figs}{sample_html}</body></html>\n")


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None
