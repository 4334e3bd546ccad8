"""Data-parallel RL updates: the update phase of each step on `rl.learners` Ray actors that form one
torch.distributed process group (distributed/data_parallel.py).

Single controller, as verl: the driver samples and judges as with one learner; `LearnerGroup.learn`
has the signature of the trainer's `learn` and runs that same function on every rank with the rank's
`Shard`. The driver puts the batch in Ray's object store once; each rank computes the no-grad
logprob / value forwards on its share of the rows and gathers them, then takes its share of every
micro- and minibatch with the aggregation weights of the WHOLE minibatch (so that token-mean divides
by the minibatch's token count, not the rank's), and the gradients are summed across ranks before the
clip: the same update as one learner's, to float rounding. After the update rank 0's trainable
weights are copied into the driver's policy, the one that samples (the weight sync).

Each rank builds its learner as train_rl does (policy from the base folder, reference, critic:
`build`, passed in by the trainer, which sits above this module) and loads the driver's state over it:
trainable weights, optimizer and critic, fresh or resumed from the run's checkpoint. Before a
checkpoint `pull` copies rank 0's optimizer and critic into the driver's learner and the driver writes
it as with one learner. Departures: the ranks read the base folder, so on a cluster of several
machines it must be on a filesystem they share; the ranks' device is their own GPU with
ray.learner_gpus, else the CPU, whatever the run's device. Usage (train_rl does this):

    with data_parallel(cfg, base_dir, learner, build_learner, learn):   # learner.group is set inside
        metrics = learner.group.learn(cfg, learner, batch, sampler_logp, step)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from reasonlab.config import RunConfig
from reasonlab.distributed.cluster import import_ray, worker_device
from reasonlab.distributed.data_parallel import ActorGroup, Rank, to_cpu

# the trainer's functions: build(cfg, base_dir) -> Learner; update(cfg, learner, batch, sampler_logp,
# step, shard=...) -> metrics. A Learner has policy, optimizer, critic, critic_optimizer (rl/trainer.py).
Build = Callable[[RunConfig, Path], Any]
Update = Callable[..., dict[str, float]]


class LearnerGroup:
    """The ranks of a data-parallel RL run, each holding a learner built like the driver's."""

    def __init__(self, actors: ActorGroup, update: Update) -> None:
        self.actors = actors
        self.update = update

    @classmethod
    def start(
        cls, cfg: RunConfig, base_dir: Path, learner: Any, build: Build, update: Update
    ) -> LearnerGroup:
        """rl.learners ranks, each with `build`'s learner loaded with the state of the driver's."""
        actors = ActorGroup.start(cfg.rl.learners, cfg.ray, "rl.learners")
        group = cls(actors, update)
        try:
            actors.run(_build, build, rank_config(cfg), str(base_dir))
            group.push(learner)
        except BaseException:
            actors.close()
            raise
        return group

    def learn(
        self, cfg: RunConfig, learner: Any, batch: Any, sampler_logp: torch.Tensor, step: int
    ) -> dict[str, float]:
        """The trainer's `learn` on the ranks (at the learning rates of the driver's optimizer); rank 0's
        weights then go into `learner.policy`. Returns the update's metrics (the same on every rank)."""
        ray = import_ray()
        lrs = [g["lr"] for g in learner.optimizer.param_groups]
        data = ray.put((batch.to(torch.device("cpu")), sampler_logp.cpu()))
        results = self.actors.run(_learn, self.update, rank_config(cfg), data, step, lrs)
        metrics, weights = results[0]
        load_weights(learner.policy.module, weights)
        return metrics

    def push(self, learner: Any) -> None:
        """The driver learner's state into every rank's."""
        ray = import_ray()
        self.actors.run(_load, ray.put(learner_state(learner)))

    def pull(self, learner: Any) -> None:
        """Rank 0's state (weights, optimizer, critic) into the driver's `learner` (before a checkpoint)."""
        load_learner_state(learner, self.actors.run(_rank0_state)[0])

    def close(self) -> None:
        self.actors.close()


@contextmanager
def data_parallel(
    cfg: RunConfig, base_dir: Path, learner: Any, build: Build, update: Update
) -> Iterator[LearnerGroup | None]:
    """With rl.learners > 1, `learner.group` runs the update on that many ranks for the duration of
    the block; nothing changes with one learner."""
    if cfg.rl.learners == 1:
        yield None
        return
    learner.group = LearnerGroup.start(cfg, base_dir, learner, build, update)
    try:
        yield learner.group
    finally:
        learner.group.close()
        learner.group = None


def rank_config(cfg: RunConfig) -> RunConfig:
    """The config of a rank's learner: on its own GPU with ray.learner_gpus, else on the CPU; the
    builtin sampler (a rank never samples); one learner (the rank is one share of the group)."""
    device = worker_device(cfg.ray.learner_gpus)
    return cfg.model_copy(
        update={
            "device": device,
            "hf": cfg.hf.model_copy(update={"device": "auto", "sampler": "builtin"}),
            "rl": cfg.rl.model_copy(update={"learners": 1}),
        }
    )


def trainable_weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The parameters that training changes, on the CPU (LoRA: the adapters only)."""
    return {n: p.detach().cpu() for n, p in module.named_parameters() if p.requires_grad}


def load_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Copy `weights` (trainable_weights) into `module`'s parameters in place."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name in weights:
                p.copy_(weights[name])


def learner_state(learner: Any) -> dict[str, Any]:
    """What a rank loads over the learner it built: trainable weights, optimizer, critic (CPU tensors)."""
    state = {
        "policy": trainable_weights(learner.policy.module),
        "optimizer": to_cpu(learner.optimizer.state_dict()),
    }
    if learner.critic is not None:
        state["critic"] = to_cpu(learner.critic.state_dict())
        state["critic_optimizer"] = to_cpu(learner.critic_optimizer.state_dict())
    return state


def load_learner_state(learner: Any, state: dict[str, Any]) -> None:
    load_weights(learner.policy.module, state["policy"])
    learner.optimizer.load_state_dict(state["optimizer"])
    if learner.critic is not None:
        learner.critic.load_state_dict(state["critic"])
        learner.critic_optimizer.load_state_dict(state["critic_optimizer"])


# --- on the ranks ---------------------------------------------------------------------------------


def _build(rank: Rank, build: Build, cfg: RunConfig, base_dir: str) -> None:
    learner = build(cfg, Path(base_dir))
    learner.policy.module.train()
    rank.state["learner"] = learner


def _load(rank: Rank, state: dict[str, Any]) -> None:
    load_learner_state(rank.state["learner"], state)


def _learn(
    rank: Rank,
    update: Update,
    cfg: RunConfig,
    data: tuple[Any, torch.Tensor],
    step: int,
    lrs: list[float],
) -> tuple[dict[str, float], dict[str, torch.Tensor] | None]:
    batch, sampler_logp = data
    learner = rank.state["learner"]
    for group, lr in zip(learner.optimizer.param_groups, lrs):
        group["lr"] = lr
    metrics = update(cfg, learner, batch, sampler_logp, step, shard=rank.shard)
    weights = trainable_weights(learner.policy.module) if rank.shard.rank == 0 else None
    return metrics, weights


def _rank0_state(rank: Rank) -> dict[str, Any] | None:
    return learner_state(rank.state["learner"]) if rank.shard.rank == 0 else None
