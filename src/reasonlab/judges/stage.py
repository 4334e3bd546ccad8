"""The judges stage of the main job: build step-labelled data, train reward models, measure them.

Data (judges/data.py): every training problem gives its reference solution, one solution with an
injected error (the kinds cycle over the problems) and `policy_samples` samples of the base, all
labelled exactly by the verifier, or by Monte-Carlo continuations of the base (`judge.labels`).
A fixed share of the problems (by a hash of the prompt) is held out for validation.
Evaluation, on test problems never trained on:
- ProcessBench protocol on held-out reference + injected-error solutions (half of the problems tune
  the threshold, the other half report F1), step and outcome AUROC and ECE, accuracy per error kind;
- the same on the base's own samples (the solutions RL will be judged on);
- best-of-N: the base's N samples per problem, the one each judge scores highest, vs majority vote
  over the same N and vs pass@1.
Beside the trained heads, the base itself is measured as a judge with no training (the likelihood
judge, judges/likelihood.py): how much of the judging is already in the base.
Everything lands in `<run>/judges/`: one model folder per head and `eval.json`; a rerun reuses them.
Usage:

    results = run_judges(cfg, run_dir, policy)     # -> the judges/eval.json dict
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reasonlab.config import JudgeConfig, RunConfig
from reasonlab.errors import ConfigError
from reasonlab.evaluate.passk import majority_at_k, powers_of_two
from reasonlab.evaluate.processbench import best_of_n, judge_step_metrics, reliability, tune_split
from reasonlab.fileio import write_text_atomic
from reasonlab.judges.base import Judge
from reasonlab.judges.data import eval_records, record_from_text
from reasonlab.judges.models import LearnedJudge, load_judge
from reasonlab.judges.montecarlo import montecarlo_labels, policy_continuer
from reasonlab.judges.train import train_reward_model
from reasonlab.models import Policy
from reasonlab.sampling import generate
from reasonlab.tasks import Task, get_task
from reasonlab.tasks.base import split_of_prompt
from reasonlab.types import Outcome, Problem, StepRecord

StepHook = Callable[[int, int, dict[str, float]], None]


def training_records(
    task: Task,
    policy: Policy,
    jc: JudgeConfig,
    seed: int,
    max_new_tokens: int,
) -> tuple[list[StepRecord], list[StepRecord]]:
    """(train, validation) records from `jc.train_problems` training problems, labelled as `jc.labels` says."""
    problems = task.sample("train", jc.train_problems, seed + 17)
    records = eval_records(task, problems, seed)
    if jc.policy_samples:
        records += policy_records(
            task, policy, problems, jc.policy_samples, seed + 17, max_new_tokens
        )
    if jc.labels == "montecarlo":
        continuer = policy_continuer(policy, max_new_tokens=max_new_tokens)
        records = montecarlo_labels(task, records, continuer, jc.continuations, seed)
    return split_validation(records, jc.val_fraction)


def split_validation(
    records: Sequence[StepRecord], fraction: float
) -> tuple[list[StepRecord], list[StepRecord]]:
    """(train, validation): a record is held out iff a hash of its prompt falls in `fraction`, so every
    solution of a problem lands on the same side."""
    held = [split_of_prompt(r.prompt + "\0judge-val", fraction) == "test" for r in records]
    return [r for r, h in zip(records, held) if not h], [r for r, h in zip(records, held) if h]


def policy_records(
    task: Task, policy: Policy, problems: Sequence[Problem], n: int, seed: int, max_new_tokens: int
) -> list[StepRecord]:
    """`n` samples of `policy` per problem, labelled by the verifier (outputs with no step are dropped)."""
    rollouts = generate(policy, problems, n, seed, max_new_tokens=max_new_tokens)
    out = []
    for i, r in enumerate(rollouts):
        p = problems[i // n]
        rec = record_from_text(task, p, r.text, "policy", f"{p.id}:policy{i % n}")
        if rec is not None:
            out.append(rec)
    return out


def run_judges(
    cfg: RunConfig,
    run_dir: Path,
    policy: Policy,
    on_step: StepHook | None = None,
    say: Callable[[str], None] = lambda m: None,
) -> dict[str, Any]:
    """Train (or reuse) each head in cfg.judge.heads and evaluate them; writes judges/eval.json."""
    out_dir = run_dir / "judges"
    done = out_dir / "eval.json"
    if done.is_file():
        return json.loads(done.read_text())
    jc, task = cfg.judge, get_task(cfg.task.name, **cfg.task.knobs)
    judges: dict[str, LearnedJudge] = {}
    train_info: dict[str, Any] = {}
    data: tuple[list[StepRecord], list[StepRecord]] | None = None
    for k, head in enumerate(jc.heads):
        folder = out_dir / head
        if (folder / "config.json").is_file():
            judges[head] = load_judge(folder, cfg.model_options())
            train_info[head] = json.loads((folder / "config.json").read_text()).get("training", {})
            continue
        if data is None:
            say(f"labelling judge data ({jc.labels} labels)")
            t = time.perf_counter()
            data = training_records(task, policy, jc, cfg.seed, cfg.eval.max_new_tokens)
            label_s = time.perf_counter() - t
        say(f"training the {head.upper()}")
        t = time.perf_counter()
        judge = LearnedJudge.from_backbone(
            backbone(cfg, policy),
            policy.tokenizer,
            head,
            features=jc.features,
            train_backbone=jc.train_backbone,
            aggregation=jc.aggregation,
        )
        hist = train_reward_model(
            judge, data[0], data[1], jc, cfg.seed, on_step=_offset(on_step, k, len(jc.heads))
        )
        train_info[head] = {
            **hist.summary(*data),
            "labels": jc.labels,
            "continuations": jc.continuations if jc.labels == "montecarlo" else None,
            "label_s": round(label_s, 1),
            "train_s": round(time.perf_counter() - t, 1),
        }
        judges[head] = judge
        tune_and_save(judge, task, data[1], jc, cfg.seed, folder, train_info[head])
    say("evaluating the judges")
    from reasonlab.judges.likelihood import LikelihoodJudge

    zero_shot = {
        "likelihood": LikelihoodJudge(policy, jc.aggregation)
    }  # the base itself, no training
    results = evaluate_judges(
        {**judges, **zero_shot}, task, policy, jc, cfg.seed, cfg.eval.max_new_tokens
    )
    results["training"] = train_info
    write_text_atomic(done, json.dumps(results, indent=2) + "\n")
    return results


def _offset(on_step: StepHook | None, k: int, heads: int) -> StepHook | None:
    """One progress bar for all heads: head k's steps follow head k-1's."""
    if on_step is None:
        return None
    return lambda step, total, row: on_step(k * total + step, heads * total, row)


def backbone(cfg: RunConfig, policy: Policy) -> Any:
    """The module a new judge starts from: the base policy's (judge.init: base) or a fresh one."""
    if cfg.judge.init == "base":
        return policy.backbone() if hasattr(policy, "backbone") else policy.module
    if hasattr(policy, "backbone"):
        raise ConfigError(
            "judge.init: scratch builds a tiny transformer; a Hugging Face base starts from its weights"
        )
    from reasonlab.models import TinyPolicy, TransformerConfig

    mc = cfg.model
    tc = TransformerConfig(
        vocab_size=policy.tokenizer.vocab_size,
        d_model=mc.d_model,
        n_layers=mc.n_layers,
        n_heads=mc.n_heads,
        d_ff=mc.d_ff,
        max_seq_len=mc.max_seq_len,
    )
    fresh = TinyPolicy.create(tc, seed=cfg.seed + 23)
    return fresh.place(policy.module.embed.weight.device, policy.module.compute_dtype).module


