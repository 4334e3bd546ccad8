"""The main job behind `reasonlab run`: one run folder, its stages in order, each resumable.

Stages: pretrain the base (resumes from its last checkpoint) -> evaluate the base on the test split
(pass@k, maj@k, greedy accuracy, breakdown by difficulty) -> train and evaluate the judges
(judge.heads: PRM / ORM / pairwise reward models, judges/stage.py) -> RL post-training (resumes from its last
checkpoint; skipped when rl.steps is 0) -> evaluate the RL model with the same protocol ->
sample solutions: the base's and the RL model's chains on up to eval.solutions test problems, each
step marked by the verifier and scored by the judges (eval/solutions.json, experiments/solutions.py;
skipped when eval.solutions is 0) -> summary.json -> report. A stage whose
output already exists in the folder is not redone, so rerunning after a crash continues the run,
and rerunning a finished run only rewrites its report.
A folder that holds a run with a different config is refused, never overwritten. Usage:

    reasonlab run --config configs/default.yaml --out runs/demo --set pretrain.token_budget=1000000
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from reasonlab.config import EvalConfig, RunConfig, config_from_dict, dump_config
from reasonlab.errors import ConfigError, RunFolderError
from reasonlab.evaluate.passk import headline_ks
from reasonlab.evaluate.runner import SamplingParams, evaluate_policy
from reasonlab.fileio import write_text_atomic
from reasonlab.models import Policy, load_policy
from reasonlab.models.precision import resolve_device
from reasonlab.tasks import Task, get_task

Progress = Callable[[str], None]


def validate(cfg: RunConfig) -> None:
    """Fail fast on a config that cannot run (unknown task or knob, bad mixture), before any write."""
    from reasonlab.pretrain.corpus import corpus_mixture, level_tasks
    from reasonlab.pretrain.trainer import validate_pretrain
    from reasonlab.rl.trainer import validate_rl

    task = get_task(cfg.task.name, **cfg.task.knobs)
    corpus_mixture(cfg).validate_for(task)
    for level_task in level_tasks(task, cfg.pretrain.levels).values():
        corpus_mixture(cfg).validate_for(level_task)
    validate_pretrain(cfg)
    validate_rl(cfg)
    options = cfg.model_options()
    resolve_device(options["device"])  # a GPU asked for where torch sees none
    if cfg.model.d_model % cfg.model.n_heads:
        raise ConfigError(
            f"model.n_heads: {cfg.model.n_heads} does not divide model.d_model ({cfg.model.d_model})"
        )


def prepare_run_dir(run_dir: Path, cfg: RunConfig) -> None:
    """Validate, then create the folder and write config.yaml, or check that it holds this same run."""
    validate(cfg)
    path = run_dir / "config.yaml"
    if path.is_file():
        field = config_difference(path, cfg)
        if field is not None:
            raise RunFolderError(
                f"{run_dir} already holds a different run ({field or 'config'} differs); choose another --out or "
                "remove it"
            )
        return
    if run_dir.exists() and any(run_dir.iterdir()):
        raise RunFolderError(
            f"{run_dir} is not empty and holds no reasonlab run; choose another --out"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, dump_config(cfg))


def config_difference(path: Path, cfg: RunConfig) -> str | None:
    """The first field where the run config saved at `path` differs from `cfg`, None for the same run. The saved
    file is read through today's schema, so a field added since then, at its default, is no difference."""
    saved = yaml.safe_load(path.read_text()) or {}
    try:
        saved = yaml.safe_load(dump_config(config_from_dict(saved, str(path))))
    except ConfigError:
        pass  # a field since renamed or removed: compare the file as written
    return first_difference(saved, yaml.safe_load(dump_config(cfg)))


