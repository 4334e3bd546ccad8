"""`reasonlab judge train` and `reasonlab judge eval`: reward models trained and measured from the command line.

Usage:

    reasonlab judge train --base runs/default --head prm --set judge.labels=montecarlo
    reasonlab judge eval --judge runs/default/judges/prm --data injected --policy runs/default
    reasonlab judge eval --judge symbolic-arithmetic --data processbench:gsm8k
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from reasonlab.cli.common import (
    JUDGE_BAR,
    KnobOpt,
    SetOpt,
    apply_options,
    console,
    field_option,
    load_any_judge,
    make_task,
    parse_knobs,
    print_summary,
    progress,
    resolve_model,
    task_knobs,
)
from reasonlab.config import JudgeConfig, RunConfig
from reasonlab.errors import ReasonlabError

judge_app = typer.Typer(
    no_args_is_help=True,
    help="Reward models: train them, and measure them against exact "
    "rules and human labels (ProcessBench protocol, AUROC, ECE, best-of-N).",
)


@judge_app.command("train")
def judge_train(
    base: Path = typer.Option(
        ...,
        "--base",
        "-b",
        help="A run folder (its base/) or a model folder: the backbone "
        "to start from and the policy whose samples are labelled.",
    ),
    head: str = typer.Option("prm", "--head", help="prm, orm or pairwise."),
    data: Optional[str] = typer.Option(
        None,
        "--data",
        "-d",
        help="Train on this step-labelled file (JSONL in TRL's "
        "stepwise layout, or a ProcessBench JSON) instead of data built from the task.",
    ),
    data_dir: Optional[Path] = typer.Option(
        None,
        "--data-dir",
        help="Where processbench:<subset> files live "
        "(default: $REASONLAB_DATA_DIR, else the copies shipped "
        "with reasonlab).",
    ),
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="YAML config (default: the base run's)."
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Judge folder (default: runs/<name>-<head>)."
    ),
    write_data: Optional[Path] = typer.Option(
        None,
        "--write-data",
        help="Also write the labelled training and "
        "validation records there (JSONL, TRL's stepwise layout).",
    ),
    set_: list[str] = SetOpt,
) -> None:
    """Train a reward model (class-balanced, validated, early-stopped) and save it as a judge folder."""
    from reasonlab.config import load_config
    from reasonlab.experiments.main_job import validate
    from reasonlab.judges.files import read_records, resolve_data
    from reasonlab.judges.models import HEADS, LearnedJudge
    from reasonlab.judges.stage import backbone, split_validation, training_records, tune_and_save
    from reasonlab.judges.train import train_reward_model
    from reasonlab.models import load_policy
    from reasonlab.tasks import get_task

    if head not in HEADS:
        raise ReasonlabError(f"--head: unknown head {head!r} (known: {', '.join(HEADS)})")
    base_dir, run_cfg = resolve_model(base, prefer="base")
    if config is None and run_cfg is not None:
        config = base / "config.yaml"
    cfg = load_config(config, set_)
    validate(cfg)
    out = out or Path("runs") / f"{cfg.name}-{head}"
    if (out / "config.json").exists():
        raise ReasonlabError(f"{out} already holds a judge; choose another --out")
    policy = load_policy(base_dir, options=cfg.model_options())
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
    judge = LearnedJudge.from_backbone(
        backbone(cfg, policy),
        policy.tokenizer,
        head,
        features=jc.features,
        train_backbone=jc.train_backbone,
        aggregation=jc.aggregation,
    )
    console.print(
        f"[bold]reasonlab judge train[/] {head} on {len(train)} records ({len(val)} validation) -> {out}"
    )
    with progress() as stage:
        hist = train_reward_model(judge, train, val, jc, cfg.seed, on_step=stage(*JUDGE_BAR))
    info = {**hist.summary(train, val), "labels": data or jc.labels, "base": str(base_dir)}
    tune_and_save(judge, task if data is None else None, val, jc, cfg.seed, out, info)
    print_summary(info)
    console.print(f"judge: {out}  (measure it: reasonlab judge eval --judge {out} --data injected)")


@judge_app.command("eval")
def judge_eval(
    judge: str = typer.Option(
        ...,
        "--judge",
        "-j",
        help="A judge folder, or a baseline: always-correct, "
        "symbolic-arithmetic, verifier (the task's exact rules).",
    ),
    data: str = typer.Option(
        "injected",
        "--data",
        "-d",
        help="A step-labelled file, processbench:<subset>, or "
        "injected (held-out reference + injected-error solutions of the task).",
    ),
    data_dir: Optional[Path] = typer.Option(
        None,
        "--data-dir",
        help="Where processbench:<subset> files live "
        "(default: $REASONLAB_DATA_DIR, else the copies shipped "
        "with reasonlab).",
    ),
    policy: Optional[Path] = typer.Option(
        None,
        "--policy",
        "-p",
        help="Also best-of-N on this model's samples "
        "(a run folder or model folder), with --data injected.",
    ),
    task: Optional[str] = typer.Option(
        None,
        "--task",
        "-t",
        help="Task for injected data (default: the judge's training task, else the --policy run's, else arith).",
    ),
    knob: list[str] = KnobOpt,
    problems: Optional[int] = field_option(
        JudgeConfig,
        "eval_problems",
        "--problems",
        help="Test problems for injected data and best-of-N.",
    ),
    best_of: Optional[int] = field_option(
        JudgeConfig, "best_of_n", "--best-of", help="Samples per problem for best-of-N."
    ),
    seed: Optional[int] = field_option(RunConfig, "seed", "--seed"),
    strict: bool = typer.Option(
        False, "--strict", help="Stop at the first bad record instead of skipping it."
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Result JSON (default: next to the judge, or runs/judge-eval/)."
    ),
) -> None:
    """Measure a judge: ProcessBench F1 (threshold tuned on a held-out half), step and outcome
    AUROC and ECE, best-of-N."""
    from reasonlab.evaluate.processbench import judge_step_metrics, tune_split
    from reasonlab.fileio import write_text_atomic
    from reasonlab.judges.data import eval_records
    from reasonlab.judges.files import read_records, resolve_data
    from reasonlab.judges.stage import evaluate_judges
    from reasonlab.models import load_policy

    jc, run = JudgeConfig(), RunConfig()
    apply_options(
        jc, {"--problems": ("eval_problems", problems), "--best-of": ("best_of_n", best_of)}
    )
    apply_options(run, {"--seed": ("seed", seed)})
    problems, best_of, seed = jc.eval_problems, jc.best_of_n, run.seed
    the_judge, judge_dir, run_cfg = load_any_judge(judge)
    if run_cfg is None and policy is not None:  # a judge trained on a file: the policy's task
        run_cfg = resolve_model(policy)[1]
    name = Path(judge).name if judge_dir else judge
    task_name = task or (run_cfg.task.name if run_cfg else "arith")
    the_task = make_task(task_name, task_knobs(task_name, run_cfg, parse_knobs(knob), None))
    if the_judge is None:  # the verifier of the task
        from reasonlab.judges.verifier import VerifierJudge

        the_judge = VerifierJudge(the_task)
    data_name = (
        data.replace(":", "_")
        if data == "injected" or data.startswith("processbench:")
        else Path(data).stem
    )
    out = (
        out
        or (judge_dir or Path("runs") / "judge-eval" / name) / f"eval_{data_name}_seed{seed}.json"
    )
    if out.exists():
        raise ReasonlabError(f"{out} already exists; choose another --out")
    result: dict = {"judge": judge, "data": data, "seed": seed}
    if data == "injected":
        if policy is not None:
            policy_dir, _ = resolve_model(policy)
            res = evaluate_judges(
                {name: the_judge}, the_task, load_policy(policy_dir), jc, seed, 64
            )
            result.update(res)
            metrics = res["judges"][name]["injected"]
        else:
            records = eval_records(the_task, the_task.sample("test", problems, seed + 1), seed + 1)
            metrics = judge_step_metrics(
                records, the_judge.score(records), tune_split([r.id.split(":")[0] for r in records])
            )
            result["metrics"] = metrics
    else:
        if policy is not None:
            raise ReasonlabError(
                "--policy: best-of-N needs --data injected (the task's own test problems)"
            )
        path = resolve_data(data, data_dir)
        read = read_records(path, strict=strict)
        result.update(
            {
                "file": str(path),
                "n_records": len(read.records) + len(read.skipped),
                "skipped": [vars(s) for s in read.skipped],
            }
        )
        if read.skipped:
            console.print(read.summary())
        if not read.records:
            raise ReasonlabError(f"{path}: no usable records")
        metrics = judge_step_metrics(
            read.records, the_judge.score(read.records), tune_split([r.id for r in read.records])
        )
        result["metrics"] = metrics
    write_text_atomic(out, json.dumps(result, indent=2) + "\n")
    shown = (
        "f1",
        "acc_error",
        "acc_correct",
        "threshold",
        "step_auroc",
        "step_ece",
        "outcome_auroc",
        "outcome_ece",
    )
    table = {k: metrics.get(k) for k in shown}
    if "best_of_n" in result.get("judges", {}).get(name, {}):
        table[f"best_of_{best_of}"] = result["judges"][name]["best_of_n"][str(best_of)]
        table[f"majority_of_{best_of}"] = result["baselines"]["majority"][str(best_of)]
        table["pass@1"] = result["baselines"]["pass@1"]
    print_summary({k: round(v, 4) if isinstance(v, float) else v for k, v in table.items()})
    console.print(f"results: {out}")
