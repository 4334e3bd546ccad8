"""A sweep file and the cells it makes: `SweepConfig` (configs/sweep.yaml's fields), its axes, each cell's
name (from its grid values or the axis labels) and run config (base config + `set` + its grid values).
Every check runs here, before the sweep writes anything: a bad file is one ConfigError line naming the file
and the field (empty grid or axis, clashing or unsafe names, an unknown config path, a cell that cannot run).
A grid mapping that replaces a config section (traces, model: the model-size axis) keeps the `set` fields
under that section it does not name (`kept_from_set`), and a field of the base config it would silently
reset to its default is refused (`check_replaced_sections`).
Usage:

    plan = load_plan("configs/sweep.yaml", quick=True)
    [cell.name for cell in plan.cells]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from reasonlab.config import DEFAULT_CONFIG, RunConfig, Strict, load_config, read_yaml
from reasonlab.errors import ConfigError
from reasonlab.experiments.main_job import validate
from reasonlab.experiments.matched import MatchedConfig

DEFAULT_SWEEP = DEFAULT_CONFIG.parent / "sweep.yaml"
SAFE_NAME = re.compile(r"[A-Za-z0-9+][A-Za-z0-9._+-]*")
MAX_NAME = 200


class QuickConfig(Strict):
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    """With --quick: values per axis instead of the grid's (each key an axis of `grid`; an axis left out
    keeps all its values). A label of the axis stands for its value, e.g. traces: [shortcut]."""
    labels: dict[str, list[str]] = Field(default_factory=dict)
    """With --quick: names of the values of `quick.grid`, one per value (a value that is also in `grid`
    keeps its label there)."""
    set: dict[str, Any] = Field(default_factory=dict)
    """With --quick: overrides applied after `set` (dotted config path -> value), e.g. {rl.steps: 50}."""


class SweepConfig(Strict):
    name: str
    """Sweep name (letters, digits, . _ + -): the default folder is runs/<name>, runs/<name>-quick with --quick."""
    base: str | None = None
    """Run config YAML that every cell starts from, relative to the sweep file (None = the embedded default.yaml)."""
    set: dict[str, Any] = Field(default_factory=dict)
    """Overrides applied to every cell (dotted config path -> value), e.g. {judge.heads: [], eval.levels: []}."""
    grid: dict[str, list[Any]]
    """Ordered axes, dotted config path -> the values to try; the cells are their product. A mapping value
    replaces the whole section it names, e.g. traces: [{answer_only: 0.6, steps: 0.4, backtrack: 0.0}, ...]
    or model: [{d_model: 64, n_layers: 4, n_heads: 4, d_ff: 256}, ...]; `set` fields under that section
    that the mapping does not name still hold, and a field the base config gave that neither names is an
    error (it would silently fall back to its default)."""
    labels: dict[str, list[str]] = Field(default_factory=dict)
    """Readable names of an axis's values, one per value (letters, digits, . _ + -), used in cell names."""
    quick: QuickConfig = Field(default_factory=QuickConfig)
    """The smaller sweep that --quick runs."""
    matched: MatchedConfig | None = None
    """The compute-matched arm (experiments/matched.py): after each cell, spend what its RL stage cost on
    more pretraining of its base instead, and evaluate that too. None = no arm."""


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
    check_paths(
        base,
        source,
        [("set", k, v) for k, v in sweep.set.items()]
        + [("quick.set", k, v) for k, v in (sweep.quick.set.items() if quick else ())]
        + [("grid", a.path, v) for a in axes for v in a.values],
    )
    keys = axis_keys([a.path for a in axes])
    cells = [
        make_cell(base, source, shared, axes, keys, combo)
        for combo in product(*(range(len(a.values)) for a in axes))
    ]
    return Plan(sweep, source, quick, axes, cells)


def read_sweep(source: Path) -> SweepConfig:
    raw = read_yaml(source, "sweep")
    if not isinstance(raw, dict):
        raise ConfigError(
            f"sweep file {source} must be a mapping of fields (name, base, set, grid, labels, quick)"
        )
    try:
        sweep = SweepConfig.model_validate(raw)
    except ValidationError as err:
        first = min(
            err.errors(), key=lambda e: e["type"] != "extra_forbidden"
        )  # a typo explains a missing field
        loc = ".".join(str(p) for p in first["loc"]) or "sweep"
        msg = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(f"{source}: {loc}: {msg}") from None
    if not SAFE_NAME.fullmatch(sweep.name):
        raise ConfigError(
            f"{source}: name: {sweep.name!r} is not a safe folder name (letters, digits, . _ + -)"
        )
    return sweep


def grid_axes(sweep: SweepConfig, quick: bool, source: Path) -> list[Axis]:
    """The axes in grid order, with the --quick values when asked; names checked for clashes."""
    if not sweep.grid:
        raise ConfigError(
            f"{source}: grid is empty: give at least one dotted config path with a list of values"
        )
    for where, keys in (
        ("labels", sweep.labels),
        ("quick.grid", sweep.quick.grid),
        ("quick.labels", sweep.quick.labels),
    ):
        for key in keys:
            if key not in sweep.grid:
                raise ConfigError(
                    f"{source}: {where}.{key}: not an axis of the grid ({', '.join(sweep.grid)})"
                )
    axes = []
    for path, values in sweep.grid.items():
        axis = make_axis(path, values, sweep.labels.get(path), f"grid.{path}", source)
        if quick and path in sweep.quick.grid:
            values = [_by_label(axis, v) for v in sweep.quick.grid[path]]
            given = sweep.quick.labels.get(path) or [_label_in(axis, v) for v in values]
            axis = make_axis(path, values, given, f"quick.grid.{path}", source)
        axes.append(axis)
    return axes


