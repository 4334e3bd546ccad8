"""`reasonlab sweep`: pretrain a grid of bases, run the same RL recipe on each, evaluate all with the same
protocol and relate the RL gain to each base's sufficiency metrics (experiments/sweep.py).

Progress is printed per cell (cell i of n, its name, the time since the sweep started); at the end a
table of the cells and the rank correlations, and the report's path. A bad sweep file is one line and
exit code 2 before anything is written; a cell that fails is recorded and the others run, and the
command then exits with code 1. With `--ray` (or RAY_ADDRESS) the unfinished cells run as Ray tasks, as
many at once as the cluster holds (each declares its config's ray.task_cpus / ray.task_gpus, settable with
the sweep file's `set:`); one line is printed as each is submitted and as each finishes, without progress
bars. An address nobody answers, or a request no node can hold, is one line and exit code 2 in seconds,
before anything is written. Usage:

    reasonlab sweep --config configs/sweep.yaml --quick --out runs/sweep-quick
    reasonlab sweep --config configs/sweep.yaml --ray local --ray-cpus 4
    reasonlab sweep --config configs/sweep.yaml --ray 10.0.0.5:6379 --out /shared/sweeps/scale
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from reasonlab.cli.common import JUDGE_BAR, PRETRAIN_BAR, RL_BAR, console, progress
from reasonlab.cli.ray_options import RayCpusOpt, RayOpt


def sweep(
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="Sweep file (default: the embedded configs/sweep.yaml)."
    ),
    quick: bool = typer.Option(False, "--quick", help="Run the sweep file's smaller `quick` grid."),
    out: Optional[Path] = typer.Option(
        None,
        "--out",
        "-o",
        help="Sweep folder (default: runs/<name>, runs/<name>-quick with --quick; on a cluster, a "
        "folder every node sees at the same path).",
    ),
    ray: Optional[str] = RayOpt,
    ray_cpus: Optional[int] = RayCpusOpt,
) -> None:
    """A grid of bases x the same RL recipe: RL gain against each base metric (resumable)."""
    from reasonlab.distributed.cluster import connect
    from reasonlab.experiments.sweep import run_sweep
    from reasonlab.experiments.sweep_plan import load_plan

    plan = load_plan(config, quick=quick)
    out = out or plan.default_out
    console.print(
        f"[bold]reasonlab sweep[/] {plan.sweep.name}{' --quick' if quick else ''}: "
        f"{len(plan.cells)} cell{'s' * (len(plan.cells) != 1)} -> {out}"
    )
    with connect(ray, ray_cpus, plan.cells[0].config.ray.object_store_mb) as on_ray:
        state = run_sweep(plan, out, say=console.print, job_hooks=_bars, on_ray=on_ray)
    print_results(state)
    console.print(f"report: {out / 'sweep.html'}  ({out / 'sweep.md'}, {out / 'sweep.json'})")
    failed = [r["name"] for r in state["cells"] if r["status"] == "failed"]
    arms = [r["name"] for r in state["cells"] if "matched_error" in r]
    if failed:
        print(
            f"{len(failed)} of {len(state['cells'])} cells failed ({', '.join(failed)}): their errors are in "
            f"{out / 'sweep.json'}; rerun the same command to retry them",
            file=sys.stderr,
        )
    if arms:
        print(
            f"more pretraining failed for {len(arms)} of {len(state['cells'])} cells ({', '.join(arms)}): their "
            f"errors are in {out / 'sweep.json'}; rerun the same command to retry them",
            file=sys.stderr,
        )
    if failed or arms:
        raise SystemExit(1)


@contextmanager
def _bars() -> Iterator[dict[str, Any]]:
    with progress() as stage:
        yield {
            "on_pretrain_step": stage(*PRETRAIN_BAR),
            "on_rl_step": stage(*RL_BAR),
            "on_judge_step": stage(*JUDGE_BAR),
        }


def print_results(state: dict[str, Any]) -> None:
    from reasonlab.reports.sweep import cells_table, correlation_table, k_label, matched_table

    kl = k_label(state["cells"])
    title, header, rows = cells_table(state, kl)
    _print_table(title, header[1:], [row[1:] for row in rows])  # the label columns name the cell
    _print_table(*correlation_table(state, kl))
    matched = matched_table(state, kl)
    if matched:  # the gains and winners (the budget and the times are in the report)
        title, header, rows = matched
        keep = [0, *range(4, len(header))]
        _print_table(title, [header[i] for i in keep], [[row[i] for i in keep] for row in rows])


def _print_table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for h in header:
        table.add_column(h)
    for row in rows:
        table.add_row(*(str(c) for c in row))
    console.print(table)
