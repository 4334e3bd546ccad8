"""Joining or starting Ray, and the checks that make its failures one line instead of a hang.

`connect(spec)` is a context manager around the Ray that a command runs on:
- `None` (no `--ray`, no RAY_ADDRESS): nothing is started; the command stays one process;
- `"local"`: a Ray started inside the command, on this machine only (`num_cpus` from the machine or
  the `--ray-cpus` flag), with the dashboard off and a small object store (`ray.object_store_mb`; Ray's
  own default is 30% of the memory), and shut down when the command ends;
- an address (`auto`, `HOST:PORT`, `ray://HOST:PORT`; or RAY_ADDRESS): a running cluster is joined.
  An address nobody answers is refused in seconds (Ray itself waits minutes), before anything is
  written.
When Ray is already initialised in this process (a test session, a notebook), it is used as it is.

`ensure_ray()` is for the roles that need Ray without a `--ray` flag (rl.rollout_workers, rl.learners,
pretrain.learners): it joins RAY_ADDRESS when it is set and otherwise starts a local Ray.
`check_fits_a_node(request, field)` refuses a resource request no node of the cluster can ever hold:
Ray would queue it forever. `set_threads(cpus)` gives torch in a task or actor as many threads as it
declared. Usage:

    with connect("local", num_cpus=2, object_store_mb=512):
        check_fits_a_node({"CPU": 1, "GPU": 0}, "ray.task_cpus / ray.task_gpus")
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from reasonlab.errors import ConfigError

ADDRESS_VARIABLE = "RAY_ADDRESS"
REACH_TIMEOUT_S = 3.0  # how long an address may take to accept a TCP connection
SHM = "/dev/shm"
SHM_SHARE = 0.8  # at most this share of /dev/shm's free space goes to the object store


def import_ray() -> Any:
    """The ray module, or a ConfigError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "Ray is not installed: pip install 'reasonlab[ray]' (or -e '.[dev]')"
        ) from None
    return ray


def resolve_spec(spec: str | None) -> str | None:
    """What `--ray` asks for: None (one process), "local" or an address; RAY_ADDRESS when no flag."""
    if spec is None or not spec.strip():
        env = os.environ.get(ADDRESS_VARIABLE, "").strip()
        return env or None
    return spec.strip()


@contextmanager
def connect(
    spec: str | None, num_cpus: int | None = None, object_store_mb: int = 512
) -> Iterator[bool]:
    """Ray as `spec` says for the duration of the block; yields whether Ray is in use."""
    spec = resolve_spec(spec)
    if spec is None:
        yield False
        return
    ray = import_ray()
    if ray.is_initialized():
        yield True
        return
    if spec == "local":
        start_local(num_cpus, object_store_mb)
    else:
        join(spec)
    try:
        yield True
    finally:
        ray.shutdown()


def ensure_ray(object_store_mb: int = 512) -> None:
    """Ray for a role that needs it: as it is when initialised, RAY_ADDRESS when set, else a local Ray
    (left running until the process ends)."""
    ray = import_ray()
    if ray.is_initialized():
        return
    address = resolve_spec(None)
    if address is None:
        start_local(None, object_store_mb)
    else:
        join(address)


def start_local(num_cpus: int | None, object_store_mb: int) -> None:
    """A Ray on this machine only: `num_cpus` (default: every CPU), no dashboard, a small object store."""
    ray = import_ray()
    if num_cpus is not None and num_cpus < 1:
        raise ConfigError(f"--ray-cpus: must be at least 1, got {num_cpus}")
    # Ray 2.60 turns on token authentication for a new local instance and says so on stderr; the
    # notice would be a second line beside every one-line error of a command.
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
        logging.ERROR
    )
    ray.init(
        address="local",  # a new instance, never a cluster some `ray start` left running
        num_cpus=num_cpus or os.cpu_count() or 1,
        include_dashboard=False,
        object_store_memory=object_store_bytes(object_store_mb),
        log_to_driver=False,
        configure_logging=False,
    )


