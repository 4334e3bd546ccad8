"""Data parallelism on Ray: N actors that form one torch.distributed process group, and the collectives
a trainer needs to split a batch between them.

`ActorGroup.start(count, ray_cfg, field)` places `count` actors (ray.learner_cpus / learner_gpus each)
in one placement group (PACK: on as few nodes as fit), gives torch in each as many threads as it
declared CPUs, and joins them into one process group: gloo on CPUs, NCCL when each has a GPU. Rank 0
opens a `torch.distributed.TCPStore` on a port the system picks and the others connect to it at rank
0's node address. `group.run(fn, *args)` calls `fn(rank, *args)` on every rank at once and returns the
results in rank order; `rank.state` is a dict the trainer keeps its objects in between calls, and
`rank.shard` is the rank's `Shard`. A rank that raises ends the group (its peers may be waiting in a
collective that will never complete): the group is closed and the rank's exception is raised on the
driver as itself.

`Shard(rank, world)` is one rank's view of a global batch: `part(n)` is its contiguous share of n rows
(sizes as torch.tensor_split), and the collectives sum gradients (`all_reduce_grads`), sums of floats
(`sum`) and gather row shards back into the whole (`gather`). `LOCAL = Shard(0, 1)` is the single
process: every collective is the identity there, so a trainer written against a Shard runs unchanged
with one learner. Usage:

    with ActorGroup.start(2, cfg.ray, "rl.learners") as group:
        group.run(setup, ray.put(state))
        results = group.run(step, batch_ref)       # one result per rank

Departures from Ray Train's TorchTrainer: the driver stays in charge (single controller, as verl): it
calls the ranks once per step instead of handing them a whole training function, so sampling, logging
and checkpointing stay where they are with one learner. Gradients are summed in one flat buffer per
dtype after the backward passes (no overlap with the backward, as DistributedDataParallel does), which
lets a trainer accumulate micro-batches with the weights of the whole batch and skip ranks with no rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from reasonlab.config import RayConfig
from reasonlab.distributed.cluster import check_fits_a_node, ensure_ray, import_ray, set_threads
from reasonlab.errors import ConfigError

PLACEMENT_TIMEOUT_S = 60.0  # how long the group waits for the cluster to have its resources free


@dataclass(frozen=True)
class Shard:
    """One rank's share of every global batch, and the collectives that put the shares together."""

    rank: int = 0
    world: int = 1

    def part(self, n: int) -> slice:
        """This rank's contiguous share of n rows: the first n % world ranks hold one row more."""
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def rows(self, rows: torch.Tensor) -> torch.Tensor:
        """This rank's share of the row indices `rows` (b,)."""
        return rows[self.part(len(rows))]

    def all_reduce_grads(self, module: torch.nn.Module) -> None:
        """Sum the gradients of `module` over the ranks, in place. A parameter without a gradient on
        this rank (it had no rows, or its loss was refused) joins with zeros when another rank has one;
        one that no rank has a gradient for keeps None."""
        if self.world == 1:
            return
        params = [p for p in module.parameters() if p.requires_grad]
        if not params:
            return
        device = params[0].device
        present = torch.tensor(
            [p.grad is not None for p in params], device=device, dtype=torch.int32
        )
        dist.all_reduce(present, op=dist.ReduceOp.MAX)  # (P,) 1 where any rank has a gradient
        buckets: dict[tuple[torch.device, torch.dtype], list[torch.nn.Parameter]] = {}
        for p, anywhere in zip(params, present.tolist()):
            if anywhere:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                buckets.setdefault((p.device, p.grad.dtype), []).append(p)
        for group in buckets.values():
            flat = torch.cat([p.grad.reshape(-1) for p in group])  # (sum of numel,)
            dist.all_reduce(flat)
            for p, g in zip(group, flat.split([p.numel() for p in group])):
                p.grad.copy_(g.view_as(p))

    def sum(self, values: dict[str, float]) -> dict[str, float]:
        """Every key's sum over the ranks (a key a rank lacks counts as 0 there), added in rank order."""
        if self.world == 1:
            return values
        gathered: list[dict[str, float] | None] = [None] * self.world
        dist.all_gather_object(gathered, values)
        out: dict[str, float] = {}
        for part in gathered:
            for k, v in (part or {}).items():
                out[k] = out.get(k, 0.0) + v
        return out

    def gather(self, part: torch.Tensor, n: int) -> torch.Tensor:
        """The whole (n, ...) from every rank's share (its `part(n)` rows, (b, ...)), on every rank."""
        if self.world == 1:
            return part
        width = math.ceil(n / self.world)
        padded = part.new_zeros((width, *part.shape[1:]))  # (ceil(n / world), ...)
        padded[: len(part)] = part
        shares = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(shares, padded)
        sizes = [len(range(n)[Shard(r, self.world).part(n)]) for r in range(self.world)]
        return torch.cat([s[:size] for s, size in zip(shares, sizes)])  # (n, ...)


LOCAL = Shard()  # one process, no collectives


