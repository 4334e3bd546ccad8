"""Tests for step-labelled judge data: injected errors, verifier labels, reading and writing files.

Run: .venv/bin/pytest tests/test_judge_data.py -q
"""

from __future__ import annotations

import json
import random

import pytest

from reasonlab.errors import DataError
from reasonlab.judges.data import eval_records, injected_record, record_from_text, reference_record
from reasonlab.judges.errors import EQUATION_KINDS, ERROR_KINDS, inject, injection, supported_kinds
from reasonlab.judges.files import Skipped, read_records, resolve_data, write_records
from reasonlab.tasks import Task, get_task
from reasonlab.tasks.mathdata import resolve_data_dir, shipped_data_dir
from reasonlab.types import Outcome, StepRecord

ARITH_KNOBS = [
    dict(n_operands=n, operators=ops, digits=d)
    for n in (3, 4, 5, 6)
    for ops in ("+-", "+-*")
    for d in (1, 2)
]


def problems(task: Task, n: int = 25, seed: int = 0):
    return task.sample("train", n, seed=seed)


# ---------------------------------------------------------------- injected errors


def check_injections(task: Task, kind: str) -> int:
    """Every injection of `kind` is judged wrong exactly at its step; returns how many applied."""
    rng, applied = random.Random(7), 0
    for problem in problems(task):
        found = injection(task, problem, kind, rng)
        if found is None:
            continue
        applied += 1
        verdict = task.verify(problem, found.text)
        assert verdict.first_error == found.index, (kind, problem.prompt, found.text)
        assert verdict.steps_valid[: found.index] == (True,) * found.index
        if kind == "right_answer":
            assert verdict.outcome is Outcome.CORRECT and found.index < len(found.steps)
        elif (
            kind != "wrong_step"
        ):  # the task's wrong step keeps the reference answer: the task decides
            assert verdict.outcome is Outcome.WRONG
        if kind in ("arithmetic", "operand"):  # one wrong step, the rest carried forward validly
            assert verdict.steps_valid.count(False) == 1
        record = injected_record(task, problem, kind, random.Random(0))
        assert record is not None and record.first_error >= 0
        assert record.source == f"injected:{kind}"
        if kind != "wrong_step":
            assert record.correct is (kind == "right_answer")
    return applied


@pytest.mark.parametrize("knobs", ARITH_KNOBS, ids=lambda k: "-".join(map(str, k.values())))
@pytest.mark.parametrize("kind", EQUATION_KINDS)
def test_arith_injection_is_located_by_the_verifier(knobs, kind):
    task = get_task("arith", **knobs)
    assert check_injections(task, kind) >= 20


@pytest.mark.parametrize("n_numbers", (3, 4, 6))
def test_countdown_injection_is_located_by_the_verifier(n_numbers):
    task = get_task("countdown", n_numbers=n_numbers)
    assert supported_kinds(task) == ("arithmetic", "operand")
    for kind in supported_kinds(task):
        assert check_injections(task, kind) >= 20
    for kind in ("skipped", "right_answer"):
        assert all(inject(task, p, kind, random.Random(0)) is None for p in problems(task, 5))


def test_single_step_problems_cannot_skip_or_keep_the_right_answer():
    task = get_task("arith", n_operands=2)
    for problem in problems(task, 5):
        assert inject(task, problem, "skipped", random.Random(0)) is None
        assert inject(task, problem, "right_answer", random.Random(0)) is None
        assert inject(task, problem, "arithmetic", random.Random(0)) is not None


def test_injection_is_deterministic_in_the_rng():
    task = get_task("arith", n_operands=5)
    for problem in problems(task, 5):
        for kind in ERROR_KINDS:
            assert inject(task, problem, kind, random.Random(3)) == inject(
                task, problem, kind, random.Random(3)
            )


