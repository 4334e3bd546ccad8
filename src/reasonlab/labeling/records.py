"""What the labeling store holds and checks: its records (annotators, items to import and stored,
leases), the values a label may take, and the pure checks of an item or a label before anything is
written; a refused label is `LabelRejected(status, message)`, the HTTP status the app answers.

Ratings are +1 correct, 0 neutral, -1 wrong; under the default protocol `first_error` a label rates
exactly the steps up to and including the first wrong one (every step when none is wrong), under
`all_steps` every step. A pair label is a, b, tie or both wrong in the item's terms; the page shows
the two solutions as left and right, swapped for some annotators (`coin`, `side_to_choice`).

Usage:
    first_error = check_ratings([1, 0, -1], n_steps=4, protocol="first_error")   # 2
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reasonlab.errors import DataError, ReasonlabError, short_repr

KINDS: tuple[str, ...] = ("steps", "pair")
PROTOCOLS: tuple[str, ...] = ("first_error", "all_steps")
DEFAULT_PROTOCOL = "first_error"
RATINGS: tuple[int, ...] = (-1, 0, 1)  # wrong, neutral (reasonable, no progress), correct
CHOICES: tuple[str, ...] = ("a", "b", "tie", "both_wrong")  # a pair label, in the body's terms
SIDES: tuple[str, ...] = ("left", "right", "tie", "both_wrong")  # a pair label, in the page's terms
MAX_COMMENT = 10_000


# ---------------------------------------------------------------------------------------------
# Records


class LabelRejected(ReasonlabError):
    """A lease or label the store refuses, with the HTTP status it maps to: 403 (not leased to this
    annotator), 404 (no such item), 409 (already labelled, or the lease expired), 422 (a rating,
    step index, comment or choice out of range). Nothing was written."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Annotator:
    """A person (or simulated annotator) with a token; `role` is 'annotator' or 'admin'."""

    id: int
    name: str
    role: str

    @property
    def admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class NewItem:
    """An item to import. steps: body {"steps": [str, ...]}, truth {"first_error", "correct"};
    pair: body {"a": str, "b": str}, truth {"choice"}. `key` is stable across re-imports."""

    key: str
    kind: str
    prompt: str
    body: dict[str, Any]
    source: str
    truth: dict[str, Any] | None = None
    gold: bool = False
    scores: dict[str, list[float]] = field(default_factory=dict)
    want: int = 1
    priority: float = 0.0


@dataclass(frozen=True)
class Item:
    """An item as stored (`truth`, `gold` and `scores` are never shown to annotators)."""

    id: int
    key: str
    kind: str
    prompt: str
    body: dict[str, Any]
    truth: dict[str, Any] | None
    gold: bool
    scores: dict[str, list[float]]
    want: int
    priority: float
    source: str

    @property
    def steps(self) -> list[str]:
        return list(self.body.get("steps", []))


@dataclass(frozen=True)
class Lease:
    """An item leased to one annotator until `expires`; `swapped` (pairs): the left side shows b."""

    item: Item
    expires: float
    swapped: bool

    def public(self) -> dict[str, Any]:
        """What the annotator sees (the JSON of `GET /api/next`): never truth, gold or scores."""
        item = self.item
        out: dict[str, Any] = {"id": item.id, "kind": item.kind, "prompt": item.prompt}
        if item.kind == "steps":
            out["steps"] = item.steps
        else:
            a, b = item.body["a"], item.body["b"]
            out["left"], out["right"] = (b, a) if self.swapped else (a, b)
        out["expires"] = self.expires
        return out


def coin(item_id: int, annotator_id: int) -> bool:
    """The seeded coin flip of a pair lease: does the left side show body.b?"""
    return bool(hashlib.sha256(f"{item_id}:{annotator_id}".encode()).digest()[0] & 1)


# ---------------------------------------------------------------------------------------------
# Validation (pure)


