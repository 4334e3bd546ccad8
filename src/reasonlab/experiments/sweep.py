"""The sufficiency sweep: pretrain a grid of bases, post-train each with the same RL recipe, evaluate all
with the same protocol, and relate each base's sufficiency metrics to what RL gained on it.

A sweep file (configs/sweep.yaml, `SweepConfig`) names the run config every cell starts from (`base`),
overrides applied to every cell (`set`) and a grid of dotted config paths with the values to try; the
cells are the product of the grid, each named from its values (or the axis `labels`). Each cell is one
main job (pipeline.run_main_job) in `<out>/cells/<cell>/`, with the base config's seed, so a cell resumes
where it stopped and a finished cell (its summary.json exists) is skipped on a rerun. A cell that fails
(bad config, divergence, a runtime error) is recorded with its one-line error and the sweep goes on; a rerun
tries it again (from its last checkpoint).
`<out>/sweep.json` holds the sweep config and every cell's status, values, metrics and timings, rewritten
atomically after every cell; sweep.md and sweep.html (experiments/sweep_report.py) plot the RL gain
against each base metric. Every check of the sweep file runs before anything is written. Usage:

    reasonlab sweep --config configs/sweep.yaml --quick
"""

from __future__ import annotations

import json
import re
import time
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any, Callable, ContextManager, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reasonlab.config import DEFAULT_CONFIG, RunConfig, dump_config, load_config, read_yaml
from reasonlab.errors import ConfigError, ReasonlabError, RunFolderError
from reasonlab.experiments.sweep_report import cell_results, correlations, related_metrics, write_sweep_report
from reasonlab.fileio import read_json_or_none, write_text_atomic
from reasonlab.pipeline import first_difference, run_main_job, validate

DEFAULT_SWEEP = DEFAULT_CONFIG.parent / "sweep.yaml"
CELL_ERRORS = (ReasonlabError, FloatingPointError, RuntimeError)  # a cell failing this way does not stop the sweep
SAFE_NAME = re.compile(r"[A-Za-z0-9+][A-Za-z0-9._+-]*")
MAX_NAME = 200

Say = Callable[[str], None]
JobHooks = Callable[[], ContextManager[dict[str, Any]]]  # -> step callbacks for run_main_job, per cell


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class QuickConfig(_Strict):
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    """With --quick: values per axis instead of the grid's (each key an axis of `grid`; an axis left out
    keeps all its values). A label of the axis stands for its value, e.g. traces: [shortcut]."""
    labels: dict[str, list[str]] = Field(default_factory=dict)
    """With --quick: names of the values of `quick.grid`, one per value (a value that is also in `grid`
    keeps its label there)."""
    set: dict[str, Any] = Field(default_factory=dict)
    """With --quick: overrides applied after `set` (dotted config path -> value), e.g. {rl.steps: 50}."""


class SweepConfig(_Strict):
    name: str
    """Sweep name (letters, digits, . _ + -): the default folder is runs/<name>, runs/<name>-quick with --quick."""
    base: str | None = None
    """Run config YAML that every cell starts from, relative to the sweep file (None = the embedded default.yaml)."""
    set: dict[str, Any] = Field(default_factory=dict)
    """Overrides applied to every cell (dotted config path -> value), e.g. {judge.heads: [], eval.levels: []}."""
    grid: dict[str, list[Any]]
    """Ordered axes, dotted config path -> the values to try; the cells are their product. A mapping value
    replaces the whole section it names, e.g. traces: [{answer_only: 0.6, steps: 0.4, backtrack: 0.0}, ...]."""
    labels: dict[str, list[str]] = Field(default_factory=dict)
    """Readable names of an axis's values, one per value (letters, digits, . _ + -), used in cell names."""
    quick: QuickConfig = Field(default_factory=QuickConfig)
    """The smaller sweep that --quick runs."""


@dataclass(frozen=True)
class Axis:
    """One grid axis: a dotted config path, its values and their names (in cell names)."""

    path: str
    values: list[Any]
    labels: list[str]


@dataclass(frozen=True)
class Cell:
    """One base of the sweep: its folder name, its labels joined by spaces, its grid values, its run config."""

    name: str
    label: str
    values: dict[str, Any]
    config: RunConfig


@dataclass(frozen=True)
class Plan:
    """A checked sweep: its config, where it came from, its axes and its cells in run order."""

    sweep: SweepConfig
    source: Path
    quick: bool
    axes: list[Axis]
    cells: list[Cell]

    @property
    def default_out(self) -> Path:
        return Path("runs") / (f"{self.sweep.name}-quick" if self.quick else self.sweep.name)


