"""`reasonlab compare`: run folders side by side. Tiny run folders are written by hand (the files of a
real run, cut down), so no training runs here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from reasonlab.errors import ReasonlabError, RunFolderError
from reasonlab.reports.compare import (
    best_of,
    config_differences,
    default_out,
    run_labels,
    write_compare_report,
)
from runs import assert_one_line_error, reasonlab

CONFIG = {
    "name": "default",
    "seed": 0,
    "task": {"name": "arith", "knobs": {"n_operands": 5, "digits": 1}},
    "eval": {"n_samples": 4, "levels": [3, 7]},
    "rl": {"steps": 3, "lr": 0.0001, "advantage": "grpo", "task_knobs": {}, "judge": None},
}


def eval_summary(pass1: float, shortcut: float) -> dict:
    return {
        "pass@1": pass1,
        "pass@2": pass1 + 0.1,
        "pass@3": pass1 + 0.15,
        "pass@4": pass1 + 0.2,
        "maj@1": pass1,
        "maj@2": pass1,
        "maj@4": pass1 + 0.05,
        "malformed_rate": 0.01,
        "mean_length": 20.0,
        "shortcut_rate": shortcut,
    }


def make_run(
    path: Path,
    config: dict | None = None,
    rl_pass1: float = 0.6,
    rl_shortcut: float = 0.1,
    rl_time: float = 10.0,
) -> Path:
    """A run folder as `reasonlab run` writes it, with the few files compare reads."""
    (path / "eval").mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config or CONFIG, sort_keys=False))
    evals = {"base": eval_summary(0.3, 0.5), "rl": eval_summary(rl_pass1, rl_shortcut)}
    summary = {f"{m}/{k}": v for m, s in evals.items() for k, v in s.items() if "@3" not in k}
    summary |= {"base/greedy_pass@1": 0.25, "rl/greedy_pass@1": rl_pass1 + 0.05}
    summary |= {"time/rl_s": rl_time, "time/total_s": rl_time + 5}
    (path / "summary.json").write_text(json.dumps(summary))
    for model, s in evals.items():
        (path / "eval" / f"{model}.json").write_text(json.dumps({"task": "arith", "summary": s}))
    rows = [{"step": 1, "train/loss": 3.0, "train/tokens": 64}]
    rows += [
        {"step": i, "reward/mean": rl_pass1 * i / 3, "rl/pass_rate": rl_pass1 * i / 3}
        for i in (1, 2, 3)
    ]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def changed(**fields) -> dict:
    """CONFIG with dotted fields set (or removed, for None)."""
    config = json.loads(json.dumps(CONFIG))
    for dotted, value in fields.items():
        *parents, last = dotted.split("__")
        node = config
        for p in parents:
            node = node[p]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return config


def headline(md: str) -> dict[str, list[str]]:
    """The headline table of report.md: {metric: cells}."""
    table = md.split("## Headline metrics")[1].split("\n## ")[0]
    rows = [line.strip("|").split("|") for line in table.splitlines() if line.startswith("| ")]
    return {r[0].strip(): [c.strip() for c in r[1:]] for r in rows[1:]}


def test_config_differences_are_exactly_the_changed_fields():
    configs = {
        "a": CONFIG,
        "b": changed(rl__lr=0.0003, task__knobs__digits=2),
        "c": changed(eval__levels=[3, 5], rl__judge=None),  # an older run without rl.judge
    }
    rows = config_differences(configs)
    assert [r[0] for r in rows] == ["task.knobs.digits", "eval.levels", "rl.lr", "rl.judge"]
    by_field = {r[0]: r[1:] for r in rows}
    assert by_field["rl.lr"] == ["0.0001", "0.0003", "0.0001"]
    assert by_field["eval.levels"] == ["[3, 7]", "[3, 7]", "[3, 5]"]
    assert by_field["rl.judge"] == ["null", "null", "n/a"]
    assert config_differences({"a": CONFIG, "b": changed()}) == []


def test_best_knows_the_direction_and_skips_ties_and_missing():
    assert best_of([0.5, 0.7, "n/a"], 1) == {1}
    assert best_of([0.5, 0.7, 0.5], -1) == {0, 2}
    assert best_of([0.5, 0.5], 1) == set()
    assert best_of([0.5, "n/a"], 1) == set()
    assert best_of([1.0, 2.0], 0) == set()  # no better direction (mean length)


def test_report_marks_the_best_run_per_row_in_both_directions(tmp_path):
    a = make_run(tmp_path / "a", rl_pass1=0.6, rl_shortcut=0.1, rl_time=10.0)
    b = make_run(
        tmp_path / "b", changed(rl__lr=0.0003), rl_pass1=0.4, rl_shortcut=0.02, rl_time=20.0
    )
    out = tmp_path / "cmp"
    md = write_compare_report([a, b], out).read_text()
    assert "| rl.lr | 0.0001 | 0.0003 |" in md
    rows = headline(md)
    assert rows["RL pass@1"] == ["**0.6**", "0.4"]  # higher is better
    assert rows["RL pass@4"] == ["**0.8**", "0.6"]  # the largest k both runs have
    assert rows["RL maj@4"] == ["**0.65**", "0.45"]
    assert rows["RL shortcut rate"] == ["0.1", "**0.02**"]  # lower is better
    assert rows["RL time (s)"] == ["**10.0**", "20.0"]
    assert rows["base pass@1"] == ["0.3", "0.3"]  # all equal: no mark
    assert rows["RL malformed rate"] == ["0.01", "0.01"]
    assert "**" not in "".join(rows["RL mean length (tokens)"])
    page = (out / "report.html").read_text()
    assert re.findall(r"<td class='best'>([^<]*)</td>", page)[:2] == ["0.6", "0.8"]


def test_plots_exist_and_the_page_holds_only_data_uris(tmp_path):
    runs = [make_run(tmp_path / "x" / "default"), make_run(tmp_path / "y" / "default")]
    out = tmp_path / "cmp"
    md = write_compare_report(runs, out).read_text()
    assert {p.name for p in (out / "plots").iterdir()} == {"rl.png", "passk.png"}
    assert "(plots/rl.png)" in md and "(plots/passk.png)" in md
    page = (out / "report.html").read_text()
    sources = re.findall(r"<img src=[\"']([^\"']*)", page)
    assert len(sources) == 2 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "plots/" not in page
    assert (
        "x/default" in md and "y/default" in md
    )  # two runs named alike: the legend tells them apart
    assert (out / "compare.json").is_file()
    write_compare_report(runs, out)  # an earlier compare report may be rewritten


def test_labels_and_default_out_are_unique(tmp_path):
    runs = [tmp_path / "x" / "default", tmp_path / "y" / "default", tmp_path / "rloo"]
    assert run_labels(runs) == ["x/default", "y/default", "rloo"]
    assert default_out(runs) == Path("runs/compare-x_default-y_default-rloo")


def test_bad_input_raises_before_writing(tmp_path):
    a, b = make_run(tmp_path / "a"), make_run(tmp_path / "b")
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="holds no compare report"):
        write_compare_report([a, b], out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    with pytest.raises(ReasonlabError, match="given twice"):
        write_compare_report([a, tmp_path / "b" / ".." / "a"], tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_cli_writes_the_report_in_the_default_folder(tmp_path):
    make_run(tmp_path / "default")
    make_run(tmp_path / "rloo", changed(rl__advantage="rloo"))
    proc = reasonlab("compare", "default", "rloo", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "runs" / "compare-default-rloo"
    assert "| rl.advantage | grpo | rloo |" in (out / "report.md").read_text()
    assert (out / "report.html").is_file()


@pytest.mark.parametrize(
    "case, fragments",
    [
        ("missing", ["nowhere", "no such folder"]),
        ("not a run", ["eval", "is not a run folder", "config.yaml"]),
        ("one run", ["at least two run folders"]),
        ("twice", ["given twice"]),
        ("out taken", ["taken", "holds no compare report"]),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, case, fragments):
    run = make_run(tmp_path / "run")
    other = make_run(tmp_path / "other")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    args = {
        "missing": [run, tmp_path / "nowhere"],
        "not a run": [run, run / "eval"],
        "one run": [run],
        "twice": [run, other, tmp_path / "run"],
        "out taken": [run, other, "--out", taken],
    }[case]
    assert_one_line_error(reasonlab("compare", *map(str, args), cwd=tmp_path), *fragments)
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]
    assert not (tmp_path / "runs").exists()
