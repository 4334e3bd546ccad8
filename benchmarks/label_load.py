"""The labeling app under load and under a crash, on loopback: `reasonlab label serve` (one uvicorn
process over a real SQLite file in WAL mode) and simulated annotators (threads posting through the
HTTP API, labeling/simulate.py).

- load: `--annotators` annotators label for `--seconds` s; requests per second, labels per second,
  client-side p50 / p95 latency, and a check that every acknowledged label is in the database and
  no item was labelled twice;
- crash: the same, with the server killed by SIGKILL `--seconds / 3` s in and started again at
  once; every label acknowledged before or after the kill must be there, and the database must
  pass `PRAGMA integrity_check`.

    .venv/bin/python benchmarks/label_load.py --annotators 20 --seconds 60 [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from common import machine
from reasonlab.labeling.records import NewItem
from reasonlab.labeling.server import free_port, spawn
from reasonlab.labeling.simulate import simulate, truth_by_item
from reasonlab.labeling.store import Store


def make_db(path: Path, n_items: int, annotators: int, seed: int) -> list[str]:
    """`n_items` four-step solutions with known first errors, and the annotators' tokens."""
    with Store(path) as store:
        store.add_items(
            [
                NewItem(
                    key=f"item-{i}",
                    kind="steps",
                    prompt=f"problem {i}",
                    body={"steps": [f"step {j} of solution {i}" for j in range(4)]},
                    source="benchmark",
                    truth={"first_error": (i * 7 + seed) % 5 - 1, "correct": None},
                )
                for i in range(n_items)
            ]
        )
        return [store.add_annotator(f"sim-{k}") for k in range(annotators)]


def check(path: Path, acknowledged: list[int]) -> dict:
    db = sqlite3.connect(path)
    try:
        ids = {row[0] for row in db.execute("SELECT id FROM labels")}
        twice = db.execute(
            "SELECT COUNT(*) FROM (SELECT item_id FROM labels GROUP BY item_id HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()
    return {
        "stored": len(ids),
        "acknowledged_missing": len(set(acknowledged) - ids),
        "items_labelled_twice": twice,
        "integrity": integrity,
    }


def run(mode: str, annotators: int, seconds: float, items: int, folder: Path) -> dict:
    path = folder / f"{mode}.sqlite"
    tokens = make_db(path, items, annotators, seed=1)
    truth = truth_by_item(path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = spawn(path, port, log=folder / f"{mode}.log")
    result: dict = {}
    clients = threading.Thread(
        target=lambda: result.update(
            simulate(url, tokens, truth, noise=0.1, seconds=seconds, seed=3)
        )
    )
    clients.start()
    restart_s = None
    try:
        if mode == "crash":
            time.sleep(seconds / 3)
            os.kill(server.pid, signal.SIGKILL)
            server.wait()
            start = time.monotonic()
            server = spawn(path, port, log=folder / f"{mode}.log")
            restart_s = time.monotonic() - start
        clients.join()
    finally:
        server.kill()
        server.wait()
    acknowledged = result.pop("acknowledged")
    return {"mode": mode, **result, **check(path, acknowledged), "restart_s": restart_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--annotators", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--items", type=int, default=30_000)
    ap.add_argument("--out", type=Path, help="Keep the databases and a results.json here.")
    args = ap.parse_args()
    folder = args.out or Path(tempfile.mkdtemp(prefix="label-load-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows = [run(m, args.annotators, args.seconds, args.items, folder) for m in ("load", "crash")]
    print(f"{machine()}; {args.annotators} annotators, {args.seconds:.0f} s each run; {folder}")
    print(
        "| run | labels acknowledged | requests/s | labels/s | p50 ms | p95 ms | statuses "
        "| acknowledged but missing | items labelled twice | integrity_check | restart s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        restart = "-" if r["restart_s"] is None else f"{r['restart_s']:.1f}"
        print(
            f"| {r['mode']} | {r['labels']:,} | {r['requests_per_s']:.0f} | {r['labels_per_s']:.0f} "
            f"| {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['statuses']} | "
            f"{r['acknowledged_missing']} | {r['items_labelled_twice']} | {r['integrity']} | {restart} |"
        )
        if r["errors"]:
            print(f"  {r['mode']} errors: {r['errors'][:5]}")
    (folder / "results.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
