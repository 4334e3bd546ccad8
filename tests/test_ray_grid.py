"""distributed/grid.py and the commands that run their independent jobs on Ray, on real Ray clusters.

In this process, on the session's local Ray (`ray_local`): jobs come back with their values, their node
and the threads they declared; a raising job is retried and then recorded while the others finish; a
job whose worker dies is retried; a folder missing on the node is one clear line; a request no node can
hold fails in seconds; Ctrl-C cancels what is left; the sufficiency measurement gives the same result on
Ray as here. Through the command: a tiny sweep (with its compute-matched arm) on `--ray local --ray-cpus
2` writes the same rows and files as a run in one process (both on one thread, so the numbers are
equal); a rerun joined to a cluster skips the finished cells; a worker killed mid-sweep is retried and no
cell is lost; two simulated nodes (`ray.cluster_utils.Cluster`, in a subprocess of its own) share the
cells; an address nobody answers and a GPU request on a machine without one are one line and exit code
2 in seconds, with nothing written."""

import _thread
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml

from reasonlab.config import SufficiencySettings, load_config
from reasonlab.distributed.grid import Job, Resources, run_all, run_grid
from reasonlab.errors import ConfigError
from reasonlab.experiments.sweep import run_sweep
from reasonlab.experiments.sweep_plan import load_plan
from runs import TINY_SWEEP_SET, assert_one_line_error, reasonlab, summary_mtimes

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[dev]')")
# the job functions below travel to the workers by value: tests/ is not importable there
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

TINY_SET = {
    **TINY_SWEEP_SET,
    "pretrain": {**TINY_SWEEP_SET["pretrain"], "checkpoint_every": 10},
    "device": "cpu",
}
GRID = {"pretrain.lr": [0.003, 0.002]}
CELLS = ["lr-0.003", "lr-0.002"]
FAST_FAIL_S = (
    15  # a refused request or address answers in seconds (the command's start-up included)
)


def write_sweep(tmp_path, name="tiny", set_=None, **fields):
    path = tmp_path / f"{name}.yaml"
    body = {"name": name, "set": {**TINY_SET, **(set_ or {})}, "grid": GRID, **fields}
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def rows(out):
    return json.loads((out / "sweep.json").read_text())["cells"]


def timeless(value):
    """A row or summary without what depends on the clock, the machine or the node."""
    if isinstance(value, dict):
        return {
            k: timeless(v)
            for k, v in value.items()
            if k not in ("timings", "node", "wall_matched_tokens", "pretrain_tokens_per_s")
            and not k.endswith("_s")
            and not k.startswith(("time/", "resources/"))
        }
    return value


def session_address(ray):
    return ray.get_runtime_context().gcs_address


# ---- the grid in this process, on the session's Ray --------------------------------------------------------


def threads():
    return torch.get_num_threads()


def count_and_fail(path, fail_times):
    """Appends a line to `path`; raises until it holds more than `fail_times` lines."""
    with open(path, "a") as f:
        f.write("attempt\n")
    attempts = len(Path(path).read_text().splitlines())
    if attempts <= fail_times:
        raise ValueError(f"attempt {attempts}\nfailed")
    return attempts


def die_first(path):
    """Kills its own worker on the first attempt; returns the attempt number after."""
    with open(path, "a") as f:
        f.write("attempt\n")
    attempts = len(Path(path).read_text().splitlines())
    if attempts == 1:
        os._exit(1)
    return attempts


def sleep_then_mark(path, seconds):
    time.sleep(seconds)
    Path(path).write_text("finished")


def test_jobs_return_their_values_nodes_and_declared_threads(ray_local):
    node = ray_local.get_runtime_context().get_node_id()
    seen = []
    jobs = [
        Job("one", threads, resources=Resources(cpus=1)),
        Job("two", threads, resources=Resources(cpus=2)),
    ]
    outcomes = run_grid(jobs, on_done=lambda i, o: seen.append((i, o.name)))
    assert [(o.ok, o.value, o.node) for o in outcomes] == [(True, 1, node), (True, 2, node)]
    assert sorted(seen) == [(0, "one"), (1, "two")]  # every job once, with its index


def test_a_raising_job_is_retried_then_recorded_and_the_others_finish(ray_local, tmp_path):
    always, once, never = tmp_path / "always", tmp_path / "once", tmp_path / "never"
    outcomes = run_grid(
        [
            Job("always", count_and_fail, (always, 99), Resources(retries=1)),
            Job("once", count_and_fail, (once, 1), Resources(retries=1)),
            Job("no retry", count_and_fail, (never, 99), Resources(retries=0)),
            Job("fine", threads),
        ]
    )
    failed, retried, not_retried, fine = outcomes
    assert (
        not failed.ok and failed.error == "ValueError: attempt 2 failed"
    )  # one line, last attempt
    assert len(always.read_text().splitlines()) == 2  # the first try and one retry
    assert retried.ok and retried.value == 2
    assert not not_retried.ok and len(never.read_text().splitlines()) == 1
    assert fine.ok and fine.value == 1


