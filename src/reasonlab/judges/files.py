"""Step-labelled files: read and write StepRecords, with one clear reason for every bad record.

Files are JSONL in TRL's stepwise-supervision layout, one record per line:

    {"id", "prompt", "completions": [step, ...], "labels": [bool, ...], "first_error": int,
     "correct": bool | null, "source": str, "soft_labels": [float, ...]?, "task_problem": {...}?}

`read_records` also reads ProcessBench's JSON arrays (`problem`, `steps`, `label` = first_error,
`final_answer_correct`), `steps` + `labels` records, and records that give only `first_error`,
skipping (or, strict, refusing) each bad record with its line and field. Labels are JSON
booleans; the integers 0 and 1 are accepted for them as well (many converted datasets write them).
A record's labels are kept as given, so data whose labels were estimated (True after a False) is
read as it is; `first_error` is the first False. `resolve_data` turns `processbench:<subset>` into
a file under the data directory (--data-dir, else $REASONLAB_DATA_DIR, else the files shipped with
the package; see tasks/mathdata.py `resolve_data_dir`).

Usage:
    write_records(Path("eval.jsonl"), eval_records(task, task.sample("test", 100, seed=0), seed=0))
    result = read_records(resolve_data("processbench:gsm8k", None)); print(result.summary())
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonlab.errors import DataError
from reasonlab.fileio import atomic_write, read_data_text
from reasonlab.tasks.mathdata import DATA_DIR_ENV, resolve_data_dir
from reasonlab.types import Problem, StepRecord, first_error_of, labels_from_first_error

PROCESSBENCH_SUBSETS: tuple[str, ...] = ("gsm8k", "math", "olympiadbench", "omnimath")

# ---------------------------------------------------------------------------------------------
# Writing


def record_to_json(record: StepRecord) -> dict[str, Any]:
    """The JSON object of one labelled record (TRL stepwise-supervision fields first)."""
    if record.labels is None or record.first_error is None:
        raise ValueError(f"record {record.id!r} has no labels; only labelled records are written")
    obj: dict[str, Any] = {
        "id": record.id,
        "prompt": record.prompt,
        "completions": list(record.steps),
        "labels": list(record.labels),
        "first_error": record.first_error,
        "correct": record.correct,
        "source": record.source,
    }
    if record.soft_labels is not None:
        obj["soft_labels"] = list(record.soft_labels)
    if record.problem is not None:
        p = record.problem
        obj["task_problem"] = {
            "id": p.id,
            "task": p.task,
            "prompt": p.prompt,
            "answer": p.answer,
            "difficulty": p.difficulty,
            "meta": dict(p.meta),
        }
    return obj


def write_records(path: Path, records: Iterable[StepRecord]) -> None:
    """Write records as JSONL, atomically: the file is whole or untouched."""
    text = "".join(json.dumps(record_to_json(r), ensure_ascii=False) + "\n" for r in records)
    atomic_write(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class Skipped:
    """A record that was not read: its line, the field at fault and why."""

    line: int
    field: str
    reason: str
    detail: str = ""

    @property
    def message(self) -> str:
        return f"{self.field}: {self.reason}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class ReadResult:
    """The records read from a file and the ones skipped."""

    records: list[StepRecord] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def summary(self) -> str:
        """One line: "skipped 3 of 120 records: 2 labels (wrong length), 1 prompt (missing)"."""
        total = len(self.records) + len(self.skipped)
        counts = Counter((s.field, s.reason) for s in self.skipped)
        parts = [f"{n} {f} ({r})" for (f, r), n in counts.most_common()]
        return f"skipped {len(self.skipped)} of {total} records" + (
            ": " + ", ".join(parts) if parts else ""
        )


class BadRecord(Exception):
    """One record's fault, raised inside the reader and turned into a `Skipped`."""

    def __init__(self, field: str, reason: str, detail: str = "") -> None:
        super().__init__(field, reason, detail)
        self.skipped = (field, reason, detail)


