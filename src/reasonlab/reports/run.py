"""Run folder -> report.md + report.html with PNG plots. Reads files only, never training code.

The report opens with a few sentences made from the numbers (reports/headline.py: what RL did to pass@1
and pass@k, which behaviours changed, how well the judges find wrong steps), then the plot that matters
most: the base and RL models' pass@k curves (eval/<name>.json), or the pretraining loss curve when the
run has no RL model. Then the solutions view (reports/solutions.py on eval/solutions.json: the base's
and the RL model's chains for the same problems side by side, each step marked by the verifier, each
judge's step scores, with filters; a run written before the main job kept them shows a few sampled
solutions of each model with their verdicts instead), the tables (base vs
RL headline metrics with the change, the judges' step and outcome metrics, choosing one answer among N
with each judge) and the other plots: the pretraining loss curve (train and held-out, from
metrics.jsonl), the RL curves (reward and pass rate, KL, completion length, shortcut rate and entropy per
step), pass@1 by difficulty when extra levels were evaluated, with judges (judges/eval.json) best-of-N
accuracy against N for each judge beside majority vote and pass@1 and reliability diagrams of their
scores, and with a learned RL reward the hacking gap per RL step. All of summary.json comes last,
collapsed. report.html inlines its images and stands alone; report.md links the PNGs in plots/.
Usage:

    reasonlab report runs/default
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from reasonlab.config import read_yaml
from reasonlab.fileio import read_json_or_none
from reasonlab.reports.headline import judge_label, run_headline
from reasonlab.reports.solutions import solutions_section_html, solutions_section_markdown
from reasonlab.reports.toolkit import (
    Figure,
    Table,
    html_figures,
    html_headline,
    html_page,
    html_raw,
    html_tables,
    markdown_figures,
    markdown_headline,
    markdown_raw,
    markdown_tables,
    percent,
    points,
    save_figure,
    sig3,
    tokens,
)
from reasonlab.training.tracking import read_metrics

MODELS = ("base", "rl")  # evaluated models in the order they are drawn
MODEL_LABELS = {"base": "base model", "rl": "RL model"}
PASSK = "pass@k on the test split"
LOSS = "Pretraining loss"


@dataclass(frozen=True)
class Parts:
    """What a run's report shows, in its order: title, headline, the leading figure, sampled solutions,
    tables, the other figures and the raw summary."""

    title: str
    headline: list[str]
    lead: list[Figure]
    samples: dict[str, list[dict[str, Any]]]
    solutions: dict[str, Any] | None  # eval/solutions.json, the judged chains side by side
    tables: list[Table]
    figures: list[Figure]
    summary: dict[str, Any]


def write_report(run_dir: Path) -> Path:
    """Write plots/, report.md and report.html in `run_dir`; returns the Markdown path."""
    run_dir = Path(run_dir)
    summary = read_json_or_none(run_dir / "summary.json") or {}
    evals = {m: e for m in MODELS if (e := read_json_or_none(run_dir / "eval" / f"{m}.json"))}
    metrics = read_metrics(run_dir / "metrics.jsonl")
    judges = read_json_or_none(run_dir / "judges" / "eval.json")
    judges = judges if judges and judges.get("judges") else None
    figures = _figures(run_dir, evals, metrics, judges)
    lead_caption = PASSK if "rl" in evals else LOSS
    lead = [f for f in figures if f[0] == lead_caption] or figures[:1]
    comparison = _comparison(summary)
    tables = [comparison_table(comparison)] if comparison else []
    tables += judge_tables(judges) if judges else []
    parts = Parts(
        title=run_dir.name,
        headline=run_headline(summary, *_rl_facts(run_dir, metrics)),
        lead=lead,
        samples={m: _samples(e) for m, e in evals.items()},
        solutions=read_json_or_none(run_dir / "eval" / "solutions.json"),
        tables=tables,
        figures=[f for f in figures if f not in lead],
        summary=summary,
    )
    (run_dir / "report.md").write_text(_markdown(parts))
    (run_dir / "report.html").write_text(_html(parts))
    return run_dir / "report.md"


def _figures(
    run_dir: Path,
    evals: dict[str, dict[str, Any]],
    metrics: list[dict[str, Any]],
    judges: dict[str, Any] | None,
) -> list[Figure]:
    """Every plot the run's files allow, saved in plots/, as (caption, path)."""
    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    figures = []
    if evals:
        figures.append((PASSK, plot_passk(evals, plots / "passk.png")))
    if any("train/loss" in r for r in metrics):
        figures.append((LOSS, plot_loss(metrics, plots / "loss.png")))
    if any("reward/mean" in r for r in metrics):
        figures.append(("RL training curves", plot_rl(metrics, plots / "rl.png")))
    levels = _level_results(run_dir)
    if levels:
        figures.append(("pass@1 by difficulty", plot_levels(levels, plots / "difficulty.png")))
    if judges:
        figures.append(
            (
                f"Best-of-N with the judges (base samples, {judges['n_problems']} test problems)",
                plot_best_of_n(judges, plots / "best_of_n.png"),
            )
        )
        if all("calibration" in r for r in judges["judges"].values()):
            figures.append(
                ("Calibration of the judges", plot_calibration(judges, plots / "calibration.png"))
            )
    if any("hack/gap" in r for r in metrics):
        figures.append(
            (
                "Learned reward vs verifier during RL (hacking gap)",
                plot_hacking(metrics, plots / "hacking.png"),
            )
        )
    return figures


