"""`reasonlab sweep` on tiny configs: a 2x1 sweep completes, a rerun skips finished cells, an interrupted
cell is redone, a diverging cell is recorded while the other finishes, and a bad sweep file is one line
with exit code 2 and nothing written. Plus the pieces: cell names, --quick, the rank correlation and the
generation-verification gap, against hand-computed values. The model-size axis: configs/sweep_scale.yaml's
sizes build the parameter counts its header states, a `model` mapping keeps `set`'s model fields and
refuses to reset the base's, and a --quick sweep over sizes on a range corpus records each base's
parameters and FLOPs and its levels' regions, and resumes."""

import json
import math

import numpy as np
import pytest
import yaml

from reasonlab.config import DEFAULT_CONFIG
from reasonlab.errors import ConfigError
from reasonlab.experiments.sweep import run_sweep
from reasonlab.experiments.sweep_plan import axis_keys, load_plan, value_label
from reasonlab.pretrain.trainer import new_model, tokens_trained
from reasonlab.reports.sweep import (
    average_ranks,
    compute_rows,
    correlation_table,
    correlations,
    pass1_intervals,
    plot_compute,
    spearman,
    spearman_interval,
    verdict_table,
    verification_gaps,
)
from runs import TINY_SWEEP_SET, assert_one_line_error, reasonlab, summary_mtimes

SHORTCUT = {"answer_only": 0.6, "steps": 0.4, "backtrack": 0.0}
CHECKS = {"answer_only": 0.0, "steps": 0.5, "backtrack": 0.5}


def write_sweep(tmp_path, name="tiny", **fields):
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump({"name": name, "set": TINY_SWEEP_SET, **fields}, sort_keys=False)
    )
    return path


# ---- the pieces -----------------------------------------------------------------------------------------


def test_spearman_against_hand_computed_values():
    assert list(average_ranks([10, 20, 20, 5])) == [2.0, 3.5, 3.5, 1.0]
    # ranks (1 2 3 4 5) and (1 2 3.5 5 3.5): sum of centred products 8, sums of squares 10 and 9.5
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / math.sqrt(95))
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert spearman([0.1, 0.5, 0.2, 0.9], [1, 9, 4, 16]) == pytest.approx(
        1.0
    )  # monotone, not linear
    assert spearman([1, None, 3, 2], [1, 5, 3, float("nan")]) == pytest.approx(
        1.0
    )  # missing pairs left out
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3])) and math.isnan(spearman([1], [2]))


def test_verification_gap_from_the_judges_best_of_n():
    summary = {
        "judge/bo16/prm": 0.8,
        "judge/bo16/likelihood": 0.5,
        "judge/bo16/majority": 0.65,
        "judge/bo16/pass@1": 0.35,
        "judge/bo16/pass@16": 0.95,
        "judge/prm/f1": 0.9,
        "base/pass@1": 0.3,
    }
    gaps = verification_gaps(summary)
    assert gaps == {"gv_gap/prm": 0.75, "gv_gap/likelihood": 0.25, "gv_gap/majority": 0.5}
    flat = {"judge/bo4/prm": 0.5, "judge/bo4/pass@1": 0.5, "judge/bo4/pass@4": 0.5}
    assert (
        verification_gaps(flat) == {"gv_gap/prm": None}
        and verification_gaps({"base/pass@1": 0.3}) == {}
    )


