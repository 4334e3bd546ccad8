"""Atomic file writes: a file is written under a temporary name beside its target, flushed to disk
and renamed over it, so a crash leaves either the old file or the new one, never half of either.
And reading a data file as text, with one-line errors naming the file.

    write_text_atomic(run_dir / "summary.json", text)
    text = read_data_text(Path("problems.jsonl"))
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp)))
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reasonlab.errors import DataError


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary path next to `path`, fsync it, then move it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def read_data_text(path: Path) -> str:
    """A data file's text (UTF-8, a BOM skipped); DataError naming the file when it cannot be read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such data file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read the data file ({e.strerror or e})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (bad byte at offset {e.start})") from None


def read_json_or_none(path: Path) -> Any:
    """The parsed JSON file at `path`, or None when it is missing or not valid JSON (an optional result)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None