def _rl_facts(run_dir: Path, metrics: list[dict[str, Any]]) -> tuple[int | None, str | None]:
    """(RL steps taken, from metrics.jsonl; the advantage estimator, from config.yaml)."""
    steps = max((r["step"] for r in metrics if "reward/mean" in r and "step" in r), default=None)
    config = read_yaml(run_dir / "config.yaml") if (run_dir / "config.yaml").is_file() else None
    rl = config.get("rl") if isinstance(config, dict) else None
    return steps, rl.get("advantage") if isinstance(rl, dict) else None


def plot_passk(evals: dict[str, dict[str, Any]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, result in evals.items():
        s = result["summary"]
        ks = sorted(int(k.split("@")[1]) for k in s if k.startswith("pass@"))
        ax.plot(ks, [s[f"pass@{k}"] for k in ks], marker=".", label=MODEL_LABELS.get(name, name))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples per problem)")
    ax.set_ylabel("pass@k (share of test problems solved)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    return save_figure(fig, path)


def plot_loss(metrics: list[dict[str, Any]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    train = [
        (r["train/tokens"], r["train/loss"])
        for r in metrics
        if "train/loss" in r and "train/tokens" in r
    ]
    held = [
        (r["train/tokens"], r["eval/loss"])
        for r in metrics
        if "eval/loss" in r and "train/tokens" in r
    ]
    if train:
        ax.plot(*zip(*train), alpha=0.6, label="train")
    if held:
        ax.plot(*zip(*held), marker="o", label="held-out (test split)")
    ax.set_xlabel("training tokens seen")
    ax.set_ylabel("loss (nats per solution token)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    return save_figure(fig, path)


def plot_rl(metrics: list[dict[str, Any]], path: Path) -> Path:
    """Per RL step: reward and pass rate, KL, completion length, shortcut rate and entropy."""
    rows = [r for r in metrics if "reward/mean" in r]
    panels = [
        ("reward", [("reward/mean", "reward mean"), ("rl/pass_rate", "pass rate")]),
        ("KL", [("rl/kl_ref", "KL to the base"), ("rl/approx_kl", "KL to the sampling policy")]),
        ("completion length (tokens)", [("rl/length_mean", "mean"), ("rl/length_max", "max")]),
        (
            "share / nats",
            [
                ("rl/shortcut_rate", "shortcut rate"),
                ("rl/entropy", "entropy"),
                ("rl/zero_var_groups", "zero-variance groups"),
            ],
        ),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(9, 6), sharex=True)
    for ax, (ylabel, series) in zip(axes.flat, panels):
        for key, label in series:
            points = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
            if points:
                ax.plot(*zip(*points), marker="." if len(points) < len(rows) else None, label=label)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(loc="best", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("RL step")
    return save_figure(fig, path)


def plot_best_of_n(results: dict[str, Any], path: Path) -> Path:
    """Accuracy of the sample each judge picks among N, against N, beside majority vote and pass@1."""
    ks = results["ks"]
    base = results["baselines"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in results["judges"].items():
        ax.plot(
            ks,
            [r["best_of_n"][str(k)] for k in ks],
            marker="o",
            label=f"best-of-N by {judge_label(name)}",
        )
    ax.plot(
        ks, [base["majority"][str(k)] for k in ks], marker="s", label="majority vote (ties split)"
    )
    ax.axhline(base["pass@1"], color="gray", linestyle="--", label="pass@1")
    ax.axhline(
        base[f"pass@{results['best_of']}"],
        color="gray",
        linestyle=":",
        label=f"pass@{results['best_of']} (oracle)",
    )
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("N (base samples per problem)")
    ax.set_ylabel("accuracy (share of problems)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


def plot_calibration(results: dict[str, Any], path: Path) -> Path:
    """Reliability diagrams: share right against mean score per bin, for step scores (held-out injected
    errors) and solution scores (the base's samples); the diagonal is perfect calibration."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
    for ax, (key, title) in zip(
        axes,
        (
            ("steps", "step scores (held-out solutions)"),
            ("outcome", "solution scores (base samples)"),
        ),
    ):
        ax.plot([0, 1], [0, 1], color="gray", linestyle=":")
        for name, r in results["judges"].items():
            bins = r["calibration"][key]
            ax.plot(
                [b["confidence"] for b in bins],
                [b["accuracy"] for b in bins],
                marker="o",
                label=judge_label(name),
            )
        ax.set_title(title)
        ax.set_xlabel("mean score in bin")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    axes[0].set_ylabel("share right")
    return save_figure(fig, path)


def plot_hacking(metrics: list[dict[str, Any]], path: Path) -> Path:
    """Per RL step: the learned judge's mean score, the verifier's pass rate, and the wrong answers accepted."""
    rows = [r for r in metrics if "hack/gap" in r]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (
        ("hack/judge_mean", "judge score (mean)"),
        ("hack/verifier_mean", "verifier: correct"),
        ("hack/false_accept", "wrong answers the judge accepts"),
    ):
        ax.plot([r["step"] for r in rows], [r[key] for r in rows], label=label)
    ax.set_xlabel("RL step")
    ax.set_ylabel("share of samples (judge: mean score)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return save_figure(fig, path)


def comparison_table(comparison: list[tuple[str, Any, Any]]) -> Table:
    """Base vs RL per headline metric: shares as percentages, the change in points (lengths in tokens)."""
    rows = []
    for name, base, rl in comparison:
        show = tokens if name == "mean_length" else percent
        change = None if None in (base, rl) else rl - base
        if change is None:
            shown = ""
        elif name == "mean_length":
            shown = ("+" if change > 0 else "") + tokens(change)
        else:
            shown = points(change)
        rows.append([name, show(base), show(rl), shown])
    return "Base vs RL (test split)", ["metric", "base", "RL", "change"], rows


JUDGE_COLUMNS = (  # (key, header, how it is shown)
    ("f1", "ProcessBench F1", sig3),
    ("acc_error", "acc. erroneous", percent),
    ("acc_correct", "acc. correct", percent),
    ("step_auroc", "step AUROC", sig3),
    ("step_ece", "step ECE", sig3),
    ("outcome_auroc", "outcome AUROC", sig3),
)


def judge_tables(results: dict[str, Any]) -> list[Table]:
    """The judges' step metrics (held-out injected errors, and the base's own samples) and best-of-N."""
    out: list[Table] = []
    for split, title in (
        ("injected", "Judges on held-out solutions with injected errors"),
        ("policy", "Judges on the base model's own samples"),
    ):
        rows = [
            [name, *(show(_stored(r[split].get(k))) for k, _, show in JUDGE_COLUMNS)]
            for name, r in results["judges"].items()
        ]
        out.append((title, ["judge", *(label for _, label, _ in JUDGE_COLUMNS)], rows))
    n, base = results["best_of"], results["baselines"]
    rows = [
        [f"best-of-{n} by {name}", percent(_stored(r["best_of_n"][str(n)]))]
        for name, r in results["judges"].items()
    ]
    rows += [
        [f"majority vote of {n} (ties split evenly)", percent(_stored(base["majority"][str(n)]))],
        ["pass@1", percent(_stored(base["pass@1"]))],
        [f"pass@{n} (oracle)", percent(_stored(base[f"pass@{n}"]))],
    ]
    out.append((f"Choosing one answer among {n} base samples", ["selector", "accuracy"], rows))
    return out


def _stored(x: Any) -> Any:
    """A judge metric rounded as summary.json stores it, so the tables and the headline agree."""
    return round(x, 4) if isinstance(x, float) else x


COMPARED = (
    "pass@1",
    "greedy_pass@1",
    "maj@64",
    "shortcut_rate",
    "shortcut_accuracy",
    "stepwise_accuracy",
    "process_valid_rate",
    "malformed_rate",
    "mean_length",
)


def _comparison(summary: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(metric, base, RL) rows for the headline metrics, when the run has an RL model."""
    if "rl/pass@1" not in summary:
        return []
    ks = sorted({int(k.split("@")[1]) for k in summary if k.startswith("base/pass@")})
    names = ["pass@1", *(f"pass@{k}" for k in ks[1:] if k in (8, ks[-1]))] + list(COMPARED[1:])
    return [
        (n, summary.get(f"base/{n}"), summary.get(f"rl/{n}"))
        for n in names
        if f"base/{n}" in summary
    ]


def plot_levels(levels: dict[str, dict[int, float]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, by_level in levels.items():
        xs = sorted(by_level)
        ax.plot(xs, [by_level[x] for x in xs], marker="o", label=MODEL_LABELS.get(name, name))
        ax.set_xticks(xs)
    ax.set_xlabel("difficulty level")
    ax.set_ylabel("pass@1 (share of problems solved)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    return save_figure(fig, path)


def _level_results(run_dir: Path) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for model in MODELS:
        for path in sorted((run_dir / "eval").glob(f"{model}_level*.json")):
            result = read_json_or_none(path)
            if result:
                level = int(path.stem.removeprefix(f"{model}_level"))
                out.setdefault(model, {})[level] = result["summary"]["pass@1"]
        main = read_json_or_none(run_dir / "eval" / f"{model}.json")
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


def _markdown(parts: Parts) -> str:
    lines = [
        f"# reasonlab run: {parts.title}",
        "",
        *markdown_headline(parts.headline),
        *markdown_figures(parts.lead),
        *_solutions_markdown(parts),
        *markdown_tables(parts.tables),
        *markdown_figures(parts.figures),
        *markdown_raw("summary.json", parts.summary),
    ]
    return "\n".join(lines) + "\n"


def _html(parts: Parts) -> str:
    body = (
        f"<h1>reasonlab run: {html.escape(parts.title)}</h1>{html_headline(parts.headline)}"
        f"{html_figures(parts.lead)}{_solutions_html(parts)}"
        f"{html_tables(parts.tables)}{html_figures(parts.figures)}"
        f"{html_raw('summary.json', parts.summary)}"
    )
    return html_page(f"reasonlab: {parts.title}", body)


def _solutions_markdown(parts: Parts) -> list[str]:
    """The judged chains side by side (eval/solutions.json), or for a run written before the main
    job kept them, a few sampled solutions of each model with their verdicts."""
    if parts.solutions:
        return [solutions_section_markdown(parts.solutions), ""]
    return _samples_section_markdown(parts.samples)


def _solutions_html(parts: Parts) -> str:
    if parts.solutions:
        return solutions_section_html(parts.solutions)
    return _samples_section_html(parts.samples)


def _samples_section_markdown(samples: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Lines of Markdown: per model a heading and its chosen samples with their verdicts."""
    lines: list[str] = []
    for model, chosen in samples.items():
        if chosen:
            lines += [f"## Sampled solutions of the {MODEL_LABELS[model]}", ""]
        for s in chosen:
            lines += [
                f"Prompt `{s['prompt'].strip()}` (reference {s['reference']}): **{s['outcome']}**, "
                f"first wrong step {s['first_error']}",
                "",
                "```",
                s["text"].rstrip(),
                "```",
                "",
            ]
    return lines


def _samples_section_html(samples: dict[str, list[dict[str, Any]]]) -> str:
    """Per model an <h2> and its chosen samples with their verdicts."""
    esc = html.escape
    out = ""
    for model, chosen in samples.items():
        if chosen:
            out += f"<h2>Sampled solutions of the {MODEL_LABELS[model]}</h2>"
        out += "".join(
            f"<p>Prompt <code>{esc(s['prompt'].strip())}</code> (reference {esc(str(s['reference']))}): "
            f"<b>{esc(s['outcome'])}</b>, first wrong step {esc(str(s['first_error']))}</p>"
            f"<pre>{esc(s['text'])}</pre>"
            for s in chosen
        )
    return out