def test_arith_injections_by_hand():
    task = get_task("arith", n_operands=3)
    meta = {"operands": (37, 48, 19), "operators": "+-"}
    problem = task.make_problem("37+48-19=?\n", "66", 3, meta)
    text = inject(task, problem, "skipped", random.Random(0))
    assert text == "37-19=18\nanswer: 18\n"
    text = inject(task, problem, "right_answer", random.Random(0))
    lines = text.splitlines()
    assert lines[0].startswith("37+48=") and lines[0] != "37+48=85"
    assert lines[1:] == ["85-19=66", "answer: 66"]


def test_reference_records_are_all_correct():
    for task in (get_task("arith", n_operands=4, operators="+-*"), get_task("countdown")):
        for problem in problems(task, 10):
            record = reference_record(task, problem)
            assert record.first_error == -1 and record.correct is True
            assert record.labels == (True,) * len(record.steps)
            assert record.id == f"{problem.id}:reference" and record.source == "reference"


# ---------------------------------------------------------------- record_from_text by hand


@pytest.fixture(scope="module")
def arith3():
    task = get_task("arith", n_operands=3)
    meta = {"operands": (37, 48, 19), "operators": "+-"}
    return task, task.make_problem("37+48-19=?\n", "66", 3, meta)


@pytest.mark.parametrize(
    "text, steps, first_error, correct",
    [
        ("answer: 66\n", ("answer: 66",), -1, True),  # shortcut, right
        ("answer: 65\n", ("answer: 65",), 0, False),  # shortcut, wrong
        ("37+48=85\n85-19=66\nanswer: 65\n", ("37+48=85", "85-19=66\nanswer: 65"), 1, False),
        ("37+48=85\n85-19=66\n", ("37+48=85", "85-19=66"), 1, False),  # no answer: malformed
        (
            "37+48=84\ncheck: wrong\n37+48=85\n85-19=66\nanswer: 66\n",
            ("37+48=84\ncheck: wrong", "37+48=85", "85-19=66\nanswer: 66"),
            -1,
            True,
        ),
        ("37+48=85\nso far so good\n85-19=66\nanswer: 66\n", None, 1, True),  # junk line
        ("37+48=86\n86-19=67\nanswer: 67\n", None, 0, False),
    ],
)
def test_record_from_text_labels(arith3, text, steps, first_error, correct):
    task, problem = arith3
    record = record_from_text(task, problem, text, "hand", id="x")
    assert record is not None
    if steps is not None:
        assert record.steps == steps
    assert (record.first_error, record.correct) == (first_error, correct)
    cut = len(record.steps) if first_error < 0 else first_error
    assert record.labels == tuple(i < cut for i in range(len(record.steps)))
    assert (record.id, record.source, record.prompt) == ("x", "hand", problem.prompt)


def test_record_from_text_without_steps(arith3):
    task, problem = arith3
    assert record_from_text(task, problem, "\n \n", "hand") is None


# ---------------------------------------------------------------- eval_records


def test_eval_records_are_balanced_and_deterministic():
    task = get_task("arith", n_operands=4, operators="+-*")
    probs = problems(task, 40)
    records = eval_records(task, probs, seed=1)
    assert records == eval_records(task, probs, seed=1)
    assert [r.steps for r in records] != [r.steps for r in eval_records(task, probs, seed=2)]
    assert len(records) == 2 * len(probs)
    sources = [r.source for r in records]
    assert sources.count("reference") == len(probs)
    counts = [sources.count(f"injected:{k}") for k in EQUATION_KINDS]
    assert sum(counts) == len(probs) and max(counts) - min(counts) <= 1
    assert all(r.id == f"{r.problem.id}:{r.source}" for r in records)
    assert sum(r.erroneous for r in records) == len(probs)


def test_chess_injects_the_task_s_own_wrong_step_where_the_verifier_finds_it():
    task = get_task("chess", mate_in=2)
    assert supported_kinds(task) == ("wrong_step",)
    assert check_injections(task, "wrong_step") >= 20
    records = eval_records(task, problems(task, 10), seed=0)
    assert {r.source for r in records} == {"reference", "injected:wrong_step"}