def read_records(path: Path, strict: bool = False) -> ReadResult:
    """Read a JSONL or JSON-array file of step-labelled records.

    strict=False skips each bad record and lists it in `skipped`; strict=True raises DataError
    "<path>:<line>: <field>: <reason>" on the first. A missing, unreadable or non-UTF-8 file, or
    one that is neither JSONL nor a JSON array, is a DataError naming the file.
    """
    path = Path(path)
    text = read_data_text(path)
    records: list[StepRecord] = []
    skipped: list[Skipped] = []
    for line, item in elements(path, text):
        try:
            if isinstance(item, BadRecord):
                raise item
            records.append(parse_record(item, f"{path.name}:{line}"))
        except BadRecord as bad:
            skip = Skipped(line, *bad.skipped)
            if strict:
                raise DataError(f"{path}:{line}: {skip.message}") from None
            skipped.append(skip)
    return ReadResult(records, skipped)


def elements(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    """(line, decoded JSON value or BadRecord) per record of a JSONL or JSON-array text."""
    start = len(text) - len(text.lstrip())
    if start == len(text):
        return
    if text[start] == "[":
        yield from array_elements(path, text, start)
    elif text[start] == "{":
        for number, raw in enumerate(text.split("\n"), 1):
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw)
            except json.JSONDecodeError as e:
                yield number, BadRecord("json", "bad JSON", f"{e.msg} at column {e.colno}")
    else:
        raise DataError(
            f"{path}: not JSONL or a JSON array (starts with {text[start]!r}, expected '{{' or '[')"
        )


def array_elements(path: Path, text: str, start: int) -> Iterator[tuple[int, Any]]:
    """The elements of a JSON array with the line each starts on, decoded one by one."""
    decoder = json.JSONDecoder()
    line, counted = 1, 0  # the line of offset `counted`
    pos = skip_space(text, start + 1)
    if pos < len(text) and text[pos] == "]":
        pos = skip_space(text, pos + 1)
    else:
        while True:
            line, counted = line + text.count("\n", counted, pos), pos
            try:
                value, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{e.lineno}: not a valid JSON array ({e.msg})") from None
            yield line, value
            pos = skip_space(text, pos)
            if pos < len(text) and text[pos] == ",":
                pos = skip_space(text, pos + 1)
                continue
            if pos < len(text) and text[pos] == "]":
                pos = skip_space(text, pos + 1)
                break
            line = line + text.count("\n", counted, pos)
            raise DataError(f"{path}:{line}: not a valid JSON array (expected ',' or ']')")
    if pos < len(text):
        line = 1 + text.count("\n", 0, pos)
        raise DataError(f"{path}:{line}: not a valid JSON array (text after the closing ']')")


def skip_space(text: str, pos: int) -> int:
    """The first offset at or after `pos` that is not JSON whitespace."""
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def parse_record(obj: Any, where: str) -> StepRecord:
    """One StepRecord from a decoded record in any accepted layout; BadRecord naming the field."""
    if not isinstance(obj, dict):
        raise BadRecord("record", "not a JSON object", type(obj).__name__)
    prompt_key = "prompt" if "prompt" in obj else "problem"
    if prompt_key not in obj:
        raise BadRecord("prompt", "missing", "no 'prompt' or 'problem'")
    if not isinstance(obj[prompt_key], str):
        raise BadRecord(prompt_key, "not a string")
    steps_key = "completions" if "completions" in obj else "steps"
    if steps_key not in obj:
        raise BadRecord("completions", "missing", "no 'completions' or 'steps'")
    steps = obj[steps_key]
    if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
        raise BadRecord(steps_key, "not a list of strings")
    if not steps:
        raise BadRecord(steps_key, "empty step list")
    n = len(steps)
    labels, first_error = parse_labels(obj, n)
    correct = obj.get("correct", obj.get("final_answer_correct"))
    if correct is not None and not isinstance(correct, bool):
        raise BadRecord("correct", "not a boolean or null")
    ident = obj.get("id", where)
    if not isinstance(ident, (str, int)) or isinstance(ident, bool):
        raise BadRecord("id", "not a string")
    source = obj.get("source", "processbench" if "label" in obj else "")
    if not isinstance(source, str):
        raise BadRecord("source", "not a string")
    return StepRecord(
        prompt=obj[prompt_key],
        steps=tuple(steps),
        labels=labels,
        first_error=first_error,
        correct=correct,
        id=str(ident),
        source=source,
        problem=parse_problem(obj["task_problem"]) if "task_problem" in obj else None,
        soft_labels=parse_soft_labels(obj["soft_labels"], n) if "soft_labels" in obj else None,
    )


