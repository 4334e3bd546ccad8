"""Metrics logging: one flat JSON dict per line in `metrics.jsonl`, and TensorBoard when asked.

Names are prefixed by stage (`train/`, `eval/`, ...). On resume, lines past the resumed step are
dropped so the file reads as one uninterrupted run. Usage:

    with MetricsLogger(run_dir / "metrics.jsonl") as log:
        log.log({"train/loss": 1.2}, step=10)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from reasonlab.fileio import write_text_atomic


class MetricsLogger:
    """Append-only JSONL metrics (flushed per line, so a crash loses at most the line being written)."""

    def __init__(self, path: Path, tensorboard_dir: Path | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a")
        self._tb = _tensorboard_writer(tensorboard_dir) if tensorboard_dir else None

    def log(self, metrics: dict[str, Any], step: int) -> None:
        row = {"step": step, **{k: _plain(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All complete rows of a metrics file (a torn last line from a crash is skipped)."""
    if not Path(path).is_file():
        return []
    rows = []
    for line in Path(path).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def truncate_after(path: Path, step: int, prefixes: tuple[str, ...]) -> None:
    """Drop rows past `step` that hold a key starting with one of `prefixes` (used on resume)."""
    if not Path(path).is_file():
        return
    kept = [
        r
        for r in read_metrics(path)
        if not (r.get("step", 0) > step and any(k.startswith(prefixes) for k in r if k != "step"))
    ]
    write_text_atomic(Path(path), "".join(json.dumps(r) + "\n" for r in kept))


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def _tensorboard_writer(log_dir: Path) -> Any:
    from reasonlab.errors import ConfigError

    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            "tracking.tensorboard: install the `tensorboard` package to use it"
        ) from None
    return SummaryWriter(log_dir=str(log_dir))
