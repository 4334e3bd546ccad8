"""Data-parallel learners on Ray: the time of one optimizer step with N = 1 and N = 2 learners, for
pretraining and for an RL update, side by side in one run.

Three ways to run the same step, each on the same data:
  * in process: the trainer's own step in this process (`train_step`, `learn`), torch limited to
    --cpus-per-learner threads, as one learner of the data-parallel runs is;
  * Ray, N learners: `PretrainLearners.step` / `LearnerGroup.learn` on N actors of --cpus-per-learner
    CPUs (ray.learner_cpus), gloo between them (NCCL with --gpus-per-learner 1): the driver puts the
    batch in the object store, each rank computes its share of the rows, gradients are all-reduced,
    and (RL) rank 0's weights come back into the driver's policy, as in a run.
Pretraining: a tiny transformer (--d-model, --layers, --heads) on a random batch of --batch x --seq
tokens; AdamW, clip 1. RL: the default GRPO update (token-mean, one pass, one minibatch) on a batch
of --prompts x --group completions of up to --new-tokens tokens that the same random model sampled on
the default `arith` task. Each is the median of --steps steps after --warmup steps. On a machine with
fewer free cores than N x --cpus-per-learner the ranks share cores and N = 2 cannot be faster.

Prints a Markdown table and writes benchmarks/out/ray_learners.json. Usage:

    .venv/bin/python benchmarks/ray_learners.py [--steps 10 --warmup 2 --cpus-per-learner 1]
                                                 [--ray ADDRESS] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from common import machine, wait_quiet
from reasonlab.config import config_from_dict
from reasonlab.distributed.cluster import connect, set_threads
from reasonlab.models import load_policy
from reasonlab.pretrain.data_parallel import PretrainLearners
from reasonlab.pretrain.trainer import new_model, train_step
from reasonlab.rl.learner_group import LearnerGroup
from reasonlab.rl.mismatch import sampler_logprobs
from reasonlab.rl.rollouts import collect, make_batch
from reasonlab.rl.trainer import build_learner, learn, rl_task

OUT = Path(__file__).parent / "out" / "ray_learners.json"


def run_config(args: argparse.Namespace, learners: int) -> Any:
    return config_from_dict(
        {
            "seed": 0,
            "device": "cuda" if args.gpus_per_learner > 0 else "cpu",
            "model": {
                "d_model": args.d_model,
                "n_layers": args.layers,
                "n_heads": args.heads,
                "max_seq_len": max(args.seq, 128),
            },
            "pretrain": {"batch_size": args.batch, "seq_len": args.seq, "learners": learners},
            "rl": {
                "prompts_per_step": args.prompts,
                "group_size": args.group,
                "max_new_tokens": args.new_tokens,
                "learners": learners,
            },
            "ray": {
                "learner_cpus": args.cpus_per_learner,
                "learner_gpus": args.gpus_per_learner,
            },
        }
    )


def timed_steps(step: Callable[[], object], steps: int, warmup: int) -> dict[str, Any]:
    times = []
    for _ in range(warmup + steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return {"median_step_s": statistics.median(times[warmup:]), "steps_s": times[warmup:]}


def pretrain_steps(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    g = torch.Generator().manual_seed(0)
    vocab = 100
    x = torch.randint(4, vocab, (args.batch, args.seq + 1), generator=g)  # (B, T + 1)
    batch = (x[:, :-1], x[:, 1:], torch.ones(args.batch, args.seq))  # (B, T) each
    out = {}
    cfg = run_config(args, 1)
    policy, opt = new_model(cfg)
    device = policy.module.embed.weight.device
    on_device = [t.to(device) for t in batch]
    set_threads(args.cpus_per_learner)
    out["in_process"] = timed_steps(
        lambda: train_step(policy, opt, *on_device, 1.0), args.steps, args.warmup
    )
    torch.set_num_threads(args.threads)
    for n in args.learners:
        cfg = run_config(args, n)
        policy, opt = new_model(cfg)
        learners = PretrainLearners.start(cfg, policy, opt, new_model, train_step)
        try:
            out[f"ray_{n}"] = timed_steps(
                lambda learners=learners: learners.step(*batch, 1e-3), args.steps, args.warmup
            )
        finally:
            learners.close()
    return out


def rl_updates(args: argparse.Namespace, base_dir: Path) -> dict[str, dict[str, Any]]:
    cfg = run_config(args, 1)
    policy = load_policy(base_dir, options=cfg.model_options())
    collected = collect(policy, rl_task(cfg), cfg.rl, cfg.seed, 0)
    batch = make_batch(collected.groups, policy.tokenizer.pad_id)
    rollouts = [r for g in collected.groups for r in g.rollouts]
    sampler_logp = sampler_logprobs(rollouts, batch.completion_ids.shape[1])  # (B, L)
    out: dict[str, dict[str, Any]] = {}
    learner = build_learner(cfg, base_dir)
    set_threads(args.cpus_per_learner)
    out["in_process"] = timed_steps(
        lambda: learn(cfg, learner, batch, sampler_logp, 0), args.steps, args.warmup
    )
    torch.set_num_threads(args.threads)
    for n in args.learners:
        cfg = run_config(args, n)
        learner = build_learner(cfg, base_dir)
        group = LearnerGroup.start(cfg, base_dir, learner, build_learner, learn)
        try:
            out[f"ray_{n}"] = timed_steps(
                lambda group=group, learner=learner, cfg=cfg: group.learn(
                    cfg, learner, batch, sampler_logp, 0
                ),
                args.steps,
                args.warmup,
            )
        finally:
            group.close()
    out["completions"] = {"count": len(rollouts), "tokens": int(batch.completion_mask.sum())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32, help="pretraining sequences per step")
    ap.add_argument("--seq", type=int, default=128, help="pretraining tokens per sequence")
    ap.add_argument("--prompts", type=int, default=8, help="RL prompts per step")
    ap.add_argument("--group", type=int, default=8, help="RL completions per prompt")
    ap.add_argument("--new-tokens", type=int, default=32, help="RL completion length limit")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--learners", type=lambda s: [int(v) for v in s.split(",")], default=[1, 2])
    ap.add_argument("--cpus-per-learner", type=float, default=1.0)
    ap.add_argument("--gpus-per-learner", type=float, default=0.0)
    ap.add_argument("--ray", default="local", help="local, auto or a cluster address")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--quiet-wait", type=float, default=60.0, help="s to wait for an idle machine")
    args = ap.parse_args()
    args.threads = torch.get_num_threads()
    load = wait_quiet(args.quiet_wait)
    with connect(args.ray, object_store_mb=512), tempfile.TemporaryDirectory() as tmp:
        base_dir = Path(tmp) / "base"
        policy, _ = new_model(run_config(args, 1))
        policy.save(base_dir)
        result: dict[str, Any] = {
            "machine": machine(),
            "date": time.strftime("%Y-%m-%d"),
            "other_load_cores": load,
            "settings": {k: v for k, v in vars(args).items() if k != "out"},
            "params": policy.num_parameters(),
            "pretrain": pretrain_steps(args),
            "rl_update": rl_updates(args, base_dir),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    names = ["in_process", *(f"ray_{n}" for n in args.learners)]
    print("| step | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for part in ("pretrain", "rl_update"):
        cells = [f"{result[part][n]['median_step_s'] * 1000:.1f} ms" for n in names]
        print(f"| {part} | " + " | ".join(cells) + " |")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
