"""Simulated annotators: threads that label through the real HTTP API, as people would.

No humans are at hand in tests and benchmarks, so each simulated annotator leases the next item
(`GET /api/next`), decides from the item's exact truth (read from the database, never from the
API), and posts its label (`POST /api/labels`). Its errors are the knobs:

- `noise`: with this probability the first wrong step (or the pair choice) is replaced by another
  one drawn uniformly (a label flipped at random);
- `bias`: with this probability a solution is called all correct whatever it holds (the lenient
  annotator; PRM800K's raters had to be screened for it);
- `speed`: seconds spent per step read (0: as fast as the server answers).

Every acknowledged label (201) is recorded with its id, so a load or crash test can check that the
database holds each one afterwards; a request that gets no answer (the server was killed) counts
as status 0, is not acknowledged, and the annotator asks again until the deadline. Latency is
measured per request on the client side.

Usage:
    truth = truth_by_item(Path("labels.sqlite"))
    stats = simulate("http://127.0.0.1:8765", tokens, truth, noise=0.1, bias=0.0, speed=0.0,
                     seconds=60, max_labels=None, seed=0)
"""

from __future__ import annotations

import http.client
import json
import random
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonlab.labeling.store import connect

CHOICES = ("left", "right", "tie", "both_wrong")


def truth_by_item(db_path: Path) -> dict[int, dict[str, Any]]:
    """{item id: truth JSON} for every item whose truth is known; a pair's truth also carries the
    texts of its solutions a and b (`text_a`, `text_b`), so a client can tell which side is which."""
    db = connect(db_path)
    try:
        rows = db.execute(
            "SELECT id, kind, body, truth FROM items WHERE truth IS NOT NULL"
        ).fetchall()
    finally:
        db.close()
    out = {}
    for row in rows:
        truth = json.loads(row["truth"])
        if row["kind"] == "pair":
            body = json.loads(row["body"])
            truth = {**truth, "text_a": body["a"], "text_b": body["b"]}
        out[row["id"]] = truth
    return out


def noisy_first_error(
    truth: int, n_steps: int, noise: float, bias: float, rng: random.Random
) -> int:
    """The first wrong step a simulated annotator reports: -1 (none) or a step index < n_steps."""
    if rng.random() < bias:
        return -1
    if rng.random() < noise:
        others = [i for i in range(-1, n_steps) if i != truth]
        return rng.choice(others) if others else truth
    return truth


def ratings_for(first_error: int, n_steps: int) -> list[int]:
    """The "stop at the first wrong step" protocol: +1 up to the first error, -1 on it, then nothing."""
    if first_error < 0:
        return [1] * n_steps
    return [1] * first_error + [-1]


def pair_choice(truth: str, noise: float, rng: random.Random) -> str:
    """The choice a simulated annotator posts, given the true one in page terms (left / right / tie
    / both_wrong)."""
    if rng.random() < noise:
        return rng.choice([c for c in CHOICES if c != truth])
    return truth


@dataclass
class Tally:
    """What one simulated annotator saw: acknowledged label ids, statuses, latencies (seconds)."""

    acknowledged: list[int] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _request(url: str, token: str, body: dict | None, tally: Tally) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    except (OSError, http.client.HTTPException) as err:  # refused, reset, or cut mid-answer
        status, raw = 0, json.dumps({"detail": f"no answer: {err!r}"}).encode()  # server down
    tally.latencies.append(time.perf_counter() - start)
    tally.statuses[status] += 1
    return status, (json.loads(raw) if raw else None)


def _label(item: dict, truth: Mapping[int, dict], noise: float, bias: float, rng: random.Random):
    """The JSON body of one simulated label for a leased item (None when its truth is unknown)."""
    known = truth.get(item["id"])
    if known is None:
        return None
    if item["kind"] == "steps":
        n = len(item["steps"])
        first = noisy_first_error(int(known["first_error"]), n, noise, bias, rng)
        return {"item_id": item["id"], "ratings": ratings_for(first, n), "comments": {}}
    true_choice = known["choice"]
    if true_choice in ("a", "b"):  # the page randomises sides: find the better one by its text
        true_side = "left" if item["left"] == known["text_" + true_choice] else "right"
    else:
        true_side = true_choice
    return {"item_id": item["id"], "choice": pair_choice(true_side, noise, rng)}