def object_store_bytes(object_store_mb: int) -> int:
    """`object_store_mb` in bytes, capped at SHM_SHARE of /dev/shm's free space (Ray falls back to a slow
    disk store when /dev/shm is too small), and at least Ray's minimum of 75 MiB."""
    want = object_store_mb * 1024**2
    if os.path.isdir(SHM):
        want = min(want, int(shutil.disk_usage(SHM).free * SHM_SHARE))
    return max(want, 75 * 1024**2)


def join(address: str) -> None:
    """Join the cluster at `address`; ConfigError in seconds when nobody answers there."""
    ray = import_ray()
    if address != "auto":
        check_reachable(address)
    try:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise ConfigError(f"--ray: cannot join the Ray cluster at {address!r} ({err})") from None


def check_reachable(address: str) -> None:
    """ConfigError when `address` (HOST:PORT or ray://HOST:PORT) does not accept a TCP connection within
    REACH_TIMEOUT_S."""
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            f"--ray: {address!r} is not 'local', 'auto', HOST:PORT or ray://HOST:PORT"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=REACH_TIMEOUT_S):
            pass
    except OSError as err:
        raise ConfigError(
            f"--ray: no Ray cluster answers at {address} ({err.strerror or err}); start one with "
            "`ray start --head` or check the address"
        ) from None


def node_resources() -> list[dict[str, float]]:
    """The total resources of each live node of the cluster."""
    ray = import_ray()
    return [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]


def check_fits_a_node(request: dict[str, float], field: str, count: int = 1) -> None:
    """ConfigError naming `field` when no live node has the resources of `request` ({"CPU": 1, "GPU":
    0.5}), or when the cluster cannot hold `count` of them at once (Ray would wait forever)."""
    wanted = {k: v for k, v in request.items() if v > 0}
    nodes = node_resources()
    if not any(all(n.get(k, 0.0) >= v for k, v in wanted.items()) for n in nodes):
        have = "; ".join(
            ", ".join(f"{k} {n.get(k, 0):g}" for k in wanted) for n in nodes
        )  # one entry per node
        raise ConfigError(
            f"{field}: no node of the Ray cluster has {_text(wanted)} (its nodes have: {have or 'none'})"
        )
    fits = sum(
        min(int(n.get(k, 0.0) // v) for k, v in wanted.items()) if wanted else count for n in nodes
    )
    if fits < count:
        raise ConfigError(
            f"{field}: {count} x ({_text(wanted)}) do not fit in the Ray cluster at once "
            f"(room for {fits})"
        )


def check_fits_together(requests: list[tuple[dict[str, float], int]], field: str) -> None:
    """ConfigError naming `field` when the roles `requests` ([(resources each, how many)]) together ask
    for more CPUs or GPUs than the whole cluster has: they run at once, and Ray would wait forever for
    the last of them."""
    nodes = node_resources()
    for kind in ("CPU", "GPU"):
        want = sum(r.get(kind, 0.0) * n for r, n in requests)
        have = sum(node.get(kind, 0.0) for node in nodes)
        if want > have:
            raise ConfigError(
                f"{field}: together they ask for {want:g} {kind}s and the Ray cluster has {have:g}"
            )


def check_gpus_declared(device: str, gpus: float, field: str) -> None:
    """ConfigError naming `field` when the run's `device` is a GPU here (cuda, or auto on a machine with
    one) but the Ray workers that compute for it declare no GPU: Ray would hide every GPU from them and
    they would compute on the CPU without a word."""
    import torch

    wants_gpu = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if wants_gpu and gpus <= 0:
        raise ConfigError(
            f"{field}: the run computes on {'a GPU' if device == 'auto' else device} but these Ray "
            f"workers declare no GPU and would run on the CPU; set {field} (1 for a GPU each), or "
            "device: cpu"
        )


def worker_device(gpus: float) -> str:
    """The device a Ray task or actor that declared `gpus` computes on: the GPU Ray gave it (it sees
    only that one), else the CPU."""
    return "cuda" if gpus > 0 else "cpu"


def set_threads(cpus: float) -> None:
    """torch in this task or actor uses as many threads as it declared CPUs (at least one)."""
    import torch

    torch.set_num_threads(max(1, int(cpus)))


def _text(request: dict[str, float]) -> str:
    return ", ".join(f"{v:g} {k}" for k, v in request.items()) or "no resources"
