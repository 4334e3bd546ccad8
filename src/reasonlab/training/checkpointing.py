"""Resumable training state: model + optimizer + step (+ any JSON-able extras), written atomically.

Layout: `<dir>/step_000100/{state.pt, state.json}` and `<dir>/latest` naming the newest. A state
folder is written under a temporary name and renamed into place, then `latest` is replaced
atomically, so a crash at any point leaves the previous state intact. The two newest states are kept.
Usage:

    state = latest_state(ckpt_dir, model, optimizer)   # None on a fresh run; loads in place
    save_state(ckpt_dir, TrainState(step=100), model, optimizer)
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from reasonlab.errors import CheckpointError
from reasonlab.fileio import write_text_atomic

KEEP = 2


@dataclass(frozen=True)
class TrainState:
    """Where a training loop stands, beyond its tensors."""

    step: int
    extra: dict[str, Any] = field(default_factory=dict)


def save_state(
    ckpt_dir: Path,
    state: TrainState,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    tensors: dict[str, Any] | None = None,
) -> Path:
    """Write one state folder atomically, point `latest` at it, and prune older ones."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    name = f"step_{state.step:08d}"
    final = ckpt_dir / name
    tmp = ckpt_dir / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    payload = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), **(tensors or {})}
    torch.save(payload, tmp / "state.pt")
    (tmp / "state.json").write_text(json.dumps(asdict(state)))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    write_text_atomic(ckpt_dir / "latest", name)
    for old in sorted(p for p in ckpt_dir.glob("step_*") if p.is_dir())[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_state(
    ckpt_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[TrainState, dict] | None:
    """Load the newest state into `model` and `optimizer` in place; None if there is none yet."""
    pointer = ckpt_dir / "latest"
    if not pointer.is_file():
        return None
    folder = ckpt_dir / pointer.read_text().strip()
    current = folder / "state.json"
    try:
        meta = json.loads(current.read_text())
        current = folder / "state.pt"
        payload = torch.load(current, map_location="cpu", weights_only=True)
        model.load_state_dict(payload.pop("model"))
        optimizer.load_state_dict(payload.pop("optimizer"))
    except (OSError, ValueError, RuntimeError, KeyError, EOFError, pickle.UnpicklingError) as err:
        raise CheckpointError(
            f"cannot resume from {current}: {type(err).__name__}: {_first_line(err)}"
        ) from None
    return TrainState(step=int(meta["step"]), extra=meta.get("extra", {})), payload


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [""])[0][:200]
