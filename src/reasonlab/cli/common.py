"""Shared pieces of the `reasonlab` commands: the console, common options, progress bars, model lookup.

An option that sets a config field is declared with `field_option(Model, "field", "--flag")`: it has
no default of its own (None means "the config's value"), its help is the field's docstring with the
field's default, and `apply_options` writes the given values into a config object through pydantic's
validation, so a bad value is one line naming the flag. A default therefore lives in one place, the
config model. Usage (in a command module):

    from reasonlab.cli.common import console, field_option, apply_options, progress, print_summary

    def eval_(n: Optional[int] = field_option(EvalConfig, "n_samples", "-n")): ...
        apply_options(ec, {"-n": ("n_samples", n)})
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from reasonlab.errors import ReasonlabError

if TYPE_CHECKING:
    from reasonlab.config import RunConfig
    from reasonlab.tasks import Task

console = Console(soft_wrap=True)  # long paths stay on one line (copyable, greppable)

ConfigOpt = typer.Option(
    None, "--config", "-c", help="YAML config (default: the embedded configs/default.yaml)."
)
OutOpt = typer.Option(None, "--out", "-o", help="Run folder (default: runs/<name>).")
SetOpt = typer.Option(
    [], "--set", "-s", help="Override a config field: key.sub=value (repeatable)."
)
KnobOpt = typer.Option([], "--knob", "-k", help="Task knob: name=value (repeatable).")
PRETRAIN_BAR = ("pretraining", "train/loss", "loss")  # (label, metric shown, its name)
RL_BAR = ("RL", "reward/mean", "reward")
JUDGE_BAR = ("judges", "judge/loss", "loss")


# (flags, model, field) of every field option, so the tests can check them against the models
FIELD_OPTIONS: list[tuple[tuple[str, ...], type[BaseModel], str]] = []


def field_option(model: type[BaseModel], name: str, *flags: str, help: str | None = None) -> Any:
    """A typer option for config field `model.name`: default None (= the config's value); the help text
    is `help` or the field's docstring, followed by the field's default."""
    field = model.model_fields[name]
    default = field.get_default(call_default_factory=True)
    text = " ".join((help or field.description or name).split())
    FIELD_OPTIONS.append((flags, model, name))
    shown = default if not isinstance(default, bool) else flags[0].split("/")[not default]
    return typer.Option(
        None, *flags, help=f"{text} {escape(f'[default: {shown}]')}", show_default=False
    )


def apply_options(target: BaseModel, given: Mapping[str, tuple[str, Any]]) -> None:
    """Set `{flag: (field, value)}` on a config object (values left at None are not given); a value the
    field refuses is one line naming the flag."""
    for flag, (name, value) in given.items():
        if value is None:
            continue
        try:
            setattr(target, name, value)
        except ValidationError as err:
            raise ReasonlabError(f"{flag}: {err.errors()[0]['msg']}, got {value!r}") from None


def resolve_model(path: Path, prefer: str = "rl") -> tuple[Path, RunConfig | None]:
    """A run folder -> (its model folder, its config); a model folder -> (itself, None).

    In a run folder the RL model is taken when there is one (unless `prefer` is "base")."""
    from reasonlab.config import load_config

    if (path / "config.yaml").is_file():
        for stage in ("rl", "base") if prefer == "rl" else ("base",):
            if (path / stage / "config.json").is_file():
                return path / stage, load_config(path / "config.yaml")
    return path, None


def load_any_judge(
    spec: str, run_dir: Path | None = None, also: Sequence[str] = ()
) -> tuple[Any, Path | None, RunConfig | None]:
    """A --judge spec -> (the judge, or None for `verifier` (the caller builds it for its task), its
    folder or None, the config of the run it was trained in or None).

    `spec` is `verifier`, a rule baseline (judges/baselines.py), a judge folder, or, when `run_dir` is
    a run folder, a head name (prm, orm, pairwise) meaning <run_dir>/judges/<head>. `also` names
    further specs the calling command handles itself (shown in the error for an unknown spec)."""
    import json

    from reasonlab.config import load_config
    from reasonlab.errors import CheckpointError
    from reasonlab.judges.baselines import BASELINES
    from reasonlab.judges.models import HEADS, find_judge, load_judge

    if spec == "verifier":
        return None, None, None
    if spec in BASELINES:
        return BASELINES[spec](), None, None
    if run_dir is not None and spec in HEADS and not Path(spec).is_dir():
        try:
            folder = find_judge(spec, run_dir)
        except CheckpointError as err:
            raise ReasonlabError(f"--judge: {str(err).removeprefix('rl.judge: ')}") from None
    else:
        folder = Path(spec)
    if not folder.exists():
        heads = f", {'/'.join(HEADS)} (of the run)" if run_dir is not None else ""
        raise ReasonlabError(
            f"--judge: {spec} is neither a judge folder nor a baseline "
            f"(baselines: verifier, {', '.join([*also, *BASELINES])}{heads})"
        )
    loaded = load_judge(folder)  # a judge trained on a task remembers it (config.json "task")
    task = json.loads((folder / "config.json").read_text()).get("task")
    if isinstance(task, dict) and isinstance(task.get("name"), str):
        from reasonlab.config import config_from_dict

        return loaded, folder, config_from_dict({"task": task})
    run_config = folder.parent.parent / "config.yaml"
    return loaded, folder, load_config(run_config) if run_config.is_file() else None


def parse_knobs(items: list[str]) -> dict[str, Any]:
    import yaml

    knobs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ReasonlabError(f"--knob expects name=value, got {item!r}")
        knobs[key] = yaml.safe_load(value)
    return knobs


def task_knobs(
    task_name: str, run_cfg: RunConfig | None, given: Mapping[str, Any], data_dir: Path | None
) -> dict[str, Any]:
    """The knobs of a command's task: the run's own knobs when it is the run's task, then the `--knob`
    items (`given`, from parse_knobs), then `--data-dir` for tasks that read benchmark files."""
    knobs = dict(run_cfg.task.knobs) if run_cfg and task_name == run_cfg.task.name else {}
    knobs.update(given)
    if data_dir is not None:
        knobs["data_dir"] = str(data_dir)
    return knobs


def make_task(task_name: str, knobs: Mapping[str, Any]) -> Task:
    """The task with its knobs; rows a file task skipped (bad JSON, missing fields) are reported, and the
    command goes on with the rest."""
    from reasonlab.tasks import get_task

    the_task = get_task(task_name, **knobs)
    skipped = getattr(the_task, "skipped", [])
    if skipped:
        more = " ..." if len(skipped) > 3 else ""
        console.print(f"skipped {len(skipped)} bad rows: " + "; ".join(skipped[:3]) + more)
    return the_task


@contextmanager
def progress() -> Iterator[Callable[[str, str, str], Callable[[int, int, dict], None]]]:
    """One rich progress display for a command; `stage(label, metric, name)` gives the step callback
    of one training stage, whose bar appears at its first step."""
    columns = (
        TextColumn("  {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[value]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:

        def stage(label: str, metric: str, name: str) -> Callable[[int, int, dict], None]:
            bar = None

            def on_step(done: int, total: int, row: dict) -> None:
                nonlocal bar
                if bar is None:
                    bar = progress.add_task(label, total=total, value="")
                progress.update(
                    bar,
                    completed=done,
                    total=total,
                    value=f"{name} {row.get(metric, float('nan')):.3f}",
                )

            return on_step

        yield stage


def print_summary(summary: Mapping[str, Any]) -> None:
    table = Table(title="summary", show_header=False)
    for k, v in summary.items():
        table.add_row(k, str(v))
    console.print(table)
