"""A list of independent jobs run as Ray tasks: the sweep's cells, the sufficiency report's levels and
random-reward controls.

A `Job` is a picklable function with its arguments, a name and the resources its task declares
(`Resources.of(cfg.ray)`: ray.task_cpus, ray.task_gpus, ray.task_retries). `run_grid(jobs, on_done)`
checks that some node of the cluster can hold each request (Ray would queue it forever), submits every
job at once and hands each `Outcome` to `on_done` as it finishes (`ray.wait`), so the caller can write its
state file after every job. `run_all(jobs, on_ray, say)` is the plain version for a caller that needs
every value: here one job after the other, or on Ray, where a job that still fails is an error.

Inside its task a job first checks that its folder is there: the folder must be on a filesystem every
node shares, at the same path, and the task then writes the same files a run in one process writes. It
runs in the driver's working directory when the node has it (relative paths mean what they mean to the
command), gives torch as many threads as the task declared CPUs, and reports the node it ran on.

Failures: Ray's own retries (`max_retries` with `retry_exceptions`) rerun a job whose function raised or
whose worker died, `retries` times; a job that still fails becomes an Outcome with its one-line error and
the others go on. A KeyboardInterrupt (Ctrl-C) or any other exception in the driver cancels the jobs not
yet finished (`ray.cancel(force=True)`: a cancelled task is not retried) and is raised again.

Departures from a plain `ray.get([f.remote(...) ...])`: no result is lost when one job fails, results come
back in the order they finish (each tagged with its job's index), and an attempt that failed and was
retried is not reported (Ray keeps no attempt count that a task can read). Usage:

    jobs = [Job(c.name, sweep_cell, (matched, c, out), Resources.of(c.config.ray), folder=out) ...]
    outcomes = run_grid(jobs, on_done=lambda i, o: write_state(...))
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonlab.config import RayConfig
from reasonlab.distributed.cluster import check_fits_a_node, import_ray, set_threads
from reasonlab.errors import ReasonlabError

RESOURCE_FIELD = "ray.task_cpus / ray.task_gpus"
MAX_ERROR = 400  # characters of a failed job's one-line error


@dataclass(frozen=True)
class Resources:
    """What each task of a job declares to Ray, and how often a failed one is retried."""

    cpus: float = 1.0
    gpus: float = 0.0
    retries: int = 1

    @classmethod
    def of(cls, rc: RayConfig) -> Resources:
        return cls(cpus=rc.task_cpus, gpus=rc.task_gpus, retries=rc.task_retries)

    def request(self) -> dict[str, float]:
        return {"CPU": self.cpus, "GPU": self.gpus}


@dataclass(frozen=True)
class Job:
    """One independent run: `fn(*args, **kwargs)` in a task (fn and its arguments must pickle; a module-level
    function travels by name, so reasonlab must be installed on every node). `folder`: a folder the task
    needs to see (its run folder or its model), checked on the node before `fn` runs."""

    name: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    resources: Resources = Resources()
    folder: Path | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """How one job ended: its value, or its one-line error after the last attempt; the node it ran on
    (Ray's node id; None when it failed) and its seconds inside the task."""

    name: str
    ok: bool
    value: Any = None
    error: str | None = None
    node: str | None = None
    seconds: float | None = None


class FolderNotShared(ReasonlabError):
    """A job's folder is missing on the node its task landed on."""


class JobsFailed(RuntimeError):
    """A job of `run_all` failed on Ray after its retries; the message names it and its error, on one line."""


OnDone = Callable[[int, Outcome], None]  # (the job's index in the list, its outcome)


def check_jobs(jobs: Sequence[Job]) -> None:
    """ConfigError (naming ray.task_cpus / ray.task_gpus) when no node can hold a job's request; in seconds,
    before anything is submitted."""
    for request in {tuple(sorted(j.resources.request().items())) for j in jobs}:
        check_fits_a_node(dict(request), RESOURCE_FIELD)


def run_grid(
    jobs: Sequence[Job],
    on_done: OnDone = lambda i, o: None,
    on_submit: Callable[[int, Job], None] = lambda i, j: None,
) -> list[Outcome]:
    """Run every job as a Ray task on the Ray this process is connected to; returns the outcomes in the
    jobs' order. `on_submit` sees each job as it is submitted, `on_done` each outcome as it finishes."""
    ray = import_ray()
    check_jobs(jobs)
    task = ray.remote(run_job)
    pending: dict[Any, int] = {}  # ObjectRef -> index of its job
    outcomes: list[Outcome | None] = [None] * len(jobs)
    try:
        for i, job in enumerate(jobs):
            r = job.resources
            ref = task.options(
                name=job.name,
                num_cpus=r.cpus,
                num_gpus=r.gpus,
                max_retries=r.retries,
                retry_exceptions=True,
            ).remote(job.fn, job.args, dict(job.kwargs), r.cpus, job.folder, os.getcwd())
            pending[ref] = i
            on_submit(i, job)
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(ref)
            outcomes[i] = collect(ray, ref, jobs[i].name)
            on_done(i, outcomes[i])
    except BaseException:
        # Ctrl-C or a failing callback: nothing keeps running behind the caller's back
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    return [o for o in outcomes if o is not None]


def run_all(jobs: Sequence[Job], on_ray: bool, say: Callable[[str], None]) -> list[Any]:
    """Every job's value, in the jobs' order: here one after the other (saying each job's name first), or
    as Ray tasks (`on_ray`), where a job that still fails after its retries is a JobsFailed once the
    others have finished. For a caller that needs every value, not a record of each failure."""
    if not on_ray:
        values = []
        for job in jobs:
            say(job.name)
            values.append(job.fn(*job.args, **job.kwargs))
        return values

    def done(i: int, o: Outcome) -> None:
        node = f" on node {o.node[:8]}" if o.node else ""
        say(f"{o.name}: done in {o.seconds} s{node}" if o.ok else f"{o.name}: FAILED: {o.error}")

    outcomes = run_grid(jobs, on_done=done, on_submit=lambda i, j: say(f"{j.name} -> Ray"))
    failed = [o for o in outcomes if not o.ok]
    if failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise JobsFailed(f"{failed[0].name}: failed on Ray: {failed[0].error}{more}")
    return [o.value for o in outcomes]


def collect(ray: Any, ref: Any, name: str) -> Outcome:
    """The finished task behind `ref` as an Outcome: its value, or its error on one line."""
    try:
        value, node, seconds = ray.get(ref)
    except ray.exceptions.RayTaskError as err:  # the job's function raised, on every attempt
        return Outcome(name, ok=False, error=one_line(err.cause or err))
    except ray.exceptions.RayError as err:  # its worker died, on every attempt; or it was cancelled
        return Outcome(name, ok=False, error=one_line(err))
    return Outcome(name, ok=True, value=value, node=node, seconds=seconds)


def run_job(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    cpus: float,
    folder: Path | None,
    cwd: str,
) -> tuple[Any, str, float]:
    """The body of every grid task: check the folder (relative to the driver's working directory `cwd`), set
    torch's threads, run in `cwd` when this node has it; (value, node id, seconds)."""
    ray = import_ray()
    node = ray.get_runtime_context().get_node_id()
    if folder is not None and not (Path(cwd) / folder).is_dir():
        raise FolderNotShared(
            f"{Path(cwd) / folder} does not exist on Ray node {node[:12]}: the run folder must be on a "
            "filesystem that every node of the cluster shares (NFS, a mounted bucket), at the same path"
        )
    set_threads(cpus)
    before = os.getcwd()
    if Path(cwd).is_dir():
        os.chdir(cwd)  # a worker runs many tasks: each gets its own driver's directory
    try:
        t = time.perf_counter()
        value = fn(*args, **kwargs)
        return value, node, round(time.perf_counter() - t, 1)
    finally:
        os.chdir(before)


def one_line(err: BaseException) -> str:
    """A failed job's error as one line: a reasonlab error's message, else `Type: message`, cut short."""
    text = " ".join(str(err).split())
    text = text if isinstance(err, ReasonlabError) else f"{type(err).__name__}: {text}"
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."