def check_new_item(item: NewItem) -> None:
    """DataError naming the item's key and field when an item to import is malformed."""
    where = f"item {item.key!r}"
    if not isinstance(item.key, str) or not item.key:
        raise DataError(f"{where}: key: empty")
    if item.kind not in KINDS:
        raise DataError(f"{where}: kind: {short_repr(item.kind)} is not one of {', '.join(KINDS)}")
    if not isinstance(item.prompt, str):
        raise DataError(f"{where}: prompt: not a string")
    if item.kind == "steps":
        steps = item.body.get("steps")
        if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
            raise DataError(f"{where}: body.steps: not a non-empty list of strings")
        if item.truth is not None:
            fe = item.truth.get("first_error")
            if not isinstance(fe, int) or isinstance(fe, bool) or not -1 <= fe < len(steps):
                raise DataError(f"{where}: truth.first_error: {short_repr(fe)} out of range")
    else:
        if not all(isinstance(item.body.get(side), str) for side in ("a", "b")):
            raise DataError(f"{where}: body: a pair needs strings 'a' and 'b'")
        if item.truth is not None and item.truth.get("choice") not in CHOICES:
            raise DataError(f"{where}: truth.choice: not one of {', '.join(CHOICES)}")
    if not isinstance(item.want, int) or item.want < 1:
        raise DataError(f"{where}: want: {short_repr(item.want)}, expected an integer >= 1")
    if not math.isfinite(item.priority):
        raise DataError(f"{where}: priority: {item.priority} is not finite")
    if item.gold and item.truth is None:
        raise DataError(f"{where}: gold: a gold item needs its truth")


def check_ratings(ratings: Sequence[Any], n_steps: int, protocol: str) -> int:
    """The first_error of valid ratings; LabelRejected(422) naming the field otherwise.

    first_error protocol: exactly the steps up to and including the first -1 (every step when
    none is -1); all_steps: every step."""
    if not isinstance(ratings, (list, tuple)):
        raise LabelRejected(422, "ratings: not a list of -1 / 0 / 1")
    for i, r in enumerate(ratings):
        if not isinstance(r, int) or isinstance(r, bool) or r not in RATINGS:
            raise LabelRejected(
                422,
                f"ratings[{i}]: {short_repr(r)} is not one of -1 (wrong), 0 (neutral), 1 (correct)",
            )
    first_error = next((i for i, r in enumerate(ratings) if r == -1), -1)
    if len(ratings) > n_steps:
        raise LabelRejected(
            422, f"ratings: {len(ratings)} ratings for {n_steps} steps (step index out of range)"
        )
    if protocol == "first_error" and first_error >= 0 and len(ratings) != first_error + 1:
        raise LabelRejected(
            422,
            f"ratings: step {first_error} is wrong, so steps after it are not rated "
            f"(first_error protocol); got {len(ratings)} ratings, expected {first_error + 1}",
        )
    if (protocol == "all_steps" or first_error < 0) and len(ratings) != n_steps:
        rule = "every step" if protocol == "all_steps" else "every step when none is wrong"
        raise LabelRejected(
            422,
            f"ratings: {len(ratings)} ratings for {n_steps} steps ({protocol} protocol: rate {rule})",
        )
    return first_error


def check_comments(comments: Mapping[str, Any] | None, n_steps: int) -> dict[str, str]:
    """Comments keyed by step index ("0".."n-1"), blank ones dropped; LabelRejected(422) otherwise."""
    out: dict[str, str] = {}
    if comments is None:
        return out
    if not isinstance(comments, Mapping):
        raise LabelRejected(422, "comments: not an object of step index -> text")
    for key, text in comments.items():
        index = str(key)
        if not index.isdigit() or int(index) >= n_steps or index != str(int(index)):
            raise LabelRejected(
                422,
                f"comments: key {short_repr(key)} is not a step index (0..{n_steps - 1})",
            )
        if not isinstance(text, str):
            raise LabelRejected(422, f"comments[{index}]: not a string")
        if len(text) > MAX_COMMENT:
            raise LabelRejected(422, f"comments[{index}]: longer than {MAX_COMMENT} characters")
        if text.strip():
            out[index] = text.strip()
    return out


def check_seconds(seconds: Any) -> float | None:
    if seconds is None:
        return None
    if (
        not isinstance(seconds, (int, float))
        or isinstance(seconds, bool)
        or not math.isfinite(seconds)
        or seconds < 0
    ):
        raise LabelRejected(422, f"seconds: {short_repr(seconds)}, expected a number >= 0")
    return float(seconds)


def side_to_choice(side: str, swapped: bool) -> str:
    """The page's side in the body's terms: left is a unless the lease swapped the sides."""
    if side == "left":
        return "b" if swapped else "a"
    if side == "right":
        return "a" if swapped else "b"
    return side
