"""Fixtures shared across test files: one tiny finished run (`reasonlab run` on the TINY settings of
tests/runs.py, about a minute), a headless browser session for the report checks, and the device the
model tests run on.

Device-aware tests take the `device` fixture: `REASONLAB_TEST_DEVICE` (cpu by default; cuda, cuda:1
run them on a GPU, and skip them with the reason when torch sees none). `auto_dtype` is the dtype a
Hugging Face model's `dtype: auto` resolves to there (float32 on CPU, bfloat16 on a GPU that has it,
else float16), and `tolerance(dtype, atol, rtol)` the atol / rtol to compare two computations in it:
the test's own tight values in float32, a few units of rounding in bfloat16 and float16. Usage:

    def test_x(device, auto_dtype, tolerance):
        torch.testing.assert_close(a, b, **tolerance(auto_dtype, atol=1e-4, rtol=1e-4))
"""

import os

import pytest
import torch

from browser import MISSING_REASON, Browser, browser_available
from runs import TINY, reasonlab

DEVICE_VARIABLE = "REASONLAB_TEST_DEVICE"
ROUNDING_UNITS = 4  # a low-precision comparison allows this many eps of the dtype (bf16: 0.031)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    proc = reasonlab("run", "--out", str(out), *TINY)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return out


@pytest.fixture(scope="session")
def browser():
    if not browser_available():
        pytest.skip(MISSING_REASON)
    session = Browser()
    yield session
    session.close()


def requested_device() -> torch.device:
    """The device named by $REASONLAB_TEST_DEVICE (cpu when unset); fails on a name torch cannot read."""
    name = os.environ.get(DEVICE_VARIABLE, "").strip() or "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        pytest.fail(
            f"{DEVICE_VARIABLE}={name!r}: not a device (cpu, cuda, cuda:1, ...)", pytrace=False
        )
    if device.type not in ("cpu", "cuda"):
        pytest.fail(f"{DEVICE_VARIABLE}={name!r}: the tests run on cpu or cuda", pytrace=False)
    return device


def missing_gpu(device: torch.device) -> str | None:
    """Why `device` cannot run here (a GPU torch does not see), None when it can."""
    if device.type != "cuda":
        return None
    if not torch.cuda.is_available():
        return f"{DEVICE_VARIABLE}={device} but torch sees no CUDA GPU here"
    if device.index is not None and device.index >= torch.cuda.device_count():
        return f"{DEVICE_VARIABLE}={device} but torch sees {torch.cuda.device_count()} GPU(s)"
    return None


def auto_dtype_on(device: torch.device) -> torch.dtype:
    """What a Hugging Face model's `dtype: auto` is on `device`: the GPU's half type, float32 on CPU."""
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def dtype_tolerance(dtype: torch.dtype, atol: float = 1e-5, rtol: float = 1e-5) -> dict[str, float]:
    """atol / rtol for two computations of the same values in `dtype`: the given (tight) ones in float32,
    at least ROUNDING_UNITS eps of the dtype in bfloat16 / float16 (their outputs are rounded per op)."""
    if dtype not in (torch.bfloat16, torch.float16):
        return {"atol": atol, "rtol": rtol}
    loose = ROUNDING_UNITS * torch.finfo(dtype).eps
    return {"atol": max(atol, loose), "rtol": max(rtol, loose)}


@pytest.fixture(scope="session")
def device() -> torch.device:
    """The device the model tests run on ($REASONLAB_TEST_DEVICE, default cpu); skips without its GPU."""
    chosen = requested_device()
    reason = missing_gpu(chosen)
    if reason is not None:
        pytest.skip(reason)
    return chosen


@pytest.fixture(scope="session")
def auto_dtype(device) -> torch.dtype:
    return auto_dtype_on(device)


@pytest.fixture(scope="session")
def tolerance():
    return dtype_tolerance


@pytest.fixture
def cli_device(device, monkeypatch) -> torch.device:
    """The test device for `reasonlab` subprocesses: on cpu their `auto` device is made cpu too (no GPU
    visible to them); on a GPU they are given the device where the command has an option for it."""
    if device.type == "cpu":
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    return device


RAY_TEST_CPUS = 2
RAY_TEST_STORE_MB = 150  # a small object store, as on a laptop


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray for this test session (started once, shut down at the end), started as `--ray
    local` starts one (distributed/cluster.py): 2 CPUs, no dashboard, a small object store. Skips with
    the reason when Ray is not installed."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[dev]')")
    from reasonlab.distributed.cluster import start_local

    if not ray.is_initialized():
        start_local(RAY_TEST_CPUS, RAY_TEST_STORE_MB)
    yield ray
    ray.shutdown()


@pytest.fixture
def one_thread():
    """torch on one thread for the test: tiny models run fastest so, a busy neighbour on the CPU cannot
    stall them, and an in-process run does the same arithmetic as a Ray task of ray.task_cpus=1."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