def test_a_job_whose_worker_dies_is_retried(ray_local, tmp_path):
    once, twice = tmp_path / "once", tmp_path / "twice"
    revived, lost = run_grid(
        [
            Job("dies once", die_first, (once,), Resources(retries=1)),
            Job("no retry", die_first, (twice,), Resources(retries=0)),
        ]
    )
    assert revived.ok and revived.value == 2
    assert not lost.ok and "\n" not in lost.error and "Worker" in lost.error


def test_a_folder_missing_on_the_node_is_one_clear_line(ray_local, tmp_path):
    [outcome] = run_grid(
        [Job("cell", threads, folder=tmp_path / "elsewhere", resources=Resources(retries=0))]
    )
    assert not outcome.ok and "\n" not in outcome.error
    assert str(tmp_path / "elsewhere") in outcome.error and "shares" in outcome.error


@pytest.mark.parametrize(
    "resources, fragment", [(Resources(gpus=1), "1 GPU"), (Resources(cpus=64), "64 CPU")]
)
def test_a_request_no_node_can_hold_fails_in_seconds(ray_local, tmp_path, resources, fragment):
    t = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        run_grid([Job("big", sleep_then_mark, (tmp_path / "ran", 0), resources)])
    assert time.perf_counter() - t < 5 and not (tmp_path / "ran").exists()
    assert "ray.task_cpus / ray.task_gpus" in str(err.value) and fragment in str(err.value)


def test_ctrl_c_cancels_the_remaining_jobs(ray_local, tmp_path):
    marks = [tmp_path / f"mark{i}" for i in range(3)]
    jobs = [Job(f"slow {i}", sleep_then_mark, (m, 30)) for i, m in enumerate(marks)]
    timer = threading.Timer(2.0, _thread.interrupt_main, (signal.SIGINT,))  # Ctrl-C, 2 s in

    def submitted(i, job):
        if i == len(jobs) - 1:
            timer.start()

    t = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_grid(jobs, on_submit=submitted)
    finally:
        timer.cancel()  # never an interrupt outside run_grid
    assert time.perf_counter() - t < 10
    deadline = time.time() + 20  # the killed workers give their CPUs back
    while ray_local.available_resources().get("CPU", 0) < 2 and time.time() < deadline:
        time.sleep(0.2)
    assert ray_local.available_resources().get("CPU", 0) == 2
    assert not any(m.exists() for m in marks)


def test_run_all_in_this_process_and_on_ray(ray_local, tmp_path):
    said = []
    jobs = [Job("a", threads), Job("b", threads, resources=Resources(cpus=2))]
    before = torch.get_num_threads()
    assert run_all(jobs, False, said.append) == [before, before] and said == ["a", "b"]
    assert run_all(jobs, True, said.append) == [1, 2]
    failing = [*jobs, Job("bad", count_and_fail, (tmp_path / "n", 9), Resources(retries=0))]
    with pytest.raises(RuntimeError, match="bad: failed on Ray: ValueError: attempt 1 failed"):
        run_all(failing, True, said.append)


def test_sufficiency_on_ray_gives_the_same_result(ray_local, tmp_path):
    from reasonlab.experiments.sufficiency import run_sufficiency
    from reasonlab.judges.likelihood import LikelihoodJudge
    from reasonlab.models import CharTokenizer, TinyPolicy, TransformerConfig, load_policy

    folder = tmp_path / "base"
    config = TransformerConfig(
        vocab_size=CharTokenizer().vocab_size, d_model=32, n_layers=1, n_heads=2, d_ff=64
    )
    TinyPolicy.create(config, seed=0).save(folder)
    cfg = load_config(
        None,
        [
            "device=cpu",
            "rl.prompts_per_step=4",
            "rl.group_size=4",
            "rl.max_new_tokens=32",
            "rl.kl_monitor_every=0",
        ],
    )
    policy = load_policy(folder, options=cfg.model_options())
    settings = SufficiencySettings(n=4, n_problems=2, best_of=2, control_steps=2, max_new_tokens=24)
    args = (policy, "arith", {}, [2, 3], settings, LikelihoodJudge(policy), 0)
    said = []
    here = run_sufficiency(*args, rl_config=cfg, base_dir=folder)
    on_ray = run_sufficiency(*args, rl_config=cfg, base_dir=folder, say=said.append, ray=cfg.ray)
    assert set(here["time"]) == set(on_ray["time"])
    here.pop("time"), on_ray.pop("time")
    assert on_ray == here and len(on_ray["control"]["random"]["reward"]) == 2
    assert sum("-> Ray" in m for m in said) == 4 and sum("done in" in m for m in said) == 4


# ---- the sweep command on Ray ----------------------------------------------------------------------------


