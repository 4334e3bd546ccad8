"""The sweep's compute-matched arm: the compute one cell's RL stage spent, spent instead on more pretraining
of the same base, evaluated with the same protocol, so RL's gain and more pretraining's gain can be compared
at equal cost.

Cost of RL, in pretraining tokens (`rl_compute`, pure): with the usual estimate of 2N FLOPs per token for
a forward pass and 6N for a forward and backward pass (N parameters; attention and the critic left out),
one RL step costs 2N x the tokens it samples (prompt + completion, each completion counted with its own
prompt) + 6N x the tokens it trains on x rl.num_iterations, + 2N x the trained tokens for each extra
forward pass (old logprobs when off-policy or with a KL reward; the reference model when beta > 0 or on a
KL-monitor step). One pretraining token costs 6N, so N cancels: the matched budget is FLOPs / 6N tokens.
Only real tokens count, not padding: the builtin sampler keeps decoding a batch until its longest
completion ends, so it executes more than this (which the wall-clock matching sees).
`compute: wall` matches wall-clock time instead: RL's seconds x the base's pretraining throughput (tokens
per second of its own pretraining stage). On a CPU, where sampling runs far below the machine's FLOP rate,
a wall-matched arm gets 1.1-4.6x the tokens of a FLOPs-matched one (configs/sweep.yaml's cells).

More pretraining (pretrain.continue_pretraining): the base's final weights and optimizer state, the same
corpus (new windows), the base's schedule replayed over the extra steps (re-warmed to `peak_lr`, default
the base's pretrain.lr, then cosine decay to its final learning rate), in `<cell>/more_pretraining_flops/`
(or `_wall/`), then eval/more*.json there with the cell's eval config. Resumable like every stage;
`matched.json` marks it done and records the accounting, the timings and the pass rates. Usage:

    row.update(run_matched(cell_config, Path("runs/sweep/cells/<cell>"), MatchedConfig()))
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from reasonlab.config import RLConfig, RunConfig, Strict
from reasonlab.errors import ConfigError, RunFolderError
from reasonlab.fileio import read_json_or_none, write_text_atomic
from reasonlab.training.tracking import read_metrics


class MatchedConfig(Strict):
    compute: Literal["flops", "wall"] = "flops"
    """What is matched: RL's FLOPs (in pretraining tokens, machine-independent) or its wall-clock seconds."""
    peak_lr: float | None = Field(None, gt=0)
    """Learning rate the extra pretraining re-warms to (None = the base's pretrain.lr)."""


def rl_compute(rows: list[dict[str, Any]], rc: RLConfig) -> dict[str, int]:
    """Tokens RL sampled and trained on, and its cost in pretraining tokens (FLOPs / 6N), from the RL rows
    of metrics.jsonl (one per step: rl/prompt_tokens, rl/completion_tokens, rl/trained_tokens)."""
    on_policy = rc.num_iterations == 1 and rc.minibatches == 1
    old_pass = not on_policy or (rc.beta > 0 and rc.kl_in == "reward")
    sampled = trained = units = 0.0  # units: multiples of 2N FLOPs
    for row in rows:
        step_sampled = row["rl/prompt_tokens"] + row["rl/completion_tokens"]
        if "rl/trained_tokens" in row:
            step_trained = row["rl/trained_tokens"]
        elif not rc.dynamic_sampling:  # every sampled group is trained on
            step_trained = step_sampled
        else:
            raise ConfigError(
                "rl_compute: these RL metrics predate rl/trained_tokens and used dynamic sampling; "
                "the tokens trained on are unknown"
            )
        monitor = rc.kl_monitor_every > 0 and row["step"] % rc.kl_monitor_every == 0
        forwards = int(old_pass) + int(rc.beta > 0 or monitor)
        sampled += step_sampled
        trained += step_trained
        units += step_sampled + step_trained * (3 * rc.num_iterations + forwards)
    return {
        "rl_steps": len(rows),
        "sampled_tokens": int(sampled),
        "trained_tokens": int(trained),
        "pretrain_tokens": int(round(units * 2 / 6)),
    }


def rl_rows(metrics_path: Path) -> list[dict[str, Any]]:
    """The RL step rows of a run's metrics.jsonl (those that counted sampled tokens)."""
    return [r for r in read_metrics(metrics_path) if "rl/completion_tokens" in r]


