"""Pretraining a base model: next-token training on a generated task corpus with a token budget.

The corpus (pretrain/corpus.py) packs task solutions in a mixture of trace styles into one token
stream, read as random windows that are a pure function of (seed, step). By default the loss
covers solution tokens only (the prompts are random numbers that no model can predict);
`loss_on_prompt` restores plain language-model training. AdamW, linear warm-up then
cosine decay, global gradient clipping. Departs from nanoGPT's train.py only in the packing of
short documents and the loss mask. With `pretrain.learners` > 1 each step runs on that many Ray
actors, each on its share of the batch's rows (pretrain/data_parallel.py): the same step as one
learner's, to float rounding. Usage:

    reasonlab pretrain --config configs/default.yaml --out runs/base

`continue_pretraining` trains a finished base further (the sweep's compute-matched arm).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from reasonlab.config import RunConfig
from reasonlab.distributed.cluster import check_gpus_declared
from reasonlab.distributed.data_parallel import LOCAL, Shard, check_learners_fit
from reasonlab.errors import ConfigError, RunFolderError
from reasonlab.models import CharTokenizer, TinyPolicy, TransformerConfig, save_policy
from reasonlab.models.precision import resolve_device, tiny_dtype
from reasonlab.pretrain.corpus import TokenStream, build_stream, get_batch
from reasonlab.pretrain.data_parallel import data_parallel
from reasonlab.tasks import get_task
from reasonlab.training.checkpointing import TrainState, latest_state, save_state
from reasonlab.training.optim import lr_at, make_optimizer
from reasonlab.training.tracking import MetricsLogger, truncate_after


def masked_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor,
    total: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean cross-entropy over learned positions. logits (B, T, V), targets (B, T), weight (B, T); the
    sum is divided by `total` (default: weight's own sum), the whole batch's weight when these rows are
    one learner's share of it."""
    nll = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")  # (B*T,)
    w = weight.flatten()
    return (nll * w).sum() / (w.sum() if total is None else total).clamp(min=1.0)


def train_step(
    policy: TinyPolicy,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    grad_clip: float,
    shard: Shard = LOCAL,
) -> tuple[float, float]:
    """One optimizer step on the batch x, y, w (B, T): the batch's loss and the gradient norm before
    clipping. A non-finite loss returns before any gradient is applied. With several learners
    (`shard`) this rank's rows, their loss divided by the whole batch's weight; the losses and the
    gradients summed across ranks before the clip make it the same step as one learner's."""
    rows = shard.part(len(x))
    loss = masked_loss(policy.logits(x[rows]), y[rows], w[rows], total=w.sum())
    value = shard.sum({"loss": loss.item()})["loss"]
    if not math.isfinite(value):
        return value, math.nan
    opt.zero_grad(set_to_none=True)
    loss.backward()
    shard.all_reduce_grads(policy.module)
    grad_norm = torch.nn.utils.clip_grad_norm_(policy.module.parameters(), grad_clip)
    opt.step()
    return value, float(grad_norm)


def validate_pretrain(cfg: RunConfig) -> None:
    """ConfigError naming pretrain.learners when the learners do not divide the batch or cannot all run
    on the Ray cluster at once (that check joins or starts Ray)."""
    pc = cfg.pretrain
    if pc.learners == 1:
        return
    if pc.batch_size % pc.learners:
        raise ConfigError(
            f"pretrain.learners: {pc.learners} learners do not divide pretrain.batch_size "
            f"({pc.batch_size}); each learner takes an equal share of the rows"
        )
    check_gpus_declared(cfg.device, cfg.ray.learner_gpus, "ray.learner_gpus")
    check_learners_fit(cfg.ray, pc.learners, "pretrain.learners")


