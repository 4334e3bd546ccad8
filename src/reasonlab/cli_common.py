"""Shared pieces of the `reasonlab` commands: the console, common options, progress bars, model lookup.

Usage (in a command module):

    from reasonlab.cli_common import console, progress, print_summary
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from reasonlab.errors import ReasonlabError

console = Console(soft_wrap=True)  # long paths stay on one line (copyable, greppable)

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML config (default: the embedded configs/default.yaml).")
OutOpt = typer.Option(None, "--out", "-o", help="Run folder (default: runs/<name>).")
SetOpt = typer.Option([], "--set", "-s", help="Override a config field: key.sub=value (repeatable).")
PRETRAIN_BAR = ("pretraining", "train/loss", "loss")  # (label, metric shown, its name)
RL_BAR = ("RL", "reward/mean", "reward")
JUDGE_BAR = ("judges", "judge/loss", "loss")


def resolve_model(path: Path, prefer: str = "rl"):
    """A run folder -> (its model folder, its config); a model folder -> (itself, None).

    In a run folder the RL model is taken when there is one (unless `prefer` is "base")."""
    from reasonlab.config import load_config

    if (path / "config.yaml").is_file():
        for stage in ("rl", "base") if prefer == "rl" else ("base",):
            if (path / stage / "config.json").is_file():
                return path / stage, load_config(path / "config.yaml")
    return path, None


def parse_knobs(items: list[str]) -> dict:
    import yaml

    knobs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ReasonlabError(f"--knob expects name=value, got {item!r}")
        knobs[key] = yaml.safe_load(value)
    return knobs


@contextmanager
def progress() -> Iterator[Callable[[str, str, str], Callable[[int, int, dict], None]]]:
    """One rich progress display for a command; `stage(label, metric, name)` gives the step callback
    of one training stage, whose bar appears at its first step."""
    columns = (TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[value]}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:

        def stage(label: str, metric: str, name: str) -> Callable[[int, int, dict], None]:
            bar = None

            def on_step(done: int, total: int, row: dict) -> None:
                nonlocal bar
                if bar is None:
                    bar = progress.add_task(label, total=total, value="")
                progress.update(bar, completed=done, total=total, value=f"{name} {row.get(metric, float('nan')):.3f}")

            return on_step

        yield stage


def print_summary(summary: dict) -> None:
    table = Table(title="summary", show_header=False)
    for k, v in summary.items():
        table.add_row(k, str(v))
    console.print(table)


