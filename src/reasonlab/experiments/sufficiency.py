"""Measure whether a base is sufficient for RL: sample every difficulty level, judge, train the controls.

`run_sufficiency` samples n answers per problem at each level of the task's difficulty knob
(`evaluate_policy`), turns the per-problem records into the metrics of evaluate/sufficiency.py,
scores the first `best_of` samples of each problem with a judge (best-of-N, AUROC, majority vote of
the same samples), runs the random-reward control at the main level and returns the result with its
verdict. `check_sampling` refuses a model that cannot sample the task (unknown prompt characters,
prompts past its context, a failing probe sample) before anything is measured.

Departures from the papers:
- The random-reward control (Shao et al. 2025, arXiv 2506.10947) runs two GRPO runs from the same
  base and seed, one rewarded by the verifier (`outcome`) and one by a fair coin (`random`,
  rl/rewards.py), each measured by pass@1 at the main level on `control_samples` samples per
  problem. The paper trains for hundreds of steps on a 7B model; here the run is short (30 steps by
  default), so it measures how much of RL's *early* gain is amplification of what the base already
  does. Each run uses the given RL config with that reward alone, no learned judge and no
  TensorBoard, in a temporary folder.
- Only the first `best_of` samples of each problem are judged (not all n), so the
  generation-verification gap compares best-of-N with pass@1 and pass@N of the same N samples.

The levels' sampling and the two control runs are independent jobs (distributed/grid.py): one after the
other here, or with `ray=` (`reasonlab sufficiency --ray`) Ray tasks that load the model from its folder
on their node and run side by side; the judge then scores every level's samples in this process. The
result has the same fields either way (`time.sample_s` and `control_s` sum the jobs' own seconds).

Usage:

    reasonlab sufficiency --model runs/default            # -> runs/sufficiency/default_arith/
    result = run_sufficiency(policy, "arith", {}, [3, 5, 7], SufficiencySettings(n=64), judge, seed=0)
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from reasonlab.config import RayConfig, RunConfig, SufficiencySettings, config_from_dict
from reasonlab.distributed.cluster import check_gpus_declared
from reasonlab.distributed.grid import Job, Resources, run_all
from reasonlab.errors import ConfigError
from reasonlab.evaluate.runner import SamplingParams, evaluate_policy
from reasonlab.evaluate.sufficiency import edge_of_competence, level_metrics, selection_metrics
from reasonlab.evaluate.verdict import headline, verdict
from reasonlab.judges.base import Judge, score_solutions
from reasonlab.models import CharTokenizer, Policy, load_policy
from reasonlab.rl.trainer import check_base, train_rl, validate_rl
from reasonlab.sampling import check_fits, generate
from reasonlab.tasks import Task, get_task
from reasonlab.training.tracking import read_metrics
from reasonlab.types import Problem


def level_task(task_name: str, knobs: Mapping[str, Any], level: int | None) -> Task:
    """The task at one difficulty level (its difficulty knob set to `level`; None: as given)."""
    task = get_task(task_name, **knobs)
    if level is None:
        return task
    if task.difficulty_knob is None:
        raise ConfigError(f"task {task_name!r} has no difficulty knob")
    return get_task(task_name, **{**knobs, task.difficulty_knob: level})


class CannotSample(ConfigError):
    """The model cannot sample the task (check_sampling): the command names the model option."""


def check_sampling(policy: Policy, task: Task, max_new_tokens: int, seed: int) -> None:
    """CannotSample when `policy` cannot sample `task`: prompts its tokenizer cannot write, prompts too
    long for its context, or a failing probe sample."""
    probe = task.sample("test", 1, seed)
    tok = policy.tokenizer
    prompt = probe[0].prompt
    if isinstance(tok, CharTokenizer):
        unknown = sorted({c for c in prompt if tok.encode(c) == [tok.unk_id]})
        if unknown:
            raise CannotSample(
                f"its tokenizer cannot write task {task.name!r}'s prompts "
                f"(unknown characters {''.join(unknown)!r}); pretrain it on this task"
            )
    try:
        check_fits(policy, probe, max_new_tokens, "max_new_tokens")
    except ConfigError as err:
        raise CannotSample(str(err)) from None
    try:
        generate(policy, probe, 1, seed, max_new_tokens=min(max_new_tokens, 8))
    except (RuntimeError, ValueError, KeyError, IndexError, TypeError) as err:
        raise CannotSample(
            f"cannot sample task {task.name!r}: {' '.join(str(err).split())[:200]}"
        ) from None


def run_sufficiency(
    policy: Policy,
    task_name: str,
    knobs: Mapping[str, Any],
    levels: Sequence[int | None],
    settings: SufficiencySettings,
    judge: Judge,
    seed: int,
    rl_config: RunConfig | None = None,
    base_dir: Path | None = None,
    main_level: int | None = None,
    say: Callable[[str], None] = lambda msg: None,
    ray: RayConfig | None = None,
) -> dict[str, Any]:
    """Measure every level, score the first `best_of` samples with `judge`, run the random-reward
    control at the main level (when `rl_config`, a RunConfig, is given and control_steps > 0), and
    return the result with its verdict. `levels` are difficulty-knob values ([None]: the task as given);
    the main level is `main_level`, else the first. evaluate_policy keeps the first `best_of` sample
    texts per problem (keep_samples) and only those are judged; the result keeps no sample text.
    `ray` (the run's ray section): each level's sampling and each control run is a Ray task of the Ray
    this process is connected to (distributed/grid.py), loading the model from `base_dir` on its node;
    the judge scores the samples here. Without it they run here one after the other."""
    s = settings
    main = main_level if main_level is not None else levels[0]
    tasks = {level: level_task(task_name, knobs, level) for level in levels}
    for task in tasks.values():
        check_sampling(policy, task, s.max_new_tokens, seed)
    problems = {level: task.sample("test", s.n_problems, seed + 1) for level, task in tasks.items()}
    main_knobs = {**knobs, tasks[main].difficulty_knob: main} if main is not None else dict(knobs)
    control_cfg = (
        _control_config(rl_config, task_name, main_knobs, seed, s.control_steps)
        if (rl_config is not None and s.control_steps > 0)
        else None
    )
    if control_cfg is not None:
        validate_rl(control_cfg("outcome"))
        check_base(control_cfg("outcome"), policy, tasks[main])
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "task": task_name,
        "knobs": dict(tasks[main].knobs),
        "difficulty_knob": tasks[main].difficulty_knob,
        "main_level": _key(main),
        "n": s.n,
        "n_problems": s.n_problems,
        "best_of": s.best_of,
        "seed": seed,
        "levels": {},
        "coverage": {},
        "judge": {"name": getattr(judge, "name", "judge"), "levels": {}},
    }
    # the model each job samples or trains: its folder when there is one (loaded on the Ray node, or
    # fresh for a control here), else the live model (a copy of it on Ray); sampling here uses it as it is
    saved: Policy | Path = base_dir if base_dir is not None else policy
    sampled = saved if ray is not None else policy
    resources = Resources.of(ray) if ray is not None else Resources()
    if ray is not None:
        check_gpus_declared((rl_config or RunConfig()).device, ray.task_gpus, "ray.task_gpus")
    folder = base_dir if ray is not None else None  # checked on each Ray node
    options = (rl_config or RunConfig()).model_options()
    params = SamplingParams(
        n=s.n,
        seed=seed,
        temperature=s.temperature,
        top_p=s.top_p,
        max_new_tokens=s.max_new_tokens,
        batch_size=s.batch_size,
    )
    jobs = [
        Job(
            f"level {level}: {s.n_problems} problems x {s.n} samples",
            sample_level,
            (sampled, options, task_name, knobs, level, problems[level], params, s.best_of),
            resources,
            folder,
        )
        for level in levels
    ]
    rewards = ("outcome", "random") if control_cfg is not None else ()
    jobs += [
        Job(
            f"control: {s.control_steps} GRPO steps with the {reward} reward",
            control_run,
            (saved, control_cfg(reward), task_name, main_knobs, problems[main], s, seed),
            resources,
            folder,
        )
        for reward in rewards
        if control_cfg is not None
    ]
    done = run_all(jobs, ray is not None, say)
    samples, controls = done[: len(levels)], dict(zip(rewards, done[len(levels) :]))
    times = {
        "sample_s": sum(seconds for _, seconds in samples),  # on Ray, the levels' times overlap
        "judge_s": 0.0,
        "control_s": sum(c["seconds"] for c in controls.values()),
    }
    for level, (ev, _) in zip(levels, samples):
        records = ev["problems"]
        result["levels"][_key(level)] = level_metrics(records, s.n)
        result["coverage"][_key(level)] = [
            round(ev["summary"][f"pass@{k}"], 5) for k in range(1, s.n + 1)
        ]
        t = time.perf_counter()
        first = [r["samples"][: s.best_of] for r in records]  # (P, N)
        flat = score_solutions(
            judge,
            [r["prompt"] for r, f in zip(records, first) for _ in f],
            [x["text"] for f in first for x in f],
        )
        scores, at = [], 0
        for f in first:
            scores.append(flat[at : at + len(f)])
            at += len(f)
        result["judge"]["levels"][_key(level)] = selection_metrics(
            scores,
            [[x["outcome"] == "correct" for x in f] for f in first],
            [r["answers"][: s.best_of] for r in records],
            seed,
        )
        times["judge_s"] += time.perf_counter() - t
    result["edge_of_competence"] = (
        edge_of_competence(result["levels"], s.n) if None not in levels else None
    )
    if controls:
        result["control"] = control_result(controls, s, result["levels"][_key(main)]["pass@1"])
    result["time"] = {
        **{k: round(v, 1) for k, v in times.items()},
        "total_s": round(time.perf_counter() - t0, 1),
    }
    result["verdict"] = verdict(result)
    result["headline"] = headline(result["verdict"])
    return result


def _load(source: Policy | Path, options: Mapping[str, Any]) -> Policy:
    """The model of a job: loaded from its folder, or a copy of the live one (the caller's stays as it is)."""
    if isinstance(source, Path):
        return load_policy(source, options=dict(options))
    return copy.deepcopy(source)


def sample_level(
    source: Policy | Path,
    options: Mapping[str, Any],
    task_name: str,
    knobs: Mapping[str, Any],
    level: int | None,
    problems: Sequence[Problem],
    params: SamplingParams,
    keep: int,
) -> tuple[dict[str, Any], float]:
    """One level's evaluation (evaluate_policy, the first `keep` sample texts per problem kept) and its
    seconds. A live `source` is sampled as it is (sampling leaves it unchanged)."""
    policy = source if not isinstance(source, Path) else _load(source, options)
    t = time.perf_counter()
    ev = evaluate_policy(policy, level_task(task_name, knobs, level), problems, params, keep)
    return ev, time.perf_counter() - t


def control_run(
    source: Policy | Path,
    cfg: RunConfig,
    task_name: str,
    knobs: Mapping[str, Any],
    problems: Sequence[Problem],
    settings: SufficiencySettings,
    seed: int,
) -> dict[str, Any]:
    """One run of the random-reward control: `control_steps` GRPO steps of `cfg` (one reward) from the
    base, trained in a temporary folder; pass@1 of the trained model on `problems`, the per-step mean
    reward and pass rate, and its seconds."""
    t = time.perf_counter()
    fresh = _load(source, cfg.model_options())
    with tempfile.TemporaryDirectory(prefix="reasonlab-control-") as tmp:
        trained = train_rl(cfg, Path(tmp), Path(tmp) / "base", policy=fresh)
        rows = [r for r in read_metrics(Path(tmp) / "metrics.jsonl") if "reward/mean" in r]
    params = SamplingParams(
        n=settings.control_samples,
        seed=seed,
        temperature=settings.temperature,
        top_p=settings.top_p,
        max_new_tokens=settings.max_new_tokens,
        batch_size=settings.batch_size,
    )
    task = get_task(task_name, **knobs)
    p1 = evaluate_policy(trained, task, problems, params, keep_samples=0)["summary"]["pass@1"]
    return {
        "pass@1": p1,
        "reward": [r["reward/mean"] for r in rows],
        "pass_rate": [r["rl/pass_rate"] for r in rows],
        "seconds": time.perf_counter() - t,
    }


def control_result(
    runs: Mapping[str, dict[str, Any]], settings: SufficiencySettings, base_pass_1: float
) -> dict[str, Any]:
    """The random-reward control of the result: each run's pass@1 and its gain over the base."""
    out: dict[str, Any] = {
        "steps": settings.control_steps,
        "samples": settings.control_samples,
        "base_pass@1": base_pass_1,
    }
    for reward, run in runs.items():
        out[reward] = {
            "pass@1": run["pass@1"],
            "gain": run["pass@1"] - base_pass_1,
            "reward": run["reward"],
            "pass_rate": run["pass_rate"],
        }
    out["outcome_gain"], out["random_gain"] = out["outcome"]["gain"], out["random"]["gain"]
    return out


def _control_config(
    rl_config: RunConfig, task_name: str, knobs: Mapping[str, Any], seed: int, steps: int
) -> Callable[[str], RunConfig]:
    """reward name -> the RunConfig of one control run: `rl_config` with this task and knobs (the main
    level), `steps` steps, that reward alone, no learned judge, one checkpoint, no TensorBoard."""
    raw = rl_config.model_dump(mode="json")
    raw.update(seed=seed, task={"name": task_name, "knobs": dict(knobs)})
    raw["rl"].update(
        steps=steps, judge=None, checkpoint_every=steps, task_knobs={}
    )  # RL at the main level
    raw["tracking"]["tensorboard"] = False
    return lambda reward: config_from_dict(
        {**raw, "rl": {**raw["rl"], "rewards": {reward: 1.0}}}, "control"
    )


def _key(level: int | None) -> int:
    """A level's key in the result: its difficulty value, 0 for a task without a difficulty knob."""
    return 0 if level is None else int(level)
