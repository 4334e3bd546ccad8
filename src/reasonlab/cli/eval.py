"""`reasonlab eval`: sample a model on a task's test split and write pass@k, maj@k and every verdict.

The sampling options are the fields of `EvalConfig` and `HFConfig` (their defaults and docs live
there); `--task`, `--knob` and `--data-dir` choose the task. Usage:

    reasonlab eval --model runs/default -n 64
    reasonlab eval --model models/Qwen2.5-Math-1.5B --task aime24 -n 16
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from reasonlab.cli.common import (
    KnobOpt,
    apply_options,
    console,
    field_option,
    make_task,
    parse_knobs,
    print_summary,
    resolve_model,
    task_knobs,
)
from reasonlab.config import EvalConfig, HFConfig, RunConfig
from reasonlab.errors import ReasonlabError


def eval_(
    model: Path = typer.Option(
        ...,
        "--model",
        "-m",
        help="A run folder (its rl/, else base/) or a model folder "
        "(a reasonlab model or a local Hugging Face model).",
    ),
    task: Optional[str] = typer.Option(
        None,
        "--task",
        "-t",
        help="Task name: arith, countdown, chess, math, "
        "aime24, aime25, amc23, math500, gsm8k, gym:<dataset> (default: the run's task).",
    ),
    n: Optional[int] = field_option(EvalConfig, "n_samples", "-n"),
    problems: Optional[int] = field_option(
        EvalConfig,
        "n_problems",
        "--problems",
        help="Test problems (a benchmark file with fewer: all of them).",
    ),
    temperature: Optional[float] = field_option(EvalConfig, "temperature", "--temperature"),
    top_p: Optional[float] = field_option(EvalConfig, "top_p", "--top-p"),
    max_new_tokens: Optional[int] = typer.Option(
        None,
        "--max-new-tokens",
        help="Longest completion (default: the task's, e.g. 64 for arith, 2048 for math).",
    ),
    batch_size: Optional[int] = field_option(EvalConfig, "batch_size", "--batch-size"),
    seed: Optional[int] = field_option(RunConfig, "seed", "--seed"),
    knob: list[str] = KnobOpt,
    data_dir: Optional[Path] = typer.Option(
        None,
        "--data-dir",
        help="Where benchmark files (aime24_test.jsonl, "
        "...) live (default: $REASONLAB_DATA_DIR, else the files shipped "
        "with reasonlab).",
    ),
    dtype: Optional[str] = field_option(HFConfig, "dtype", "--dtype"),
    device: Optional[str] = field_option(HFConfig, "device", "--device"),
    sampler: Optional[str] = field_option(HFConfig, "sampler", "--sampler"),
    chat_template: Optional[bool] = field_option(
        HFConfig, "chat_template", "--chat-template/--no-chat-template"
    ),
    log_samples: bool = typer.Option(
        False,
        "--log-samples",
        help="Keep every sample's text (default: the "
        "first 4 per problem; answers and verdicts of all are always kept).",
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Result JSON (default: next to a run folder, else runs/eval/)."
    ),
) -> None:
    """Evaluate a model on a task's test split: pass@k, maj@k, per-problem answers and verdicts, as JSON."""
    from reasonlab.evaluate.passk import headline_ks
    from reasonlab.evaluate.runner import SamplingParams, evaluate_policy
    from reasonlab.fileio import write_text_atomic
    from reasonlab.models import load_policy

    ec, hf, run = EvalConfig(), HFConfig(), RunConfig()
    apply_options(
        ec,
        {
            "-n": ("n_samples", n),
            "--problems": ("n_problems", problems),
            "--temperature": ("temperature", temperature),
            "--top-p": ("top_p", top_p),
            "--batch-size": ("batch_size", batch_size),
        },
    )
    apply_options(
        hf,
        {
            "--dtype": ("dtype", dtype),
            "--device": ("device", device),
            "--sampler": ("sampler", sampler),
            "--chat-template": ("chat_template", chat_template),
        },
    )
    apply_options(run, {"--seed": ("seed", seed)})
    if max_new_tokens is not None and max_new_tokens < 1:
        raise ReasonlabError(f"--max-new-tokens: must be at least 1, got {max_new_tokens}")
    model_dir, run_cfg = resolve_model(model)
    task_name = task or (run_cfg.task.name if run_cfg else None)
    if task_name is None:
        raise ReasonlabError("--task is required when --model is not a run folder")
    given = parse_knobs(knob)
    the_task = make_task(task_name, task_knobs(task_name, run_cfg, given, data_dir))
    extra = "".join(f"_{k}{v}" for k, v in given.items())
    name = (
        f"{model_dir.name}_{task_name.replace(':', '-')}{extra}_n{ec.n_samples}_seed{run.seed}.json"
    )
    out = out or (model_dir.parent / "eval" if run_cfg else Path("runs") / "eval") / name
    if out.exists():
        raise ReasonlabError(f"{out} already exists; choose another --out")
    policy = load_policy(model_dir, options=hf.model_dump())
    picked = the_task.sample("test", ec.n_problems, run.seed + 1)
    console.print(
        f"evaluating {model_dir} on {task_name}: {len(picked)} problems x {ec.n_samples} samples"
    )
    params = SamplingParams(
        n=ec.n_samples,
        seed=run.seed,
        temperature=ec.temperature,
        top_p=ec.top_p,
        batch_size=ec.batch_size,
        max_new_tokens=max_new_tokens or the_task.max_new_tokens,
    )
    result = evaluate_policy(
        policy, the_task, picked, params, keep_samples=ec.n_samples if log_samples else 4
    )
    result["model"] = str(model_dir)
    write_text_atomic(out, json.dumps(result) + "\n")
    s = result["summary"]
    shown = {f"pass@{k}" for k in headline_ks(ec.n_samples)}
    print_summary({k: round(v, 4) for k, v in s.items() if not k.startswith("pass@") or k in shown})
    console.print(f"results: {out}")
