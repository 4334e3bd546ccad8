"""The sufficiency sweep: pretrain a grid of bases, post-train each with the same RL recipe, evaluate all
with the same protocol, and relate each base's sufficiency metrics to what RL gained on it.

A sweep file (configs/sweep.yaml, `SweepConfig`) names the run config every cell starts from (`base`),
overrides applied to every cell (`set`) and a grid of dotted config paths with the values to try; the
cells are the product of the grid, each named from its values (or the axis `labels`). Each cell is one
main job (experiments/main_job.run_main_job) in `<out>/cells/<cell>/`, with the base config's seed, so a cell resumes
where it stopped and a finished cell (its summary.json exists) is skipped on a rerun. A cell that fails
(bad config, divergence, a runtime error) is recorded with its one-line error and the sweep goes on; a rerun
tries it again (from its last checkpoint).
`<out>/sweep.json` holds the sweep config and every cell's status, values, metrics and timings, rewritten
atomically after every cell; sweep.md and sweep.html (reports/sweep.py) plot the RL gain
against each base metric. Every check of the sweep file runs before anything is written
(experiments/sweep_plan.py). With `matched:` in the sweep file, each finished cell also gets its
compute-matched arm (experiments/matched.py): RL's cost spent on more pretraining of the same base.
On Ray (`run_sweep(..., on_ray=True)`, `reasonlab sweep --ray`), every cell with work left (its main job
and its arm, exactly as `sweep_cell` runs them here) is one task of distributed/grid.py, all submitted at
once; the cells write the same files, sweep.json is rewritten as each finishes (its row adds the Ray
`node` it ran on), and a task that fails after its retries is a failed row while the others go on. Usage:

    reasonlab sweep --config configs/sweep.yaml --quick
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from reasonlab.distributed.cluster import check_gpus_declared
from reasonlab.distributed.grid import Job, Outcome, Resources, check_jobs, one_line, run_grid
from reasonlab.errors import ReasonlabError, RunFolderError
from reasonlab.experiments.main_job import config_difference, run_main_job
from reasonlab.experiments.matched import MatchedConfig, arm_finished, check_settings, run_matched
from reasonlab.experiments.sweep_plan import Cell, Plan, axis_keys
from reasonlab.fileio import read_json_or_none, write_text_atomic
from reasonlab.reports.sweep import cell_results, correlations, related_metrics, write_sweep_report

CELL_ERRORS = (
    ReasonlabError,
    FloatingPointError,
    RuntimeError,
)  # a cell failing this way does not stop the sweep

Say = Callable[[str], None]
JobHooks = Callable[
    [], AbstractContextManager[dict[str, Any]]
]  # -> step callbacks for run_main_job, per cell

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
        raise RunFolderError(
            f"{out} holds the sweep {old['name']!r}, not {plan.sweep.name!r}; choose another --out"
        )
    for cell in plan.cells:
        path = cell_dir(out, cell) / "config.yaml"
        if path.is_file():
            found = config_difference(path, cell.config)
            if found is not None:
                raise RunFolderError(
                    f"{path.parent} ran with a different config ({found or 'config'} differs): the sweep changed "
                    "since; choose another --out or remove that cell folder"
                )
        if plan.sweep.matched is not None:
            check_settings(cell_dir(out, cell), plan.sweep.matched)


def cell_dir(out: Path, cell: Cell) -> Path:
    return out / "cells" / cell.name


def run_sweep(
    plan: Plan,
    out: Path,
    say: Say = lambda m: None,
    job_hooks: JobHooks | None = None,
    on_ray: bool = False,
) -> dict[str, Any]:
    """Run every unfinished cell in order, record each in sweep.json, then write the report; returns the state.
    `on_ray`: the cells with work left run as Ray tasks of the Ray this process is connected to (each with
    its config's ray.task_cpus / task_gpus / task_retries; `out` must be on a filesystem every node shares),
    and sweep.json is rewritten as each one finishes; `job_hooks` (progress bars) are not used there."""
    check_out_dir(plan, out)
    previous = {
        c["name"]: c for c in (read_json_or_none(out / "sweep.json") or {}).get("cells", [])
    }
    state = new_state(plan)
    t0 = time.perf_counter()
    n = len(plan.cells)
    matched = plan.sweep.matched
    todo = [i for i, c in enumerate(plan.cells) if on_ray and needs_work(c, out, matched)]
    # a request no node can hold, or a GPU run on workers without one, fails here, before anything
    # is written
    for i in todo:
        c = plan.cells[i].config
        check_gpus_declared(c.device, c.ray.task_gpus, "ray.task_gpus")
    check_jobs([cell_job(plan, plan.cells[i], out, None) for i in todo])

    def record(i: int, row: dict[str, Any]) -> None:
        state["cells"][i] = row
        state["elapsed_s"] = round(time.perf_counter() - t0, 1)
        write_state(out, state)

    for i, cell in enumerate(plan.cells):
        if i in todo:
            continue  # a Ray task, below
        head = f"cell {i + 1} of {n}: {cell.name} (sweep at {_clock(time.perf_counter() - t0)})"
        earlier = (cell_dir(out, cell) / "summary.json").is_file()
        say(f"{head}: finished earlier, skipped" if earlier else head)
        row = sweep_cell(matched, cell, out, say, job_hooks, _earlier_wall(previous, cell))
        if earlier and "node" in previous.get(cell.name, {}):
            row["node"] = previous[cell.name]["node"]  # the Ray node it ran on
        record(i, row)
    if todo:
        write_state(out, state)  # the folder the tasks check for on their nodes
        run_on_ray(plan, out, todo, previous, say, record, t0)
    failed = any(r["status"] == "failed" or "matched_error" in r for r in state["cells"])
    state["status"] = "some cells failed" if failed else "finished"
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
        "axes": [
            {"path": a.path, "key": k, "values": a.values, "labels": a.labels}
            for a, k in zip(plan.axes, axis_keys([a.path for a in plan.axes]))
        ],
        "cells": [{**_identity(c), "status": "pending"} for c in plan.cells],
    }


def write_state(out: Path, state: dict[str, Any]) -> None:
    write_text_atomic(out / "sweep.json", json.dumps(state, indent=1) + "\n")


def needs_work(cell: Cell, out: Path, matched: MatchedConfig | None) -> bool:
    """Whether the cell's main job, or its compute-matched arm, is not finished yet."""
    if not (cell_dir(out, cell) / "summary.json").is_file():
        return True
    return (
        matched is not None
        and cell.config.rl.steps > 0
        and not arm_finished(cell_dir(out, cell), matched)
    )


def sweep_cell(
    matched: MatchedConfig | None,
    cell: Cell,
    out: Path,
    say: Say = lambda m: None,
    job_hooks: JobHooks | None = None,
    wall_s: float | None = None,
) -> dict[str, Any]:
    """One cell's row: its main job (or its results, when it finished earlier, with its earlier `wall_s`),
    then its compute-matched arm when `matched` is given. The same in this process and in a Ray task."""
    if (cell_dir(out, cell) / "summary.json").is_file():
        row = finished_row(cell, out, wall_s)
    else:
        row = run_cell(cell, out, say, job_hooks)
        say(f"  {_outcome(row)}")
    if matched is not None and row["status"] == "finished" and cell.config.rl.steps > 0:
        row.update(run_arm(matched, cell, out, say, job_hooks, rl_gain=row["gain"].get("pass@1")))
    return row


def cell_job(plan: Plan, cell: Cell, out: Path, wall_s: float | None) -> Job:
    """The Ray task of one cell: sweep_cell with the cell config's ray resources, in the sweep folder."""
    return Job(
        cell.name,
        sweep_cell,
        (plan.sweep.matched, cell, out),
        Resources.of(cell.config.ray),
        folder=out,
        kwargs={"wall_s": wall_s},
    )


def run_on_ray(
    plan: Plan,
    out: Path,
    todo: list[int],
    previous: dict[str, dict[str, Any]],
    say: Say,
    record: Callable[[int, dict[str, Any]], None],
    t0: float,
) -> None:
    """The cells at indices `todo` as Ray tasks, all submitted at once; each row is recorded as it finishes.
    A task that still fails after its retries (an exception outside the cell's own, a dead worker) is a
    failed row (or, when the main job had finished, a failed arm) and the others go on."""
    n, cells, matched = len(plan.cells), [plan.cells[i] for i in todo], plan.sweep.matched
    jobs = [cell_job(plan, c, out, _earlier_wall(previous, c)) for c in cells]

    def submitted(k: int, job: Job) -> None:
        r = job.resources
        say(f"cell {todo[k] + 1} of {n}: {job.name} -> Ray ({r.cpus:g} CPU, {r.gpus:g} GPU)")

    def done(k: int, outcome: Outcome) -> None:
        cell = cells[k]
        row = outcome.value if outcome.ok else failed_task_row(cell, out, matched, outcome.error)
        row["node"] = outcome.node
        where = f" on node {outcome.node[:8]}" if outcome.node else ""
        arm = f"; more pretraining FAILED: {row['matched_error']}" if "matched_error" in row else ""
        clock = _clock(time.perf_counter() - t0)
        say(
            f"cell {todo[k] + 1} of {n}: {cell.name} {_outcome(row)}{arm}{where} (sweep at {clock})"
        )
        record(todo[k], row)

    run_grid(jobs, on_done=done, on_submit=submitted)


def failed_task_row(
    cell: Cell, out: Path, matched: MatchedConfig | None, error: str | None
) -> dict[str, Any]:
    """The row of a cell whose Ray task failed: a failed arm when its main job had finished, else a failed
    cell."""
    if matched is not None and (cell_dir(out, cell) / "summary.json").is_file():
        row = finished_row(cell, out, None)
        if row["status"] == "finished":
            return {**row, "matched_error": error}
    return {**_identity(cell), "status": "failed", "error": error, "timings": {"wall_s": None}}


def _earlier_wall(previous: dict[str, dict[str, Any]], cell: Cell) -> float | None:
    return previous.get(cell.name, {}).get("timings", {}).get("wall_s")


def run_cell(cell: Cell, out: Path, say: Say, job_hooks: JobHooks | None) -> dict[str, Any]:
    """The main job of one cell; its failure becomes a failed row, never an exception."""
    t = time.perf_counter()
    try:
        with (job_hooks or nullcontext)() as hooks:
            run_main_job(
                cell.config, cell_dir(out, cell), say=lambda m: say(f"  {m}"), **(hooks or {})
            )
        return finished_row(cell, out, round(time.perf_counter() - t, 1))
    except CELL_ERRORS as err:
        return {
            **_identity(cell),
            "status": "failed",
            "error": one_line(err),
            "timings": {"wall_s": round(time.perf_counter() - t, 1)},
        }


def run_arm(
    matched: MatchedConfig,
    cell: Cell,
    out: Path,
    say: Say,
    job_hooks: JobHooks | None,
    rl_gain: float | None,
) -> dict[str, Any]:
    """The compute-matched arm of a finished cell (experiments/matched.py); a failure is recorded in the row
    as matched_error, never raised."""
    t = time.perf_counter()
    earlier = arm_finished(cell_dir(out, cell), matched)
    try:
        with (job_hooks or nullcontext)() as hooks:
            found = run_matched(
                cell.config,
                cell_dir(out, cell),
                matched,
                say=lambda m: say(f"  {m}"),
                on_step=(hooks or {}).get("on_pretrain_step"),
            )
    except CELL_ERRORS as err:
        say(f"  more pretraining FAILED: {one_line(err)}")
        return {"matched_error": one_line(err)}
    g, r = found["more_gain"], found["matched"]
    when = "finished earlier" if earlier else f"{round(time.perf_counter() - t, 1)} s"
    say(
        f"  more pretraining ({r['extra_tokens']:,} tokens, {when}): gain pass@1 {g.get('pass@1')}, RL's {rl_gain}"
    )
    return found


def _identity(cell: Cell) -> dict[str, Any]:
    return {
        "name": cell.name,
        "label": cell.label,
        "values": cell.values,
        "dir": f"cells/{cell.name}",
    }


def _outcome(row: dict[str, Any]) -> str:
    wall = row["timings"].get("wall_s")
    if row["status"] == "failed":
        return f"FAILED{f' after {wall} s' if wall is not None else ''}: {row['error']}"
    k = row["k"]
    b, r = row["base"], row["rl"]
    text = f"finished in {wall} s: base pass@1 {b.get('pass@1')}, pass@{k} {b.get(f'pass@{k}')}"
    return text + (
        f"; RL pass@1 {r['pass@1']}, pass@{k} {r.get(f'pass@{k}')}" if "pass@1" in r else ""
    )


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s"


def finished_row(cell: Cell, out: Path, wall_s: float | None) -> dict[str, Any]:
    """A cell whose main job finished: its results from the cell folder (reports.sweep.cell_results)."""
    results = cell_results(cell_dir(out, cell))
    if results is None:
        return {
            **_identity(cell),
            "status": "failed",
            "timings": {"wall_s": wall_s},
            "error": f"{cell_dir(out, cell)}: summary.json or eval/base.json is missing or unreadable",
        }
    return {
        **_identity(cell),
        "status": "finished",
        **results,
        "timings": {**results["timings"], "wall_s": wall_s},
    }
