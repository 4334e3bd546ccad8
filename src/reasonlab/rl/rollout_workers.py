"""Rollout workers (`rl.rollout_workers: N`): Ray actors that each hold a copy of the policy and sample
a contiguous share of a step's prompts.

`RolloutWorkers(cfg, base_dir, policy, step)` starts N actors; each declares `ray.rollout_cpus` CPUs and
`ray.rollout_gpus` GPUs, runs torch on that many threads and loads the policy from the base folder with
the run's model options (on its own GPU when it declares one, else on CPU). A request that no node of
the cluster can hold is refused in seconds (`check_workers`, also run by `validate_rl`). A worker reads
the base folder at the driver's path: on a multi-node cluster it must be on a shared filesystem.
- `publish(policy, step)`: the policy's weights go into the object store once, tagged with `step` (the
  updates they include); a worker loads them before its next draw when its own tag differs.
- `generate(problems, n, seed, **kwargs)`: `sampling.generate`'s signature. The problems are cut into
  contiguous shares, one per worker, sampled in parallel, and the rollouts come back in the in-process
  order. Each share passes `first_row` (its first sequence's index in the whole draw) to the builtin
  sampler, which skips the uniforms of the sequences before it: the rollouts are the in-process
  sampler's for the same seed and weights (up to the float rounding of another batch shape, which can
  rarely flip a near-tie, as batch_size can in one process).
- `submit(...)` starts a draw without waiting for it (`rl.async`: the next step's draw runs while this
  step updates); `generate` with the same arguments then returns it. `staleness(step)` is `step` minus
  the tag of the oldest weights that sampled the draws returned since the last call.
Departures: only the builtin sampler splits a draw this way (Hugging Face `generate` and vLLM draw their
randomness per batch), so the workers refuse another `hf.sampler`; a GPU run whose workers declare no
GPU is refused too (they would sample on the CPU). The weights travel as numpy arrays (bfloat16 as int16
bits), which a worker on the same node reads from the object store without a copy; the whole state dict
(a tied tensor once) is sent after every update, LoRA or not.
Usage:

    with RolloutWorkers(cfg, base_dir, policy, step=0) as workers:
        rollouts = workers.generate(problems, 8, seed=0, max_new_tokens=64)  # == sampling.generate
        ...  # update the policy
        workers.publish(policy, step=1)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reasonlab.config import RunConfig
from reasonlab.distributed.cluster import (
    check_fits_a_node,
    check_gpus_declared,
    ensure_ray,
    import_ray,
    set_threads,
    worker_device,
)
from reasonlab.errors import ConfigError, ReasonlabError
from reasonlab.models import Policy, load_policy
from reasonlab.sampling import generate
from reasonlab.types import Problem, Rollout

# state-dict name -> (array, torch dtype name), or the name of an earlier entry holding the same tensor
Packed = dict[str, tuple[np.ndarray, str] | str]


def check_workers(cfg: RunConfig) -> None:
    """ConfigError for `rl.rollout_workers` / `rl.async` settings that cannot work; with workers, reach Ray
    (cluster.ensure_ray) and refuse in seconds a request the cluster can never hold."""
    rc = cfg.rl
    if rc.async_ and rc.rollout_workers < 1:
        raise ConfigError(
            "rl.async: needs rl.rollout_workers >= 1 (the next step is sampled on them while this "
            "step updates)"
        )
    if rc.async_ and rc.tis_cap is not None:
        raise ConfigError(
            "rl.tis_cap: with rl.async the ratio is already taken against the sampler's log-probs; "
            "TIS would correct for the sampler twice"
        )
    if rc.rollout_workers == 0:
        return
    if cfg.hf.sampler != "builtin":
        raise ConfigError(
            f"rl.rollout_workers: needs hf.sampler: builtin (got {cfg.hf.sampler}; only the builtin "
            "sampler gives a share of a draw the rollouts the whole draw gives it)"
        )
    check_gpus_declared(cfg.device, cfg.ray.rollout_gpus, "ray.rollout_gpus")
    ensure_ray(cfg.ray.object_store_mb)
    check_fits_a_node(
        {"CPU": cfg.ray.rollout_cpus, "GPU": cfg.ray.rollout_gpus},
        "ray.rollout_cpus / ray.rollout_gpus",
        count=rc.rollout_workers,
    )


def share_bounds(n_problems: int, n_workers: int) -> list[tuple[int, int]]:
    """Contiguous [lo, hi) shares of `n_problems`, one per worker, sizes differing by at most one
    (empty shares dropped)."""
    cuts = [i * n_problems // n_workers for i in range(n_workers + 1)]
    return [(lo, hi) for lo, hi in zip(cuts, cuts[1:]) if hi > lo]


def pack(module: torch.nn.Module) -> Packed:
    """The module's state dict as numpy arrays on CPU (bfloat16 as its int16 bits); a tensor that is
    another entry's (tied embeddings) is sent once, named by that entry."""
    out: Packed = {}
    seen: dict[tuple, str] = {}
    for name, t in module.state_dict().items():
        same = (t.data_ptr(), t.dtype, tuple(t.shape), tuple(t.stride()))
        if t.numel() and same in seen:
            out[name] = seen[same]
            continue
        seen[same] = name
        t = t.detach().to("cpu").contiguous()
        dtype = str(t.dtype).removeprefix("torch.")
        out[name] = ((t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy(), dtype)
    return out


def unpack(packed: Packed) -> dict[str, torch.Tensor]:
    """Tensors over the arrays of `pack` (no copy: they may be read-only object-store memory)."""
    out: dict[str, torch.Tensor] = {}
    with warnings.catch_warnings():
        # only read (load_state_dict copies them into the parameters)
        warnings.filterwarnings("ignore", message=".*not writable.*")
        for name, entry in packed.items():
            if isinstance(entry, str):  # the same tensor as an earlier entry
                out[name] = out[entry]
                continue
            array, dtype = entry
            t = torch.from_numpy(array)
            out[name] = t.view(torch.bfloat16) if dtype == "bfloat16" else t
    return out


def packed_bytes(packed: Packed) -> int:
    """The bytes `pack` puts in the object store."""
    return sum(entry[0].nbytes for entry in packed.values() if not isinstance(entry, str))


class RolloutWorker:
    """One actor: a copy of the policy, the tag of the weights it holds, and the builtin sampler."""

    def __init__(self, cfg: RunConfig, base_dir: str) -> None:
        set_threads(cfg.ray.rollout_cpus)
        options = cfg.model_options()
        options["device"] = worker_device(cfg.ray.rollout_gpus)
        self.policy = load_policy(Path(base_dir), options=options)
        hc = cfg.hf
        if hc.lora_r > 0 and hasattr(self.policy, "enable_lora"):  # the trainer's parameter names
            self.policy.enable_lora(
                hc.lora_r, hc.lora_alpha, hc.lora_dropout, hc.lora_targets, seed=cfg.seed
            )
        self.step: int | None = None  # None: the base folder's weights

    def ready(self) -> bool:
        return True

    def load(self, weights: list[Any], step: int) -> int:
        """Hold the weights tagged `step` (`weights`: [their object ref], left unresolved by Ray so that
        a worker holding them already fetches nothing); returns the tag."""
        if self.step != step:
            ray = import_ray()
            self.policy.module.load_state_dict(unpack(ray.get(weights[0])))
            self.step = step
        return step

    def generate(
        self,
        weights: list[Any],
        step: int,
        problems: Sequence[Problem],
        n: int,
        seed: int,
        first_row: int,
        kwargs: dict[str, Any],
    ) -> list[Rollout]:
        """Sample a share of a draw with the weights tagged `step`."""
        self.load(weights, step)
        return generate(self.policy, problems, n, seed, first_row=first_row, **kwargs)

    def weights_step(self) -> int | None:
        return self.step


@dataclass(frozen=True)
class Draw:
    """A draw in flight: one object ref per non-empty share, and the tag of the weights sampling it."""

    refs: list[Any]
    step: int


class RolloutWorkers:
    """`rl.rollout_workers` actors sampling shares of each draw; a context manager that ends them."""

    def __init__(self, cfg: RunConfig, base_dir: Path, policy: Policy, step: int = 0) -> None:
        if getattr(policy, "sampler", "builtin") != "builtin":
            raise ConfigError(
                f"rl.rollout_workers: needs hf.sampler: builtin (the policy samples with {policy.sampler})"
            )
        check_workers(cfg)
        ray = import_ray()
        actor = ray.remote(num_cpus=cfg.ray.rollout_cpus, num_gpus=cfg.ray.rollout_gpus)(
            RolloutWorker
        )
        self.actors = [actor.remote(cfg, str(base_dir)) for _ in range(cfg.rl.rollout_workers)]
        self.pending: dict[tuple, Draw] = {}
        self._returned: list[int] = []  # the weights' tag of each draw returned since `staleness`
        try:
            self._get([a.ready.remote() for a in self.actors])
        except BaseException:
            self.close()
            raise
        self.publish(policy, step)

    def publish(self, policy: Policy, step: int) -> None:
        """Put the policy's weights in the object store once, tagged `step`; later draws sample with them."""
        self.weights = import_ray().put(pack(policy.module))
        self.step = step

    def submit(self, problems: Sequence[Problem], n: int, seed: int, **kwargs: Any) -> None:
        """Start sampling `n` completions of each problem with the weights published last."""
        problems = list(problems)
        refs = [
            actor.generate.remote(
                [self.weights], self.step, problems[lo:hi], n, seed, lo * n, kwargs
            )
            for actor, (lo, hi) in zip(self.actors, share_bounds(len(problems), len(self.actors)))
        ]
        self.pending[_key(problems, n, seed, kwargs)] = Draw(refs, self.step)

    def generate(
        self, problems: Sequence[Problem], n: int, seed: int, **kwargs: Any
    ) -> list[Rollout]:
        """`sampling.generate` on the workers: the draw submitted with these arguments, else a new one
        with the weights published last; problem-major, as in one process."""
        key = _key(problems, n, seed, kwargs)
        if key not in self.pending:
            self.submit(problems, n, seed, **kwargs)
        draw = self.pending.pop(key)
        shares = self._get(draw.refs)
        self._returned.append(draw.step)
        return [r for share in shares for r in share]

    def staleness(self, step: int) -> int:
        """`step` minus the tag of the oldest weights among the draws returned since the last call (0
        when none was)."""
        lag = step - min(self._returned, default=step)
        self._returned.clear()
        return lag

    def load(self) -> None:
        """Have every worker load the weights published last now (a draw does it anyway)."""
        self._get([a.load.remote([self.weights], self.step) for a in self.actors])

    def weights_steps(self) -> list[int | None]:
        """The tag of the weights each worker holds now (None: the base folder's)."""
        return self._get([a.weights_step.remote() for a in self.actors])

    def close(self) -> None:
        """End the actors (their resources go back to the cluster at once)."""
        ray = import_ray()
        for actor in self.actors:
            ray.kill(actor)
        self.actors, self.pending = [], {}

    def __enter__(self) -> RolloutWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, refs: list[Any]) -> list[Any]:
        """ray.get, with a worker's own error (a bad checkpoint, a bad argument) raised as it is, and a
        dead worker as one line naming rl.rollout_workers."""
        ray = import_ray()
        try:
            return ray.get(refs)
        except ray.exceptions.RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, (ReasonlabError, ValueError)):
                raise cause from None
            raise ReasonlabError(f"rl.rollout_workers: a worker failed: {_one_line(err)}") from None
        except ray.exceptions.RayActorError as err:
            raise ReasonlabError(f"rl.rollout_workers: a worker died: {_one_line(err)}") from None


def _key(problems: Sequence[Problem], n: int, seed: int, kwargs: dict[str, Any]) -> tuple:
    """What identifies a draw: the problems, n, the seed and the sampling arguments."""
    return (tuple(p.id for p in problems), n, seed, repr(sorted(kwargs.items())))


def _one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return (lines[-1] if lines else type(err).__name__)[:300]