def run_main_job(
    cfg: RunConfig,
    run_dir: Path,
    say: Progress = lambda msg: None,
    on_pretrain_step: Callable[[int, int, dict[str, float]], None] | None = None,
    on_rl_step: Callable[[int, int, dict[str, float]], None] | None = None,
    on_judge_step: Callable[[int, int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Run every stage of the main job in `run_dir` and return the summary."""
    from reasonlab.pretrain.trainer import pretrain
    from reasonlab.reports.run import write_report
    from reasonlab.rl.trainer import train_rl

    if (
        cfg.rl.steps > 0
        and cfg.rl.judge in ("prm", "orm", "pairwise")
        and cfg.rl.judge not in cfg.judge.heads
    ):
        raise ConfigError(
            f"rl.judge: {cfg.rl.judge} names a judge this run does not train "
            f"(judge.heads: {cfg.judge.heads}); add it there or give a judge folder"
        )
    prepare_run_dir(run_dir, cfg)
    done = run_dir / "summary.json"
    if done.is_file():  # a finished run: keep what it measured, refresh only the report
        say("this run is complete; rewriting its report")
        write_report(run_dir)
        return json.loads(done.read_text())
    t0 = time.perf_counter()
    say("pretraining the base model")
    t = time.perf_counter()
    pretrain(cfg, run_dir, on_step=on_pretrain_step)
    pretrain_s = time.perf_counter() - t
    policy = load_policy(run_dir / "base", options=cfg.model_options())
    say("evaluating the base model")
    t = time.perf_counter()
    base_eval = evaluate_stage(policy, cfg, run_dir, "base")
    eval_s = time.perf_counter() - t
    summary = {
        **summary_keys("base", base_eval),
        "base/loss": _last_metric(run_dir / "metrics.jsonl", "eval/loss"),
        "base/train_loss": _last_metric(run_dir / "metrics.jsonl", "train/loss"),
        **compute_keys(cfg, policy.num_parameters()),
        **region_keys(cfg),
    }
    timings = {"time/pretrain_s": round(pretrain_s, 1), "time/eval_s": round(eval_s, 1)}
    if cfg.judge.heads:
        from reasonlab.judges.stage import run_judges
        from reasonlab.judges.stage import summary_keys as judge_keys

        t = time.perf_counter()
        summary.update(judge_keys(run_judges(cfg, run_dir, policy, on_step=on_judge_step, say=say)))
        timings["time/judges_s"] = round(time.perf_counter() - t, 1)
    if cfg.rl.steps > 0:
        say(f"RL post-training ({cfg.rl.advantage}, {cfg.rl.steps} steps)")
        t = time.perf_counter()
        rl_policy = train_rl(cfg, run_dir, run_dir / "base", on_step=on_rl_step, policy=policy)
        timings["time/rl_s"] = round(time.perf_counter() - t, 1)
        say("evaluating the RL model")
        t = time.perf_counter()
        summary.update(summary_keys("rl", evaluate_stage(rl_policy, cfg, run_dir, "rl")))
        summary["rl/gain_pass@1"] = round(summary["rl/pass@1"] - summary["base/pass@1"], 4)
        timings["time/rl_eval_s"] = round(time.perf_counter() - t, 1)
    if cfg.eval.solutions > 0:
        say("judging sample solutions")
        t = time.perf_counter()
        solutions_stage(cfg, run_dir)
        timings["time/solutions_s"] = round(time.perf_counter() - t, 1)
    summary.update(
        {
            **timings,
            "time/total_s": round(time.perf_counter() - t0, 1),
            "resources/peak_rss_mb": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            ),
        }
    )
    write_text_atomic(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    say("writing the report")
    write_report(run_dir)
    return summary


def evaluate_stage(policy: Policy, cfg: RunConfig, run_dir: Path, name: str) -> dict[str, Any]:
    """Evaluate `policy` as cfg.eval says; results go to eval/<name>*.json (reused if present)."""
    ec = cfg.eval
    task = get_task(cfg.task.name, **cfg.task.knobs)
    problems = task.sample("test", ec.n_problems, cfg.seed + 1)
    sampled = _cached(
        run_dir / "eval" / f"{name}.json",
        lambda: evaluate_policy(
            policy,
            task,
            problems,
            _params(ec, n=ec.n_samples, seed=cfg.seed, temperature=ec.temperature),
        ),
    )
    greedy = _cached(
        run_dir / "eval" / f"{name}_greedy.json",
        lambda: evaluate_policy(
            policy, task, problems, _params(ec, n=1, seed=cfg.seed, temperature=0.0)
        ),
    )
    levels = {}
    for level in ec.levels:
        level_task = _task_at_level(cfg, task, level)
        levels[level] = _cached(
            run_dir / "eval" / f"{name}_level{level}.json",
            lambda level_task=level_task: evaluate_policy(
                policy,
                level_task,
                level_task.sample("test", ec.level_problems, cfg.seed + 1),
                _params(ec, n=ec.level_samples, seed=cfg.seed, temperature=ec.temperature),
            ),
        )
    return {"sampled": sampled, "greedy": greedy, "levels": levels}


def solutions_stage(cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    """eval/solutions.json (reused if present): the base's and the RL model's judged solutions of up to
    eval.solutions test problems, from the samples eval/base.json and eval/rl.json keep
    (experiments/solutions.py)."""
    from reasonlab.experiments.solutions import build_solutions, load_run_judges

    def compute() -> dict[str, Any]:
        task = get_task(cfg.task.name, **cfg.task.knobs)
        rl_path = run_dir / "eval" / "rl.json"
        return build_solutions(
            task,
            task.sample("test", cfg.eval.n_problems, cfg.seed + 1),  # the problems evaluated
            json.loads((run_dir / "eval" / "base.json").read_text()),
            json.loads(rl_path.read_text()) if cfg.rl.steps > 0 and rl_path.is_file() else None,
            load_run_judges(run_dir, cfg.judge.heads),
            cfg.eval.solutions,
            cfg.seed,
        )

    return _cached(run_dir / "eval" / "solutions.json", compute)


def summary_keys(prefix: str, stage: dict[str, Any]) -> dict[str, Any]:
    """Flatten an evaluate_stage result into summary keys like base/pass@1, base/d4/pass@1."""
    s = stage["sampled"]["summary"]
    n = stage["sampled"]["n_samples"]
    keys = sorted(
        {k for k in s if k.startswith("maj@")} | {f"pass@{k}" for k in headline_ks(n)},
        key=_metric_order,
    )
    out = {f"{prefix}/{k}": round(s[k], 4) for k in keys}
    for k in (
        "malformed_rate",
        "process_valid_rate",
        "mean_length",
        "truncated_rate",
        "shortcut_rate",
        "shortcut_accuracy",
        "stepwise_accuracy",
    ):
        out[f"{prefix}/{k}"] = round(s[k], 4)
    out[f"{prefix}/greedy_pass@1"] = round(stage["greedy"]["summary"]["pass@1"], 4)
    for level, result in stage["levels"].items():
        ls = result["summary"]
        out[f"{prefix}/d{level}/pass@1"] = round(ls["pass@1"], 4)
        out[f"{prefix}/d{level}/pass@{result['n_samples']}"] = round(
            ls[f"pass@{result['n_samples']}"], 4
        )
    return out


def compute_keys(cfg: RunConfig, params: int) -> dict[str, int | float]:
    """model/params, model/pretrain_tokens (the tokens the base trained on: steps x batch_size x seq_len)
    and model/pretrain_flops = 6 x params x tokens (forward and backward, attention left out: the
    convention of experiments/matched.py)."""
    from reasonlab.pretrain.trainer import tokens_trained

    tokens = tokens_trained(cfg)
    return {
        "model/params": params,
        "model/pretrain_tokens": tokens,
        "model/pretrain_flops": 6.0 * params * tokens,
    }


def region_keys(cfg: RunConfig) -> dict[str, str]:
    """eval/d<level>/region for every evaluated level (the task's own and eval.levels) against the
    corpus's range (pretrain/corpus.level_region): in_range, edge, beyond or below; none without a range
    (pretrain.levels empty)."""
    from reasonlab.pretrain.corpus import level_region

    shares = cfg.pretrain.levels
    if not shares:
        return {}
    task = get_task(cfg.task.name, **cfg.task.knobs)
    own = task.knobs.get(task.difficulty_knob) if task.difficulty_knob else None
    levels = sorted({*([own] if isinstance(own, int) else []), *cfg.eval.levels})
    return {f"eval/d{level}/region": level_region(shares, level) for level in levels}


def _task_at_level(cfg: RunConfig, task: Task, level: int) -> Task:
    try:
        return task.at_level(level)
    except ConfigError as err:
        raise ConfigError(f"eval.levels: {err}") from None


def _params(ec: EvalConfig, n: int, seed: int, temperature: float) -> SamplingParams:
    return SamplingParams(
        n=n,
        seed=seed,
        temperature=temperature,
        top_p=ec.top_p,
        max_new_tokens=ec.max_new_tokens,
        batch_size=ec.batch_size,
    )


def _cached(path: Path, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            pass  # a torn file from a crash: recompute
    result = compute()
    write_text_atomic(path, json.dumps(result) + "\n")
    return result


def _last_metric(path: Path, key: str) -> float | None:
    from reasonlab.training.tracking import read_metrics

    values = [r[key] for r in read_metrics(path) if key in r]
    return round(values[-1], 4) if values else None


def _metric_order(key: str) -> tuple[str, int]:
    name, _, k = key.partition("@")
    return name, int(k)


def first_difference(old: Any, new: Any, path: str = "") -> str | None:
    """The dotted path of the first field where two config dicts differ ("" at the top), or None."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in list(old) + [k for k in new if k not in old]:
            found = first_difference(old.get(k), new.get(k), f"{path}.{k}" if path else str(k))
            if found:
                return found
        return None
    return None if old == new else path
