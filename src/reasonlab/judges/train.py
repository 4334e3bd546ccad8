"""Training a reward model: class-balanced losses, validation, early stopping on the validation loss.

Losses (per head, see judges/models.py):

    prm        binary cross-entropy at every step's read position, against the step labels
    orm        binary cross-entropy at the last step's position, against "the final answer is right"
    pairwise   -log sigmoid(r_better - r_worse) over pairs of solutions to the same prompt, where a
               right answer beats a wrong one (ties in correctness make no pair)

The read-out (head) trains at its own, higher learning rate (`head_lr`): it starts at zero.
Class balance: each label class gets total weight 1/2 of the training loss (weights N / (2 N_class)
from the training set), the common fix for the many-more-right-steps-than-wrong imbalance of step
labels; scores stay probabilities of the balanced problem, so their calibration (ECE) is measured,
not assumed. Validation every `eval_every` steps on held-out problems; training stops after
`patience` validations without a new lowest validation loss and the best weights are restored.
With a frozen backbone (`train_backbone: false`, the default) only the head trains: what it reads
at each step is computed once for every record and the steps cost almost nothing, so training is a
logistic regression on the base's hidden states and likelihood features (a linear probe).
Usage:

    history = train_reward_model(judge, train_records, val_records, cfg.judge, seed=0)
"""

from __future__ import annotations

import copy
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from reasonlab.config import JudgeConfig
from reasonlab.errors import ReasonlabError
from reasonlab.judges.models import LearnedJudge, encode
from reasonlab.types import StepRecord

Pair = tuple[StepRecord, StepRecord]  # (better, worse)


@dataclass
class History:
    """What training did: per-validation losses, the best step, why it stopped."""

    evals: list[dict[str, float]] = field(default_factory=list)
    best_step: int = 0
    best_val_loss: float = float("inf")
    steps: int = 0
    stopped: str = "max_steps"

    def summary(self, train: Sequence[StepRecord], val: Sequence[StepRecord]) -> dict[str, object]:
        """What a judge folder records about its training (config.json "training")."""
        return {
            "steps": self.steps,
            "best_step": self.best_step,
            "best_val_loss": round(self.best_val_loss, 4),
            "stopped": self.stopped,
            "train_records": len(train),
            "val_records": len(val),
        }


def usable(records: Sequence[StepRecord], head: str) -> list[StepRecord]:
    """The records a head can learn from: labelled steps (prm) or a known final answer (orm, pairwise)."""
    if head == "prm":
        return [r for r in records if r.steps and r.labels is not None]
    return [r for r in records if r.steps and r.correct is not None]


def class_weights(records: Sequence[StepRecord], head: str) -> tuple[float, float]:
    """(weight of a positive, weight of a negative) so that each class carries half the loss."""
    labels = (
        [lab for r in records for lab in (r.labels or ())]
        if head == "prm"
        else [bool(r.correct) for r in records]
    )
    pos = sum(labels)
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return 1.0, 1.0
    return len(labels) / (2 * pos), len(labels) / (2 * neg)


def make_pairs(records: Sequence[StepRecord], seed: int, per_prompt: int = 4) -> list[Pair]:
    """Up to `per_prompt` (right, wrong) pairs per prompt, drawn with random.Random(seed)."""
    by_prompt: dict[str, list[StepRecord]] = defaultdict(list)
    for r in records:
        by_prompt[r.prompt].append(r)
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for prompt in sorted(by_prompt):
        good = [r for r in by_prompt[prompt] if r.correct]
        bad = [r for r in by_prompt[prompt] if r.correct is False]
        combos = [(g, b) for g in good for b in bad]
        pairs += rng.sample(combos, min(per_prompt, len(combos)))
    return pairs


Inputs = tuple[
    torch.Tensor, "torch.Tensor | None"
]  # what the head reads at each step of one record


def step_logits(
    judge: LearnedJudge, records: Sequence[StepRecord], cache: dict[int, Inputs] | None
) -> list[torch.Tensor]:
    """Each record's logits at every step: through the backbone, or from cached read-out inputs
    (a frozen backbone: computed once, see `cache_inputs`)."""
    if cache is None:
        enc = encode(judge.tokenizer, records)
        return list(judge.model(enc).split(enc.counts))
    return [judge.model.read(*cache[id(r)]) for r in records]


@torch.no_grad()
def cache_inputs(
    judge: LearnedJudge, records: Sequence[StepRecord], batch: int
) -> dict[int, Inputs]:
    """The read-out inputs of every record (by id()), for training the head of a frozen backbone."""
    out: dict[int, Inputs] = {}
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        enc = encode(judge.tokenizer, chunk)
        h, f = judge.model.inputs(enc)
        for r, hi, fi in zip(
            chunk,
            h.split(enc.counts),
            f.split(enc.counts) if f is not None else [None] * len(chunk),
        ):
            out[id(r)] = (hi, fi)
    return out