def test_eval_records_on_countdown_use_the_kinds_it_supports():
    task = get_task("countdown")
    records = eval_records(task, problems(task, 20), seed=0)
    sources = {r.source for r in records}
    assert sources == {"reference", "injected:arithmetic", "injected:operand"}
    assert all(r.correct is (r.source == "reference") for r in records)


# ---------------------------------------------------------------- files: round trip


def test_write_then_read_round_trips(tmp_path):
    records: list[StepRecord] = []
    for task in (get_task("arith", n_operands=4, operators="+-*"), get_task("countdown")):
        records += eval_records(task, problems(task, 6), seed=0)
    records.append(
        StepRecord(
            prompt="p ✓",
            steps=("a", "b"),
            labels=(True, False),
            first_error=1,
            correct=None,
            id="soft",
            source="mc",
            soft_labels=(0.75, 0.0),
        )
    )
    path = tmp_path / "sub" / "records.jsonl"
    write_records(path, records)
    result = read_records(path, strict=True)
    assert result.records == records and result.skipped == []
    tasks = {
        "arith": get_task("arith", n_operands=4, operators="+-*"),
        "countdown": get_task("countdown"),
    }
    for before, after in zip(records, result.records):
        if before.problem is None:
            assert after.problem is None
            continue
        assert after.problem == before.problem and after.problem.meta == before.problem.meta
        text = "\n".join(after.steps) + "\n"  # the verifier still labels the reloaded problem
        task = tasks[after.problem.task]
        assert record_from_text(task, after.problem, text, after.source, after.id) == after
    assert [p.name for p in path.parent.iterdir()] == ["records.jsonl"]


def test_write_records_refuses_unlabelled_records_and_leaves_no_file(tmp_path):
    path = tmp_path / "x.jsonl"
    with pytest.raises(ValueError):
        write_records(path, [StepRecord(prompt="p", steps=("a",))])
    assert not path.exists()


# ---------------------------------------------------------------- files: ProcessBench


def test_read_processbench_gsm8k(monkeypatch):
    monkeypatch.delenv("REASONLAB_DATA_DIR", raising=False)
    data_dir = resolve_data_dir()  # the folder shipped with the package
    path = data_dir / "processbench" / "gsm8k.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    result = read_records(path, strict=True)
    assert len(result.records) == 400 and not result.skipped
    for item, record in zip(raw, result.records):
        assert record.first_error == item["label"] and record.id == item["id"]
        assert len(record.labels) == len(record.steps) == len(item["steps"])
        assert record.correct is item["final_answer_correct"] and record.prompt == item["problem"]
    assert resolve_data("processbench:gsm8k", data_dir) == path
    assert resolve_data("processbench:gsm8k") == path


