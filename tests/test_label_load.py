"""Load and crash on the real stack: `reasonlab label serve` (uvicorn) over a real SQLite file,
simulated annotators posting through HTTP from threads.

- a short loopback load: every acknowledged label (201) is in the database afterwards, no item
  was labelled twice, and the database passes `PRAGMA integrity_check`;
- a crash: the server process is killed with SIGKILL while annotators post, started again on the
  same database, and every label acknowledged before or after the kill is there.

The full-size figures (20 annotators for 60 s) come from benchmarks/label_load.py.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time

from reasonlab.labeling.records import NewItem
from reasonlab.labeling.server import free_port, serving, spawn
from reasonlab.labeling.simulate import simulate, truth_by_item
from reasonlab.labeling.store import Store


def make_db(path, n_items: int, annotators: int) -> list[str]:
    with Store(path) as store:
        store.add_items(
            [
                NewItem(
                    key=f"item-{i}",
                    kind="steps",
                    prompt=f"{i} + 1 = ?",
                    body={"steps": [f"step {j} of {i}" for j in range(4)]},
                    source="test",
                    truth={"first_error": i % 5 - 1, "correct": i % 5 == 0},
                )
                for i in range(n_items)
            ]
        )
        return [store.add_annotator(f"sim-{k}") for k in range(annotators)]


def stored(path) -> tuple[set[int], list[tuple[int, int]], str]:
    db = sqlite3.connect(path)
    try:
        ids = {row[0] for row in db.execute("SELECT id FROM labels")}
        twice = db.execute(
            "SELECT item_id, COUNT(*) FROM labels GROUP BY item_id HAVING COUNT(*) > 1"
        ).fetchall()
        check = db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()
    return ids, twice, check


def test_every_acknowledged_label_lands_under_concurrent_annotators(tmp_path):
    path = tmp_path / "labels.sqlite"
    tokens = make_db(path, 400, 6)
    with serving(path) as url:
        result = simulate(url, tokens, truth_by_item(path), noise=0.2, seconds=3, seed=1)
    ids, twice, check = stored(path)
    assert result["labels"] > 20 and not result["errors"], result["errors"]
    assert set(result["acknowledged"]) <= ids and len(ids) == result["labels"]
    assert twice == [] and check == "ok"
    assert result["p95_ms"] is not None and result["requests_per_s"] > 0


def test_killing_the_server_loses_no_acknowledged_label(tmp_path):
    path = tmp_path / "labels.sqlite"
    tokens = make_db(path, 2000, 4)
    truth = truth_by_item(path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = spawn(path, port)
    results: dict = {}
    clients = threading.Thread(
        target=lambda: results.update(simulate(url, tokens, truth, seconds=12, seed=2))
    )
    clients.start()
    try:
        time.sleep(3)
        before = len(stored(path)[0])
        os.kill(server.pid, signal.SIGKILL)  # no shutdown, no flush: what a power cut does
        server.wait()
        killed_at = time.time()
        server = spawn(path, port)
        clients.join()
    finally:
        server.kill()
        server.wait()
    ids, twice, check = stored(path)
    db = sqlite3.connect(path)
    after = db.execute("SELECT COUNT(*) FROM labels WHERE created > ?", (killed_at,)).fetchone()[0]
    db.close()
    assert before > 0 and after > 0, (before, after)  # labels were posted on both sides of the kill
    assert results["statuses"].get("0", 0) > 0  # some requests found no server
    assert not [e for e in results["errors"] if "stopped" in e], results["errors"]
    assert set(results["acknowledged"]) <= ids, "an acknowledged label was lost"
    assert twice == [] and check == "ok"


def test_simulated_annotators_err_only_as_their_knobs_say():
    import random

    from reasonlab.labeling.simulate import noisy_first_error, pair_choice, ratings_for

    rng = random.Random(0)
    truths = [rng.randrange(-1, 6) for _ in range(500)]
    assert [noisy_first_error(t, 6, 0.0, 0.0, rng) for t in truths] == truths
    assert all(noisy_first_error(t, 6, 1.0, 0.0, rng) != t for t in truths)
    assert all(noisy_first_error(t, 6, 0.0, 1.0, rng) == -1 for t in truths)
    flipped = sum(noisy_first_error(t, 6, 0.3, 0.0, rng) != t for t in truths) / len(truths)
    assert 0.22 < flipped < 0.38
    assert ratings_for(-1, 3) == [1, 1, 1] and ratings_for(1, 3) == [1, -1]
    assert {pair_choice("left", 0.0, rng) for _ in range(20)} == {"left"}
    assert "left" not in {pair_choice("left", 1.0, rng) for _ in range(50)}