# ---- reading and checking a sweep file -------------------------------------------------------------------


def load_plan(path: str | Path | None = None, quick: bool = False) -> Plan:
    """Read a sweep file (the embedded configs/sweep.yaml when None) and build every cell's config.

    ConfigError (one line, naming the file and the field) for an empty grid or axis, clashing or unsafe
    cell names, an unknown config path or a cell config that cannot run."""
    source = Path(path) if path is not None else DEFAULT_SWEEP
    sweep = read_sweep(source)
    axes = grid_axes(sweep, quick, source)
    base = base_config_path(sweep, source)
    shared = [*sweep.set.items(), *(sweep.quick.set.items() if quick else ())]
    check_paths(base, source, [("set", k, v) for k, v in sweep.set.items()]
                + [("quick.set", k, v) for k, v in (sweep.quick.set.items() if quick else ())]
                + [("grid", a.path, v) for a in axes for v in a.values])
    keys = axis_keys([a.path for a in axes])
    cells = [make_cell(base, source, shared, axes, keys, combo)
             for combo in product(*(range(len(a.values)) for a in axes))]
    return Plan(sweep, source, quick, axes, cells)


def read_sweep(source: Path) -> SweepConfig:
    raw = read_yaml(source, "sweep")
    if not isinstance(raw, dict):
        raise ConfigError(f"sweep file {source} must be a mapping of fields (name, base, set, grid, labels, quick)")
    try:
        sweep = SweepConfig.model_validate(raw)
    except ValidationError as err:
        first = min(err.errors(), key=lambda e: e["type"] != "extra_forbidden")  # a typo explains a missing field
        loc = ".".join(str(p) for p in first["loc"]) or "sweep"
        msg = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(f"{source}: {loc}: {msg}") from None
    if not SAFE_NAME.fullmatch(sweep.name):
        raise ConfigError(f"{source}: name: {sweep.name!r} is not a safe folder name (letters, digits, . _ + -)")
    return sweep


def grid_axes(sweep: SweepConfig, quick: bool, source: Path) -> list[Axis]:
    """The axes in grid order, with the --quick values when asked; names checked for clashes."""
    if not sweep.grid:
        raise ConfigError(f"{source}: grid is empty: give at least one dotted config path with a list of values")
    for where, keys in (("labels", sweep.labels), ("quick.grid", sweep.quick.grid), ("quick.labels", sweep.quick.labels)):
        for key in keys:
            if key not in sweep.grid:
                raise ConfigError(f"{source}: {where}.{key}: not an axis of the grid ({', '.join(sweep.grid)})")
    axes = []
    for path, values in sweep.grid.items():
        axis = make_axis(path, values, sweep.labels.get(path), f"grid.{path}", source)
        if quick and path in sweep.quick.grid:
            values = [_by_label(axis, v) for v in sweep.quick.grid[path]]
            given = sweep.quick.labels.get(path) or [_label_in(axis, v) for v in values]
            axis = make_axis(path, values, given, f"quick.grid.{path}", source)
        axes.append(axis)
    return axes


def make_axis(path: str, values: list[Any], labels: list[str] | None, where: str, source: Path) -> Axis:
    if not values:
        raise ConfigError(f"{source}: {where}: no values (an axis needs at least one)")
    if labels is None:
        labels = [value_label(v) for v in values]
    elif len(labels) != len(values):
        raise ConfigError(f"{source}: labels for {where}: {len(labels)} labels for {len(values)} values")
    for label in labels:
        if not SAFE_NAME.fullmatch(label) or len(label) > 64:
            raise ConfigError(f"{source}: labels for {where}: {label!r} is not a safe name "
                              "(letters, digits, . _ + -, at most 64 characters)")
    seen: dict[str, Any] = {}
    for value, label in zip(values, labels):
        if label in seen:
            raise ConfigError(f"{source}: {where}: values {_flow(seen[label])} and {_flow(value)} would both be named "
                              f"{label!r} (cell names must be unique); give them distinct labels")
        seen[label] = value
    return Axis(path, list(values), list(labels))


def _by_label(axis: Axis, value: Any) -> Any:
    """A --quick value given as the label of a grid value stands for that value (traces: [shortcut])."""
    if isinstance(value, str) and value in axis.labels:
        return axis.values[axis.labels.index(value)]
    return value