def test_resolve_data(tmp_path, monkeypatch):
    file = tmp_path / "a.jsonl"
    file.write_text("")
    assert resolve_data(str(file), None) == file
    with pytest.raises(DataError, match="nope.*processbench:gsm8k"):
        resolve_data("nope", None)
    with pytest.raises(DataError, match="processbench:other"):
        resolve_data("processbench:other", tmp_path)
    monkeypatch.delenv("REASONLAB_DATA_DIR", raising=False)
    assert (
        resolve_data("processbench:math", None) == shipped_data_dir() / "processbench" / "math.json"
    )
    with pytest.raises(DataError, match=f"{tmp_path / 'processbench' / 'math.json'}.*--data-dir"):
        resolve_data("processbench:math", tmp_path)
    monkeypatch.setenv("REASONLAB_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="math.json.*REASONLAB_DATA_DIR"):
        resolve_data("processbench:math", None)


# ---------------------------------------------------------------- files: bad input

GOOD = {"prompt": "p", "completions": ["a", "b"], "labels": [True, False]}
BAD_LINES = [  # (line text, field) — good lines are interleaved
    (json.dumps({"prompt": "p", "labels": [True]}), "completions"),
    (json.dumps({"prompt": "p", "completions": ["a", "b"], "labels": [True]}), "labels"),
    (json.dumps({"problem": "p", "steps": ["a", "b"], "label": 2}), "label"),
    (json.dumps({"prompt": "p", "completions": [], "labels": []}), "completions"),
    ('{"prompt": "p", "completions": ["a"', "json"),
    (json.dumps({"prompt": "p", "completions": ["a"], "labels": ["yes"]}), "labels"),
    (
        json.dumps({"prompt": "p", "completions": ["a"], "labels": [True], "first_error": 0}),
        "first_error",
    ),
    (json.dumps([1, 2]), "record"),
    (json.dumps({"completions": ["a"], "labels": [True]}), "prompt"),
]


@pytest.fixture()
def bad_jsonl(tmp_path):
    lines, expected = [json.dumps(GOOD)], []
    for text, field in BAD_LINES:
        lines += [text, "", json.dumps({**GOOD, "labels": [1, 1]})]
        expected.append((len(lines) - 2, field))
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, expected


def test_bad_records_are_skipped_with_line_and_field(bad_jsonl):
    path, expected = bad_jsonl
    result = read_records(path)
    assert len(result.records) == 1 + len(BAD_LINES)
    assert result.records[0].labels == (True, False) and result.records[0].first_error == 1
    assert result.records[1].labels == (True, True) and result.records[1].first_error == -1
    assert [(s.line, s.field) for s in result.skipped] == expected
    assert all(isinstance(s, Skipped) and s.reason for s in result.skipped)
    assert result.summary() == (
        "skipped 9 of 19 records: 1 completions (missing), 1 labels (wrong length), "
        "1 label (index out of range), 1 completions (empty step list), 1 json (bad JSON), "
        "1 labels (not a list of booleans), 1 first_error (disagrees with labels), "
        "1 record (not a JSON object), 1 prompt (missing)"
    )


def test_strict_raises_on_the_first_bad_record(bad_jsonl):
    path, expected = bad_jsonl
    line, field = expected[0]
    with pytest.raises(DataError) as info:
        read_records(path, strict=True)
    assert str(info.value).startswith(f"{path}:{line}: {field}: ")


def test_json_array_reports_the_line_of_a_bad_element(tmp_path):
    items = [GOOD, {"problem": "p", "steps": ["a", "b"], "label": -2}, GOOD]
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(items, indent=2), encoding="utf-8")
    text = path.read_text()
    bad_line = text[: text.index('"problem"')].count("\n")  # the `{` is on the line before
    result = read_records(path)
    assert len(result.records) == 2
    assert [(s.line, s.field, s.reason) for s in result.skipped] == [
        (bad_line, "label", "index out of range")
    ]
    with pytest.raises(DataError, match=rf"bench\.json:{bad_line}: label: index out of range"):
        read_records(path, strict=True)


def test_all_bad_records_give_no_records(tmp_path):
    path = tmp_path / "all_bad.jsonl"
    path.write_text('{"prompt": "p"}\n{"prompt": "q"}\n', encoding="utf-8")
    result = read_records(path)
    assert result.records == [] and len(result.skipped) == 2
    assert result.summary() == "skipped 2 of 2 records: 2 completions (missing)"


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such data file"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"hello\n", "not JSONL or a JSON array"),
        (b'[{"prompt": "p"}, {"prompt": ', "not a valid JSON array"),
        (b'[{"prompt": "p"}] x', "text after"),
    ],
)
def test_unreadable_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "data.jsonl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_records(path)
    assert str(path) in str(info.value)


def test_empty_and_directory_inputs(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert read_records(empty).records == []
    with pytest.raises(DataError, match="cannot read"):
        read_records(tmp_path)