def matched_tokens(cell: Path, cfg: RunConfig, mc: MatchedConfig) -> dict[str, Any]:
    """The extra pretraining budget that costs what this cell's RL stage cost, with the accounting."""
    summary = read_json_or_none(cell / "summary.json") or {}
    rows = rl_rows(cell / "metrics.jsonl")
    if not rows or "time/rl_s" not in summary:
        raise RunFolderError(f"{cell}: no finished RL stage to match (rl.steps is {cfg.rl.steps})")
    used = rl_compute(rows, cfg.rl)
    throughput = (
        cfg.pretrain.token_budget / summary["time/pretrain_s"]
    )  # the base's own tokens per second
    wall_tokens = int(summary["time/rl_s"] * throughput)
    extra = used["pretrain_tokens"] if mc.compute == "flops" else wall_tokens
    params = summary.get("model/params")
    return {
        "compute": mc.compute,
        **used,
        "rl_s": summary["time/rl_s"],
        "pretrain_tokens_per_s": round(throughput),
        "wall_matched_tokens": wall_tokens,
        "extra_tokens": extra,
        "rl_flops": None if params is None else 6.0 * params * used["pretrain_tokens"],
    }


def run_matched(
    cfg: RunConfig,
    cell: Path,
    mc: MatchedConfig,
    say: Callable[[str], None] = lambda m: None,
    on_step: Callable[[int, int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume, or read) the arm of a finished cell; returns {"matched": accounting and timings,
    "more": pass rates, "more_gain": more - base}."""
    from reasonlab.experiments.main_job import evaluate_stage, summary_keys
    from reasonlab.pretrain.trainer import continue_pretraining

    arm = arm_dir(cell, mc)
    check_settings(cell, mc)
    if arm_finished(cell, mc):
        return arm_row(
            read_json_or_none(arm / "matched.json") or {},
            read_json_or_none(cell / "summary.json") or {},
        )
    plan = matched_tokens(cell, cfg, mc)
    arm.mkdir(exist_ok=True)
    write_text_atomic(
        arm / "matched.json", json.dumps({"settings": mc.model_dump(), **plan}, indent=1) + "\n"
    )
    say(
        f"more pretraining: {plan['extra_tokens']:,} tokens, the {mc.compute} of {plan['rl_steps']} RL steps"
    )
    t = time.perf_counter()
    policy = continue_pretraining(cfg, cell, arm, plan["extra_tokens"], mc.peak_lr, on_step=on_step)
    pretrain_s = time.perf_counter() - t
    say("evaluating the more-pretrained base")
    t = time.perf_counter()
    more = summary_keys("more", evaluate_stage(policy, cfg, arm, "more"))
    record = {
        "settings": mc.model_dump(),
        **plan,
        "more_pretrain_s": round(pretrain_s, 1),
        "more_eval_s": round(time.perf_counter() - t, 1),
        "more": more,
    }
    write_text_atomic(arm / "matched.json", json.dumps(record, indent=1) + "\n")
    return arm_row(record, read_json_or_none(cell / "summary.json") or {})


def arm_dir(cell: Path, mc: MatchedConfig) -> Path:
    """The arm's folder in a cell: one per kind of matching, so FLOPs- and wall-matched arms can sit side by side."""
    return cell / f"more_pretraining_{mc.compute}"


def arm_finished(cell: Path, mc: MatchedConfig) -> bool:
    return "more" in (read_json_or_none(arm_dir(cell, mc) / "matched.json") or {})


def check_settings(cell: Path, mc: MatchedConfig) -> None:
    """Refuse an arm folder started with other settings (another peak_lr: its model is not this one's)."""
    arm = arm_dir(cell, mc)
    old = read_json_or_none(arm / "matched.json")
    if old is not None and old.get("settings") != mc.model_dump():
        raise RunFolderError(
            f"{arm} ran with other matched settings ({old.get('settings')}); remove that folder "
            "or restore the sweep file's `matched`"
        )


def arm_row(record: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """A finished arm as sweep row fields: the accounting, the pass rates and the gains over the base."""
    more = {k.removeprefix("more/"): v for k, v in record["more"].items() if "pass@" in k}
    gain = {
        k: round(v - summary[f"base/{k}"], 4) for k, v in more.items() if f"base/{k}" in summary
    }
    matched = {k: v for k, v in record.items() if k not in ("more", "settings")}
    return {"matched": matched, "more": more, "more_gain": gain}