def is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_labels(obj: dict[str, Any], n: int) -> tuple[tuple[bool, ...], int]:
    """Labels and first_error from `labels` (bools or 0/1) or `label` (the first error index)."""
    if "labels" in obj:
        raw = obj["labels"]
        if not isinstance(raw, list) or not all(
            isinstance(x, bool) or (is_index(x) and x in (0, 1)) for x in raw
        ):
            raise BadRecord("labels", "not a list of booleans", "true/false or 0/1")
        if len(raw) != n:
            raise BadRecord("labels", "wrong length", f"{len(raw)} labels for {n} steps")
        labels = tuple(bool(x) for x in raw)
        first_error = first_error_of(labels)
        for key in ("first_error", "label"):
            if key in obj and (not is_index(obj[key]) or obj[key] != first_error):
                detail = f"{obj[key]!r}, labels say {first_error}"
                raise BadRecord(key, "disagrees with labels", detail)
        return labels, first_error
    key = "label" if "label" in obj else "first_error"
    if key not in obj:
        raise BadRecord("labels", "missing", "no 'labels' or 'label'")
    index = obj[key]
    if not is_index(index):
        raise BadRecord(key, "not an integer")
    if not -1 <= index < n:
        raise BadRecord(key, "index out of range", f"{index} for {n} steps, expected -1..{n - 1}")
    return labels_from_first_error(n, index), index


def parse_soft_labels(raw: Any, n: int) -> tuple[float, ...]:
    """Soft labels: one number in [0, 1] per step."""
    if not isinstance(raw, list) or not all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and 0.0 <= x <= 1.0 for x in raw
    ):
        raise BadRecord("soft_labels", "not a list of numbers in [0, 1]")
    if len(raw) != n:
        raise BadRecord("soft_labels", "wrong length", f"{len(raw)} soft labels for {n} steps")
    return tuple(float(x) for x in raw)


def parse_problem(raw: Any) -> Problem:
    """A task Problem; JSON lists in its meta become tuples again (built-in tasks use tuples)."""
    fields = {"id": str, "task": str, "prompt": str, "answer": str, "difficulty": int, "meta": dict}
    if not isinstance(raw, dict):
        raise BadRecord("task_problem", "not a JSON object")
    for name, kind in fields.items():
        value = raw.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise BadRecord("task_problem", "malformed", f"{name} is not a {kind.__name__}")
    return Problem(
        id=raw["id"],
        task=raw["task"],
        prompt=raw["prompt"],
        answer=raw["answer"],
        difficulty=raw["difficulty"],
        meta={k: tuples(v) for k, v in raw["meta"].items()},
    )


def tuples(value: Any) -> Any:
    """JSON lists as tuples, recursively (dict values included)."""
    if isinstance(value, list):
        return tuple(tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: tuples(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------------------------
# Named data sets


def processbench_path(data_dir: Path, subset: str) -> Path:
    """`<data_dir>/processbench/<subset>.json`."""
    return Path(data_dir) / "processbench" / f"{subset}.json"


def resolve_data(spec: str, data_dir: Path | None = None) -> Path:
    """An existing file, or `processbench:<subset>` under `data_dir` (else $REASONLAB_DATA_DIR, else
    the files shipped with the package)."""
    if Path(spec).is_file():
        return Path(spec)
    known = ", ".join(f"processbench:{s}" for s in PROCESSBENCH_SUBSETS)
    name, _, subset = spec.partition(":")
    if name != "processbench" or subset not in PROCESSBENCH_SUBSETS:
        raise DataError(f"unknown data {spec!r}: not a file, and not one of {known}")
    path = processbench_path(resolve_data_dir(data_dir), subset)
    if not path.is_file():
        raise DataError(
            f"data {spec!r}: no such file {path}: point at the folder that holds "
            f"processbench/{subset}.json with --data-dir DIR or {DATA_DIR_ENV}=DIR"
        )
    return path
