"""`reasonlab run`, `reasonlab pretrain` and `reasonlab rl`: the training jobs, each resumable.

Usage:

    reasonlab run                                  # the CPU demo: configs/default.yaml -> runs/default
    reasonlab run --config configs/insufficient.yaml --set pretrain.token_budget=500000
    reasonlab pretrain --config configs/default.yaml --out runs/base
    reasonlab rl --base runs/default --out runs/rloo --set rl.advantage=rloo
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from reasonlab.cli.common import (
    JUDGE_BAR,
    PRETRAIN_BAR,
    RL_BAR,
    ConfigOpt,
    OutOpt,
    SetOpt,
    console,
    print_summary,
    progress,
    resolve_model,
)
from reasonlab.errors import ReasonlabError


def run(
    config: Optional[Path] = ConfigOpt, out: Optional[Path] = OutOpt, set_: list[str] = SetOpt
) -> None:
    """The main job: pretrain a base model, evaluate it, RL, evaluate the RL model, write summary.json and a report."""
    from reasonlab.config import load_config
    from reasonlab.experiments.main_job import run_main_job

    cfg = load_config(config, set_)
    run_dir = out or Path("runs") / cfg.name
    console.print(f"[bold]reasonlab run[/] -> {run_dir}")
    with progress() as stage:
        summary = run_main_job(
            cfg,
            run_dir,
            say=lambda m: console.print(f"  {m}"),
            on_pretrain_step=stage(*PRETRAIN_BAR),
            on_rl_step=stage(*RL_BAR),
            on_judge_step=stage(*JUDGE_BAR),
        )
    print_summary(summary)
    console.print(f"report: {run_dir / 'report.html'}  ({run_dir / 'report.md'})")


def pretrain(
    config: Optional[Path] = ConfigOpt, out: Optional[Path] = OutOpt, set_: list[str] = SetOpt
) -> None:
    """Pretrain a base model only (resumable: rerun the same command after a crash)."""
    from reasonlab.config import load_config
    from reasonlab.experiments.main_job import prepare_run_dir
    from reasonlab.pretrain import pretrain as run_pretrain

    cfg = load_config(config, set_)
    run_dir = out or Path("runs") / cfg.name
    prepare_run_dir(run_dir, cfg)
    with progress() as stage:
        run_pretrain(cfg, run_dir, on_step=stage(*PRETRAIN_BAR))
    console.print(f"base model: {run_dir / 'base'}")


def rl(
    base: Path = typer.Option(
        ..., "--base", "-b", help="A run folder (its base/) or a model folder to start from."
    ),
    config: Optional[Path] = typer.Option(
        None,
        "--config",
        "-c",
        help="YAML config (default: the base run's config, else the default).",
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Run folder (default: runs/<name>-rl)."
    ),
    set_: list[str] = SetOpt,
) -> None:
    """RL post-training of a base model (GRPO family, RLOO, REINFORCE++, PPO); resumable."""
    from reasonlab.config import load_config
    from reasonlab.experiments.main_job import prepare_run_dir, validate
    from reasonlab.judges.models import find_judge, load_judge
    from reasonlab.models import load_policy
    from reasonlab.rl.trainer import check_base, prepare_policy, rl_task, train_rl

    base_dir, run_cfg = resolve_model(base, prefer="base")
    if config is None and run_cfg is not None:
        config = base / "config.yaml"
    cfg = load_config(config, set_)
    run_dir = out or Path("runs") / f"{cfg.name}-rl"
    if cfg.rl.steps < 1:
        raise ReasonlabError("rl.steps: must be at least 1 for `reasonlab rl`")
    validate(cfg)
    policy = load_policy(base_dir, options=cfg.model_options())
    check_base(cfg, policy, rl_task(cfg))  # before writing anything
    prepare_policy(cfg, policy)
    if cfg.rl.judge is not None:
        load_judge(find_judge(cfg.rl.judge, run_dir, base_dir.parent))
    prepare_run_dir(run_dir, cfg)
    console.print(f"[bold]reasonlab rl[/] {base_dir} -> {run_dir}")
    with progress() as stage:
        train_rl(cfg, run_dir, base_dir, on_step=stage(*RL_BAR), policy=policy)
    console.print(f"RL model: {run_dir / 'rl'}  (evaluate it: reasonlab eval --model {run_dir})")