def tune_and_save(
    judge: LearnedJudge,
    task: Task | None,
    val: Sequence[StepRecord],
    jc: JudgeConfig,
    seed: int,
    folder: Path,
    info: dict[str, Any],
) -> None:
    """Tune the judge's step threshold (ProcessBench F1) on training-split problems with injected errors
    of `task`, or on the validation records when there is no task, then save it to `folder`."""
    records = (
        list(val)
        if task is None
        else eval_records(task, task.sample("train", 200, seed + 29), seed + 29)
    )
    metrics = judge_step_metrics(records, judge.score(records), [True] * len(records))
    judge.threshold = float(metrics["threshold"])
    extra: dict[str, Any] = {"training": info}
    if (
        task is not None
    ):  # `reasonlab judge eval` measures the judge on this task unless told otherwise
        extra["task"] = {"name": task.name, "knobs": dict(task.knobs)}
    judge.save(folder, extra=extra)


def evaluate_judges(
    judges: dict[str, Judge],
    task: Task,
    policy: Policy,
    jc: JudgeConfig,
    seed: int,
    max_new_tokens: int,
) -> dict[str, Any]:
    """Step metrics on held-out injected errors and on the base's samples, and best-of-N, per judge."""
    problems = task.sample("test", jc.eval_problems, seed + 1)
    held = eval_records(task, problems, seed + 1)
    tune = tune_split([r.id.split(":")[0] for r in held])  # tune and report on different problems
    n = jc.best_of_n
    rollouts = generate(policy, problems, n, seed + 31, max_new_tokens=max_new_tokens)
    samples = [
        record_from_text(
            task, problems[i // n], r.text, "policy", f"{problems[i // n].id}:s{i % n}"
        )
        for i, r in enumerate(rollouts)
    ]
    verdicts = [task.verify(problems[i // n], r.text) for i, r in enumerate(rollouts)]
    kept = [s for s in samples if s is not None]
    sample_tune = tune_split([s.id.split(":")[0] for s in kept])
    ks = powers_of_two(n)
    correct = [v.correct for v in verdicts]
    answers = [v.answer if v.outcome is not Outcome.MALFORMED else None for v in verdicts]
    out: dict[str, Any] = {
        "n_problems": len(problems),
        "best_of": n,
        "ks": ks,
        "judges": {},
        "baselines": {
            "pass@1": sum(correct) / len(correct),
            f"pass@{n}": _mean([any(correct[i * n : (i + 1) * n]) for i in range(len(problems))]),
            "majority": {
                str(k): _mean(
                    [
                        majority_at_k(
                            answers[i * n : (i + 1) * n], correct[i * n : (i + 1) * n], k, seed
                        )
                        for i in range(len(problems))
                    ]
                )
                for k in ks
            },
        },
    }
    for name, judge in judges.items():
        held_scores = judge.score(held)
        held_metrics = judge_step_metrics(held, held_scores, tune)
        sample_scores = judge.score(kept)
        policy_metrics = judge_step_metrics(kept, sample_scores, sample_tune)
        overall = iter(s.outcome for s in sample_scores)
        per_sample = [
            next(overall) if s is not None else 0.0 for s in samples
        ]  # no step: lowest score
        bon = {
            str(k): _mean(
                [
                    best_of_n(
                        per_sample[i * n : (i + 1) * n], correct[i * n : (i + 1) * n], k, seed
                    )
                    for i in range(len(problems))
                ]
            )
            for k in ks
        }
        steps = [
            (p, ok)
            for s, r in zip(held_scores, held)
            if r.labels
            for p, ok in zip(s.steps, r.labels)
        ]
        calibration = {  # reliability bins: step scores on held-out injected errors, outcome scores on samples
            "steps": reliability([p for p, _ in steps], [ok for _, ok in steps]),
            "outcome": reliability(
                [s.outcome for s in sample_scores], [bool(r.correct) for r in kept]
            ),
        }
        out["judges"][name] = {
            "injected": held_metrics,
            "policy": policy_metrics,
            "best_of_n": bon,
            "calibration": calibration,
        }
    return out


def summary_keys(results: dict[str, Any]) -> dict[str, Any]:
    """Flat summary.json keys: judge/<head>/f1 ..., judge/bo<N>/<selector>."""
    out: dict[str, Any] = {}
    n = results["best_of"]
    for name, r in results["judges"].items():
        inj, pol = r["injected"], r["policy"]
        for key in (
            "f1",
            "acc_error",
            "acc_correct",
            "step_auroc",
            "outcome_auroc",
            "step_ece",
            "outcome_ece",
        ):
            out[f"judge/{name}/{key}"] = _round(inj.get(key))
        out[f"judge/{name}/policy_f1"] = _round(pol.get("f1"))
        out[f"judge/{name}/policy_outcome_auroc"] = _round(pol.get("outcome_auroc"))
        out[f"judge/bo{n}/{name}"] = _round(r["best_of_n"][str(n)])
    base = results["baselines"]
    out[f"judge/bo{n}/majority"] = _round(base["majority"][str(n)])
    out[f"judge/bo{n}/pass@1"] = _round(base["pass@1"])
    out[f"judge/bo{n}/pass@{n}"] = _round(base[f"pass@{n}"])
    return out


def _round(x: Any) -> Any:
    return round(x, 4) if isinstance(x, float) else x


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
