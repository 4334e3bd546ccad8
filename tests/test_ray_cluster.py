"""distributed/cluster.py on a real local Ray: which Ray a flag asks for, an address nobody answers
refused in seconds, resource requests no node can hold refused instead of queued forever, the object
store sized for a small machine, torch's threads set to what a task declared."""

from __future__ import annotations

import socket
import time

import pytest
import torch

from reasonlab.distributed import cluster
from reasonlab.errors import ConfigError


def test_spec_comes_from_the_flag_then_ray_address(monkeypatch):
    monkeypatch.delenv(cluster.ADDRESS_VARIABLE, raising=False)
    assert cluster.resolve_spec(None) is None  # one process by default
    assert cluster.resolve_spec(" local ") == "local"
    monkeypatch.setenv(cluster.ADDRESS_VARIABLE, "10.0.0.5:6379")
    assert cluster.resolve_spec(None) == "10.0.0.5:6379"
    assert cluster.resolve_spec("local") == "local"  # the flag wins over the environment


def test_connect_without_a_spec_starts_nothing(monkeypatch):
    monkeypatch.delenv(cluster.ADDRESS_VARIABLE, raising=False)
    with cluster.connect(None) as on:
        assert on is False


def _closed_port() -> int:
    with socket.socket() as s:  # a port that was free a moment ago: nobody listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_nobody_answers_is_refused_in_seconds():
    t = time.perf_counter()
    with pytest.raises(ConfigError, match=r"^--ray: no Ray cluster answers at 127\.0\.0\.1:\d+"):
        cluster.join(f"127.0.0.1:{_closed_port()}")
    assert time.perf_counter() - t < 2 * cluster.REACH_TIMEOUT_S


@pytest.mark.parametrize("address", ["nohost", "host:port", ":6379", "ray://"])
def test_a_malformed_address_names_the_flag(address):
    with pytest.raises(ConfigError, match="is not 'local', 'auto', HOST:PORT"):
        cluster.check_reachable(address)


def test_a_request_no_node_can_hold_is_refused(ray_local):
    cpus = max(n["CPU"] for n in cluster.node_resources())
    cluster.check_fits_a_node({"CPU": 1, "GPU": 0}, "ray.task_cpus")  # fits: no error
    with pytest.raises(ConfigError, match=r"^ray\.task_gpus: no node of the Ray cluster has 1 GPU"):
        cluster.check_fits_a_node({"GPU": 1}, "ray.task_gpus")
    with pytest.raises(ConfigError, match=r"^ray\.task_cpus: no node .* has \d+ CPU"):
        cluster.check_fits_a_node({"CPU": cpus + 1}, "ray.task_cpus")
    room = int(cpus)
    with pytest.raises(
        ConfigError, match=rf"^rl\.learners: {room + 1} x \(1 CPU\) .* \(room for {room}\)"
    ):
        cluster.check_fits_a_node({"CPU": 1}, "rl.learners", count=room + 1)


def test_the_object_store_fits_in_dev_shm(monkeypatch):
    monkeypatch.setattr(
        cluster.shutil, "disk_usage", lambda _: type("U", (), {"free": 200 * 2**20})
    )
    assert cluster.object_store_bytes(512) == int(200 * 2**20 * cluster.SHM_SHARE)
    assert cluster.object_store_bytes(100) == 100 * 2**20
    assert cluster.object_store_bytes(10) == 75 * 2**20  # Ray's minimum


def test_a_task_uses_the_threads_it_declared(ray_local):
    @ray_local.remote(num_cpus=1)
    def threads(cpus: float) -> int:
        cluster.set_threads(cpus)
        return torch.get_num_threads()

    assert ray_local.get(threads.remote(1)) == 1
    assert ray_local.get(threads.remote(2.5)) == 2


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_workers_without_a_gpu_for_a_gpu_run_are_refused(device):
    with pytest.raises(
        ConfigError, match=r"^ray\.learner_gpus: the run computes on cuda.* declare no GPU"
    ):
        cluster.check_gpus_declared(device, 0, "ray.learner_gpus")
    cluster.check_gpus_declared(device, 1, "ray.learner_gpus")  # a GPU each: fine
    cluster.check_gpus_declared("cpu", 0, "ray.learner_gpus")  # a CPU run: fine


def test_auto_wants_a_gpu_only_where_torch_sees_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cluster.check_gpus_declared("auto", 0, "ray.task_gpus")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ConfigError, match=r"^ray\.task_gpus: the run computes on a GPU"):
        cluster.check_gpus_declared("auto", 0, "ray.task_gpus")


def test_roles_that_fit_alone_but_not_together_are_refused(ray_local):
    cpus = sum(n["CPU"] for n in cluster.node_resources())
    one = ({"CPU": 1, "GPU": 0}, int(cpus) // 2)
    cluster.check_fits_together([one, one], "rl.rollout_workers + rl.learners")  # exactly fits
    with pytest.raises(
        ConfigError,
        match=rf"^rl\.rollout_workers \+ rl\.learners: together they ask for {int(cpus) + 1} CPUs",
    ):
        cluster.check_fits_together(
            [one, ({"CPU": 1}, int(cpus) // 2 + 1)], "rl.rollout_workers + rl.learners"
        )