def test_cell_names_configs_and_the_quick_grid(tmp_path):
    base = tmp_path / "run.yaml"
    base.write_text("seed: 7\ntask: {name: arith, knobs: {n_operands: 3}}\n")
    path = write_sweep(
        tmp_path,
        base="run.yaml",
        grid={"pretrain.token_budget": [500000, 1500000], "traces": [SHORTCUT, CHECKS]},
        labels={"traces": ["shortcut", "checks"]},
        quick={
            "grid": {"pretrain.token_budget": [1500000, 250000], "traces": ["checks"]},
            "set": {"rl.steps": 1},
        },
    )
    plan = load_plan(path)
    assert [c.name for c in plan.cells] == [
        "token_budget-500k__traces-shortcut",
        "token_budget-500k__traces-checks",
        "token_budget-1.5M__traces-shortcut",
        "token_budget-1.5M__traces-checks",
    ]
    cfg = plan.cells[1].config
    assert (
        cfg.pretrain.token_budget == 500000
        and cfg.traces.backtrack == 0.5
        and cfg.traces.answer_only == 0.0
    )
    assert (
        cfg.seed == 7
        and cfg.task.knobs == {"n_operands": 3}
        and cfg.rl.steps == 2
        and cfg.judge.heads == []
    )
    assert plan.cells[1].label == "500k checks" and plan.default_out.name == "tiny"
    quick = load_plan(path, quick=True)
    assert [c.name for c in quick.cells] == [
        "token_budget-1.5M__traces-checks",
        "token_budget-250k__traces-checks",
    ]
    assert all(c.config.rl.steps == 1 and c.config.traces.backtrack == 0.5 for c in quick.cells)
    assert quick.default_out.name == "tiny-quick"
    assert axis_keys(["pretrain.lr", "rl.lr", "seed"]) == ["pretrain.lr", "rl.lr", "seed"]
    assert [
        value_label(v) for v in (3000000, 1234, 0.003, -0.5, "+-", "a b", True, {"a": 1, "b": 0.5})
    ] == ["3M", "1234", "0.003", "minus0.5", "+-", "a-b", "true", "a1-b0.5"]