def _label_in(axis: Axis, value: Any) -> str:
    """A --quick value's label: the grid's label for the same value, else one made from the value."""
    for v, label in zip(axis.values, axis.labels):
        if type(v) is type(value) and v == value:
            return label
    return value_label(value)


def value_label(value: Any) -> str:
    """A filesystem-safe name for a grid value: 500000 -> 500k, 1500000 -> 1.5M, {a: 1, b: 2} -> a1-b2."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, (int, float)):
        text = _short_int(value) if isinstance(value, int) else str(value)
        return "minus" + text[1:] if text.startswith("-") else text
    if isinstance(value, dict):
        return "-".join(f"{k}{value_label(v)}" for k, v in value.items()) or "empty"
    if isinstance(value, (list, tuple)):
        return "-".join(value_label(v) for v in value) or "empty"
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", str(value)).lstrip("-.") or "value"


def _short_int(n: int) -> str:
    for div, suffix in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if abs(n) >= div and n % (div // 10) == 0:  # at most one decimal: 1.5M, 250k; else the digits
            return f"{n / div:g}{suffix}"
    return str(n)


def axis_keys(paths: Sequence[str]) -> list[str]:
    """How each axis appears in cell names: its last path component, or the whole path where two share it."""
    last = [p.rsplit(".", 1)[-1] for p in paths]
    return [key if last.count(key) == 1 else path for key, path in zip(last, paths)]


def base_config_path(sweep: SweepConfig, source: Path) -> Path:
    if sweep.base is None:
        return DEFAULT_CONFIG
    path = Path(sweep.base)
    path = path if path.is_absolute() else source.parent / path
    if not path.is_file():
        raise ConfigError(f"{source}: base: run config not found: {path}")
    return path


def check_paths(base: Path, source: Path, items: Sequence[tuple[str, str, Any]]) -> None:
    """Each override alone on the base config: an unknown path or a bad value names where it was given."""
    for where, path, value in items:
        try:
            load_config(base, [override(path, value)])
        except ConfigError as err:
            detail = str(err).replace("unknown --set key", "unknown config path")
            raise ConfigError(f"{source}: {where} {path}={_flow(value)}: {detail}") from None


def make_cell(base: Path, source: Path, shared: Sequence[tuple[str, Any]], axes: Sequence[Axis],
              keys: Sequence[str], combo: Sequence[int]) -> Cell:
    """One cell: its name from its values, its config = base + shared overrides + its grid values."""
    name = "__".join(f"{key}-{axis.labels[i]}" for key, axis, i in zip(keys, axes, combo))
    if len(name) > MAX_NAME:
        raise ConfigError(f"{source}: cell name {name[:60]}... is longer than {MAX_NAME} characters; give the grid "
                          "axes shorter labels")
    values = {axis.path: axis.values[i] for axis, i in zip(axes, combo)}
    overrides = [override(k, v) for k, v in [*shared, *values.items()]] + [f"name={name}"]
    try:
        cfg = load_config(base, overrides)
        validate(cfg)
    except ConfigError as err:
        raise ConfigError(f"{source}: cell {name}: {err}") from None
    return Cell(name, " ".join(axis.labels[i] for axis, i in zip(axes, combo)), values, cfg)


def override(path: str, value: Any) -> str:
    """A `--set` style override, the value written as flow YAML."""
    return f"{path}={_flow(value)}"


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**9).strip().removesuffix("...").strip()


# ---- running --------------------------------------------------------------------------------------------


def check_out_dir(plan: Plan, out: Path) -> None:
    """Refuse a folder that holds something else, or cells that ran with another config; writes nothing."""
    state_path = out / "sweep.json"
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"{out} is a file, not a folder; choose another --out")
    if not state_path.is_file():
        if out.exists() and any(out.iterdir()):
            raise RunFolderError(f"{out} is not empty and holds no sweep; choose another --out")
        return
    old = read_json_or_none(state_path) or {}
    if old.get("name") not in (None, plan.sweep.name):
        raise RunFolderError(f"{out} holds the sweep {old['name']!r}, not {plan.sweep.name!r}; choose another --out")
    for cell in plan.cells:
        path = cell_dir(out, cell) / "config.yaml"
        if path.is_file():
            found = first_difference(yaml.safe_load(path.read_text()) or {}, yaml.safe_load(dump_config(cell.config)))
            if found:
                raise RunFolderError(f"{path.parent} ran with a different config ({found} differs): the sweep changed "
                                     "since; choose another --out or remove that cell folder")


def cell_dir(out: Path, cell: Cell) -> Path:
    return out / "cells" / cell.name


def run_sweep(plan: Plan, out: Path, say: Say = lambda m: None, job_hooks: JobHooks | None = None) -> dict[str, Any]:
    """Run every unfinished cell in order, record each in sweep.json, then write the report; returns the state."""
    check_out_dir(plan, out)
    previous = {c["name"]: c for c in (read_json_or_none(out / "sweep.json") or {}).get("cells", [])}
    state = new_state(plan)
    t0 = time.perf_counter()
    n = len(plan.cells)
    for i, cell in enumerate(plan.cells):
        head = f"cell {i + 1} of {n}: {cell.name} (sweep at {_clock(time.perf_counter() - t0)})"
        if (cell_dir(out, cell) / "summary.json").is_file():
            wall = previous.get(cell.name, {}).get("timings", {}).get("wall_s")
            row = finished_row(cell, out, wall)
            say(f"{head}: finished earlier, skipped")
        else:
            say(head)
            row = run_cell(cell, out, say, job_hooks)
            say(f"  {_outcome(row)}")
        state["cells"][i] = row
        state["elapsed_s"] = round(time.perf_counter() - t0, 1)
        write_state(out, state)
    state["status"] = "some cells failed" if any(r["status"] == "failed" for r in state["cells"]) else "finished"
    state["metrics"] = related_metrics(state["cells"])
    state["correlations"] = correlations(state["cells"], state["metrics"])
    write_state(out, state)
    write_sweep_report(out, state)
    return state


def new_state(plan: Plan) -> dict[str, Any]:
    return {
        "name": plan.sweep.name,
        "source": str(plan.source),
        "quick": plan.quick,
        "status": "running",
        "config": plan.sweep.model_dump(mode="json"),
        "axes": [{"path": a.path, "key": k, "values": a.values, "labels": a.labels}
                 for a, k in zip(plan.axes, axis_keys([a.path for a in plan.axes]))],
        "cells": [{**_identity(c), "status": "pending"} for c in plan.cells],
    }


def write_state(out: Path, state: dict[str, Any]) -> None:
    write_text_atomic(out / "sweep.json", json.dumps(state, indent=1) + "\n")


def run_cell(cell: Cell, out: Path, say: Say, job_hooks: JobHooks | None) -> dict[str, Any]:
    """The main job of one cell; its failure becomes a failed row, never an exception."""
    t = time.perf_counter()
    try:
        with (job_hooks or nullcontext)() as hooks:
            run_main_job(cell.config, cell_dir(out, cell), say=lambda m: say(f"  {m}"), **(hooks or {}))
        return finished_row(cell, out, round(time.perf_counter() - t, 1))
    except CELL_ERRORS as err:
        return {**_identity(cell), "status": "failed", "error": one_line(err),
                "timings": {"wall_s": round(time.perf_counter() - t, 1)}}


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    text = text if isinstance(err, ReasonlabError) else f"{type(err).__name__}: {text}"
    return text if len(text) <= 400 else text[:397] + "..."


def _identity(cell: Cell) -> dict[str, Any]:
    return {"name": cell.name, "label": cell.label, "values": cell.values, "dir": f"cells/{cell.name}"}


def _outcome(row: dict[str, Any]) -> str:
    wall = row["timings"].get("wall_s")
    if row["status"] == "failed":
        return f"FAILED after {wall} s: {row['error']}"
    k = row["k"]
    b, r = row["base"], row["rl"]
    text = f"finished in {wall} s: base pass@1 {b.get('pass@1')}, pass@{k} {b.get(f'pass@{k}')}"
    return text + (f"; RL pass@1 {r['pass@1']}, pass@{k} {r.get(f'pass@{k}')}" if "pass@1" in r else "")


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s"


def finished_row(cell: Cell, out: Path, wall_s: float | None) -> dict[str, Any]:
    """A cell whose main job finished: its results from the cell folder (sweep_report.cell_results)."""
    results = cell_results(cell_dir(out, cell))
    if results is None:
        return {**_identity(cell), "status": "failed", "timings": {"wall_s": wall_s},
                "error": f"{cell_dir(out, cell)}: summary.json or eval/base.json is missing or unreadable"}
    return {**_identity(cell), "status": "finished", **results, "timings": {**results["timings"], "wall_s": wall_s}}


