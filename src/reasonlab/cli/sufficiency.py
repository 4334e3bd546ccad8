"""`reasonlab sufficiency`: is this base sufficient for RL to pay off on this task? Measured per difficulty
level, with a plain-language verdict (evaluate/verdict.py) and a report (reports/sufficiency.py).

Writes <out>/sufficiency.json, sufficiency.md, sufficiency.html and plots/. Bad input (unknown task or
knob, a model that cannot be loaded or cannot sample the task, an output folder that already holds a
result) is one line and exit code 2, before anything is written. With `--ray` (or RAY_ADDRESS) each level's
sampling and each random-reward control run is a Ray task (the run config's ray.task_cpus / task_gpus),
loading the model from its folder on its node (a folder every node sees at the same path); the judge
scores the samples in this process. A job that still fails after its retries is one line and exit code 1,
once the others have finished, and nothing is written. Usage:

    reasonlab sufficiency --model runs/default                         # -> runs/sufficiency/default_arith
    reasonlab sufficiency --model runs/default --levels 3,5,7 -n 64 --judge runs/default/judges/prm
    reasonlab sufficiency --model runs/default --levels 3,5,7 --ray local --ray-cpus 4
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.markup import escape

from reasonlab.cli.common import (
    KnobOpt,
    apply_options,
    console,
    field_option,
    parse_knobs,
    resolve_model,
    task_knobs,
)
from reasonlab.cli.ray_options import RayCpusOpt, RayOpt
from reasonlab.config import RunConfig, SufficiencySettings
from reasonlab.errors import ConfigError, ReasonlabError

if TYPE_CHECKING:
    from reasonlab.judges.base import Judge
    from reasonlab.models import Policy
    from reasonlab.tasks import Task


def sufficiency(
    model: Path = typer.Option(
        ..., "--model", "-m", help="A run folder (its base/) or a model folder."
    ),
    task: Optional[str] = typer.Option(
        None, "--task", "-t", help="Task name (default: the run's task)."
    ),
    knob: list[str] = KnobOpt,
    levels: Optional[str] = typer.Option(
        None,
        "--levels",
        help="Difficulty levels, e.g. 3,5,7 (default: the "
        "task's own level plus the run config's eval.levels).",
    ),
    n: Optional[int] = field_option(SufficiencySettings, "n", "-n"),
    problems: Optional[int] = field_option(SufficiencySettings, "n_problems", "--problems"),
    best_of: Optional[int] = field_option(SufficiencySettings, "best_of", "--best-of"),
    judge: str = typer.Option(
        "likelihood",
        "--judge",
        help="likelihood (the base itself), prm / orm (the run's judges), or a judge folder.",
    ),
    control_steps: Optional[int] = field_option(
        SufficiencySettings, "control_steps", "--control-steps"
    ),
    max_new_tokens: Optional[int] = typer.Option(
        None,
        "--max-new-tokens",
        help="Longest completion (default: "
        "the run's eval.max_new_tokens on its own task, else the task's).",
    ),
    seed: Optional[int] = field_option(RunConfig, "seed", "--seed"),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Output folder (default: runs/sufficiency/<model name>_<task>)."
    ),
    data_dir: Optional[Path] = typer.Option(
        None,
        "--data-dir",
        help="Where benchmark files live "
        "(default: $REASONLAB_DATA_DIR, else the files shipped with reasonlab).",
    ),
    ray: Optional[str] = RayOpt,
    ray_cpus: Optional[int] = RayCpusOpt,
) -> None:
    """Is this base sufficient for RL? Measured per difficulty level, with a verdict.

    Coverage, learnable share, edge of competence, behaviours, the generation-verification gap,
    process validity, a random-reward control and diversity.
    """
    from reasonlab.config import load_config
    from reasonlab.distributed.cluster import connect
    from reasonlab.distributed.grid import JobsFailed
    from reasonlab.experiments.sufficiency import CannotSample, level_task, run_sufficiency
    from reasonlab.fileio import write_text_atomic
    from reasonlab.models import load_policy
    from reasonlab.reports.sufficiency import write_sufficiency_report

    settings, run = SufficiencySettings(), RunConfig()
    apply_options(
        settings,
        {
            "-n": ("n", n),
            "--problems": ("n_problems", problems),
            "--control-steps": ("control_steps", control_steps),
        },
    )
    apply_options(
        settings,
        {"--best-of": ("best_of", best_of), "--max-new-tokens": ("max_new_tokens", max_new_tokens)},
    )
    apply_options(run, {"--seed": ("seed", seed)})
    if settings.best_of > settings.n:
        raise ReasonlabError(
            f"--best-of: {settings.best_of} is more than the samples per problem (-n {settings.n})"
        )
    model_dir, run_cfg = resolve_model(model, prefer="base")
    task_name = task or (run_cfg.task.name if run_cfg else None)
    if task_name is None:
        raise ReasonlabError("--task is required when --model is not a run folder")
    name = (model.name if run_cfg else model_dir.name) or "model"
    out = out or Path("runs") / "sufficiency" / f"{name}_{task_name.replace(':', '-')}"
    if (out / "sufficiency.json").exists():
        raise ReasonlabError(f"{out} already holds a sufficiency result; choose another --out")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ReasonlabError(f"{out} is not an empty folder; choose another --out")
    knobs = task_knobs(task_name, run_cfg, parse_knobs(knob), data_dir)
    the_task = level_task(task_name, knobs, None)
    level_list, main = _levels(the_task, levels, run_cfg)
    for level in level_list:  # an invalid level is a one-line knob error before the model loads
        _as_option("--levels", ConfigError, level_task, task_name, knobs, level)
    cfg = run_cfg or load_config(None)
    policy = load_policy(model_dir, options=cfg.model_options())
    the_judge = _judge(judge, policy, model if run_cfg else model_dir.parent)
    own_task = (
        run_cfg is not None and task_name == run_cfg.task.name
    )  # the run's sampling settings apply
    settings = settings.model_copy(
        update={
            "temperature": cfg.eval.temperature if own_task else 1.0,
            "top_p": cfg.eval.top_p if own_task else 1.0,
            "max_new_tokens": max_new_tokens
            if max_new_tokens is not None
            else cfg.eval.max_new_tokens
            if own_task
            else the_task.max_new_tokens,
            "batch_size": cfg.eval.batch_size,
        }
    )
    console.print(
        f"[bold]reasonlab sufficiency[/] {model_dir} on {task_name}, levels "
        f"{', '.join(str(lv) for lv in level_list if lv is not None) or 'as given'} -> {out}"
    )
    with connect(ray, ray_cpus, cfg.ray.object_store_mb) as on_ray:
        try:
            result = _as_option(
                "--model",  # run_sufficiency first checks that the model can sample every level
                CannotSample,
                run_sufficiency,
                policy,
                task_name,
                knobs,
                level_list,
                settings,
                the_judge,
                run.seed,
                rl_config=cfg,
                base_dir=model_dir,
                main_level=main,
                say=lambda m: console.print(f"  {m}"),
                ray=cfg.ray if on_ray else None,
            )
        except JobsFailed as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(1) from None
    result = {"model": str(model_dir), **result}
    out.mkdir(parents=True, exist_ok=True)
    write_sufficiency_report(result, out)
    write_text_atomic(out / "sufficiency.json", json.dumps(result) + "\n")
    console.print(f"[bold]verdict[/]: {result['headline']}")
    for s in result["verdict"]:
        console.print(f"  {escape('[' + s['says'] + ']')} {escape(s['text'])}")
    console.print(
        f"report: {out / 'sufficiency.html'}  ({out / 'sufficiency.md'}, {out / 'sufficiency.json'})"
    )


def _as_option(
    flag: str, errors: type[ConfigError], call: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """`call(*args, **kwargs)`, with an error of type `errors` it raises told as an error of option `flag`."""
    try:
        return call(*args, **kwargs)
    except errors as err:
        raise ReasonlabError(f"{flag}: {err}") from None


def _levels(task: Task, spec: Optional[str], run_cfg: Optional[RunConfig]) -> tuple[list[Any], Any]:
    """The difficulty levels to measure, in order, and the main one (the task's own level when listed)."""
    knob = task.difficulty_knob
    own = task.knobs.get(knob) if knob else None
    if spec is None:
        extra = list(run_cfg.eval.levels) if run_cfg is not None and knob else []
        chosen = sorted({own, *extra}) if knob else [None]
    else:
        if knob is None:
            raise ReasonlabError(f"--levels: task {task.name!r} has no difficulty knob")
        try:
            chosen = sorted({int(x) for x in spec.split(",") if x.strip()})
        except ValueError:
            raise ReasonlabError(f"--levels: expected integers like 3,5,7, got {spec!r}") from None
        if not chosen:
            raise ReasonlabError("--levels: name at least one level")
    return chosen, own if own in chosen else chosen[0]


def _judge(spec: str, policy: Policy, run_dir: Path) -> Judge:
    """The judge that scores samples: the policy itself (likelihood) or a trained judge."""
    if spec == "likelihood":
        from reasonlab.judges.likelihood import LikelihoodJudge

        return LikelihoodJudge(policy)
    from reasonlab.errors import CheckpointError
    from reasonlab.judges.models import find_judge, load_judge

    try:
        judge = load_judge(find_judge(spec, run_dir))
    except CheckpointError as err:
        raise ReasonlabError(f"--judge: {str(err).removeprefix('rl.judge: ')}") from None
    if judge.tokenizer.to_dict() != policy.tokenizer.to_dict():
        raise ReasonlabError(f"--judge: {spec} reads another tokenizer than the model")
    return judge
