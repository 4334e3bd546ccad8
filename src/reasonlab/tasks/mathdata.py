"""Reading math benchmark files: JSONL rows -> (id, problem, gold answer, level, meta), cached.

One JSON object a line, in the field names of the common public files (MATH / MATH-500, AIME,
AMC, GSM8K): the problem in `problem` or `question`, the reference answer in `answer`, the id in
`id` or `unique_id` (else the line number), the difficulty MATH's `level` (1-5 or "Level 3", else
0); `subject` and `solution` are kept in Row.meta. Gold answers are normalised the way the public
files write them: GSM8K's `answer` is a worked solution ending in `#### <number>` (the number,
thousands commas removed, is the answer; the text before it the solution); AMC's floats such as
27.0 become "27"; integers written with leading zeros (AIME's "025") become "25". Anything else is
kept as written (stripped) for math-verify to parse: no `strip_string`-style rewriting as in
Qwen2.5-Math's evaluation.

A bad JSON line, a row missing a field or a duplicate id is skipped and listed in
MathFile.skipped as "<file>:<line>: <field>: <reason>"; a missing or unreadable file, or one
without a usable row, is a DataError naming the file. Parsed files are cached per (path, mtime,
size), so building the same task twice reads the file once. The data folder (`resolve_data_dir`)
is the `data_dir` knob (`--data-dir`), else $REASONLAB_DATA_DIR, else the public benchmark files
shipped in the package (reasonlab/data/, see its README.md); `file_knob` and `benchmark_file` find a
task's file in it, with a ConfigError saying how to point at it when it is not there.

Usage (tasks/math.py builds its problems from it):
    parsed = read_math_file(resolve_data_dir() / "gsm8k_test.jsonl")   # MathFile(rows, skipped)
    python -c "from reasonlab.tasks.mathdata import read_math_file, resolve_data_dir; \\
        f = read_math_file(resolve_data_dir() / 'gsm8k_test.jsonl'); print(len(f.rows), f.skipped)"
"""

from __future__ import annotations

import importlib.resources
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonlab.errors import ConfigError, DataError
from reasonlab.fileio import read_data_text
from reasonlab.tasks.base import short_repr

DATA_DIR_ENV = "REASONLAB_DATA_DIR"
INTEGER = re.compile(r"[+-]?\d+")


# ---------------------------------------------------------------------------------------------
# Rows


@dataclass(frozen=True)
class Row:
    """One usable row of a math file."""

    line: int
    id: str
    problem: str
    answer: str
    difficulty: int
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MathFile:
    """The usable rows of a file, in file order, and a message per skipped line."""

    rows: tuple[Row, ...]
    skipped: tuple[str, ...]