def pointwise_loss(
    judge: LearnedJudge,
    records: Sequence[StepRecord],
    weights: tuple[float, float],
    cache: dict[int, Inputs] | None = None,
    soft: bool = False,
) -> torch.Tensor:
    """Weighted BCE at every step (prm) or at the last step (orm) of a batch of records; `soft` takes a
    PRM's targets from the records' soft labels (Monte-Carlo success rates) where they have them."""
    per_record = step_logits(judge, records, cache)
    if judge.head == "prm":
        logits = torch.cat(per_record)  # (S,)
        target = torch.tensor(
            [
                float(lab)
                for r in records
                for lab in (r.soft_labels if soft and r.soft_labels else r.labels)
            ],
            device=logits.device,
        )  # (S,)
    else:
        logits = torch.stack([x[-1] for x in per_record])  # (B,)
        target = torch.tensor(
            [float(bool(r.correct)) for r in records], dtype=torch.float32, device=logits.device
        )  # (B,)
    w = torch.where(target > 0.5, weights[0], weights[1])
    return (
        F.binary_cross_entropy_with_logits(logits, target, reduction="none") * w
    ).sum() / w.sum()


def pairwise_loss(
    judge: LearnedJudge, pairs: Sequence[Pair], cache: dict[int, Inputs] | None = None
) -> torch.Tensor:
    """Bradley-Terry loss -log sigmoid(r_better - r_worse), mean over pairs."""
    per_record = step_logits(judge, [p[0] for p in pairs] + [p[1] for p in pairs], cache)
    better, worse = torch.stack([x[-1] for x in per_record]).chunk(2)  # (P,), (P,)
    return -F.logsigmoid(better - worse).mean()


def train_reward_model(
    judge: LearnedJudge,
    train: Sequence[StepRecord],
    val: Sequence[StepRecord],
    cfg: JudgeConfig,
    seed: int,
    on_step: Callable[[int, int, dict[str, float]], None] | None = None,
) -> History:
    """Train `judge.model` in place on `train`, validating on `val`; returns the history."""
    head = judge.head
    train, val = usable(train, head), usable(val, head)
    items: list = make_pairs(train, seed) if head == "pairwise" else list(train)
    val_items: list = make_pairs(val, seed + 1) if head == "pairwise" else list(val)
    if not items or not val_items:
        raise ReasonlabError(
            f"judge {head}: no usable training or validation data "
            f"({len(items)} train, {len(val_items)} validation items)"
        )
    weights = class_weights(train, head)
    model = judge.model
    frozen = not any(p.requires_grad for p in model.backbone.parameters())
    cache = cache_inputs(judge, [*train, *val], cfg.batch_size) if frozen else None

    def loss_of(batch: Sequence) -> torch.Tensor:
        if head == "pairwise":
            return pairwise_loss(judge, batch, cache)
        return pointwise_loss(judge, batch, weights, cache, soft=cfg.soft_labels)

    torch.manual_seed(seed)
    rng = random.Random(seed)
    heads = {id(p) for p in model.head_parameters()}
    body = [p for p in model.parameters() if p.requires_grad and id(p) not in heads]
    groups = [{"params": model.head_parameters(), "lr": cfg.head_lr}] + (
        [{"params": body, "lr": cfg.lr}] if body else []
    )
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    batch = cfg.batch_size if head != "pairwise" else max(1, cfg.batch_size // 2)
    history, best_state, stale = History(), copy.deepcopy(model.state_dict()), 0
    order: list[int] = []
    model.train()
    for step in range(1, cfg.max_steps + 1):
        if len(order) < batch:  # reshuffle each epoch
            order += rng.sample(range(len(items)), len(items))
        idx, order = order[:batch], order[batch:]
        loss = loss_of([items[i] for i in idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*body, *model.head_parameters()], 1.0)
        opt.step()
        history.steps = step
        metrics = {"judge/loss": loss.item()}
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            metrics["judge/val_loss"] = val_loss = validation_loss(judge, val_items, loss_of, batch)
            history.evals.append(
                {"step": step, "train_loss": metrics["judge/loss"], "val_loss": val_loss}
            )
            if val_loss < history.best_val_loss:
                history.best_val_loss, history.best_step, stale = val_loss, step, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
        if on_step is not None:
            on_step(step, cfg.max_steps, metrics)
        if stale >= cfg.patience:
            history.stopped = f"no better validation loss in {cfg.patience} checks"
            break
    model.load_state_dict(best_state)
    model.eval()
    return history


@torch.no_grad()
def validation_loss(judge: LearnedJudge, items: Sequence, loss_of: Callable, batch: int) -> float:
    """The loss over all validation items (batch means weighted by batch size)."""
    judge.model.eval()
    total, n = 0.0, 0
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        total += loss_of(chunk).item() * len(chunk)
        n += len(chunk)
    judge.model.train()
    return total / max(n, 1)