def to_cpu(obj: Any) -> Any:
    """`obj` (tensors in dicts, lists and tuples: a state dict, an optimizer's) with every tensor detached
    and copied to the CPU: what travels between the driver and the ranks through the object store."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


class Rank:
    """One actor of a group: its place in the process group and the trainer's objects (`state`)."""

    def __init__(self, rank: int, world: int, cpus: float) -> None:
        set_threads(cpus)
        self.shard = Shard(rank, world)
        self.state: dict[str, Any] = {}
        self.store: dist.TCPStore | None = None

    def open_store(self) -> tuple[str, int]:
        """Rank 0: the process group's rendezvous store on a free port; its node address and port."""
        ray = import_ray()
        host = ray.util.get_node_ip_address()
        self.store = dist.TCPStore(
            host, 0, self.shard.world, is_master=True, wait_for_workers=False
        )
        return host, self.store.port

    def join(self, host: str, port: int, backend: str) -> None:
        """Join the process group whose store rank 0 opened at host:port."""
        if self.store is None:
            self.store = dist.TCPStore(host, port, self.shard.world, is_master=False)
        if backend == "nccl":
            torch.cuda.set_device(0)  # Ray makes this actor's GPU the only one it sees
        dist.init_process_group(
            backend, store=self.store, rank=self.shard.rank, world_size=self.shard.world
        )

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(self, *args)


class ActorGroup:
    """N Rank actors in one placement group and one torch.distributed process group."""

    def __init__(self, actors: list[Any], placement: Any) -> None:
        self.actors = actors
        self.placement = placement

    @classmethod
    def start(cls, count: int, ray_cfg: RayConfig, field: str) -> ActorGroup:
        """`count` ranks of ray_cfg.learner_cpus / learner_gpus each, in one process group; ConfigError
        naming `field` when the cluster can never hold them (check_learners_fit) or has no room now."""
        check_learners_fit(ray_cfg, count, field)
        ray = import_ray()
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        cpus, gpus = ray_cfg.learner_cpus, ray_cfg.learner_gpus
        bundle = {"CPU": cpus, **({"GPU": gpus} if gpus > 0 else {})}
        placement = placement_group([bundle] * count, strategy="PACK")
        if not placement.wait(PLACEMENT_TIMEOUT_S):
            remove_placement_group(placement)
            raise ConfigError(
                f"{field}: the Ray cluster has no room for {count} learners of {cpus:g} CPU and "
                f"{gpus:g} GPU each within {PLACEMENT_TIMEOUT_S:g} s (other work holds its resources)"
            )
        actor = ray.remote(Rank)
        actors = [
            actor.options(
                num_cpus=cpus,
                num_gpus=gpus,
                scheduling_strategy=PlacementGroupSchedulingStrategy(placement, i),
            ).remote(i, count, cpus)
            for i in range(count)
        ]
        group = cls(actors, placement)
        try:
            host, port = ray.get(actors[0].open_store.remote())
            backend = "nccl" if gpus > 0 else "gloo"
            ray.get([a.join.remote(host, port, backend) for a in actors])
        except BaseException:
            group.close()
            raise
        return group

    def run(self, fn: Callable[..., Any], *args: Any) -> list[Any]:
        """fn(rank, *args) on every rank at once (an ObjectRef argument arrives as its value); the
        results in rank order. A rank that raises closes the group and its exception is raised here."""
        ray = import_ray()
        from ray.exceptions import RayTaskError

        refs = [a.run.remote(fn, *args) for a in self.actors]
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                ray.get(done)  # the first failure ends the wait
        except RayTaskError as err:
            self.close()
            if isinstance(err.cause, Exception):
                raise err.cause from err
            raise
        except BaseException:
            self.close()
            raise
        return ray.get(refs)

    def close(self) -> None:
        """End the actors (and with them the process group) and free their resources."""
        if not self.actors:
            return
        ray = import_ray()
        from ray.util.placement_group import remove_placement_group

        for a in self.actors:
            ray.kill(a, no_restart=True)
        remove_placement_group(self.placement)
        self.actors = []

    def __enter__(self) -> ActorGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_learners_fit(ray_cfg: RayConfig, count: int, field: str) -> None:
    """ConfigError naming `field` when `count` learners of ray.learner_cpus / learner_gpus each can never
    run at once on the cluster (on GPUs: count x learner_gpus more than its GPUs), or when learners would
    share a GPU (NCCL runs one rank per GPU). Joins or starts Ray (cluster.ensure_ray) to ask."""
    gpus = ray_cfg.learner_gpus
    if 0 < gpus and gpus != int(gpus):
        raise ConfigError(
            f"ray.learner_gpus: data-parallel learners take whole GPUs (NCCL runs one rank per GPU), "
            f"got {gpus:g}"
        )
    ensure_ray(ray_cfg.object_store_mb)
    check_fits_a_node(
        {"CPU": ray_cfg.learner_cpus, "GPU": gpus},
        f"{field} (ray.learner_cpus / ray.learner_gpus each)",
        count,
    )