def annotate(
    base: str,
    token: str,
    truth: Mapping[int, dict],
    *,
    noise: float,
    bias: float,
    speed: float,
    deadline: float,
    quota: list[int],
    lock: threading.Lock,
    rng: random.Random,
    tally: Tally,
    kinds: Sequence[str] = ("steps", "pair"),
) -> Tally:
    """One annotator's loop, recorded in `tally`: lease, think `speed` seconds per step, post; until
    the deadline, the shared label quota, or an empty queue."""
    open_kinds = list(kinds)
    while open_kinds and time.monotonic() < deadline:
        with lock:
            if quota[0] <= 0:
                break
            quota[0] -= 1
        kind = open_kinds[0]
        status, item = _request(f"{base}/api/next?kind={kind}", token, None, tally)
        if status in (0, 204):  # 0: no server (restarting after a crash): wait and ask again
            if status == 204:
                open_kinds.pop(0)
            else:
                time.sleep(0.2)
            with lock:
                quota[0] += 1
            continue
        if status != 200:
            tally.errors.append(f"GET /api/next: {status} {item}")
            break
        body = _label(item, truth, noise, bias, rng)
        if body is None:
            tally.errors.append(f"item {item['id']}: truth unknown, cannot simulate a label")
            break
        body["seconds"] = speed * len(item.get("steps", [0, 0]))  # a pair: two solutions read
        time.sleep(body["seconds"])
        status, answer = _request(f"{base}/api/labels", token, body, tally)
        if status == 201:
            tally.acknowledged.append(int(answer["label_id"]))
        elif status == 0:  # the server went away mid-request: not acknowledged, maybe written
            time.sleep(0.2)
        else:
            tally.errors.append(f"POST /api/labels: {status} {answer}")
    return tally


def simulate(
    url: str,
    tokens: Sequence[str],
    truth: Mapping[int, dict],
    *,
    noise: float = 0.0,
    bias: float = 0.0,
    speed: float = 0.0,
    seconds: float = 60.0,
    max_labels: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Run one thread per token against the server at `url`; returns the load figures and every
    acknowledged label id: {"annotators", "labels", "acknowledged", "requests", "statuses",
    "seconds", "requests_per_s", "labels_per_s", "p50_ms", "p95_ms", "errors"}."""
    if not 0 <= noise <= 1 or not 0 <= bias <= 1 or speed < 0 or seconds <= 0:
        raise ValueError("need 0 <= noise, bias <= 1, speed >= 0 and seconds > 0")
    base = url.rstrip("/")
    deadline = time.monotonic() + seconds
    quota = [max_labels if max_labels is not None else 1 << 62]
    lock = threading.Lock()
    tallies: list[Tally] = [Tally() for _ in tokens]

    def work(i: int, token: str) -> None:
        rng = random.Random(seed * 1_000_003 + i)
        try:
            annotate(
                base,
                token,
                truth,
                noise=noise,
                bias=bias,
                speed=speed,
                deadline=deadline,
                quota=quota,
                lock=lock,
                rng=rng,
                tally=tallies[i],
            )
        except Exception as err:  # an annotator that stops says why; its tally so far stays
            tallies[i].errors.append(f"annotator {i} stopped: {err!r}")

    start = time.monotonic()
    threads = [
        threading.Thread(target=work, args=(i, t), daemon=True) for i, t in enumerate(tokens)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    latencies = sorted(x for t in tallies for x in t.latencies)
    statuses: Counter = sum((t.statuses for t in tallies), Counter())
    acknowledged = [x for t in tallies for x in t.acknowledged]
    requests = len(latencies)
    return {
        "annotators": len(tokens),
        "labels": len(acknowledged),
        "acknowledged": acknowledged,
        "requests": requests,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "seconds": elapsed,
        "requests_per_s": requests / elapsed if elapsed else 0.0,
        "labels_per_s": len(acknowledged) / elapsed if elapsed else 0.0,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))] if latencies else None,
        "errors": [e for t in tallies for e in t.errors][:20],
    }
