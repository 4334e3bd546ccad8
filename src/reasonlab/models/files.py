"""The files of a saved model folder: `model.safetensors` (weights) + `config.json` (what they are).

Shared by every format that writes such a folder (the tiny policy, models/tiny_policy.py; the learned
judges) and by the loader that dispatches on it (models/checkpoint.py). Every failure to read the weights
is a `CheckpointError` whose one-line message names the file. Usage:

    tensors = load_tensors(folder / WEIGHTS)
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from reasonlab.errors import CheckpointError

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def one_line(err: BaseException) -> str:
    """An exception's message on one line (its type's name when it has none)."""
    text = str(err).strip()
    return " ".join(text.split()) if text else type(err).__name__


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; CheckpointError naming it when it is missing or corrupt."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint weights missing: {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"corrupt checkpoint weights {path}: {one_line(e)}") from None
