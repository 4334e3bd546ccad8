"""`reasonlab label ...` in a subprocess: add-annotator prints a working token once, import (steps and
pairs, gold items, judge scores) and export (read back by judges/files.py), and bad input
as one line with exit code 2.

Run: .venv/bin/pytest tests/test_label_cli.py -q
"""

from __future__ import annotations

import json

from reasonlab.judges.files import read_records
from reasonlab.labeling.store import Store
from runs import assert_one_line_error, reasonlab


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_add_annotator_import_and_export(tmp_path):
    db = tmp_path / "labels.sqlite"
    proc = reasonlab("label", "add-annotator", "alice", "--db", str(db))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    token = proc.stdout.strip().splitlines()[-1]
    assert "shown only this once" in proc.stdout and len(token) == 43
    steps = write_jsonl(
        tmp_path / "steps.jsonl",
        [
            {
                "id": f"r{k}",
                "prompt": f"p{k}",
                "completions": ["a", "b", "c"],
                "first_error": k % 3 - 1,
            }
            for k in range(20)
        ],
    )
    prefs = write_jsonl(
        tmp_path / "prefs.jsonl", [{"prompt": "which?", "chosen": "good", "rejected": "bad"}]
    )
    proc = reasonlab(
        "label",
        "import",
        str(steps),
        "--db",
        str(db),
        "--gold-rate",
        "0.5",
        "--judges",
        "always-correct",
    )
    assert proc.returncode == 0 and "imported 20 new items of 20" in proc.stdout, (
        proc.stderr + proc.stdout
    )
    proc = reasonlab("label", "import", str(prefs), "--pairs", "--db", str(db))
    assert proc.returncode == 0 and "imported 1 new items of 1" in proc.stdout, proc.stderr
    with Store(db) as store:
        items = store.items("steps")
        assert len(items) == 20 and 0 < sum(i.gold for i in items) < 20
        assert all(set(i.scores) == {"always-correct"} for i in items)
        me = store.annotator_for_token(token).id
        while (lease := store.lease_next(me, "steps")) is not None:
            store.submit_steps(me, lease.item.id, [1, -1])
        lease = store.lease_next(me, "pair")
        store.submit_pair(
            me, lease.item.id, "left" if lease.public()["left"] == "good" else "right"
        )
    out = tmp_path / "human.jsonl"
    proc = reasonlab("label", "export", "--db", str(db), "--format", "stepwise", "--out", str(out))
    assert proc.returncode == 0 and "wrote 20 stepwise records" in proc.stdout, proc.stderr
    read = read_records(out, strict=True)
    assert len(read.records) == 20 and all(
        r.first_error == 1 and r.source == "human" for r in read.records
    )
    pref_out = tmp_path / "prefs-out.jsonl"
    proc = reasonlab(
        "label", "export", "--db", str(db), "--format", "preference", "--out", str(pref_out)
    )
    assert proc.returncode == 0, proc.stderr
    (row,) = [json.loads(x) for x in pref_out.read_text().splitlines()]
    assert (row["prompt"], row["chosen"], row["rejected"]) == ("which?", "good", "bad")


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    db = tmp_path / "labels.sqlite"
    bad = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            {"id": "ok", "prompt": "p", "completions": ["a"], "labels": [True]},
            {"id": "broken", "prompt": "p", "completions": ["a", "b"], "labels": [True]},
        ],
    )
    proc = reasonlab("label", "import", str(bad), "--db", str(db))
    assert_one_line_error(proc, "bad.jsonl:2", "labels", "wrong length")
    with Store(db) as store:
        store.add_annotator("x")
    proc = reasonlab("label", "add-annotator", "x", "--db", str(db))
    assert_one_line_error(proc, "annotator 'x' already exists")
    proc = reasonlab(
        "label",
        "export",
        "--db",
        str(tmp_path / "none.sqlite"),
        "--format",
        "stepwise",
        "--out",
        "x",
    )
    assert_one_line_error(proc, "--db", "none.sqlite")
    proc = reasonlab("label", "export", "--db", str(db), "--format", "csv", "--out", "x")
    assert_one_line_error(proc, "--format", "stepwise, preference")
    good = write_jsonl(
        tmp_path / "good.jsonl",
        [{"id": "ok", "prompt": "p", "completions": ["a"], "labels": [True]}],
    )
    proc = reasonlab("label", "import", str(good), "--db", str(db), "--weight", "novelty=2")
    assert_one_line_error(proc, "--weight", "novelty=2", "convincing_wrong")
    with Store(db) as store:
        assert store.items() == []  # the bad file and the bad weight imported nothing