def total_steps(cfg: RunConfig) -> int:
    return max(1, cfg.pretrain.token_budget // (cfg.pretrain.batch_size * cfg.pretrain.seq_len))


def tokens_trained(cfg: RunConfig) -> int:
    """Tokens the base trains on: total_steps x batch_size x seq_len (the budget rounded to whole steps)."""
    return total_steps(cfg) * cfg.pretrain.batch_size * cfg.pretrain.seq_len


def pretrain(
    cfg: RunConfig,
    run_dir: Path,
    on_step: Callable[[int, int, dict[str, float]], None] | None = None,
) -> TinyPolicy:
    """Train a base model as `cfg` says, in `run_dir`; resumes from its last checkpoint if there is one."""
    pc = cfg.pretrain
    validate_pretrain(cfg)
    policy, opt = new_model(cfg)
    ckpt_dir = run_dir / "checkpoints" / "pretrain"
    resumed = latest_state(ckpt_dir, policy.module, opt)
    steps = total_steps(cfg)
    schedule = Schedule(
        start=resumed[0].step if resumed else 0,
        steps=steps,
        peak=pc.lr,
        warmup=pc.warmup_steps,
        min_ratio=pc.min_lr_ratio,
    )
    train_steps(cfg, policy, opt, schedule, run_dir, ckpt_dir, on_step)
    save_policy(policy, run_dir / "base")
    return policy


def continue_pretraining(
    cfg: RunConfig,
    base_run: Path,
    run_dir: Path,
    extra_tokens: int,
    peak_lr: float | None = None,
    on_step: Callable[[int, int, dict[str, float]], None] | None = None,
) -> TinyPolicy:
    """More pretraining of the finished base in `base_run`: from its final weights and optimizer state,
    `extra_tokens` more tokens of the same corpus (windows it has not drawn: the batch index continues
    after the base's last step), on the base's schedule replayed over the extra steps: linear warm-up
    (the base's warmup_steps, at most a tenth of the extra steps) to `peak_lr` (default pretrain.lr), then
    cosine decay to the base's final learning rate. Writes `run_dir`/model; resumes from
    `run_dir`/checkpoints/pretrain. RunFolderError if the base's pretraining has not finished."""
    pc = cfg.pretrain
    validate_pretrain(cfg)
    policy, opt = new_model(cfg)
    ckpt_dir = run_dir / "checkpoints" / "pretrain"
    base_steps = total_steps(cfg)
    resumed = latest_state(ckpt_dir, policy.module, opt)
    if resumed is None:
        found = latest_state(base_run / "checkpoints" / "pretrain", policy.module, opt)
        if found is None or found[0].step != base_steps:
            raise RunFolderError(
                f"{base_run}: the base's pretraining has not finished (no checkpoint at its last "
                f"step, {base_steps}); run it first"
            )
    steps = max(1, extra_tokens // (pc.batch_size * pc.seq_len))
    peak = peak_lr if peak_lr is not None else pc.lr
    schedule = Schedule(
        start=resumed[0].step if resumed else 0,
        steps=steps,
        peak=peak,
        warmup=min(pc.warmup_steps, steps // 10),
        min_ratio=pc.lr * pc.min_lr_ratio / peak,
        batch_offset=base_steps,
    )
    train_steps(cfg, policy, opt, schedule, run_dir, ckpt_dir, on_step)
    save_policy(policy, run_dir / "model")
    return policy


@dataclass(frozen=True)
class Schedule:
    """Which steps a training call runs and at what learning rate (lr_at): steps `start` .. `steps` - 1,
    batch windows drawn at index `batch_offset` + step."""

    start: int
    steps: int
    peak: float
    warmup: int
    min_ratio: float
    batch_offset: int = 0

    def lr(self, step: int) -> float:
        return lr_at(step, self.steps, self.peak, self.warmup, self.min_ratio)


def new_model(cfg: RunConfig) -> tuple[TinyPolicy, torch.optim.AdamW]:
    """A freshly initialised model (seeded by cfg.seed) on the run's device, and its optimizer."""
    tok = CharTokenizer()
    policy = TinyPolicy.create(
        TransformerConfig(vocab_size=tok.vocab_size, **cfg.model.model_dump()), seed=cfg.seed
    )
    device = resolve_device(cfg.device)
    policy.place(device, tiny_dtype(cfg.dtype, device, cfg.model.d_model))
    return policy, make_optimizer(policy.module, cfg.pretrain.lr, cfg.pretrain.weight_decay)


def train_steps(
    cfg: RunConfig,
    policy: TinyPolicy,
    opt: torch.optim.AdamW,
    schedule: Schedule,
    run_dir: Path,
    ckpt_dir: Path,
    on_step: Callable[[int, int, dict[str, float]], None] | None,
) -> None:
    """The training loop: the schedule's steps on the task corpus, with metrics, held-out loss and
    checkpoints. With pretrain.learners > 1 the steps run on the learners and the driver's `policy` and
    `opt` get rank 0's state before each held-out loss and checkpoint, and at the end."""
    pc = cfg.pretrain
    task = get_task(cfg.task.name, **cfg.task.knobs)
    tok = policy.tokenizer
    module = policy.module
    device = module.embed.weight.device
    metrics_path = run_dir / "metrics.jsonl"
    truncate_after(metrics_path, schedule.start, prefixes=("train/", "eval/"))
    train = build_stream(task, cfg, "train", pc.corpus_docs, cfg.seed, tok)
    held_out = build_stream(task, cfg, "test", max(64, pc.corpus_docs // 50), cfg.seed + 1, tok)
    steps = schedule.steps
    tokens_per_step = pc.batch_size * pc.seq_len
    module.train()
    tb = run_dir / "tb" if cfg.tracking.tensorboard else None
    with (
        MetricsLogger(metrics_path, tb) as log,
        data_parallel(cfg, policy, opt, new_model, train_step) as learners,
    ):
        t_last, window_steps = time.perf_counter(), 0
        for step in range(schedule.start, steps):
            lr = schedule.lr(step)
            for group in opt.param_groups:
                group["lr"] = lr
            x, y, w = get_batch(
                train, pc.batch_size, pc.seq_len, cfg.seed, schedule.batch_offset + step
            )
            if learners is None:
                x, y, w = x.to(device), y.to(device), w.to(device)
                loss, grad_norm = train_step(policy, opt, x, y, w, pc.grad_clip)
            else:  # on the learners, each on its rows
                loss, grad_norm = learners.step(x, y, w, lr)
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"pretraining diverged at step {step + 1} (loss {loss}); "
                    f"the last good checkpoint is kept in {ckpt_dir}"
                )
            window_steps += 1
            done = step + 1
            row = {"train/loss": loss, "train/lr": lr, "train/grad_norm": grad_norm}
            if done % 10 == 0 or done == steps:
                now = time.perf_counter()
                row["train/tokens_per_s"] = window_steps * tokens_per_step / (now - t_last)
                t_last, window_steps = now, 0
            evaluate = done % pc.eval_every == 0 or done == steps
            save = done % pc.checkpoint_every == 0 or done == steps
            if learners is not None and (evaluate or save):
                learners.pull(policy, opt)  # rank 0's weights and optimizer state
            if evaluate:
                row["eval/loss"] = held_out_loss(
                    policy, held_out, pc.batch_size, pc.seq_len, cfg.seed
                )
                module.train()
            row["train/tokens"] = done * tokens_per_step
            log.log(row, step=done)
            if on_step is not None:
                on_step(done, steps, row)
            if save:
                save_state(ckpt_dir, TrainState(step=done), module, opt)
    module.eval()


@torch.no_grad()
def held_out_loss(
    policy: TinyPolicy, stream: TokenStream, batch_size: int, seq_len: int, seed: int
) -> float:
    """Loss on a fixed set of windows of the test-split stream (same windows every time)."""
    policy.module.eval()
    losses = []
    for i in range(4):
        x, y, w = (
            t.to(policy.module.embed.weight.device)
            for t in get_batch(stream, batch_size, seq_len, seed + 10_000, i)
        )
        losses.append(masked_loss(policy.logits(x), y, w).item())
    return sum(losses) / len(losses)
