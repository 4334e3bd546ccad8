"""The `reasonlab` command line (typer + rich): run, pretrain, rl, eval, judge train, judge eval, sufficiency,
sweep, report.

Bad input (unknown task or knob, malformed YAML, unknown --set key, missing or corrupt checkpoint, an
output folder holding another run) prints one line naming the field or file and exits with code 2.
Usage:

    reasonlab run                                  # the CPU demo: configs/default.yaml -> runs/default
    reasonlab run --config configs/insufficient.yaml --set pretrain.token_budget=500000
    reasonlab rl --base runs/default --out runs/rloo --set rl.advantage=rloo
    reasonlab eval --model runs/default -n 64
    reasonlab eval --model models/Qwen2.5-Math-1.5B --task aime24 -n 16 --data-dir ../shared/data
    reasonlab judge train --base runs/default --head prm --set judge.labels=montecarlo
    reasonlab judge eval --judge runs/default/judges/prm --data injected --policy runs/default
    reasonlab judge eval --judge symbolic-arithmetic --data processbench:gsm8k --data-dir ../shared/data
    reasonlab sufficiency --model runs/default
    reasonlab sweep --config configs/sweep.yaml --quick
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from reasonlab.cli_common import (PRETRAIN_BAR, RL_BAR, JUDGE_BAR, ConfigOpt, OutOpt, SetOpt, console, parse_knobs,
                                  print_summary, progress, resolve_model)
from reasonlab.cli_judge import judge_app
from reasonlab.cli_sweep import sweep
from reasonlab.cli_study import sufficiency
from reasonlab.errors import ReasonlabError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="reasonlab: build o1-style reasoning models and measure what makes them work.")
app.add_typer(judge_app, name="judge")
app.command()(sweep)
app.command()(sufficiency)


@app.command()
def run(config: Optional[Path] = ConfigOpt, out: Optional[Path] = OutOpt, set_: list[str] = SetOpt) -> None:
    """The main job: pretrain a base model, evaluate it, RL, evaluate the RL model, write summary.json and a report."""
    from reasonlab.config import load_config
    from reasonlab.pipeline import run_main_job

    cfg = load_config(config, set_)
    run_dir = out or Path("runs") / cfg.name
    console.print(f"[bold]reasonlab run[/] -> {run_dir}")
    with progress() as stage:
        summary = run_main_job(cfg, run_dir, say=lambda m: console.print(f"  {m}"),
                               on_pretrain_step=stage(*PRETRAIN_BAR), on_rl_step=stage(*RL_BAR),
                               on_judge_step=stage(*JUDGE_BAR))
    print_summary(summary)
    console.print(f"report: {run_dir / 'report.html'}  ({run_dir / 'report.md'})")


@app.command()
def pretrain(config: Optional[Path] = ConfigOpt, out: Optional[Path] = OutOpt, set_: list[str] = SetOpt) -> None:
    """Pretrain a base model only (resumable: rerun the same command after a crash)."""
    from reasonlab.config import load_config
    from reasonlab.pipeline import prepare_run_dir
    from reasonlab.pretrain import pretrain as run_pretrain

    cfg = load_config(config, set_)
    run_dir = out or Path("runs") / cfg.name
    prepare_run_dir(run_dir, cfg)
    with progress() as stage:
        run_pretrain(cfg, run_dir, on_step=stage(*PRETRAIN_BAR))
    console.print(f"base model: {run_dir / 'base'}")


@app.command()
def rl(
    base: Path = typer.Option(..., "--base", "-b", help="A run folder (its base/) or a model folder to start from."),
    config: Optional[Path] = typer.Option(None, "--config", "-c",
                                          help="YAML config (default: the base run's config, else the default)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder (default: runs/<name>-rl)."),
    set_: list[str] = SetOpt,
) -> None:
    """RL post-training of a base model (GRPO family, RLOO, REINFORCE++, PPO); resumable."""
    from reasonlab.config import load_config
    from reasonlab.models import load_policy
    from reasonlab.pipeline import prepare_run_dir, validate
    from reasonlab.rl.trainer import check_base, prepare_policy, rl_task, train_rl

    base_dir, run_cfg = resolve_model(base, prefer="base")
    if config is None and run_cfg is not None:
        config = base / "config.yaml"
    cfg = load_config(config, set_)
    run_dir = out or Path("runs") / f"{cfg.name}-rl"
    if cfg.rl.steps < 1:
        raise ReasonlabError("rl.steps: must be at least 1 for `reasonlab rl`")
    validate(cfg)
    policy = load_policy(base_dir, options=cfg.hf.model_dump())
    check_base(cfg, policy, rl_task(cfg))  # before writing anything
    prepare_policy(cfg, policy)
    if cfg.rl.judge is not None:
        from reasonlab.judges.models import find_judge, load_judge

        load_judge(find_judge(cfg.rl.judge, run_dir, base_dir.parent))
    prepare_run_dir(run_dir, cfg)
    console.print(f"[bold]reasonlab rl[/] {base_dir} -> {run_dir}")
    with progress() as stage:
        train_rl(cfg, run_dir, base_dir, on_step=stage(*RL_BAR), policy=policy)
    console.print(f"RL model: {run_dir / 'rl'}  (evaluate it: reasonlab eval --model {run_dir})")


@app.command("eval")
def eval_(
    model: Path = typer.Option(..., "--model", "-m", help="A run folder (its rl/, else base/) or a model folder "
                               "(a reasonlab model or a local Hugging Face model)."),
    task: Optional[str] = typer.Option(None, "--task", "-t", help="Task name: arith, countdown, chess, math, "
                                       "aime24, aime25, amc23, math500, gsm8k, gym:<dataset> (default: the run's task)."),
    n: int = typer.Option(64, "-n", help="Samples per problem."),
    problems: int = typer.Option(200, "--problems", help="Test problems (a benchmark file with fewer: all of them)."),
    temperature: float = typer.Option(1.0, "--temperature"),
    top_p: float = typer.Option(1.0, "--top-p"),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", help="Longest completion "
                                                 "(default: the task's, e.g. 64 for arith, 2048 for math)."),
    batch_size: int = typer.Option(256, "--batch-size", help="Sequences generated at once."),
    seed: int = typer.Option(0, "--seed"),
    knob: list[str] = typer.Option([], "--knob", "-k", help="Task knob: name=value (repeatable)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Where benchmark files (aime24_test.jsonl, "
                                            "...) live (default: $REASONLAB_DATA_DIR)."),
    dtype: str = typer.Option("auto", "--dtype", help="Hugging Face model: auto, float32, bfloat16, float16."),
    device: str = typer.Option("auto", "--device", help="Hugging Face model: auto, cpu, cuda, cuda:1, ..."),
    sampler: str = typer.Option("builtin", "--sampler", help="Hugging Face model: builtin, hf (generate) or vllm."),
    chat_template: bool = typer.Option(True, "--chat-template/--no-chat-template",
                                       help="Hugging Face model: wrap prompts in its chat template."),
    log_samples: bool = typer.Option(False, "--log-samples", help="Keep every sample's text (default: the "
                                     "first 4 per problem; answers and verdicts of all are always kept)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Result JSON (default: next to a run folder, "
                                       "else runs/eval/)."),
) -> None:
    """Evaluate a model on a task's test split: pass@k, maj@k, per-problem answers and verdicts, as JSON."""
    from reasonlab.config import HFConfig
    from reasonlab.evaluate.passk import headline_ks
    from reasonlab.evaluate.runner import SamplingParams, evaluate_policy
    from reasonlab.fileio import write_text_atomic
    from reasonlab.models import load_policy

    model_dir, run_cfg = resolve_model(model)
    task_name = task or (run_cfg.task.name if run_cfg else None)
    if task_name is None:
        raise ReasonlabError("--task is required when --model is not a run folder")
    given = parse_knobs(knob)
    knobs = dict(run_cfg.task.knobs) if run_cfg and task_name == run_cfg.task.name else {}
    the_task = _make_task(task_name, {**knobs, **given}, data_dir)
    extra = "".join(f"_{k}{v}" for k, v in given.items())
    name = f"{model_dir.name}_{task_name.replace(':', '-')}{extra}_n{n}_seed{seed}.json"
    out = out or (model_dir.parent / "eval" if run_cfg else Path("runs") / "eval") / name
    if out.exists():
        raise ReasonlabError(f"{out} already exists; choose another --out")
    try:
        hf = HFConfig(dtype=dtype, device=device, sampler=sampler, chat_template=chat_template)
    except ValueError as err:
        raise ReasonlabError(f"--dtype/--sampler: {' '.join(str(err).split())[:200]}") from None
    policy = load_policy(model_dir, options=hf.model_dump())
    picked = the_task.sample("test", problems, seed + 1)
    console.print(f"evaluating {model_dir} on {task_name}: {len(picked)} problems x {n} samples")
    params = SamplingParams(n=n, seed=seed, temperature=temperature, top_p=top_p, batch_size=batch_size,
                            max_new_tokens=max_new_tokens or the_task.max_new_tokens)
    result = evaluate_policy(policy, the_task, picked, params, keep_samples=n if log_samples else 4)
    result["model"] = str(model_dir)
    write_text_atomic(out, json.dumps(result) + "\n")
    s = result["summary"]
    shown = {f"pass@{k}" for k in headline_ks(n)}
    print_summary({k: round(v, 4) for k, v in s.items() if not k.startswith("pass@") or k in shown})
    console.print(f"results: {out}")