def test_a_sweep_on_ray_matches_one_process_and_resumes(ray_local, tmp_path, one_thread):
    path = write_sweep(tmp_path, matched={"compute": "flops"})
    here, there = tmp_path / "here", tmp_path / "there"
    run_sweep(load_plan(path), here)
    proc = reasonlab(
        "sweep", "--config", str(path), "--out", str(there), "--ray", "local", "--ray-cpus", "2"
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "lr-0.003 -> Ray (1 CPU, 0 GPU)" in proc.stdout and "more pretraining" not in proc.stderr
    ray_rows, local_rows = rows(there), rows(here)
    assert [r["name"] for r in ray_rows] == CELLS and all(
        r["status"] == "finished" for r in ray_rows
    )
    assert all("more" in r and "node" in r for r in ray_rows)  # the arm ran in the cell's task
    assert [timeless(r) for r in ray_rows] == [timeless(r) for r in local_rows]
    for cell in CELLS:
        files = {p.relative_to(here) for p in (here / "cells" / cell).rglob("*")}
        assert {p.relative_to(there) for p in (there / "cells" / cell).rglob("*")} == files
        summary = [
            json.loads((d / "cells" / cell / "summary.json").read_text()) for d in (here, there)
        ]
        assert timeless(summary[0]) == timeless(summary[1])
    assert (there / "sweep.html").is_file() and (there / "sweep.md").read_text().count(
        "lr-0.00"
    ) >= 2

    before = summary_mtimes(there)
    again = reasonlab(
        "sweep", "--config", str(path), "--out", str(there), "--ray", session_address(ray_local)
    )
    assert again.returncode == 0, again.stderr + again.stdout
    assert again.stdout.count("finished earlier, skipped") == 2 and "-> Ray" not in again.stdout
    assert (
        summary_mtimes(there) == before and [r["status"] for r in rows(there)] == ["finished"] * 2
    )
    assert [r["node"] for r in rows(there)] == [
        r["node"] for r in ray_rows
    ]  # kept from the first run


def worker_of(title):
    """The pid of the Ray worker whose process title is `ray::<title>` (running that task), else None."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(f"ray::{title}".encode()):
                    return int(entry.name)
            except OSError:
                continue
    return None


def test_a_worker_killed_mid_sweep_is_retried_and_no_cell_is_lost(ray_local, tmp_path):
    path = write_sweep(tmp_path, set_={"pretrain.token_budget": 40000})
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "reasonlab.cli", "sweep", "--config", str(path), "--out", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--ray", session_address(ray_local)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed, seen, deadline = None, None, time.time() + 120
    while killed is None and proc.poll() is None and time.time() < deadline:
        pid = worker_of(CELLS[0])
        seen = seen or (pid and time.time())
        if pid and time.time() - seen > 1.5:  # well into its pretraining
            os.kill(pid, signal.SIGKILL)
            killed = pid
        time.sleep(0.1)
    stdout, stderr = proc.communicate(timeout=180)
    assert killed is not None, "the cell's worker was never seen running: " + stdout
    assert proc.returncode == 0, stderr + stdout
    first, second = rows(out)
    assert first["status"] == "finished" and second["status"] == "finished"  # retried, resumed
    for cell in CELLS:
        assert (out / "cells" / cell / "summary.json").is_file()


CLUSTER_SCRIPT = """
import json, subprocess, sys
from ray.cluster_utils import Cluster

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
cluster.add_node(num_cpus=1)
cluster.wait_for_nodes()
try:
    proc = subprocess.run(
        [sys.executable, "-m", "reasonlab.cli", "sweep", *sys.argv[1:], "--ray", cluster.address],
        capture_output=True, text=True, timeout=240,
    )
finally:
    cluster.shutdown()
print(json.dumps({"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}))
"""


def test_two_nodes_share_the_cells(tmp_path):
    """Two simulated nodes of one CPU each (ray.cluster_utils.Cluster, in a subprocess so that it cannot
    meet this session's Ray): the two cells run at once, one on each node."""
    path = write_sweep(tmp_path)
    out = tmp_path / "out"
    script = tmp_path / "cluster.py"
    script.write_text(CLUSTER_SCRIPT)
    env = {**os.environ, "RAY_ADDRESS": ""}
    proc = subprocess.run(
        [sys.executable, str(script), "--config", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=400,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sweep["rc"] == 0, sweep["stderr"] + sweep["stdout"]
    cells = rows(out)
    assert [c["status"] for c in cells] == ["finished", "finished"]
    assert len({c["node"] for c in cells}) == 2  # one cell on each node


# ---- bad input: one line, exit code 2, in seconds, nothing written ------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_nobody_answers_is_one_line(tmp_path):
    path, out = write_sweep(tmp_path), tmp_path / "out"
    t = time.perf_counter()
    proc = reasonlab(
        "sweep", "--config", str(path), "--out", str(out), "--ray", f"127.0.0.1:{free_port()}"
    )
    assert time.perf_counter() - t < FAST_FAIL_S
    assert_one_line_error(proc, "--ray", "no Ray cluster answers")
    assert not out.exists()


def test_a_gpu_request_without_a_gpu_is_one_line(ray_local, tmp_path):
    path, out = write_sweep(tmp_path, set_={"ray.task_gpus": 1}), tmp_path / "out"
    t = time.perf_counter()
    proc = reasonlab(
        "sweep", "--config", str(path), "--out", str(out), "--ray", session_address(ray_local)
    )
    assert time.perf_counter() - t < FAST_FAIL_S
    assert_one_line_error(proc, "ray.task_gpus", "1 GPU")
    assert not out.exists()
