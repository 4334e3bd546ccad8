"""Where a model runs and in what precision: the run's `device` and `dtype` resolved to torch values.

- device `auto`: cuda when a GPU is visible, else cpu.
- dtype `auto` for a Hugging Face model: bfloat16 on a GPU that has it (else float16), float32 on CPU.
- dtype `auto` for the tiny transformer: bfloat16 on a GPU; on CPU bfloat16 only where it measured faster,
  i.e. a CPU with bf16 matrix instructions (avx512_bf16 or amx_bf16) and d_model >= `BF16_MIN_WIDTH`
  (at the default width, 128, the training step is bound by elementwise work and bf16 gains nothing;
  benchmarks/precision.py and the table in benchmarks/README.md). float32 otherwise.

The tiny transformer keeps float32 weights (the optimizer's master copy) and runs its matrix products in
the low precision under `torch.autocast`; decoding reads bfloat16 copies of the weights and a bfloat16
KV cache (models/transformer.py). Usage:

    device = resolve_device(cfg.device)
    dtype = tiny_dtype(cfg.dtype, device, cfg.model.d_model)
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from reasonlab.errors import ConfigError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
BF16_MIN_WIDTH = 256  # the narrowest d_model whose CPU training step measured faster in bfloat16


def resolve_device(name: str | torch.device | None) -> torch.device:
    """`auto` (or None): cuda when available, else cpu; any other name as torch reads it."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"device: unknown device {name!r} (auto, cpu, cuda, cuda:1, ...)"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name} asked for, but torch sees no GPU (use cpu or auto)")
    return device


def gpu_dtype() -> torch.dtype:
    """bfloat16 on a GPU that supports it, else float16."""
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def hf_dtype(name: str, device: torch.device) -> torch.dtype:
    """A Hugging Face model's weights dtype: `auto` is the GPU's half type, float32 on CPU."""
    if name == "auto":
        return gpu_dtype() if device.type == "cuda" else torch.float32
    return named_dtype(name)


def tiny_dtype(name: str, device: torch.device, d_model: int) -> torch.dtype:
    """The tiny transformer's compute dtype (see the module docstring for `auto`)."""
    if name != "auto":
        return named_dtype(name)
    if device.type == "cuda":
        return gpu_dtype()
    if device.type == "cpu" and d_model >= BF16_MIN_WIDTH and cpu_has_bf16():
        return torch.bfloat16
    return torch.float32


def named_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ConfigError(f"dtype: unknown dtype {name!r} (known: auto, {', '.join(DTYPES)})")
    return DTYPES[name]


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU has bfloat16 matrix instructions (x86 avx512_bf16 / amx_bf16; Linux flags)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