def _make_task(name: str, knobs: dict, data_dir: Optional[Path]):
    """The task with its knobs; `--data-dir` goes to tasks that read benchmark files. Rows a file task
    skipped (bad JSON, missing fields) are reported, and evaluation goes on with the rest."""
    from reasonlab.tasks import get_task

    if data_dir is not None:
        knobs = {**knobs, "data_dir": str(data_dir)}
    the_task = get_task(name, **knobs)
    skipped = getattr(the_task, "skipped", [])
    if skipped:
        console.print(f"skipped {len(skipped)} bad rows: " + "; ".join(skipped[:3]) + (" ..." if len(skipped) > 3 else ""))
    return the_task


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A run folder.")) -> None:
    """(Re)write report.md and report.html with plots for a run folder."""
    from reasonlab.report import write_report

    if not (run_dir / "config.yaml").is_file():
        raise ReasonlabError(f"{run_dir} is not a run folder (no config.yaml)")
    console.print(f"report: {write_report(run_dir)}")


def main() -> None:
    """Entry point: one line and exit code 2 for bad input, never a traceback."""
    try:
        app(standalone_mode=False)
    except ReasonlabError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except typer.TyperException as err:  # usage errors: unknown option, missing or malformed value
        print(f"error: {err.format_message()}", file=sys.stderr)
        sys.exit(err.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
    except FloatingPointError as err:  # divergence: the message says which step and which checkpoint is kept
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
