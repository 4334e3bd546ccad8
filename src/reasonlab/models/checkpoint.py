"""Saving and loading policies: `model.safetensors` + `config.json` (models/files.py).

config.json holds {"kind": "tiny", "model": <TransformerConfig>, "tokenizer": <tokenizer dict>};
the kind picks the loader (`register_loader` adds one). The tiny policy writes and reads its own folder
(`TinyPolicy.save` / `TinyPolicy.load`, models/tiny_policy.py); a Hugging Face folder (a config.json with
a `model_type` and no `kind`) is loaded by models/hf.py, imported only then. Each file
is written to a temporary name in the same folder and moved into place with `os.replace`, so a
crash never leaves a half-written file (weights are replaced before the config; a crash between
the two leaves new weights with the old config, which then fail to load loudly if shapes differ).
Every failure to load is a `CheckpointError` whose one-line message names the file. Usage:

    save_policy(policy, "runs/demo/base"); policy = load_policy("runs/demo/base")
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from reasonlab.errors import CheckpointError
from reasonlab.models.base import Policy
from reasonlab.models.files import CONFIG, WEIGHTS, one_line  # noqa: F401 (judges/models.py reads WEIGHTS here)
from reasonlab.models.files import load_tensors as _load_tensors  # noqa: F401 (and _load_tensors)
from reasonlab.models.precision import resolve_device, tiny_dtype
from reasonlab.models.tiny_policy import TinyPolicy
from reasonlab.registry import Registry

Loader = Callable[[Path, dict[str, Any], Mapping[str, Any]], Policy]
_LOADERS: Registry[Loader] = Registry("checkpoint kind")


def register_loader(kind: str, loader: Loader) -> None:
    """Teach `load_policy` a new checkpoint kind: `loader(folder, config_dict, options) -> Policy`."""
    _LOADERS.register(kind, loader)


def save_policy(policy: TinyPolicy, directory: str | Path) -> None:
    """Write `policy` to `directory` (created if needed) as model.safetensors + config.json."""
    if not isinstance(policy, TinyPolicy):
        raise TypeError(f"save_policy handles TinyPolicy; {type(policy).__name__} must save itself")
    policy.save(directory)


def hub_hint(name: str) -> str:
    """For a missing folder named like a hub id (`org/model`): how to get a local copy."""
    parts = name.split("/")
    if len(parts) == 2 and all(parts) and not name.startswith((".", "~")):
        return (
            f" (reasonlab loads local folders only; download it first, e.g. "
            f"`huggingface-cli download {name} --local-dir models/{parts[1]}`)"
        )
    return ""


def read_config(directory: str | Path) -> tuple[Path, dict[str, Any]]:
    """The checkpoint folder and its parsed config.json, or a CheckpointError naming what is wrong."""
    d = Path(directory)
    if not d.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {d}{hub_hint(str(directory))}")
    path = d / CONFIG
    if not path.is_file():
        raise CheckpointError(f"checkpoint config missing: {path}")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        raise CheckpointError(f"corrupt checkpoint config {path}: {one_line(e)}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"corrupt checkpoint config {path}: expected a JSON object")
    return d, meta


def load_policy(
    directory: str | Path,
    device: str | torch.device | None = None,
    options: Mapping[str, Any] | None = None,
) -> Policy:
    """Load the policy saved in `directory` (moved to `device` when given); `options` are the `hf`
    config fields for a Hugging Face folder. CheckpointError if it is missing or corrupt."""
    d, meta = read_config(directory)
    kind = meta.get("kind")
    if kind is None and "model_type" in meta:
        kind = "hf"
    loader = _LOADERS.get(kind) if isinstance(kind, str) else None
    if loader is None:
        known = ", ".join(sorted(_LOADERS))
        raise CheckpointError(f"unknown checkpoint kind {kind!r} in {d / CONFIG} (known: {known})")
    policy = loader(d, meta, dict(options or {}))
    if device is not None:
        policy.module.to(device)
    return policy


def _load_tiny(d: Path, meta: dict[str, Any], options: Mapping[str, Any]) -> TinyPolicy:
    """The tiny policy on the run's device and in its compute dtype (options `device`, `dtype`, `decode`)."""
    policy = TinyPolicy.load(d, meta)
    device = resolve_device(options.get("device"))
    policy.place(device, tiny_dtype(options.get("dtype", "auto"), device, policy.config.d_model))
    policy.decode = options.get("decode", "auto")
    return policy


def _load_hf(d: Path, meta: dict[str, Any], options: Mapping[str, Any]) -> Policy:
    from reasonlab.models.hf import (
        load_hf,
    )  # transformers is imported only for Hugging Face folders

    return load_hf(d, meta, options)


register_loader(TinyPolicy.kind, _load_tiny)
register_loader("hf", _load_hf)
