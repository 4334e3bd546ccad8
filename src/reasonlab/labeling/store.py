"""The labeling database: one SQLite file in WAL mode, shared by the web app, the CLI and the reports.

Every write is one transaction; leases and labels are taken inside `BEGIN IMMEDIATE`, so concurrent
annotators serialise on SQLite's write lock (waiting up to `BUSY_TIMEOUT_MS`) instead of failing with
"database is locked"; `synchronous=FULL` makes a committed label survive a killed process or power
loss. The event log is append-only (triggers refuse UPDATE and DELETE).

Schema (see SCHEMA): `meta` (settings and the CSRF secret), `annotators` (token hashes and roles),
`items` (a solution with numbered steps, or a pair of solutions; `truth` and `gold` are never shown),
`leases` (who holds which item until when), `labels` (one per item and annotator), `events`.

`Store` wraps one connection with every read and write of the app and the CLI. Leasing
(`lease_next`) and submitting (`submit_steps`, `submit_pair`) each run in one `BEGIN IMMEDIATE`
transaction that also appends its event; a refused submission raises `LabelRejected(status,
message)` (403 / 404 / 409 / 422, the HTTP status the app answers) and writes nothing. Ratings are
+1 correct, 0 neutral, -1 wrong; under the default protocol `first_error` (meta 'protocol') a label
rates exactly the steps up to and including the first wrong one (every step when none is wrong),
under `all_steps` every step.

Usage:
    db = connect(Path("labels.sqlite"))   # creates the schema on first use
    store = Store(Path("labels.sqlite"))
    token = store.add_annotator("alice")  # print it once; only its sha256 is stored
    lease = store.lease_next(store.annotator_for_token(token).id, "steps")
    store.submit_steps(annotator_id, lease.item.id, [1, 0, -1], {"2": "7*8 is 56"})
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reasonlab.errors import ConfigError, DataError, short_repr
from reasonlab.labeling.auth import hash_token, new_secret, new_token, verify_token
from reasonlab.labeling.records import (
    DEFAULT_PROTOCOL,
    KINDS,
    MAX_COMMENT,
    PROTOCOLS,
    SIDES,
    Annotator,
    Item,
    LabelRejected,
    Lease,
    NewItem,
    check_comments,
    check_new_item,
    check_ratings,
    check_seconds,
    coin,
    side_to_choice,
)

SCHEMA_VERSION = "1"
BUSY_TIMEOUT_MS = 10_000
DEFAULT_LEASE_SECONDS = 900

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS annotators (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, token_hash TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL CHECK (role IN ('annotator', 'admin')), created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS items (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL CHECK (kind IN ('steps', 'pair')),
  prompt TEXT NOT NULL,
  body TEXT NOT NULL,
  truth TEXT,
  gold INTEGER NOT NULL DEFAULT 0,
  scores TEXT NOT NULL DEFAULT '{}',
  want INTEGER NOT NULL DEFAULT 1,
  priority REAL NOT NULL DEFAULT 0,
  source TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS items_queue ON items (kind, priority DESC, id);
CREATE TABLE IF NOT EXISTS leases (
  item_id INTEGER NOT NULL REFERENCES items(id),
  annotator_id INTEGER NOT NULL REFERENCES annotators(id),
  expires REAL NOT NULL, swapped INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (item_id, annotator_id));
CREATE TABLE IF NOT EXISTS labels (
  id INTEGER PRIMARY KEY,
  item_id INTEGER NOT NULL REFERENCES items(id),
  annotator_id INTEGER NOT NULL REFERENCES annotators(id),
  ratings TEXT,
  first_error INTEGER,
  choice TEXT CHECK (choice IS NULL OR choice IN ('a', 'b', 'tie', 'both_wrong')),
  comments TEXT NOT NULL DEFAULT '{}',
  seconds REAL,
  created REAL NOT NULL,
  UNIQUE (item_id, annotator_id));
CREATE INDEX IF NOT EXISTS labels_item ON labels (item_id);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY, ts REAL NOT NULL, annotator_id INTEGER, kind TEXT NOT NULL,
  item_id INTEGER, body TEXT NOT NULL DEFAULT '{}');
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
"""


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the database at `path`: WAL, busy timeout, foreign keys, FULL sync.

    The connection is in autocommit mode (`isolation_level=None`): callers open their own
    transactions (`BEGIN IMMEDIATE` for writes). Raises DataError for a file that is not a
    reasonlab labeling database."""
    path = Path(path)
    try:
        db = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        db.row_factory = sqlite3.Row
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(SCHEMA)  # idempotent: every statement is IF NOT EXISTS
        found = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if found is None:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif found["value"] != SCHEMA_VERSION:
            raise DataError(
                f"{path}: labeling database schema {found['value']}, expected {SCHEMA_VERSION}"
            )
    except sqlite3.DatabaseError as err:
        raise DataError(f"{path}: not a labeling database ({err})") from None
    return db


def item_from_row(row: sqlite3.Row) -> Item:
    return Item(
        id=row["id"],
        key=row["key"],
        kind=row["kind"],
        prompt=row["prompt"],
        body=json.loads(row["body"]),
        truth=json.loads(row["truth"]) if row["truth"] is not None else None,
        gold=bool(row["gold"]),
        scores=json.loads(row["scores"]),
        want=row["want"],
        priority=row["priority"],
        source=row["source"],
    )


# ---------------------------------------------------------------------------------------------
# The store


_WRITERS: dict[str, threading.Lock] = {}
_WRITERS_GUARD = threading.Lock()


def writer_lock(path: Path) -> threading.Lock:
    """The one lock this process's writers of the database at `path` take before writing."""
    key = os.path.realpath(path)
    with _WRITERS_GUARD:
        return _WRITERS.setdefault(key, threading.Lock())


