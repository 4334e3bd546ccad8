"""Data-parallel pretraining: each optimizer step on `pretrain.learners` Ray actors that form one
torch.distributed process group (distributed/data_parallel.py).

The driver keeps running the loop of pretrain/trainer.py as with one learner: it draws each step's
batch (a pure function of seed and step), logs, evaluates and checkpoints. `PretrainLearners.step`
puts the batch in Ray's object store once and every rank runs the trainer's step function on its
share of the rows, its loss normalised by the weight of the WHOLE batch, the gradients summed across
ranks before the clip: the same step as one learner's, to float rounding. The ranks build the model as
the driver does (same seed) and start from the driver's weights and optimizer state (fresh or resumed
from its checkpoint); `pull` copies rank 0's back into the driver's model before a held-out
evaluation, a checkpoint and the end, and the driver writes them as with one learner (so every file
of the run is written where the run folder is, even when the ranks are on other machines). Usage:

    with data_parallel(cfg, policy, opt, new_model, train_step) as learners:   # None with one learner
        loss, grad_norm = learners.step(x, y, w, lr)
        learners.pull(policy, opt)

The model builder and the step function are passed in by the trainer (this module sits below it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from reasonlab.config import RunConfig
from reasonlab.distributed.cluster import import_ray, worker_device
from reasonlab.distributed.data_parallel import ActorGroup, Rank, Shard, to_cpu

Build = Callable[[RunConfig], tuple[Any, torch.optim.Optimizer]]  # cfg -> (policy, optimizer)
Step = Callable[..., tuple[float, float]]  # (policy, opt, x, y, w, grad_clip, shard) -> loss, norm


class PretrainLearners:
    """The ranks of a data-parallel pretraining run, each holding the model and its optimizer."""

    def __init__(self, actors: ActorGroup, grad_clip: float) -> None:
        self.actors = actors
        self.grad_clip = grad_clip

    @classmethod
    def start(
        cls,
        cfg: RunConfig,
        policy: Any,
        opt: torch.optim.Optimizer,
        build: Build,
        update: Step,
    ) -> PretrainLearners:
        """pretrain.learners ranks with `build`'s model and optimizer, loaded with the driver's state."""
        ray = import_ray()
        actors = ActorGroup.start(cfg.pretrain.learners, cfg.ray, "pretrain.learners")
        try:
            state = ray.put(_state_dicts(policy.module, opt))
            actors.run(_build, build, update, rank_config(cfg), state)
        except BaseException:
            actors.close()
            raise
        return cls(actors, cfg.pretrain.grad_clip)

    def step(
        self, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, lr: float
    ) -> tuple[float, float]:
        """One optimizer step on the batch (x, y, w) (B, T) at learning rate `lr`: the batch's loss (a
        non-finite one leaves the weights as they were) and the gradient norm before clipping."""
        ray = import_ray()
        results = self.actors.run(_step, ray.put((x.cpu(), y.cpu(), w.cpu())), lr, self.grad_clip)
        return results[0]

    def pull(self, policy: Any, opt: torch.optim.Optimizer) -> None:
        """Rank 0's weights and optimizer state into the driver's `policy` and `opt`."""
        state = self.actors.run(_rank0_state)[0]
        policy.module.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])

    def close(self) -> None:
        self.actors.close()


@contextmanager
def data_parallel(
    cfg: RunConfig, policy: Any, opt: torch.optim.Optimizer, build: Build, update: Step
) -> Iterator[PretrainLearners | None]:
    """The ranks for the duration of the block with pretrain.learners > 1; None with one learner."""
    if cfg.pretrain.learners == 1:
        yield None
        return
    learners = PretrainLearners.start(cfg, policy, opt, build, update)
    try:
        yield learners
    finally:
        learners.close()


def rank_config(cfg: RunConfig) -> RunConfig:
    """The config the ranks build their model with: on their own GPU with ray.learner_gpus, else on CPU."""
    return cfg.model_copy(update={"device": worker_device(cfg.ray.learner_gpus)})


def _state_dicts(module: torch.nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any]:
    return to_cpu({"model": module.state_dict(), "optimizer": opt.state_dict()})


# --- on the ranks ---------------------------------------------------------------------------------


def _build(rank: Rank, build: Build, update: Step, cfg: RunConfig, state: dict[str, Any]) -> None:
    policy, opt = build(cfg)
    policy.module.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    policy.module.train()
    rank.state.update(policy=policy, opt=opt, update=update)


def _step(
    rank: Rank, batch: tuple[torch.Tensor, ...], lr: float, grad_clip: float
) -> tuple[float, float]:
    policy, opt = rank.state["policy"], rank.state["opt"]
    for group in opt.param_groups:
        group["lr"] = lr
    device = policy.module.embed.weight.device
    x, y, w = (t.to(device) for t in batch)  # (B, T) each: the whole batch; the step takes its rows
    shard: Shard = rank.shard
    return rank.state["update"](policy, opt, x, y, w, grad_clip, shard)


def _rank0_state(rank: Rank) -> dict[str, Any] | None:
    if rank.shard.rank != 0:
        return None
    return _state_dicts(rank.state["policy"].module, rank.state["opt"])
