"""The labels as training data: TRL stepwise JSONL for step labels, TRL preference JSONL for pairs.

Stepwise: one record per labelled steps item, in the layout `judges/files.py` writes (so
`reasonlab judge train --data FILE` reads it): id = the item's key, `source: "human"`, and the
consensus of its annotators' first wrong steps: the value most of them gave, ties going to the
earliest error ("no error" counts as later than any step; one annotator: their own). `labels` follow
from it (labels_from_first_error: True before the first error, False from it on), and `correct` is
whether the consensus found no wrong step (the judges' convention: a wrong or missing answer is an
error of the last step). Nothing of an item's hidden truth is exported: the file holds what the
annotators said.
Preference: one `{"id", "prompt", "chosen", "rejected"}` row per labelled pair item whose annotators'
most frequent choice is a or b alone (a tie between a and b, or a majority for tie / both wrong,
gives no row). Gold items are exported too: their labels are real labels.

Usage:
    n = export_file(Store(Path("labels.sqlite")), "stepwise", Path("human.jsonl"))
    text, n = export_text(store, "preference")
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasonlab.errors import ConfigError
from reasonlab.fileio import atomic_write
from reasonlab.judges.files import record_to_json
from reasonlab.labeling.agreement import consensus_first_error
from reasonlab.labeling.store import Store
from reasonlab.types import StepRecord, labels_from_first_error

FORMATS: tuple[str, ...] = ("stepwise", "preference")


def consensus_choice(choices: Sequence[str]) -> str | None:
    """The most frequent pair choice, or None when two choices tie for the most votes."""
    votes = Counter(choices).most_common()
    if not votes or (len(votes) > 1 and votes[0][1] == votes[1][1]):
        return None
    return votes[0][0]


def stepwise_records(store: Store) -> list[StepRecord]:
    """One StepRecord per steps item with at least one label, in item order."""
    by_item: dict[int, list[int]] = defaultdict(list)
    for label in store.all_labels():
        if label["kind"] == "steps" and label["first_error"] is not None:
            by_item[label["item_id"]].append(label["first_error"])
    records = []
    for item in store.items("steps"):
        if item.id not in by_item:
            continue
        steps = tuple(item.steps)
        first_error = consensus_first_error(by_item[item.id])
        records.append(
            StepRecord(
                prompt=item.prompt,
                steps=steps,
                labels=labels_from_first_error(len(steps), first_error),
                first_error=first_error,
                correct=first_error < 0,
                id=item.key,
                source="human",
            )
        )
    return records


def preference_rows(store: Store) -> list[dict[str, Any]]:
    """One TRL preference row per pair item whose consensus choice is a or b."""
    by_item: dict[int, list[str]] = defaultdict(list)
    for label in store.all_labels():
        if label["kind"] == "pair" and label["choice"] is not None:
            by_item[label["item_id"]].append(label["choice"])
    rows = []
    for item in store.items("pair"):
        choice = consensus_choice(by_item.get(item.id, []))
        if choice not in ("a", "b"):
            continue
        other = "b" if choice == "a" else "a"
        rows.append(
            {
                "id": item.key,
                "prompt": item.prompt,
                "chosen": item.body[choice],
                "rejected": item.body[other],
            }
        )
    return rows


def export_text(store: Store, fmt: str) -> tuple[str, int]:
    """The JSONL text of one format and its number of records."""
    if fmt == "stepwise":
        rows = [record_to_json(r) for r in stepwise_records(store)]
    elif fmt == "preference":
        rows = preference_rows(store)
    else:
        raise ConfigError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), len(rows)


def export_file(store: Store, fmt: str, out: Path) -> int:
    """Write one format to `out` atomically (replacing it) and log an 'export' event; returns the
    number of records written."""
    text, n = export_text(store, fmt)
    atomic_write(Path(out), lambda tmp: tmp.write_text(text, encoding="utf-8"))
    store.append_event("export", body={"format": fmt, "records": n, "out": str(out)})
    return n