class Store:
    """One connection to the labeling database and every read and write the app and CLI make.

    A Store is used by one thread at a time (the web app keeps one per worker thread); `clock`
    gives the time (tests pass a fake one to expire leases)."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.db = connect(self.path)
        self.clock = clock

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (`BEGIN IMMEDIATE`): committed on success, rolled back on error.

        Writers of one process queue on a lock first, so they take SQLite's write lock in turn
        instead of polling for it (SQLite's busy handler sleeps up to 100 ms between tries, which
        is what made p95 latency hundreds of milliseconds under 20 annotators); writers in other
        processes still wait through the busy timeout."""
        with writer_lock(self.path):
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def _event(
        self,
        kind: str,
        annotator_id: int | None = None,
        item_id: int | None = None,
        body: Mapping[str, Any] | None = None,
        ts: float | None = None,
    ) -> None:
        """Append an event inside the caller's transaction."""
        self.db.execute(
            "INSERT INTO events (ts, annotator_id, kind, item_id, body) VALUES (?, ?, ?, ?, ?)",
            (
                self.clock() if ts is None else ts,
                annotator_id,
                kind,
                item_id,
                json.dumps(dict(body or {})),
            ),
        )

    def append_event(
        self,
        kind: str,
        annotator_id: int | None = None,
        item_id: int | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one event to the log, in its own transaction."""
        with self.transaction():
            self._event(kind, annotator_id, item_id, body)

    def events(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM events ORDER BY id").fetchall()
        return [{**dict(r), "body": json.loads(r["body"])} for r in rows]

    # -- settings ---------------------------------------------------------------------------

    def setting(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row is not None else default

    def set_setting(self, key: str, value: str) -> None:
        """Set 'lease_seconds' (a number > 0) or 'protocol' (first_error | all_steps)."""
        if key == "protocol" and value not in PROTOCOLS:
            raise ConfigError(f"protocol: {value!r} is not one of {', '.join(PROTOCOLS)}")
        if key == "lease_seconds":
            try:
                ok = float(value) > 0 and math.isfinite(float(value))
            except ValueError:
                ok = False
            if not ok:
                raise ConfigError(f"lease_seconds: {value!r}, expected a number of seconds > 0")
        if key not in ("protocol", "lease_seconds"):
            raise ConfigError(f"unknown setting {key!r} (known: protocol, lease_seconds)")
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(value)))

    @property
    def protocol(self) -> str:
        value = self.setting("protocol", DEFAULT_PROTOCOL)
        if value not in PROTOCOLS:
            raise DataError(
                f"{self.path}: meta.protocol {value!r} is not one of {', '.join(PROTOCOLS)}"
            )
        return value

    @property
    def lease_seconds(self) -> float:
        value = self.setting("lease_seconds", str(DEFAULT_LEASE_SECONDS))
        try:
            return float(value)
        except ValueError:
            raise DataError(f"{self.path}: meta.lease_seconds {value!r} is not a number") from None

    def secret(self) -> str:
        """The CSRF secret (hex), made on first use."""
        found = self.setting("secret")
        if found is not None:
            return found
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('secret', ?)", (new_secret(),))
        return self.setting("secret")

    # -- annotators -------------------------------------------------------------------------

    def add_annotator(self, name: str, admin: bool = False) -> str:
        """Add an annotator and return their token (shown once: only its sha256 is stored).
        ConfigError for an empty or taken name."""
        name = name.strip() if isinstance(name, str) else ""
        if not name or len(name) > 100:
            raise ConfigError("annotator name: expected 1 to 100 characters")
        token = new_token()
        role = "admin" if admin else "annotator"
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM annotators WHERE name = ?", (name,)).fetchone():
                raise ConfigError(f"annotator {name!r} already exists in {self.path}")
            cur = db.execute(
                "INSERT INTO annotators (name, token_hash, role, created) VALUES (?, ?, ?, ?)",
                (name, hash_token(token), role, self.clock()),
            )
            self._event("annotator_added", cur.lastrowid, body={"name": name, "role": role})
        return token

    def annotator_for_token(self, token: str | None) -> Annotator | None:
        """The annotator holding `token`, or None for a missing or unknown token."""
        if not token:
            return None
        digest = hash_token(token)
        row = self.db.execute(
            "SELECT id, name, role, token_hash FROM annotators WHERE token_hash = ?", (digest,)
        ).fetchone()
        if row is None or not verify_token(token, row["token_hash"]):
            return None
        return Annotator(row["id"], row["name"], row["role"])

    def token_hash(self, annotator_id: int) -> str:
        row = self.db.execute(
            "SELECT token_hash FROM annotators WHERE id = ?", (annotator_id,)
        ).fetchone()
        if row is None:
            raise LabelRejected(404, f"no annotator {annotator_id}")
        return row["token_hash"]

    def annotators(self) -> list[Annotator]:
        rows = self.db.execute("SELECT id, name, role FROM annotators ORDER BY id").fetchall()
        return [Annotator(r["id"], r["name"], r["role"]) for r in rows]

    # -- items ------------------------------------------------------------------------------

    def add_items(self, items: Iterable[NewItem]) -> int:
        """Insert items in one transaction; an item whose key is already there is skipped.
        Returns how many were added. DataError (nothing written) for a malformed item."""
        items = list(items)
        for item in items:
            check_new_item(item)
        now, added = self.clock(), 0
        with self.transaction() as db:
            for item in items:
                cur = db.execute(
                    "INSERT OR IGNORE INTO items (key, kind, prompt, body, truth, gold, scores, "
                    "want, priority, source, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        item.key,
                        item.kind,
                        item.prompt,
                        json.dumps(item.body, ensure_ascii=False),
                        json.dumps(item.truth) if item.truth is not None else None,
                        int(item.gold),
                        json.dumps(item.scores),
                        item.want,
                        float(item.priority),
                        item.source,
                        now,
                    ),
                )
                added += cur.rowcount
            sources = sorted({i.source for i in items})
            body = {"added": added, "skipped": len(items) - added, "sources": sources}
            self._event("items_imported", body=body, ts=now)
        return added

    def item(self, item_id: int) -> Item | None:
        row = self.db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        return item_from_row(row) if row is not None else None

    def items(self, kind: str | None = None) -> list[Item]:
        sql, args = "SELECT * FROM items", ()
        if kind is not None:
            sql, args = sql + " WHERE kind = ?", (kind,)
        return [item_from_row(r) for r in self.db.execute(sql + " ORDER BY id", args)]

    def existing_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of `keys` are already items."""
        keys, found = list(keys), set()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self.db.execute(f"SELECT key FROM items WHERE key IN ({marks})", chunk)
            found |= {r["key"] for r in rows}
        return found

    def set_scores(self, scores: Mapping[int, Mapping[str, list[float]]]) -> int:
        """Merge judge scores into items (`{item id: {judge: scores}}`); returns items updated."""
        updated = 0
        with self.transaction() as db:
            for item_id, by_judge in scores.items():
                row = db.execute("SELECT scores FROM items WHERE id = ?", (item_id,)).fetchone()
                if row is None:
                    continue
                merged = {**json.loads(row["scores"]), **{k: list(v) for k, v in by_judge.items()}}
                db.execute(
                    "UPDATE items SET scores = ? WHERE id = ?", (json.dumps(merged), item_id)
                )
                updated += 1
        return updated

    # -- leasing ----------------------------------------------------------------------------

    def lease_next(self, annotator_id: int, kind: str) -> Lease | None:
        """The item this annotator should label next, leased to them; None when nothing is left.

        In one `BEGIN IMMEDIATE` transaction: their unexpired lease of this kind if any; else the
        highest-priority item (ties: lowest id) they have not labelled whose labels plus other
        annotators' unexpired leases are fewer than `want`, leased until now + lease_seconds."""
        if kind not in KINDS:
            raise LabelRejected(422, f"kind: {short_repr(kind)} is not one of {', '.join(KINDS)}")
        lease_seconds = self.lease_seconds
        with self.transaction() as db:
            now = self.clock()
            held = db.execute(
                "SELECT i.*, s.expires AS lease_expires, s.swapped AS lease_swapped "
                "FROM leases s JOIN items i ON i.id = s.item_id "
                "WHERE s.annotator_id = ? AND i.kind = ? AND s.expires > ? "
                "AND NOT EXISTS (SELECT 1 FROM labels l "
                "  WHERE l.item_id = i.id AND l.annotator_id = s.annotator_id) "
                "ORDER BY i.priority DESC, i.id LIMIT 1",
                (annotator_id, kind, now),
            ).fetchone()
            if held is not None:
                return Lease(
                    item_from_row(held), held["lease_expires"], bool(held["lease_swapped"])
                )
            row = db.execute(
                "SELECT i.* FROM items i WHERE i.kind = ? "
                "AND NOT EXISTS (SELECT 1 FROM labels l "
                "  WHERE l.item_id = i.id AND l.annotator_id = ?) "
                "AND (SELECT COUNT(*) FROM labels l WHERE l.item_id = i.id) "
                "  + (SELECT COUNT(*) FROM leases s WHERE s.item_id = i.id "
                "     AND s.annotator_id != ? AND s.expires > ?) < i.want "
                "ORDER BY i.priority DESC, i.id LIMIT 1",
                (kind, annotator_id, annotator_id, now),
            ).fetchone()
            if row is None:
                return None
            item = item_from_row(row)
            swapped = kind == "pair" and coin(item.id, annotator_id)
            expires = now + lease_seconds
            db.execute(
                "INSERT OR REPLACE INTO leases (item_id, annotator_id, expires, swapped) "
                "VALUES (?, ?, ?, ?)",
                (item.id, annotator_id, expires, int(swapped)),
            )
            self._event(
                "lease",
                annotator_id,
                item.id,
                {"kind": kind, "expires": expires, "swapped": swapped},
                ts=now,
            )
        return Lease(item, expires, swapped)

    def current_lease(self, annotator_id: int, item_id: int) -> Lease | None:
        """This annotator's unexpired lease on an item, or None."""
        row = self.db.execute(
            "SELECT i.*, s.expires AS lease_expires, s.swapped AS lease_swapped "
            "FROM leases s JOIN items i ON i.id = s.item_id "
            "WHERE s.annotator_id = ? AND s.item_id = ? AND s.expires > ?",
            (annotator_id, item_id, self.clock()),
        ).fetchone()
        if row is None:
            return None
        return Lease(item_from_row(row), row["lease_expires"], bool(row["lease_swapped"]))

    # -- labels -----------------------------------------------------------------------------

    def _check_lease(self, annotator_id: int, item_id: Any, kind: str, now: float) -> sqlite3.Row:
        """The item row and this annotator's lease on it, or LabelRejected (404, 422, 409, 403)."""
        if not isinstance(item_id, int) or isinstance(item_id, bool):
            raise LabelRejected(422, f"item_id: {short_repr(item_id)} is not an integer")
        row = self.db.execute(
            "SELECT i.*, s.expires AS lease_expires, s.swapped AS lease_swapped "
            "FROM items i LEFT JOIN leases s ON s.item_id = i.id AND s.annotator_id = ? "
            "WHERE i.id = ?",
            (annotator_id, item_id),
        ).fetchone()
        if row is None:
            raise LabelRejected(404, f"item_id: no item {item_id}")
        if row["kind"] != kind:
            wanted = "ratings" if row["kind"] == "steps" else "choice"
            raise LabelRejected(
                422, f"item_id: item {item_id} is a {row['kind']} item; send {wanted}"
            )
        done = self.db.execute(
            "SELECT id FROM labels WHERE item_id = ? AND annotator_id = ?", (item_id, annotator_id)
        ).fetchone()
        if done is not None:
            raise LabelRejected(409, f"item_id: you already labelled item {item_id}")
        if row["lease_expires"] is None:
            raise LabelRejected(403, f"item_id: item {item_id} is not leased to you")
        if row["lease_expires"] <= now:
            raise LabelRejected(
                409, f"item_id: your lease on item {item_id} expired; fetch the next item"
            )
        return row

    def _insert_label(
        self,
        annotator_id: int,
        row: sqlite3.Row,
        now: float,
        seconds: float | None,
        values: dict[str, Any],
        event: dict[str, Any],
    ) -> int:
        if seconds is None:  # time since the lease was taken
            seconds = max(0.0, now - (row["lease_expires"] - self.lease_seconds))
        cur = self.db.execute(
            "INSERT INTO labels (item_id, annotator_id, ratings, first_error, choice, comments, "
            "seconds, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row["id"],
                annotator_id,
                values.get("ratings"),
                values.get("first_error"),
                values.get("choice"),
                values["comments"],
                seconds,
                now,
            ),
        )
        label_id = cur.lastrowid
        self.db.execute(
            "DELETE FROM leases WHERE item_id = ? AND annotator_id = ?", (row["id"], annotator_id)
        )
        self._event(
            "label",
            annotator_id,
            row["id"],
            {"label_id": label_id, "seconds": seconds, **event},
            ts=now,
        )
        return label_id

    def submit_steps(
        self,
        annotator_id: int,
        item_id: int,
        ratings: Sequence[int],
        comments: Mapping[str, str] | None = None,
        seconds: float | None = None,
    ) -> int:
        """Store one step label and return its id; LabelRejected (nothing written) when the item is
        missing (404), not leased to this annotator (403), already labelled by them or the lease
        expired (409), or a rating, comment key or `seconds` is out of range (422)."""
        protocol = self.protocol
        with self.transaction():
            now = self.clock()
            row = self._check_lease(annotator_id, item_id, "steps", now)
            n = len(json.loads(row["body"])["steps"])
            first_error = check_ratings(ratings, n, protocol)
            notes = check_comments(comments, n)
            secs = check_seconds(seconds)
            values = {
                "ratings": json.dumps(list(ratings)),
                "first_error": first_error,
                "comments": json.dumps(notes, ensure_ascii=False),
            }
            return self._insert_label(
                annotator_id, row, now, secs, values, {"first_error": first_error}
            )

    def submit_pair(
        self,
        annotator_id: int,
        item_id: int,
        side: str,
        comment: str = "",
        seconds: float | None = None,
    ) -> int:
        """Store one pair label; `side` is the page's answer (left / right / tie / both_wrong),
        stored in the body's a/b terms through the lease's `swapped`. Rejections as submit_steps."""
        with self.transaction():
            now = self.clock()
            row = self._check_lease(annotator_id, item_id, "pair", now)
            if side not in SIDES:
                raise LabelRejected(
                    422, f"choice: {short_repr(side)} is not one of {', '.join(SIDES)}"
                )
            if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
                raise LabelRejected(
                    422, f"comment: not a string of at most {MAX_COMMENT} characters"
                )
            secs = check_seconds(seconds)
            choice = side_to_choice(side, bool(row["lease_swapped"]))
            values = {
                "choice": choice,
                "comments": json.dumps({"": comment.strip()} if comment.strip() else {}),
            }
            return self._insert_label(annotator_id, row, now, secs, values, {"choice": choice})

    def labels_of(self, annotator_id: int) -> list[dict[str, Any]]:
        """One annotator's own labels, oldest first (no truth, no gold flag)."""
        rows = self.db.execute(
            LABELS_SQL + " WHERE l.annotator_id = ? ORDER BY l.id", (annotator_id,)
        ).fetchall()
        return [label_dict(r, admin=False) for r in rows]

    def all_labels(self) -> list[dict[str, Any]]:
        """Every label, oldest first, with the annotator's name and the item's gold flag."""
        rows = self.db.execute(LABELS_SQL + " ORDER BY l.id").fetchall()
        return [label_dict(r, admin=True) for r in rows]

    # -- progress ---------------------------------------------------------------------------

    def progress(self, annotator_id: int, kind: str | None = None) -> dict[str, int]:
        """{"labelled": labels by this annotator, "remaining": items still open for them} (of one
        kind, or all): items they hold a lease on, or could be leased now."""
        now = self.clock()
        kinds = KINDS if kind is None else (kind,)
        marks = ", ".join("?" * len(kinds))
        labelled = self.db.execute(
            f"SELECT COUNT(*) FROM labels l JOIN items i ON i.id = l.item_id "
            f"WHERE l.annotator_id = ? AND i.kind IN ({marks})",
            (annotator_id, *kinds),
        ).fetchone()[0]
        remaining = self.db.execute(
            f"SELECT COUNT(*) FROM items i WHERE i.kind IN ({marks}) "
            "AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.item_id = i.id AND l.annotator_id = ?) "
            "AND (EXISTS (SELECT 1 FROM leases s WHERE s.item_id = i.id AND s.annotator_id = ? "
            "  AND s.expires > ?) "
            "  OR (SELECT COUNT(*) FROM labels l WHERE l.item_id = i.id) "
            "  + (SELECT COUNT(*) FROM leases s WHERE s.item_id = i.id "
            "     AND s.annotator_id != ? AND s.expires > ?) < i.want)",
            (*kinds, annotator_id, annotator_id, now, annotator_id, now),
        ).fetchone()[0]
        return {"labelled": labelled, "remaining": remaining}

    def queue_summary(self) -> dict[str, Any]:
        """The admin page's view: per kind (items, gold, labels wanted and given, items done, open
        and leased) and per annotator (labels, gold items labelled and matched, last label)."""
        now = self.clock()
        kinds = []
        for kind in KINDS:
            row = self.db.execute(
                "SELECT COUNT(*) AS items, COALESCE(SUM(gold), 0) AS gold, "
                "COALESCE(SUM(want), 0) AS wanted, "
                "COALESCE(SUM((SELECT COUNT(*) FROM labels l WHERE l.item_id = i.id)), 0) "
                "  AS labels, "
                "COALESCE(SUM((SELECT COUNT(*) FROM labels l WHERE l.item_id = i.id) >= i.want), 0) "
                "  AS done "
                "FROM items i WHERE i.kind = ?",
                (kind,),
            ).fetchone()
            leased = self.db.execute(
                "SELECT COUNT(*) FROM leases s JOIN items i ON i.id = s.item_id "
                "WHERE i.kind = ? AND s.expires > ?",
                (kind, now),
            ).fetchone()[0]
            kinds.append({"kind": kind, **dict(row), "leased": leased})
        people = []
        gold_rows = self.db.execute(
            "SELECT l.annotator_id, i.kind, i.truth, l.first_error, l.choice FROM labels l "
            "JOIN items i ON i.id = l.item_id WHERE i.gold = 1 AND i.truth IS NOT NULL"
        ).fetchall()
        for a in self.annotators():
            row = self.db.execute(
                "SELECT COUNT(*) AS labels, MAX(created) AS last, "
                "COALESCE(SUM(seconds), 0) AS seconds FROM labels WHERE annotator_id = ?",
                (a.id,),
            ).fetchone()
            mine = [g for g in gold_rows if g["annotator_id"] == a.id]
            matched = sum(gold_match(g) for g in mine)
            people.append(
                {
                    "id": a.id,
                    "name": a.name,
                    "role": a.role,
                    **dict(row),
                    "gold_labels": len(mine),
                    "gold_matched": matched,
                }
            )
        return {
            "kinds": kinds,
            "annotators": people,
            "protocol": self.protocol,
            "lease_seconds": self.lease_seconds,
        }


LABELS_SQL = (
    "SELECT l.*, i.key AS item_key, i.kind AS kind, i.gold AS gold, a.name AS annotator "
    "FROM labels l JOIN items i ON i.id = l.item_id JOIN annotators a ON a.id = l.annotator_id"
)


def label_dict(row: sqlite3.Row, admin: bool) -> dict[str, Any]:
    out = {
        "id": row["id"],
        "item_id": row["item_id"],
        "item_key": row["item_key"],
        "kind": row["kind"],
        "annotator_id": row["annotator_id"],
        "annotator": row["annotator"],
        "ratings": json.loads(row["ratings"]) if row["ratings"] is not None else None,
        "first_error": row["first_error"],
        "choice": row["choice"],
        "comments": json.loads(row["comments"]),
        "seconds": row["seconds"],
        "created": row["created"],
    }
    if admin:
        out["gold"] = bool(row["gold"])
    return out


def gold_match(row: sqlite3.Row) -> bool:
    """Did a label on a gold item match its truth (first_error, or the pair's choice)?"""
    truth = json.loads(row["truth"])
    if row["kind"] == "steps":
        return row["first_error"] == truth.get("first_error")
    return row["choice"] == truth.get("choice")