class BadRow(Exception):
    """One row's fault: the field and the reason."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(field_name, reason)
        self.field_name, self.reason = field_name, reason


_FILES: dict[Path, tuple[tuple[int, int], MathFile]] = {}


def read_math_file(path: Path) -> MathFile:
    """The parsed file, from the cache when its mtime and size are unchanged."""
    try:
        stat = path.stat()
    except OSError as e:
        raise DataError(f"{path}: cannot read the data file ({e.strerror or e})") from None
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _FILES.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    parsed = parse_math_file(path, read_data_text(path))
    _FILES[path] = (stamp, parsed)
    return parsed


def parse_math_file(path: Path, text: str) -> MathFile:
    """Rows and skip messages of a JSONL text; DataError when no row is usable."""
    rows: list[Row] = []
    skipped: list[str] = []
    first_line_of: dict[str, int] = {}
    for number, raw in enumerate(text.split("\n"), 1):
        if not raw.strip():
            continue
        try:
            row = parse_row(number, decode_line(raw))
            if row.id in first_line_of:
                raise BadRow(
                    "id", f"duplicate of line {first_line_of[row.id]} ({short_repr(row.id)})"
                )
        except BadRow as bad:
            skipped.append(f"{path}:{number}: {bad.field_name}: {bad.reason}")
            continue
        first_line_of[row.id] = number
        rows.append(row)
    if not rows:
        detail = f"; first skipped: {skipped[0]}" if skipped else ""
        raise DataError(f"{path}: no usable row ({len(skipped)} skipped){detail}")
    return MathFile(tuple(rows), tuple(skipped))


def decode_line(raw: str) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as e:
        raise BadRow("json", f"bad JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(obj, dict):
        raise BadRow("json", f"not a JSON object ({type(obj).__name__})")
    return obj


def parse_row(line: int, obj: dict[str, Any]) -> Row:
    """A Row from one decoded line (BadRow naming the field at fault)."""
    problem = problem_text(obj)
    answer, gsm8k_solution = gold_answer(obj)
    meta: dict[str, Any] = {"line": line, "problem": problem}
    solution = gsm8k_solution if gsm8k_solution is not None else obj.get("solution")
    if isinstance(solution, str) and solution.strip():
        meta["solution"] = solution
    if isinstance(obj.get("subject"), str):
        meta["subject"] = obj["subject"]
    return Row(line, row_id(line, obj), problem, answer, level_of(obj.get("level")), meta)


def problem_text(obj: dict[str, Any]) -> str:
    key = "problem" if "problem" in obj else "question" if "question" in obj else None
    if key is None:
        raise BadRow("problem", "missing (no 'problem' or 'question' field)")
    value = obj[key]
    if not isinstance(value, str) or not value.strip():
        raise BadRow(key, "not a non-empty string")
    return value


def gold_answer(obj: dict[str, Any]) -> tuple[str, str | None]:
    """(answer, GSM8K solution text or None) from the `answer` field."""
    if "answer" not in obj:
        raise BadRow("answer", "missing")
    value = obj["answer"]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise BadRow("answer", f"not a string or number ({type(value).__name__})")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadRow("answer", f"not a finite number ({value})")
        return (str(int(value)) if value.is_integer() else repr(value)), None
    if isinstance(value, int):
        return str(value), None
    solution = None
    if "####" in value:
        solution, _, value = value.rpartition("####")
        value = value.strip().replace(",", "")
    value = value.strip()
    if not value:
        raise BadRow("answer", "empty")
    return canonical_integer(value), solution


def canonical_integer(answer: str) -> str:
    """ "025" -> "25"; anything but a plain integer is returned unchanged."""
    return str(int(answer)) if INTEGER.fullmatch(answer) else answer


def row_id(line: int, obj: dict[str, Any]) -> str:
    key = "id" if "id" in obj else "unique_id" if "unique_id" in obj else None
    if key is None:
        return str(line)
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise BadRow(key, f"not a non-empty string or integer ({short_repr(value)})")
    return str(value)


def level_of(value: Any) -> int:
    """MATH's level 1-5 (an int, or a string like "Level 3"); 0 when absent or unreadable."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(?:level\s*)?(\d)\s*", value, re.IGNORECASE)
        value = int(match.group(1)) if match else None
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5 else 0
    )


# ---------------------------------------------------------------------------------------------
# Where the files are


def shipped_data_dir() -> Path:
    """The public benchmark files installed with the package: reasonlab/data/."""
    return Path(str(importlib.resources.files("reasonlab") / "data"))


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: `data_dir` (--data-dir) if given, else $REASONLAB_DATA_DIR if set, else the
    folder shipped with the package. Whether the folder exists is left to the caller."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV)
    return Path(from_env).expanduser() if from_env else shipped_data_dir()


def data_dir_knob(task: str, data_dir: Any) -> Path:
    """The data folder of a task: the knob (which must be a folder), else as `resolve_data_dir`."""
    if data_dir is not None and (
        not isinstance(data_dir, (str, os.PathLike)) or not Path(data_dir).expanduser().is_dir()
    ):
        raise ConfigError(
            f"invalid knob data_dir={short_repr(data_dir)} for task '{task}': must be a folder"
        )
    return resolve_data_dir(data_dir)


def file_knob(task: str, file: Any, data_dir: Path | None) -> Path:
    """The JSONL file: `file` as given, or relative to the data folder."""
    if file is None:
        raise ConfigError(f"task '{task}' needs the knob file=<path of a JSONL file>")
    if not isinstance(file, (str, os.PathLike)) or str(file) == "":
        raise ConfigError(f"invalid knob file={short_repr(file)} for task '{task}': must be a path")
    path = Path(file).expanduser()
    candidates = [path] if path.is_absolute() or data_dir is None else [path, data_dir / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    where = " or ".join(str(c) for c in candidates)
    raise ConfigError(
        f"task '{task}': no such data file {where} (knob file={short_repr(str(file))})"
    )


def benchmark_file(task: str, file_name: str, data_dir: Path | None) -> Path:
    """`<data folder>/<file_name>`; ConfigError saying how to point at it when it is not there."""
    hint = f"point at the folder that holds {file_name} with --data-dir DIR or {DATA_DIR_ENV}=DIR"
    path = resolve_data_dir(data_dir) / file_name
    if not path.is_file():
        raise ConfigError(f"task '{task}': no data file {path}: {hint}")
    return path.resolve()