@pytest.mark.parametrize(
    "fields, fragments",
    [
        ({"grid": {}}, ["grid is empty"]),
        ({}, ["grid", "Field required"]),
        ({"grid": {"pretrain.lr": []}}, ["grid.pretrain.lr", "no values"]),
        (
            {"grid": {"pretrain.lr": [0.001, 0.001]}},
            ["grid.pretrain.lr", "would both be named '0.001'"],
        ),
        (
            {"grid": {"pretrain.lr": [0.001, 0.002]}, "labels": {"pretrain.lr": ["low", "low"]}},
            ["would both be named 'low'"],
        ),
        (
            {"grid": {"pretrain.lr": [0.001]}, "labels": {"pretrain.lr": ["a/b"]}},
            ["'a/b'", "not a safe name"],
        ),
        (
            {"grid": {"pretrain.token_budgt": [1000]}},
            ["grid pretrain.token_budgt=1000", "unknown config path"],
        ),
        (
            {"grid": {"pretrain.lr": [0.001]}, "set": {"rl.stepz": 3}},
            ["set rl.stepz=3", "unknown config path"],
        ),
        ({"grid": {"traces": [{"steps": -1.0}]}}, ["traces.steps"]),
        (
            {"grid": {"seed": [0]}, "quick": {"grid": {"pretrain.lr": [0.1]}}},
            ["quick.grid.pretrain.lr", "not an axis"],
        ),
        ({"grids": {"seed": [0]}}, ["grids", "unknown field"]),
    ],
)
def test_bad_sweep_files_are_one_line_and_write_nothing(tmp_path, fields, fragments):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", **fields}))
    with pytest.raises(ConfigError) as err:
        load_plan(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    for fragment in fragments:
        assert fragment in str(err.value), str(err.value)


def test_bad_sweep_file_through_the_command(tmp_path):
    out = tmp_path / "out"
    path = write_sweep(
        tmp_path, grid={"pretrain.lr": [0.001, 0.002]}, labels={"pretrain.lr": ["x", "x"]}
    )
    assert_one_line_error(
        reasonlab("sweep", "--config", str(path), "--out", str(out)), "would both be named"
    )
    assert_one_line_error(
        reasonlab("sweep", "--config", str(tmp_path / "none.yaml")), "none.yaml", "not found"
    )
    assert not out.exists()


# ---- the command end to end -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep_2x1(tmp_path_factory):
    """A finished 2x1 sweep: (its folder of sweep files, the sweep file, the out folder, the run)."""
    tmp_path = tmp_path_factory.mktemp("sweep")
    path = write_sweep(
        tmp_path,
        grid={"traces": [SHORTCUT, CHECKS], "pretrain.lr": [0.003]},
        labels={"traces": ["shortcut", "checks"]},
    )
    out = tmp_path / "out"
    return tmp_path, path, out, reasonlab("sweep", "--config", str(path), "--out", str(out))


def test_the_sweep_report_opens_in_a_browser(sweep_2x1, browser):
    """No console error, every image loaded and inline (tests/test_report_browser.py says more)."""
    _, _, out, proc = sweep_2x1
    assert proc.returncode == 0, proc.stderr + proc.stdout
    page = browser.check(out / "sweep.html")
    assert page.console_errors == [] and page.images >= 1 and page.broken_images == []
    assert 'src="plots/' not in (out / "sweep.html").read_text()


def test_each_cell_carries_its_intervals_and_verdict_and_the_report_shows_them(sweep_2x1):
    _, _, out, proc = sweep_2x1
    assert proc.returncode == 0, proc.stderr + proc.stdout
    rows = json.loads((out / "sweep.json").read_text())["cells"]
    for row in rows:
        lo, hi = row["intervals"]["base"]
        assert lo <= row["base"]["pass@1"] <= hi
        lo, hi = row["intervals"]["gain"]
        assert lo - 1e-4 <= row["gain"]["pass@1"] <= hi + 1e-4  # the gain is rounded to 4 places
        v = row["verdict"]
        n_rl, n_base = len(v["rl"]), len(v["base"])
        assert v["call"] == ("rl" if n_rl > n_base else "base" if n_base > n_rl else "tie")
    text = (out / "sweep.md").read_text()
    assert "95% bootstrap interval over problems" in text
    assert "The sufficiency verdict on each base against RL's gain" in text


def test_the_verdict_table_puts_each_cell_in_its_box():
    def row(name: str, call: str, gain_1: float) -> dict:
        return {
            "name": name,
            "status": "finished",
            "k": 8,
            "gain": {"pass@1": gain_1},
            "verdict": {"call": call, "rl": [], "base": []},
        }

    state = {
        "cells": [
            row("a", "rl", 0.3),
            row("b", "rl", 0.02),
            row("c", "base", 0.0),
            row("d", "tie", 0.1),
            {"name": "e", "status": "failed"},
        ]
    }
    title, header, rows = verdict_table(state)
    assert header[1:] == ["RL gained >= +10 points", "RL gained < +10 points"]
    boxes = {r[0].split("(")[-1].rstrip(")"): r[1:] for r in rows}
    assert boxes == {"rl": ["1: a", "1: b"], "tie": ["1: d", "0"], "base": ["0", "1: c"]}


def test_a_2x1_sweep_completes_resumes_and_redoes_an_interrupted_cell(sweep_2x1):
    tmp_path, path, out, proc = sweep_2x1
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "cell 1 of 2: traces-shortcut__lr-0.003" in proc.stdout and "cell 2 of 2" in proc.stdout
    state = json.loads((out / "sweep.json").read_text())
    assert [c["status"] for c in state["cells"]] == ["finished", "finished"] and state[
        "status"
    ] == "finished"
    for row in state["cells"]:
        cell = out / row["dir"]
        records = json.loads((cell / "eval" / "base.json").read_text())["problems"]
        summary = json.loads((cell / "summary.json").read_text())
        assert row["base"]["pass@1"] == pytest.approx(
            sum(r["n_correct"] / r["n"] for r in records) / 6, abs=1e-4
        )
        assert row["base"]["never"] == pytest.approx(
            sum(r["n_correct"] == 0 for r in records) / 6, abs=1e-4
        )
        assert {"headroom", "learnable", "check_rate", "backtrack_rate", "answer_entropy"} <= set(
            row["base"]
        )
        assert row["gain"]["pass@4"] == pytest.approx(
            summary["rl/pass@4"] - summary["base/pass@4"], abs=1e-4
        )
        assert row["values"]["pretrain.lr"] == 0.003 and row["timings"]["wall_s"] > 0
    assert state["cells"][1]["values"]["traces"] == CHECKS
    assert "headroom" in state["correlations"] and "pass@k" in state["correlations"]["headroom"]
    report = (out / "sweep.md").read_text()
    assert "plots/gain_pass1.png" in report and "Spearman" in report and "shortcut" in report
    assert (out / "sweep.html").is_file() and (out / "plots" / "gain_passk.png").is_file()

    before = summary_mtimes(out)
    proc = reasonlab("sweep", "--config", str(path), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("finished earlier, skipped") == 2 and summary_mtimes(out) == before

    (
        out / "cells" / "traces-checks__lr-0.003" / "summary.json"
    ).unlink()  # interrupted before the end
    proc = reasonlab("sweep", "--config", str(path), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (
        proc.stdout.count("finished earlier, skipped") == 1
        and "evaluating the RL model" in proc.stdout
    )
    after = summary_mtimes(out)
    assert after["traces-shortcut__lr-0.003"] == before["traces-shortcut__lr-0.003"]
    assert after["traces-checks__lr-0.003"] != before["traces-checks__lr-0.003"]
    again = json.loads((out / "sweep.json").read_text())
    assert [c["status"] for c in again["cells"]] == ["finished", "finished"]
    assert (
        again["cells"][0]["timings"] == state["cells"][0]["timings"]
    )  # the skipped cell keeps its timings

    changed = write_sweep(
        tmp_path,
        grid={"traces": [SHORTCUT, CHECKS], "pretrain.lr": [0.003]},
        labels={"traces": ["shortcut", "checks"]},
        quick={"set": {"rl.steps": 1}},
    )
    assert_one_line_error(
        reasonlab("sweep", "--config", str(changed), "--quick", "--out", str(out)),
        "traces-shortcut__lr-0.003",
        "rl.steps differs",
    )
    assert summary_mtimes(out) == after


def test_a_diverging_cell_is_recorded_and_the_other_finishes(tmp_path):
    path = write_sweep(
        tmp_path, grid={"pretrain.lr": [1.0e30, 0.003]}, labels={"pretrain.lr": ["huge", "ok"]}
    )
    out = tmp_path / "out"
    proc = reasonlab("sweep", "--config", str(path), "--out", str(out))
    assert proc.returncode == 1, proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr and "1 of 2 cells failed (lr-huge)" in proc.stderr
    state = json.loads((out / "sweep.json").read_text())
    failed, done = state["cells"]
    assert (
        failed["status"] == "failed"
        and "diverged" in failed["error"]
        and "\n" not in failed["error"]
    )
    assert done["status"] == "finished" and (out / "cells" / "lr-ok" / "summary.json").is_file()
    assert (
        "lr-huge" in (out / "sweep.md").read_text() and "diverged" in (out / "sweep.md").read_text()
    )


# ---- the model-size axis and the range corpus -------------------------------------------------------------

SCALE = DEFAULT_CONFIG.parent / "sweep_scale.yaml"
SCALE_PARAMS = {"0.3M": 269_120, "1M": 1_062_528, "3M": 2_970_432, "10M": 9_866_560}


def test_the_scale_sweeps_sizes_build_the_stated_parameter_counts():
    plan = load_plan(SCALE)
    assert len(plan.cells) == 12 and {c.config.pretrain.token_budget for c in plan.cells} == {
        1_000_000,
        3_000_000,
        10_000_000,
    }
    counts = {}
    for cell in plan.cells:
        size = cell.label.split()[0]
        if size not in counts:
            counts[size] = new_model(cell.config)[0].num_parameters()
        assert cell.config.model.max_seq_len == 160 and cell.config.rl.steps == 100
        assert cell.config.pretrain.levels == dict.fromkeys(range(2, 7), 0.2)
        assert cell.config.eval.levels == [3, 4, 5, 6, 7, 9, 11]
    assert counts == SCALE_PARAMS
    header = SCALE.read_text().split("\nname:")[0]
    assert all(f"{n:,}" in header for n in counts.values())  # the header comment states them
    quick = load_plan(SCALE, quick=True)
    assert [c.name for c in quick.cells] == [
        "model-0.3M__token_budget-1M",
        "model-1M__token_budget-1M",
    ]


def test_the_seed_sweep_repeats_three_scale_bases_under_two_more_seeds():
    seeds = load_plan(DEFAULT_CONFIG.parent / "sweep_scale_seeds.yaml")
    scale = {c.name: c.config for c in load_plan(SCALE).cells}
    assert sorted((c.label, c.config.seed) for c in seeds.cells) == [
        (f"{size} {seed}", seed) for size in ("0.3M", "1M", "3M") for seed in (1, 2)
    ]
    for cell in (
        seeds.cells
    ):  # the scale sweep's cell at 3M tokens, but for the seed (and float32 anywhere)
        twin = scale[cell.name.split("__")[0] + "__token_budget-3M"]
        same = {"name": cell.config.name, "seed": cell.config.seed, "dtype": "float32"}
        assert cell.config == twin.model_copy(update=same)


def test_a_model_mapping_keeps_sets_fields_and_refuses_to_reset_the_base(tmp_path):
    small = {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64}
    path = write_sweep(
        tmp_path,
        set={"model": {"d_model": 16, "n_heads": 2, "max_seq_len": 96}, "model.n_layers": 3},
        grid={"model": [small, {"d_model": 64, "n_heads": 4}]},
        labels={"model": ["small", "wide"]},
    )
    a, b = (c.config.model for c in load_plan(path).cells)
    assert (a.d_model, a.n_layers, a.n_heads, a.d_ff, a.max_seq_len) == (32, 1, 2, 64, 96)
    assert (b.d_model, b.n_layers, b.n_heads, b.d_ff, b.max_seq_len) == (64, 3, 4, None, 96)
    (tmp_path / "run.yaml").write_text("model: {max_seq_len: 96}\n")
    bad = write_sweep(tmp_path, name="bad", base="run.yaml", grid={"model": [small]})
    with pytest.raises(ConfigError) as err:
        load_plan(bad)
    assert "\n" not in str(err.value) and "grid model" in str(err.value)
    assert "model.max_seq_len would fall back from the base's 96 to 128" in str(err.value)
    ok = write_sweep(
        tmp_path, name="ok", base="run.yaml", grid={"model": [{**small, "max_seq_len": 96}]}
    )
    assert load_plan(ok).cells[0].config.model.max_seq_len == 96


def test_a_quick_sweep_over_sizes_on_a_range_corpus_completes_and_resumes(tmp_path, one_thread):
    sizes = [
        {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
        {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64},
        {"d_model": 64, "n_layers": 2, "n_heads": 2},
    ]
    path = write_sweep(
        tmp_path,
        set={
            **TINY_SWEEP_SET,
            "model.max_seq_len": 96,
            "task.knobs.n_operands": 3,
            "pretrain.levels": {2: 0.5, 3: 0.5},
            "eval.levels": [2, 4, 5],
            "eval.level_problems": 3,
            "eval.level_samples": 2,
            "eval.solutions": 0,
            "rl.steps": 1,
        },
        grid={"model": sizes, "pretrain.token_budget": [5120, 20480]},
        labels={"model": ["xs", "s", "m"]},
        quick={"grid": {"model": ["xs", "s"], "pretrain.token_budget": [5120]}},
    )
    out = tmp_path / "out"
    plan = load_plan(path, quick=True)
    run_sweep(plan, out)  # in-process: the command's start-up would take longer than the sweep
    state = json.loads((out / "sweep.json").read_text())
    assert [c["name"] for c in state["cells"]] == [
        "model-xs__token_budget-5120",
        "model-s__token_budget-5120",
    ]
    for row, cell in zip(state["cells"], plan.cells):
        assert row["status"] == "finished" and cell.config.model.max_seq_len == 96
        params = new_model(cell.config)[0].num_parameters()
        tokens = tokens_trained(cell.config)
        assert tokens == 10 * 8 * 64
        assert row["compute"] == {
            "params": params,
            "pretrain_tokens": tokens,
            "pretrain_flops": 6.0 * params * tokens,
        }
        summary = json.loads((out / row["dir"] / "summary.json").read_text())
        assert summary["model/pretrain_flops"] == 6.0 * params * tokens
        regions = {k: v for k, v in summary.items() if k.endswith("/region")}
        assert regions == {
            "eval/d2/region": "in_range",
            "eval/d3/region": "in_range",  # the task's own level, evaluated as the main eval
            "eval/d4/region": "edge",
            "eval/d5/region": "beyond",
        }
        assert {"base/d2/pass@1", "base/d4/pass@1", "base/d5/pass@1"} <= set(summary)
    assert state["cells"][0]["compute"]["params"] < state["cells"][1]["compute"]["params"]

    before, said = summary_mtimes(out), []
    again = run_sweep(load_plan(path, quick=True), out, say=said.append)
    assert (
        sum("finished earlier, skipped" in m for m in said) == 2 and summary_mtimes(out) == before
    )
    assert again["status"] == "finished"
    rows = json.loads((out / "sweep.json").read_text())["cells"]
    assert [r["compute"] for r in rows] == [r["compute"] for r in state["cells"]]


# ---- the bootstrap interval of a rank correlation -------------------------------------------------------

NOISY_X = [0.1, 0.4, 0.35, 0.8, 0.5, 0.9, 0.2, 0.65, 0.7, 0.3]
NOISY_Y = [0.02, 0.05, 0.09, 0.12, 0.04, 0.15, 0.01, 0.08, 0.13, 0.06]


def test_spearman_interval_holds_the_point_estimate_within_minus_one_and_one():
    rho = spearman(NOISY_X, NOISY_Y)
    lo, hi = spearman_interval(NOISY_X, NOISY_Y)
    assert -1 <= lo <= rho <= hi <= 1 and lo < hi


def test_spearman_interval_of_monotone_data_is_one_to_one():
    x = [0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 0.9]
    lo, hi = spearman_interval(x, [v**2 for v in x])  # monotone, not linear
    assert lo == pytest.approx(1.0) and hi == pytest.approx(1.0)


def test_spearman_interval_needs_four_pairs():
    assert spearman_interval([1, 2, 3], [3, 1, 2]) is None
    assert spearman_interval([1, 2, None, 3], [3, 1, 2, float("nan")]) is None  # two pairs left out
    assert spearman_interval([1, 1, 1, 1, 1], [1, 2, 3, 4, 5]) is None  # no resample defines rho


def test_spearman_interval_is_fixed_by_its_seed():
    same = spearman_interval(NOISY_X, NOISY_Y, seed=3)
    assert same == spearman_interval(NOISY_X, NOISY_Y, seed=3)
    assert same != spearman_interval(NOISY_X, NOISY_Y, seed=4)


def test_correlation_table_shows_each_rho_with_its_interval():
    rows = [
        {"status": "finished", "k": 4, "base": {"headroom": x}, "gain": {"pass@1": y, "pass@4": y}}
        for x, y in zip(NOISY_X, NOISY_Y)
    ]
    corr = correlations(rows, ["headroom"])
    entry = corr["headroom"]
    assert entry["pass@1"] == pytest.approx(spearman(NOISY_X, NOISY_Y), abs=1e-4)
    assert entry["interval"]["pass@1"] == pytest.approx(
        list(spearman_interval(NOISY_X, NOISY_Y)), abs=1e-4
    )
    title, header, table = correlation_table({"correlations": corr}, "pass@4")
    assert "95% bootstrap interval over bases" in title
    lo, hi = entry["interval"]["pass@1"]
    assert table[0][1] == f"{entry['pass@1']:+.2f} [{lo:+.2f}, {hi:+.2f}]"
    few = correlations(rows[:3], ["headroom"])["headroom"]
    assert few["interval"]["pass@1"] is None
    assert correlation_table({"correlations": {"headroom": few}}, "pass@4")[2][0][1] == "+0.50"


def test_a_grid_section_names_fields_by_their_yaml_names(tmp_path, ray_local):
    """`async` is the YAML name of RLConfig.async_: a mapping that names it sets it, and one that leaves
    it out while the base sets it is refused under that name."""
    (tmp_path / "run.yaml").write_text("rl: {steps: 5}\n")
    ok = write_sweep(
        tmp_path,
        name="ok",
        base="run.yaml",
        grid={"rl": [{"steps": 5, "async": True, "rollout_workers": 1}]},
    )
    assert load_plan(ok).cells[0].config.rl.async_ is True
    (tmp_path / "async.yaml").write_text("rl: {steps: 5, async: true, rollout_workers: 1}\n")
    bad = write_sweep(
        tmp_path,
        name="bad",
        base="async.yaml",
        grid={"rl": [{"steps": 5, "rollout_workers": 1}]},
    )
    with pytest.raises(ConfigError, match=r"rl\.async would fall back from the base's true"):
        load_plan(bad)


def _problems(rates: list[float], n: int = 8, prefix: str = "p") -> list[dict]:
    return [{"id": f"{prefix}{i}", "n": n, "n_correct": round(r * n)} for i, r in enumerate(rates)]


def test_pass1_intervals_hold_the_estimate_and_are_paired_over_problems():
    rng = np.random.default_rng(0)
    base_rates = rng.integers(0, 9, size=40) / 8  # problems differ a lot in difficulty
    rl_rates = np.minimum(base_rates + 0.25, 1.0)  # RL adds about the same on every problem
    base, rl = _problems(list(base_rates)), _problems(list(rl_rates))
    found = pass1_intervals(base, rl)
    for name, rates in (("base", base_rates), ("rl", rl_rates), ("gain", rl_rates - base_rates)):
        lo, hi = found[name]
        assert lo <= rates.mean() <= hi and hi - lo > 0
    # the gain is paired: much narrower than the spread of either model's pass@1 over problems
    width = {k: hi - lo for k, (lo, hi) in found.items()}
    assert width["gain"] < width["base"] / 3
    assert pass1_intervals(base, rl) == found  # fixed by its seed
    assert pass1_intervals(base, rl, seed=1) != found


def test_pass1_intervals_of_equal_problems_collapse_and_other_problems_give_the_base_only():
    same = pass1_intervals(_problems([0.5] * 10), _problems([0.75] * 10))
    assert same == {"base": [0.5, 0.5], "rl": [0.75, 0.75], "gain": [0.25, 0.25]}
    other = pass1_intervals(_problems([0.5] * 10), _problems([0.75] * 10, prefix="q"))
    assert set(other) == {"base"}
    assert pass1_intervals([], None) == {}


def test_the_compute_plot_draws_one_line_per_size_at_the_edge(tmp_path):
    def row(params: float, tokens: float, base: float, rl: float) -> dict:
        return {
            "name": f"{params}x{tokens}",
            "label": "",
            "status": "finished",
            "k": 8,
            "compute": {
                "params": params,
                "pretrain_tokens": tokens,
                "pretrain_flops": 6 * params * tokens,
            },
            "base": {"pass@1": base, "d7/pass@1": base / 4},
            "rl": {"pass@1": rl, "d7/pass@1": base / 4},
            "gain": {"pass@1": rl - base},
            "intervals": {"gain": [rl - base - 0.02, rl - base + 0.02]},
            "regions": {7: "edge"},
        }

    rows = [row(3e5, 1e6, 0.1, 0.2), row(3e5, 3e6, 0.3, 0.7), row(1e6, 1e6, 0.1, 0.1)]
    assert compute_rows(rows) == rows
    assert compute_rows(rows[:1]) == [] and compute_rows([{**rows[0], "compute": {}}]) == []
    path = plot_compute(rows, tmp_path / "compute.png")
    assert path.is_file() and path.stat().st_size > 10_000
