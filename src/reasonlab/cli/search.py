"""`reasonlab search`: test-time search methods at several budgets, against the oracle pass@N.

Runs each method of search/ (majority vote, best-of-N, weighted best-of-N, beam search, DVTS, MCTS)
with a judge at each budget N and seed on a task's test problems (search/runner.py), and writes
<out>/search.json, search.md, search.html (self-contained) and plots/ (reports/search.py). Every
check comes before any compute and before anything is written: an unknown method, a budget that is
not a positive integer, a budget a method refuses (below the beam width for beam and DVTS), a judge
a method cannot use (one line naming the methods that still work), an output folder holding
something other than a search report. Usage:

    reasonlab search --model runs/default --judge prm
    reasonlab search --model runs/default --judge verifier --methods best_of_n,beam --budgets 4,16
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from reasonlab.cli.common import (
    KnobOpt,
    console,
    load_any_judge,
    make_task,
    parse_knobs,
    resolve_model,
    task_knobs,
)
from reasonlab.errors import ConfigError, ReasonlabError, RunFolderError
from reasonlab.search.base import SearchSettings

DEFAULT_BUDGETS = "1,4,16,64"
MARKER = "search.json"  # present in every search report folder
DEFAULTS = SearchSettings()
FLAGS = {  # the methods name their settings; the command's user knows the flags
    "search budget": "--budgets",
    "search.beam_width": "--beam-width",
    "search.aggregation": "--aggregation",
    "search.temperature / search.top_p": "--temperature",
    "search.judge": "--judge",
    "search.method": "--methods",
}


def search(
    model: Path = typer.Option(
        ...,
        "--model",
        "-m",
        help="A run folder (its rl/, else base/; --base for base/) or a model folder.",
    ),
    base: bool = typer.Option(
        False, "--base", help="Search with the run's base model, not its RL model."
    ),
    judge: str = typer.Option(
        "prm",
        "--judge",
        "-j",
        help="prm, orm or pairwise (the judges of the --model run folder), a judge folder, likelihood "
        "(the model's own step likelihood), verifier (the task's exact rules: an oracle PRM), a rule "
        "baseline (always-correct, symbolic-arithmetic), or none (majority vote only).",
    ),
    task: Optional[str] = typer.Option(
        None, "--task", "-t", help="Task name (default: the run's task)."
    ),
    knob: list[str] = KnobOpt,
    methods: str = typer.Option(
        ",".join(("majority", "best_of_n", "weighted_best_of_n", "beam", "dvts", "mcts")),
        "--methods",
        help="Comma-separated search methods.",
    ),
    budgets: Optional[str] = typer.Option(
        None,
        "--budgets",
        help=f"Comma-separated budgets N, completions per problem (default {DEFAULT_BUDGETS}: beam "
        "and DVTS skip those below --beam-width; a budget given here that they refuse is an error).",
        show_default=False,
    ),
    problems: int = typer.Option(50, "--problems", help="Test problems.", min=1),
    seeds: int = typer.Option(1, "--seeds", help="Seeds per method and budget (0, 1, ...).", min=1),
    beam_width: int = typer.Option(
        DEFAULTS.beam_width, "--beam-width", help="Beams kept (beam), subtree width (DVTS).", min=1
    ),
    temperature: float = typer.Option(
        DEFAULTS.temperature,
        "--temperature",
        help="Sampling temperature of every completion.",
        min=0.0,
    ),
    aggregation: str = typer.Option(
        DEFAULTS.aggregation,
        "--aggregation",
        help="How a judge's step scores rank a solution: min, product or last.",
    ),
    out: Optional[Path] = typer.Option(
        None,
        "--out",
        "-o",
        help="Output folder (default: runs/search-<model name>); an earlier search report there is "
        "rewritten, any other non-empty folder refused.",
    ),
) -> None:
    """Test-time search: majority vote, best-of-N, beam search, DVTS and MCTS with a judge, at several
    budgets N, against the oracle pass@N; writes search.json and a report."""
    from reasonlab.fileio import write_text_atomic
    from reasonlab.judges.base import AGGREGATIONS
    from reasonlab.models import load_policy
    from reasonlab.reports.search import method_label, write_search_report
    from reasonlab.search.base import SearchContext
    from reasonlab.search.runner import check_methods, parse_budgets, parse_methods, run_search

    names = parse_methods(methods)
    sizes = parse_budgets(budgets if budgets is not None else DEFAULT_BUDGETS)
    if aggregation not in AGGREGATIONS:
        raise ReasonlabError(
            f"--aggregation: unknown aggregation {aggregation!r} (known: {', '.join(AGGREGATIONS)})"
        )
    if not model.exists():
        raise ReasonlabError(f"--model: {model}: no such folder")
    model_dir, run_cfg = resolve_model(model, prefer="base" if base else "rl")
    run_dir = model if run_cfg is not None else None
    task_name = task or (run_cfg.task.name if run_cfg else None)
    if task_name is None:
        raise ReasonlabError("--task is required when --model is not a run folder")
    the_task = make_task(task_name, task_knobs(task_name, run_cfg, parse_knobs(knob), None))
    name = model.name if run_cfg is not None else model_dir.name
    out = out or Path("runs") / f"search-{name}"
    _check_out(out)
    policy = load_policy(model_dir, options=run_cfg.model_options() if run_cfg else None)
    the_judge = _judge(judge, run_dir, policy, the_task)
    settings = SearchSettings(
        temperature=temperature,
        max_new_tokens=the_task.max_new_tokens,
        beam_width=beam_width,
        aggregation=aggregation,
    )
    context = SearchContext(policy, the_task, the_judge, settings)
    picked = the_task.sample("test", problems, 1)
    try:  # before any compute: one line naming what still works
        check_methods(context, names, sizes, picked, lenient=budgets is None)
    except ConfigError as err:
        raise ConfigError(_flags(str(err))) from None
    console.print(
        f"[bold]reasonlab search[/] {model_dir} on {task_name}: {len(picked)} problems, "
        f"methods {', '.join(names)}, N = {', '.join(map(str, sizes))}, {seeds} seed(s) -> {out}"
    )
    from reasonlab.cli.common import progress

    with progress() as stage:
        result = run_search(
            context,
            picked,
            names,
            sizes,
            list(range(seeds)),
            on_step=stage("search", "accuracy", "acc"),
            lenient=budgets is None,
        )
    result = {
        "model": str(model_dir),
        "model_name": name,
        "judge_spec": judge,
        "command": shlex.join(["reasonlab", *sys.argv[1:]]),
        **result,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / MARKER, json.dumps(result, indent=2) + "\n")
    report = write_search_report(result, out)
    _print_table(result, method_label)
    console.print(f"results: {out / MARKER}  report: {report}")


def _flags(message: str) -> str:
    for name, flag in FLAGS.items():
        message = message.replace(name, flag)
    return message


def _check_out(out: Path) -> None:
    """RunFolderError unless `out` is missing, an empty folder or an earlier search report."""
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"{out} is a file, not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise RunFolderError(f"{out} is not empty and holds no search report; choose another --out")


def _judge(spec: str, run_dir: Path | None, policy, task):
    """The judge of a --judge spec; None for `none`."""
    if spec == "none":
        return None
    if spec == "likelihood":
        from reasonlab.judges.likelihood import LikelihoodJudge

        return LikelihoodJudge(policy)
    judge, _, _ = load_any_judge(spec, run_dir, also=("likelihood", "none"))
    if judge is None:
        from reasonlab.judges.verifier import VerifierJudge

        return VerifierJudge(task)
    return judge


def _print_table(result: dict, method_label) -> None:
    from reasonlab.reports.toolkit import percent, sig3

    table = Table(
        title=f"test-time search ({result['n_problems']} problems, judge {result['judge']})"
    )
    table.add_column("method")
    for n in result["budgets"]:
        table.add_column(f"N={n}", justify="right")
    table.add_column(f"FLOPs/problem at N={max(result['budgets'])}", justify="right")
    top = str(max(result["budgets"]))
    for method, by_n in result["methods"].items():
        cells = [by_n.get(str(n)) for n in result["budgets"]]
        table.add_row(
            method_label(method, None, result["judge"]),
            *(percent(c["accuracy"]) if c else "n/a" for c in cells),
            sig3(cells[-1]["compute"]["flops_per_problem"]) if cells[-1] else "n/a",
        )
    oracle = result["oracle"]
    table.add_row(
        "oracle pass@N",
        *(percent(oracle[str(n)]["pass@n"]) for n in result["budgets"]),
        sig3(oracle[top]["compute"]["flops_per_problem"]),
    )
    table.add_row("pass@1", *(percent(oracle[str(n)]["pass@1"]) for n in result["budgets"]), "")
    console.print(table)
