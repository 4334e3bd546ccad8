"""The labeling database: schema and pragmas, tokens, leasing (exclusive, expiring, overlapping), label
validation that writes nothing on rejection, the append-only event log, concurrent writers, and the pure
pieces beside it (queue priority, importer, export consensus).

Run: .venv/bin/pytest tests/test_label_store.py -q
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading

import pytest

from reasonlab.errors import ConfigError, DataError
from reasonlab.labeling.agreement import consensus_first_error
from reasonlab.labeling.auth import check_csrf, csrf_token, hash_token, verify_token
from reasonlab.labeling.export import consensus_choice, stepwise_records
from reasonlab.labeling.importer import pair_items, plan_items, step_items
from reasonlab.labeling.queue import Weights, pair_priority, priority
from reasonlab.labeling.records import LabelRejected, NewItem
from reasonlab.labeling.store import Store, connect


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def steps_item(
    key: str, n: int = 4, priority: float = 0.0, want: int = 1, first_error=1
) -> NewItem:
    truth = {"first_error": first_error, "correct": first_error < 0}
    body = {"steps": [f"step {i} of {key}" for i in range(n)]}
    return NewItem(
        key, "steps", f"problem {key}", body, "test", truth=truth, want=want, priority=priority
    )


def pair_item(key: str) -> NewItem:
    return NewItem(
        key, "pair", f"problem {key}", {"a": "A text", "b": "B text"}, "test", truth={"choice": "a"}
    )


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    s = Store(tmp_path / "labels.sqlite", clock=clock)
    yield s
    s.close()


def people(store: Store, *names: str) -> list[int]:
    return [store.annotator_for_token(store.add_annotator(n)).id for n in names]


def counts(store: Store) -> tuple[int, int, int]:
    db = store.db
    return tuple(
        db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
        for t in ("labels", "events", "leases")
    )


# ---------------------------------------------------------------- schema, tokens


def test_the_database_is_wal_with_foreign_keys_and_full_sync(tmp_path):
    db = connect(tmp_path / "x.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"meta", "annotators", "items", "leases", "labels", "events"} <= tables
    assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == "1"
    db.close()
    (tmp_path / "junk.sqlite").write_text("not a database at all " * 100)
    with pytest.raises(DataError, match="junk.sqlite"):
        connect(tmp_path / "junk.sqlite")


def test_only_the_token_hash_is_stored_and_names_are_unique(store, tmp_path):
    token = store.add_annotator("alice")
    row = store.db.execute("SELECT token_hash, role FROM annotators").fetchone()
    assert (
        row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
        and row["role"] == "annotator"
    )
    assert token.encode() not in (tmp_path / "labels.sqlite").read_bytes()
    assert token not in json.dumps(store.events())
    assert store.annotator_for_token(token).name == "alice"
    assert store.annotator_for_token(token + "x") is None and store.annotator_for_token("") is None
    with pytest.raises(ConfigError, match="alice"):
        store.add_annotator("alice", admin=True)
    assert store.annotator_for_token(store.add_annotator("boss", admin=True)).admin
    assert verify_token(token, hash_token(token)) and not verify_token(token, hash_token("other"))
    secret = store.secret()
    assert secret == store.secret()  # made once
    field = csrf_token(secret, row["token_hash"])
    assert check_csrf(secret, row["token_hash"], field)
    flipped = field[:-1] + ("1" if field[-1] == "0" else "0")
    assert not check_csrf(secret, row["token_hash"], flipped)
    assert not check_csrf(secret, hash_token("other"), field) and not check_csrf(
        secret, row["token_hash"], None
    )


def test_reimporting_the_same_keys_adds_nothing_and_bad_items_write_nothing(store):
    assert store.add_items([steps_item("a"), steps_item("b"), pair_item("p")]) == 3
    assert store.add_items([steps_item("a"), steps_item("c")]) == 1
    before = counts(store)
    with pytest.raises(DataError, match="'bad'.*body.steps"):
        store.add_items([steps_item("d"), NewItem("bad", "steps", "p", {"steps": []}, "t")])
    with pytest.raises(DataError, match="want"):
        store.add_items([steps_item("e", want=0)])
    assert counts(store) == before and len(store.items()) == 4


# ---------------------------------------------------------------- leasing


def test_leases_are_exclusive_by_priority_and_come_back_to_their_holder(store):
    a, b, c = people(store, "a", "b", "c")
    store.add_items(
        [
            steps_item("low", priority=0.1),
            steps_item("high", priority=0.9),
            steps_item("tie", priority=0.1),
        ]
    )
    first = store.lease_next(a, "steps")
    assert first.item.key == "high"
    assert store.lease_next(a, "steps").item.id == first.item.id  # the same lease again
    assert store.lease_next(b, "steps").item.key == "low"  # ties: lowest id
    assert store.lease_next(c, "steps").item.key == "tie"
    assert store.lease_next(people(store, "d")[0], "steps") is None
    assert store.lease_next(a, "pair") is None
    held = store.db.execute("SELECT item_id, COUNT(*) FROM leases GROUP BY item_id").fetchall()
    assert all(n == 1 for _, n in held)
    with pytest.raises(LabelRejected) as err:
        store.lease_next(a, "essay")
    assert err.value.status == 422


def test_an_expired_lease_goes_to_the_next_annotator_and_its_label_is_refused(store, clock):
    a, b = people(store, "a", "b")
    store.add_items([steps_item("x")])
    item = store.lease_next(a, "steps").item
    assert store.lease_next(b, "steps") is None
    clock.now += store.lease_seconds + 1
    assert store.lease_next(b, "steps").item.id == item.id
    before = counts(store)
    with pytest.raises(LabelRejected) as err:
        store.submit_steps(a, item.id, [1, -1])
    assert err.value.status == 409 and "expired" in err.value.message
    assert counts(store) == before
    assert store.submit_steps(b, item.id, [1, -1]) > 0


def test_overlap_items_go_to_k_different_annotators_once_each(store):
    ids = people(store, "a", "b", "c", "d")
    store.add_items([steps_item("shared", want=3)])
    leases = [store.lease_next(i, "steps") for i in ids]
    assert [lease is not None for lease in leases] == [True, True, True, False]
    for who in ids[:3]:
        store.submit_steps(who, leases[0].item.id, [1, 1, 1, 1])
    assert store.lease_next(ids[0], "steps") is None  # labelled already
    assert store.lease_next(ids[3], "steps") is None  # want reached
    assert store.progress(ids[3]) == {"labelled": 0, "remaining": 0}
    assert store.progress(ids[0]) == {"labelled": 1, "remaining": 0}


def test_pair_sides_are_a_seeded_coin_and_map_back(store):
    ids = people(store, *[f"p{i}" for i in range(8)])
    store.add_items([pair_item("p")])
    store.db.execute("UPDATE items SET want = 8")
    swaps = set()
    for who in ids:
        lease = store.lease_next(who, "pair")
        view = lease.public()
        assert (view["left"], view["right"]) == (
            ("B text", "A text") if lease.swapped else ("A text", "B text")
        )
        swaps.add(lease.swapped)
        store.submit_pair(who, lease.item.id, "left")
    assert swaps == {True, False}  # 8 annotators: both sides happen
    for label in store.all_labels():
        swapped = store.db.execute(
            "SELECT body FROM events WHERE kind = 'lease' AND annotator_id = ?",
            (label["annotator_id"],),
        ).fetchone()
        assert label["choice"] == ("b" if json.loads(swapped[0])["swapped"] else "a")


# ---------------------------------------------------------------- submitting


def test_every_rejection_has_its_status_and_writes_nothing(store):
    a, b = people(store, "a", "b")
    store.add_items([steps_item("x", n=4), steps_item("y", n=4), pair_item("p")])
    item = store.lease_next(a, "steps").item
    pair = store.lease_next(a, "pair").item
    cases = [
        (dict(annotator_id=a, item_id=999, ratings=[1]), 404),
        (dict(annotator_id=b, item_id=item.id, ratings=[1, 1, 1, 1]), 403),  # not leased to b
        (dict(annotator_id=a, item_id=item.id, ratings=[1, 2, 1, 1]), 422),  # rating not in the set
        (
            dict(annotator_id=a, item_id=item.id, ratings=[1, 1, 1, 1, 1]),
            422,
        ),  # step index out of range
        (
            dict(annotator_id=a, item_id=item.id, ratings=[1, -1, 1]),
            422,
        ),  # rated after the first wrong
        (
            dict(annotator_id=a, item_id=item.id, ratings=[1, 1]),
            422,
        ),  # stopped without a wrong step
        (dict(annotator_id=a, item_id=item.id, ratings=[True, 1, 1, 1]), 422),
        (dict(annotator_id=a, item_id=item.id, ratings=[1, 1, 1, 1], comments={"4": "x"}), 422),
        (dict(annotator_id=a, item_id=item.id, ratings=[1, 1, 1, 1], comments={"-1": "x"}), 422),
        (dict(annotator_id=a, item_id=item.id, ratings=[1, 1, 1, 1], seconds=-3), 422),
        (dict(annotator_id=a, item_id=pair.id, ratings=[1]), 422),  # a pair item
    ]
    before = counts(store)
    for kwargs, status in cases:
        with pytest.raises(LabelRejected) as err:
            store.submit_steps(**kwargs)
        assert err.value.status == status, (kwargs, err.value.message)
    with pytest.raises(LabelRejected) as err:
        store.submit_pair(a, pair.id, "a")  # body terms are not page terms
    assert err.value.status == 422 and "choice" in err.value.message
    assert counts(store) == before
    label_id = store.submit_steps(
        a, item.id, [1, 0, -1], {"2": " 7*8 is 56 ", "0": "  "}, seconds=12.5
    )
    row = store.db.execute("SELECT * FROM labels WHERE id = ?", (label_id,)).fetchone()
    assert json.loads(row["ratings"]) == [1, 0, -1] and row["first_error"] == 2
    assert json.loads(row["comments"]) == {"2": "7*8 is 56"} and row["seconds"] == 12.5
    assert (
        store.db.execute("SELECT COUNT(*) FROM leases WHERE item_id = ?", (item.id,)).fetchone()[0]
        == 0
    )
    with pytest.raises(LabelRejected) as err:
        store.submit_steps(a, item.id, [1, 0, -1])
    assert err.value.status == 409


def test_the_all_steps_protocol_needs_every_step(store):
    (a,) = people(store, "a")
    store.set_setting("protocol", "all_steps")
    with pytest.raises(ConfigError):
        store.set_setting("protocol", "some_steps")
    store.add_items([steps_item("x", n=3)])
    item = store.lease_next(a, "steps").item
    with pytest.raises(LabelRejected) as err:
        store.submit_steps(a, item.id, [1, -1])
    assert err.value.status == 422 and "all_steps" in err.value.message
    store.submit_steps(a, item.id, [1, -1, 1])
    assert store.labels_of(a)[0]["first_error"] == 1


def test_the_event_log_is_append_only(store):
    (a,) = people(store, "a")
    store.add_items([steps_item("x")])
    lease = store.lease_next(a, "steps")
    store.submit_steps(a, lease.item.id, [1, -1])
    kinds = [e["kind"] for e in store.events()]
    assert kinds == ["annotator_added", "items_imported", "lease", "label"]
    for sql in (
        "UPDATE events SET kind = 'x'",
        "DELETE FROM events",
        "DELETE FROM events WHERE id = 1",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            store.db.execute(sql)
    assert len(store.events()) == 4


def test_concurrent_annotators_all_land_and_never_share_an_item(tmp_path):
    path = tmp_path / "labels.sqlite"
    with Store(path) as setup:
        setup.add_items([steps_item(f"i{k}", n=3, first_error=-1) for k in range(40)])
        tokens = [setup.add_annotator(f"t{k}") for k in range(8)]
    acknowledged: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(token: str) -> None:
        try:
            with Store(path) as store:
                me = store.annotator_for_token(token).id
                while (lease := store.lease_next(me, "steps")) is not None:
                    label_id = store.submit_steps(me, lease.item.id, [1, 1, 1])
                    with lock:
                        acknowledged.append(label_id)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    with Store(path) as store:
        labels = store.all_labels()
        assert sorted(acknowledged) == sorted(x["id"] for x in labels) and len(labels) == 40
        assert len({x["item_id"] for x in labels}) == 40  # want 1: each item labelled once
        assert [e["kind"] for e in store.events()].count("label") == 40


# ---------------------------------------------------------------- queue, importer, export


def test_priority_prefers_convincing_wrong_answers_then_disagreement():
    w = Weights()
    assert priority({}, {"first_error": 2, "correct": False}, w) == 0.0
    wrong = priority({"prm": [0.9, 0.95]}, {"first_error": 0, "correct": False}, w)
    right = priority({"prm": [0.9, 0.95]}, {"first_error": -1, "correct": True}, w)
    assert wrong == pytest.approx(0.95 + 0.25 * 0.1) and right == pytest.approx(0.25 * 0.1)
    split = priority({"prm": [0.9], "orm": [0.1]}, None, w)
    assert split == pytest.approx(0.5 * 0.8 + 0.25 * 1.0)
    assert priority({"prm": [0.3, 0.5]}, None, w) == pytest.approx(0.25)
    assert priority({"prm": [0.5]}, None, Weights(0, 0, 0)) == 0.0
    with pytest.raises(ValueError, match="prm"):
        priority({"prm": [1.5]}, None, w)
    assert pair_priority({"prm": [0.2, 0.9]}, {"choice": "a"}, w) > pair_priority(
        {"prm": [0.9, 0.2]}, {"choice": "a"}, w
    )


def test_the_importer_reads_steps_and_preference_files_and_names_bad_lines(tmp_path):
    steps = tmp_path / "steps.jsonl"
    rows = [
        {
            "id": "s1",
            "prompt": "p",
            "completions": ["a", "b"],
            "labels": [True, False],
            "correct": False,
        },
        {"id": "s2", "prompt": "q", "completions": ["a", "b", "c"]},  # no labels: no truth
    ]
    steps.write_text("".join(json.dumps(r) + "\n" for r in rows))
    items = step_items(steps)
    assert [i.key for i in items] == ["s1", "s2"]
    assert items[0].truth == {"first_error": 1, "correct": False} and items[1].truth is None
    prefs = tmp_path / "prefs.jsonl"
    prefs.write_text(
        "".join(
            json.dumps({"prompt": f"p{k}", "chosen": f"good {k}", "rejected": f"bad {k}"}) + "\n"
            for k in range(20)
        )
    )
    pairs = pair_items(prefs, seed=0)
    assert all(p.body[p.truth["choice"]].startswith("good") for p in pairs)
    assert {p.truth["choice"] for p in pairs} == {"a", "b"}
    assert [p.key for p in pair_items(prefs, seed=0)] == [p.key for p in pairs]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps(rows[0]) + "\n" + json.dumps({"prompt": "p", "completions": "oops"}) + "\n"
    )
    with pytest.raises(DataError, match=r"bad.jsonl:2: completions"):
        step_items(bad)
    bad.write_text(json.dumps({"prompt": "p", "chosen": "x"}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:1: rejected: missing"):
        pair_items(bad)
    many = [steps_item(f"k{i}") for i in range(400)]
    planned = plan_items(many, gold_rate=0.25, overlap=0.5, k=3, seed=1)
    assert 60 < sum(i.gold for i in planned) < 140 and 140 < sum(i.want == 3 for i in planned) < 260
    assert planned == plan_items(many, gold_rate=0.25, overlap=0.5, k=3, seed=1)
    scored = plan_items(
        many[:2], score=lambda prompts, steps: {"j": [[0.9] * len(s) for s in steps]}
    )
    assert scored[0].scores == {"j": [0.9] * 4} and scored[0].priority > 0
    with pytest.raises(ConfigError, match="--gold-rate"):
        plan_items(many, gold_rate=1.5)


def test_export_takes_the_majority_first_error_ties_to_the_earliest(store):
    assert consensus_first_error([2]) == 2
    assert consensus_first_error([3, 3, 1]) == 3
    assert consensus_first_error([-1, 2]) == 2 and consensus_first_error([-1, -1, 0]) == -1
    assert consensus_first_error([4, 1, -1]) == 1
    assert consensus_choice(["a", "b"]) is None and consensus_choice(["b", "b", "tie"]) == "b"
    ids = people(store, "a", "b", "c")
    store.add_items([steps_item("x", n=4, want=3), steps_item("unlabelled")])
    for who, ratings in zip(ids, ([1, -1], [1, 1, -1], [1, -1])):
        store.submit_steps(who, store.lease_next(who, "steps").item.id, ratings)
    (record,) = stepwise_records(store)
    assert record.id == "x" and record.first_error == 1 and record.source == "human"
    assert record.labels == (True, False, False, False)


def test_the_export_says_what_the_annotators_said_not_the_hidden_truth(store):
    (who,) = people(store, "a")
    store.add_items([steps_item("wrong-in-truth", n=3, first_error=1)])
    store.submit_steps(who, store.lease_next(who, "steps").item.id, [1, 1, 1])
    (record,) = stepwise_records(store)
    assert record.first_error == -1 and record.correct is True
    assert record.labels == (True, True, True)