def make_axis(
    path: str, values: list[Any], labels: list[str] | None, where: str, source: Path
) -> Axis:
    if not values:
        raise ConfigError(f"{source}: {where}: no values (an axis needs at least one)")
    if labels is None:
        labels = [value_label(v) for v in values]
    elif len(labels) != len(values):
        raise ConfigError(
            f"{source}: labels for {where}: {len(labels)} labels for {len(values)} values"
        )
    for label in labels:
        if not SAFE_NAME.fullmatch(label) or len(label) > 64:
            raise ConfigError(
                f"{source}: labels for {where}: {label!r} is not a safe name "
                "(letters, digits, . _ + -, at most 64 characters)"
            )
    seen: dict[str, Any] = {}
    for value, label in zip(values, labels):
        if label in seen:
            raise ConfigError(
                f"{source}: {where}: values {_flow(seen[label])} and {_flow(value)} would both be named "
                f"{label!r} (cell names must be unique); give them distinct labels"
            )
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
        if (
            abs(n) >= div and n % (div // 10) == 0
        ):  # at most one decimal: 1.5M, 250k; else the digits
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


def make_cell(
    base: Path,
    source: Path,
    shared: Sequence[tuple[str, Any]],
    axes: Sequence[Axis],
    keys: Sequence[str],
    combo: Sequence[int],
) -> Cell:
    """One cell: its name from its values, its config = base + shared overrides + its grid values."""
    name = "__".join(f"{key}-{axis.labels[i]}" for key, axis, i in zip(keys, axes, combo))
    if len(name) > MAX_NAME:
        raise ConfigError(
            f"{source}: cell name {name[:60]}... is longer than {MAX_NAME} characters; give the grid "
            "axes shorter labels"
        )
    values = {axis.path: axis.values[i] for axis, i in zip(axes, combo)}
    kept = kept_from_set(shared, values)
    overrides = [override(k, v) for k, v in [*shared, *values.items(), *kept]] + [f"name={name}"]
    try:
        cfg = load_config(base, overrides)
        check_replaced_sections(load_config(base), cfg, values, kept)
        validate(cfg)
    except ConfigError as err:
        raise ConfigError(f"{source}: cell {name}: {err}") from None
    return Cell(name, " ".join(axis.labels[i] for axis, i in zip(axes, combo)), values, cfg)


def section_model(path: str) -> type[BaseModel] | None:
    """The config model that a dotted path names (model, traces, pretrain, ...); None for a plain field or a
    free dict (task.knobs, rl.task_knobs: a mapping there is a value, never merged)."""
    model: type[BaseModel] = RunConfig
    for part in path.split("."):
        field = model.model_fields.get(part)
        ann = field.annotation if field is not None else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return model


def replaced_sections(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The cell's grid values that replace a whole config section: path -> the mapping."""
    return {
        path: value
        for path, value in values.items()
        if isinstance(value, dict) and section_model(path) is not None
    }


def kept_from_set(
    shared: Sequence[tuple[str, Any]], values: dict[str, Any]
) -> list[tuple[str, Any]]:
    """The `set` (and quick.set) fields under a section that a grid mapping replaces, which the mapping does
    not name: applied again after the grid values, so `set` still holds for them (set model.max_seq_len
    with grid model: [{d_model: 64, ...}]). A field the mapping names is the grid's."""
    kept: list[tuple[str, Any]] = []
    for path, mapping in replaced_sections(values).items():
        for key, given in shared:
            if key == path and isinstance(given, dict):
                kept += [(f"{path}.{k}", v) for k, v in given.items() if k not in mapping]
            elif key.startswith(f"{path}.") and key[len(path) + 1 :].split(".")[0] not in mapping:
                kept.append((key, given))
    return kept


def check_replaced_sections(
    base: RunConfig, cfg: RunConfig, values: dict[str, Any], kept: Sequence[tuple[str, Any]]
) -> None:
    """ConfigError when a grid mapping, replacing its section, silently resets a field that the base config
    gave and neither the mapping nor `set` names (e.g. the base's model.max_seq_len under grid model)."""
    given = {key for key, _ in kept}
    for path, mapping in replaced_sections(values).items():
        old, new = _section(base, path), _section(cfg, path)
        for field, info in type(new).model_fields.items():
            key = info.alias or field  # the YAML name (rl.async for the field async_)
            if key in mapping or field in mapping or f"{path}.{key}" in given:
                continue
            was, now = getattr(old, field), getattr(new, field)
            if was != now:
                raise ConfigError(
                    f"grid {path}: a mapping replaces the whole section, so {path}.{key} would fall "
                    f"back from the base's {_flow(was)} to {_flow(now)}; name {key} in each mapping "
                    f"or give {path}.{key} in set"
                )


def _section(cfg: RunConfig, path: str) -> BaseModel:
    node: Any = cfg
    for part in path.split("."):
        node = getattr(node, part)
    return node


def override(path: str, value: Any) -> str:
    """A `--set` style override, the value written as flow YAML."""
    return f"{path}={_flow(value)}"


def _flow(value: Any) -> str:
    return (
        yaml.safe_dump(value, default_flow_style=True, width=10**9)
        .strip()
        .removesuffix("...")
        .strip()
    )
