"""The `reasonlab` command line (typer + rich): run, pretrain, rl, eval, judge train, judge eval, report.

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
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from reasonlab.errors import ReasonlabError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="reasonlab: build o1-style reasoning models and measure what makes them work.")
console = Console(soft_wrap=True)  # long paths stay on one line (copyable, greppable)

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML config (default: the embedded configs/default.yaml).")
OutOpt = typer.Option(None, "--out", "-o", help="Run folder (default: runs/<name>).")
SetOpt = typer.Option([], "--set", "-s", help="Override a config field: key.sub=value (repeatable).")
PRETRAIN_BAR = ("pretraining", "train/loss", "loss")  # (label, metric shown, its name)
RL_BAR = ("RL", "reward/mean", "reward")
JUDGE_BAR = ("judges", "judge/loss", "loss")
judge_app = typer.Typer(no_args_is_help=True, help="Reward models: train them, and measure them against exact "
                        "rules and human labels (ProcessBench protocol, AUROC, ECE, best-of-N).")
app.add_typer(judge_app, name="judge")


@app.command()
def run(config: Optional[Path] = ConfigOpt, out: Optional[Path] = OutOpt, set_: list[str] = SetOpt) -> None:
    """The main job: pretrain a base model, evaluate it, RL, evaluate the RL model, write summary.json and a report."""
    from reasonlab.config import load_config
    from reasonlab.pipeline import run_main_job

    cfg = load_config(config, set_)
    run_dir = out or Path("runs") / cfg.name
    console.print(f"[bold]reasonlab run[/] -> {run_dir}")
    with _progress() as stage:
        summary = run_main_job(cfg, run_dir, say=lambda m: console.print(f"  {m}"),
                               on_pretrain_step=stage(*PRETRAIN_BAR), on_rl_step=stage(*RL_BAR),
                               on_judge_step=stage(*JUDGE_BAR))
    _print_summary(summary)
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
    with _progress() as stage:
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
    from reasonlab.rl.trainer import check_base, prepare_policy, train_rl
    from reasonlab.tasks import get_task

    base_dir, run_cfg = _resolve_model(base, prefer="base")
    if config is None and run_cfg is not None:
        config = base / "config.yaml"
    cfg = load_config(config, set_)
    run_dir = out or Path("runs") / f"{cfg.name}-rl"
    if cfg.rl.steps < 1:
        raise ReasonlabError("rl.steps: must be at least 1 for `reasonlab rl`")
    validate(cfg)
    policy = load_policy(base_dir, options=cfg.hf.model_dump())
    check_base(cfg, policy, get_task(cfg.task.name, **cfg.task.knobs))  # before writing anything
    prepare_policy(cfg, policy)
    if cfg.rl.judge is not None:
        from reasonlab.judges.models import find_judge, load_judge

        load_judge(find_judge(cfg.rl.judge, run_dir, base_dir.parent))
    prepare_run_dir(run_dir, cfg)
    console.print(f"[bold]reasonlab rl[/] {base_dir} -> {run_dir}")
    with _progress() as stage:
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

    model_dir, run_cfg = _resolve_model(model)
    task_name = task or (run_cfg.task.name if run_cfg else None)
    if task_name is None:
        raise ReasonlabError("--task is required when --model is not a run folder")
    given = _parse_knobs(knob)
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
    _print_summary({k: round(v, 4) for k, v in s.items() if not k.startswith("pass@") or k in shown})
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


@judge_app.command("train")
def judge_train(
    base: Path = typer.Option(..., "--base", "-b", help="A run folder (its base/) or a model folder: the backbone "
                              "to start from and the policy whose samples are labelled."),
    head: str = typer.Option("prm", "--head", help="prm, orm or pairwise."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Train on this step-labelled file (JSONL in TRL's "
                                       "stepwise layout, or a ProcessBench JSON) instead of data built from the task."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Where processbench:<subset> files live "
                                            "(default: $REASONLAB_DATA_DIR)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config (default: the base run's)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Judge folder (default: runs/<name>-<head>)."),
    write_data: Optional[Path] = typer.Option(None, "--write-data", help="Also write the labelled training and "
                                              "validation records there (JSONL, TRL's stepwise layout)."),
    set_: list[str] = SetOpt,
) -> None:
    """Train a reward model (class-balanced, validated, early-stopped) and save it as a judge folder."""
    from reasonlab.config import load_config
    from reasonlab.judges.files import read_records, resolve_data
    from reasonlab.judges.models import HEADS, LearnedJudge
    from reasonlab.judges.stage import backbone, split_validation, training_records, tune_and_save
    from reasonlab.judges.train import train_reward_model
    from reasonlab.models import load_policy
    from reasonlab.pipeline import validate
    from reasonlab.tasks import get_task

    if head not in HEADS:
        raise ReasonlabError(f"--head: unknown head {head!r} (known: {', '.join(HEADS)})")
    base_dir, run_cfg = _resolve_model(base, prefer="base")
    if config is None and run_cfg is not None:
        config = base / "config.yaml"
    cfg = load_config(config, set_)
    validate(cfg)
    out = out or Path("runs") / f"{cfg.name}-{head}"
    if (out / "config.json").exists():
        raise ReasonlabError(f"{out} already holds a judge; choose another --out")
    policy = load_policy(base_dir)
    task = get_task(cfg.task.name, **cfg.task.knobs)
    jc = cfg.judge
    if data is not None:
        path = resolve_data(data, data_dir)
        read = read_records(path)
        if read.skipped:
            console.print(read.summary())
        if not read.records:
            raise ReasonlabError(f"{path}: no usable records")
        train, val = split_validation(read.records, jc.val_fraction)
    else:
        console.print(f"labelling {jc.train_problems} training problems ({jc.labels} labels)")
        train, val = training_records(task, policy, jc, cfg.seed, cfg.eval.max_new_tokens)
    if write_data is not None:
        from reasonlab.judges.files import write_records

        if write_data.exists():
            raise ReasonlabError(f"--write-data: {write_data} already exists")
        write_records(write_data, [*train, *val])
        console.print(f"labelled records: {write_data}")
    judge = LearnedJudge.from_backbone(backbone(cfg, policy), policy.tokenizer, head, features=jc.features,
                                           train_backbone=jc.train_backbone,
                                       aggregation=jc.aggregation)
    console.print(f"[bold]reasonlab judge train[/] {head} on {len(train)} records ({len(val)} validation) -> {out}")
    with _progress() as stage:
        hist = train_reward_model(judge, train, val, jc, cfg.seed, on_step=stage(*JUDGE_BAR))
    info = {**hist.summary(train, val), "labels": data or jc.labels, "base": str(base_dir)}
    tune_and_save(judge, task if data is None else None, val, jc, cfg.seed, out, info)
    _print_summary(info)
    console.print(f"judge: {out}  (measure it: reasonlab judge eval --judge {out} --data injected)")


@judge_app.command("eval")
def judge_eval(
    judge: str = typer.Option(..., "--judge", "-j", help="A judge folder, or a baseline: always-correct, "
                              "symbolic-arithmetic, verifier (the task's exact rules)."),
    data: str = typer.Option("injected", "--data", "-d", help="A step-labelled file, processbench:<subset>, or "
                             "injected (held-out reference + injected-error solutions of the task)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Where processbench:<subset> files live "
                                            "(default: $REASONLAB_DATA_DIR)."),
    policy: Optional[Path] = typer.Option(None, "--policy", "-p", help="Also best-of-N on this model's samples "
                                          "(a run folder or model folder), with --data injected."),
    task: Optional[str] = typer.Option(None, "--task", "-t", help="Task for injected data (default: the judge's "
                                       "training task, else arith)."),
    knob: list[str] = typer.Option([], "--knob", "-k", help="Task knob: name=value (repeatable)."),
    problems: int = typer.Option(200, "--problems", help="Test problems for injected data and best-of-N."),
    best_of: int = typer.Option(16, "--best-of", help="Samples per problem for best-of-N."),
    seed: int = typer.Option(0, "--seed"),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first bad record instead of skipping it."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Result JSON (default: next to the judge, or runs/judge-eval/)."),
) -> None:
    """Measure a judge: ProcessBench F1 (threshold tuned on a held-out half), step and outcome AUROC and ECE, best-of-N."""
    from reasonlab.config import JudgeConfig
    from reasonlab.evaluate.processbench import judge_step_metrics, tune_split
    from reasonlab.fileio import write_text_atomic
    from reasonlab.judges.data import eval_records
    from reasonlab.judges.files import read_records, resolve_data
    from reasonlab.judges.stage import evaluate_judges
    from reasonlab.models import load_policy
    from reasonlab.tasks import get_task

    the_judge, judge_dir, run_cfg = _load_any_judge(judge)
    name = Path(judge).name if judge_dir else judge
    task_name = task or (run_cfg.task.name if run_cfg else "arith")
    knobs = dict(run_cfg.task.knobs) if run_cfg and task_name == run_cfg.task.name else {}
    the_task = get_task(task_name, **{**knobs, **_parse_knobs(knob)})
    if the_judge is None:  # the verifier of the task
        from reasonlab.judges.verifier import VerifierJudge

        the_judge = VerifierJudge(the_task)
    data_name = data.replace(":", "_") if data == "injected" or data.startswith("processbench:") else Path(data).stem
    out = out or (judge_dir or Path("runs") / "judge-eval" / name) / f"eval_{data_name}_seed{seed}.json"
    if out.exists():
        raise ReasonlabError(f"{out} already exists; choose another --out")
    result: dict = {"judge": judge, "data": data, "seed": seed}
    if data == "injected":
        if policy is not None:
            policy_dir, _ = _resolve_model(policy)
            jc = JudgeConfig(eval_problems=problems, best_of_n=best_of)
            res = evaluate_judges({name: the_judge}, the_task, load_policy(policy_dir), jc, seed, 64)
            result.update(res)
            metrics = res["judges"][name]["injected"]
        else:
            records = eval_records(the_task, the_task.sample("test", problems, seed + 1), seed + 1)
            metrics = judge_step_metrics(records, the_judge.score(records), tune_split([r.id.split(":")[0] for r in records]))
            result["metrics"] = metrics
    else:
        if policy is not None:
            raise ReasonlabError("--policy: best-of-N needs --data injected (the task's own test problems)")
        path = resolve_data(data, data_dir)
        read = read_records(path, strict=strict)
        result.update({"file": str(path), "n_records": len(read.records) + len(read.skipped),
                       "skipped": [vars(s) for s in read.skipped]})
        if read.skipped:
            console.print(read.summary())
        if not read.records:
            raise ReasonlabError(f"{path}: no usable records")
        metrics = judge_step_metrics(read.records, the_judge.score(read.records), tune_split([r.id for r in read.records]))
        result["metrics"] = metrics
    write_text_atomic(out, json.dumps(result, indent=2) + "\n")
    shown = ("f1", "acc_error", "acc_correct", "threshold", "step_auroc", "step_ece", "outcome_auroc", "outcome_ece")
    table = {k: metrics.get(k) for k in shown}
    if "best_of_n" in result.get("judges", {}).get(name, {}):
        table[f"best_of_{best_of}"] = result["judges"][name]["best_of_n"][str(best_of)]
        table[f"majority_of_{best_of}"] = result["baselines"]["majority"][str(best_of)]
        table["pass@1"] = result["baselines"]["pass@1"]
    _print_summary({k: round(v, 4) if isinstance(v, float) else v for k, v in table.items()})
    console.print(f"results: {out}")


def _load_any_judge(spec: str):
    """(judge or None for the verifier, its folder or None, its run's config or None)."""
    from reasonlab.config import load_config
    from reasonlab.judges.baselines import BASELINES
    from reasonlab.judges.models import load_judge

    if spec == "verifier":
        return None, None, None
    if spec in BASELINES:
        return BASELINES[spec](), None, None
    folder = Path(spec)
    if not folder.exists():
        raise ReasonlabError(f"--judge: {spec} is neither a judge folder nor a baseline "
                             f"(baselines: verifier, {', '.join(BASELINES)})")
    loaded = load_judge(folder)  # a judge trained on a task remembers it (config.json "task")
    task = json.loads((folder / "config.json").read_text()).get("task")
    if isinstance(task, dict) and isinstance(task.get("name"), str):
        from reasonlab.config import config_from_dict

        return loaded, folder, config_from_dict({"task": task})
    run_config = folder.parent.parent / "config.yaml"
    return loaded, folder, load_config(run_config) if run_config.is_file() else None


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A run folder.")) -> None:
    """(Re)write report.md and report.html with plots for a run folder."""
    from reasonlab.report import write_report

    if not (run_dir / "config.yaml").is_file():
        raise ReasonlabError(f"{run_dir} is not a run folder (no config.yaml)")
    console.print(f"report: {write_report(run_dir)}")


def _resolve_model(path: Path, prefer: str = "rl"):
    """A run folder -> (its model folder, its config); a model folder -> (itself, None).

    In a run folder the RL model is taken when there is one (unless `prefer` is "base")."""
    from reasonlab.config import load_config

    if (path / "config.yaml").is_file():
        for stage in ("rl", "base") if prefer == "rl" else ("base",):
            if (path / stage / "config.json").is_file():
                return path / stage, load_config(path / "config.yaml")
    return path, None


def _parse_knobs(items: list[str]) -> dict:
    import yaml

    knobs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ReasonlabError(f"--knob expects name=value, got {item!r}")
        knobs[key] = yaml.safe_load(value)
    return knobs


@contextmanager
def _progress() -> Iterator[Callable[[str, str, str], Callable[[int, int, dict], None]]]:
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


def _print_summary(summary: dict) -> None:
    table = Table(title="summary", show_header=False)
    for k, v in summary.items():
        table.add_row(k, str(v))
    console.print(table)


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
