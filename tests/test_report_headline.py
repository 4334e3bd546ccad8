"""The sentences a report opens with come from its numbers; the number formats on edge values; the run,
sufficiency and sweep reports put the headline first, the raw values last, and inline their images."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reasonlab.evaluate.verdict import headline, verdict
from reasonlab.reports.headline import run_headline, sufficiency_headline, sweep_headline
from reasonlab.reports.run import write_report
from reasonlab.reports.sufficiency import write_sufficiency_report
from reasonlab.reports.sweep import write_sweep_report
from reasonlab.reports.toolkit import duration, percent, points, sig3, tokens

SUMMARY = {
    "base/pass@1": 0.402,
    "base/pass@8": 0.938,
    "base/pass@64": 0.985,
    "base/shortcut_rate": 0.6017,
    "base/malformed_rate": 0.0014,
    "base/mean_length": 23.202,
    "base/d3/pass@1": 0.0481,
    "model/params": 1062528,
    "judge/prm/f1": 0.9745,
    "judge/prm/policy_f1": 0.7322,
    "judge/orm/f1": 0.3817,
    "judge/orm/policy_f1": 0.4385,
    "judge/bo16/prm": 0.835,
    "judge/bo16/orm": 0.74,
    "judge/bo16/majority": 0.6737,
    "judge/bo16/pass@1": 0.4075,
    "judge/bo16/pass@16": 0.98,
    "rl/pass@1": 0.8567,
    "rl/pass@8": 0.9866,
    "rl/pass@64": 0.995,
    "rl/shortcut_rate": 0.0039,
    "rl/malformed_rate": 0.0009,
    "rl/mean_length": 40.2376,
    "rl/d3/pass@1": 0.0325,
    "time/pretrain_s": 160.6,
    "time/rl_s": 128.9,
    "time/total_s": 418.2,
}
BASE_ONLY = {k: v for k, v in SUMMARY.items() if not k.startswith(("rl/", "judge/", "time/rl"))}


# ---- number formats -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x, text",
    [
        (0, "0"),
        (1, "1"),
        (0.00012, "0.00012"),
        (123456, "123,000"),
        (None, "n/a"),
        (float("nan"), "n/a"),
        (0.85671, "0.857"),
        (23.7202, "23.7"),
        (1062528, "1.06 million"),
        (-3.5, "-3.5"),
        (0.000012, "1.2e-05"),
    ],
)
def test_sig3(x, text):
    assert sig3(x) == text


@pytest.mark.parametrize(
    "x, text",
    [
        (0, "0%"),
        (1, "100%"),
        (0.00012, "0.012%"),
        (0.857, "85.7%"),
        (0.99999, ">99.9%"),
        (None, "n/a"),
    ],
)
def test_percent(x, text):
    assert percent(x) == text


def test_points_duration_tokens_on_edge_values():
    assert [points(x) for x in (0, 0.01, 0.4543, -0.0005, None)] == [
        "0 points",
        "+1 point",
        "+45.4 points",
        "-0.05 points",
        "n/a",
    ]
    assert [duration(x) for x in (0, 1, 38.4, 128.9, 123456, None)] == [
        "0 s",
        "1 s",
        "38.4 s",
        "2.15 min",
        "34.3 h",
        "n/a",
    ]
    assert [tokens(x) for x in (0, 1, 23.7202, 123456, None)] == [
        "0 tokens",
        "1 token",
        "23.7 tokens",
        "123,000 tokens",
        "n/a",
    ]


# ---- the run's headline ---------------------------------------------------------------------------------


def test_run_headline_says_what_rl_did_from_the_numbers():
    text = " ".join(run_headline(SUMMARY, rl_steps=100, rl_advantage="grpo"))
    assert (
        "RL (100 GRPO steps, 2.15 min) raised pass@1 from 40.2% to 85.7% and pass@64 from 98.5% "
        "to 99.5%." in text
    )
    assert "shortcut) samples fell from 60.2% to 0.39%" in text
    assert "mean completion grew from 23.2 tokens to 40.2 tokens" in text
    assert "barely changed the share of malformed answers (0.14% before, 0.09% after)" in text
    assert "from 4.81% to 3.25% at difficulty 3" in text
    assert "PRM finds wrong steps best: ProcessBench F1 0.975" in text and "ORM 0.382" in text
    assert "PRM picks a right answer 83.5% of the time" in text and "67.4% for a majority" in text
    assert text.endswith("The whole run took 6.97 min.")


def test_changing_a_number_changes_its_sentence():
    changed = run_headline({**SUMMARY, "base/pass@1": 0.5})[0]
    assert "from 50% to 85.7%" in changed and "40.2%" not in changed
    lowered = run_headline({**SUMMARY, "rl/pass@64": 0.9})[0]
    assert "raised pass@1 from 40.2% to 85.7% but lowered pass@64 from 98.5% to 90%" in lowered
    same = " ".join(run_headline({**SUMMARY, "rl/shortcut_rate": 0.58}))
    assert "fell from 60.2%" not in same and "shortcut) samples (60.2% before, 58% after)" in same
    judges = " ".join(run_headline({**SUMMARY, "judge/orm/f1": 0.99}))
    assert "ORM finds wrong steps best: ProcessBench F1 0.99" in judges


def test_a_run_without_rl_or_judges_gets_no_sentence_about_them():
    sentences = run_headline(BASE_ONLY)
    text = " ".join(sentences)
    assert sentences[0] == (
        "The base model (1.06 million parameters, pretrained in 2.68 min) solves 40.2% of test "
        "problems in one sample (pass@1) and 98.5% in 64 (pass@64)."
    )
    assert "RL" not in text and "judge" not in text.lower() and "shortcut" not in text
    assert run_headline({}) == []


# ---- the sufficiency and sweep headlines ----------------------------------------------------------------


def level(pass1: float, passn: float, **over: float) -> dict[str, float]:
    metrics = {
        "pass@1": pass1,
        "pass@4": passn,
        "headroom": passn - pass1,
        "learnable": 0.5,
        "never": 0.2,
        "always": 0.3,
        "check_rate": 0.1,
        "backtrack_rate": 0.05,
        "process_valid_rate": 0.95,
        "distinct_correct": 1.5,
        "answer_entropy": 0.8,
        "malformed_rate": 0.02,
    }
    return {**metrics, **over}


def sufficiency_result(**main_over: float) -> dict:
    levels = {"3": level(0.6, 0.9), "5": level(0.3, 0.8, **main_over)}
    result = {
        "model": "runs/tiny/base",
        "task": "arith",
        "knobs": {"n_operands": 5},
        "difficulty_knob": "n_operands",
        "main_level": 5,
        "n": 4,
        "n_problems": 10,
        "best_of": 2,
        "seed": 0,
        "levels": levels,
        "coverage": {"3": [0.6, 0.75, 0.85, 0.9], "5": [0.3, 0.5, 0.7, 0.8]},
        "judge": {"name": "likelihood", "levels": {}},
        "control": None,
        "time": {"sample_s": 2.0, "judge_s": 1.0, "control_s": 0.0, "total_s": 3.0},
    }
    statements = verdict(result)
    return {**result, "verdict": statements, "headline": headline(statements)}


def test_sufficiency_headline_says_whether_and_why_from_the_verdict():
    good = sufficiency_headline(sufficiency_result())
    assert good[0] == (
        "At level 5 (n_operands) the base solves 30% of problems in one sample and 80% in 4 (pass@4)."
    )
    assert good[1] == "The base is sufficient for RL."
    assert any("50% of problems at level 5 are solved sometimes" in s for s in good)
    bad = sufficiency_headline(sufficiency_result(check_rate=0.0, malformed_rate=0.7))
    assert bad[1] == "The base is not yet sufficient for RL: improve it first."
    assert any("Only 0.0% of samples at level 5 check their work" in s for s in bad)
    assert any("70% of samples at level 5 have no parsable answer" in s for s in bad)


def cell(name: str, base: dict, gain1: float, status: str = "finished") -> dict:
    if status != "finished":
        return {"name": name, "label": name, "status": status, "error": "diverged", "values": {}}
    return {
        "name": name,
        "label": name,
        "status": status,
        "values": {"pretrain.lr": 0.003},
        "k": 4,
        "base": base,
        "rl": {"pass@1": base["pass@1"] + gain1, "pass@4": base["pass@4"]},
        "gain": {"pass@1": gain1, "pass@4": 0.0},
        "timings": {"wall_s": 42.0},
    }


def sweep_state() -> dict:
    cells = [
        cell("a", level(0.1, 0.3), 0.05),
        cell("b", level(0.3, 0.7, learnable=0.3), 0.2),
        cell("c", level(0.2, 0.9, learnable=0.2), 0.4),
        cell("d", level(0.5, 0.6), 0.0, status="failed"),
    ]
    return {
        "name": "tiny",
        "source": "sweep.yaml",
        "axes": [{"path": "pretrain.lr", "key": "lr", "values": [0.003], "labels": ["x"]}],
        "cells": cells,
    }


def test_sweep_headline_counts_cells_names_the_best_predictor_and_the_largest_gain():
    state = sweep_state()
    state["correlations"] = {
        "headroom": {"pass@1": 0.9, "pass@k": None, "cells": 3},
        "learnable": {"pass@1": -0.5, "pass@k": None, "cells": 3},
    }
    text = " ".join(sweep_headline(state))
    assert text.startswith("3 of 4 cells finished; 1 failed (d).")
    assert "for the gain in pass@1, headroom (Spearman rho +0.90 over 3 cells" in text
    assert "hint at most" in text
    assert "The largest gain in pass@1 was +40 points in cell c (from 20% to 60%)." in text
    state["correlations"]["learnable"]["pass@1"] = -0.95
    assert "learnable (Spearman rho -0.95" in " ".join(sweep_headline(state))


# ---- the reports' shape ---------------------------------------------------------------------------------


def run_folder(root: Path, summary: dict) -> Path:
    """A minimal run folder: config.yaml, summary.json, eval/base.json and eval/rl.json, metrics.jsonl."""
    run = root / "run"
    (run / "eval").mkdir(parents=True)
    (run / "config.yaml").write_text("rl:\n  advantage: rloo\n")
    (run / "summary.json").write_text(json.dumps(summary))
    sample = {"text": "1+1=2\nanswer: 2", "outcome": "correct", "first_error": -1}
    for model in ("base", "rl"):
        result = {
            "summary": {f"pass@{k}": summary[f"{model}/pass@{k}"] for k in (1, 8, 64)},
            "by_difficulty": {},
            "problems": [{"prompt": "1+1=?", "answer": 2, "samples": [sample]}],
        }
        (run / "eval" / f"{model}.json").write_text(json.dumps(result))
    rows = [{"step": s, "train/loss": 2.0 / s, "train/tokens": 100 * s} for s in (1, 2, 3)]
    rows += [{"step": s, "reward/mean": 0.5, "rl/pass_rate": 0.5} for s in (1, 2)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def test_run_report_opens_with_the_headline_and_ends_with_the_raw_summary(tmp_path):
    summary = {k: v for k, v in SUMMARY.items() if not k.startswith("judge/")}
    run = run_folder(tmp_path, summary)
    md = write_report(run).read_text()
    page = (run / "report.html").read_text()
    assert "RL (2 RLOO steps, 2.15 min) raised pass@1 from 40.2% to 85.7%" in md
    assert md.index("raised pass@1") < md.index("plots/passk.png") < md.index("Sampled solutions")
    assert md.index("Sampled solutions") < md.index("| metric |") < md.index("plots/loss.png")
    assert md.rstrip().splitlines()[-1] == "| time/total_s | 418.2 |"
    assert md.index("## Raw summary") > md.index("plots/rl.png")
    assert page.index("raised pass@1") < page.index("<table>")
    details = page.index("<details><summary>All of summary.json (")
    assert details > page.rindex("<img") and page.rstrip().endswith("</details></body></html>")
    assert not re.findall(r"(?:src|href)=[\"'](?!data:)", page)
    assert page.count('src="data:image/png;base64,') == len(list((run / "plots").glob("*.png")))


def test_sufficiency_and_sweep_reports_open_with_their_headline(tmp_path):
    md = write_sufficiency_report(sufficiency_result(), tmp_path / "suff").read_text()
    assert md.index("The base is sufficient for RL.") < md.index("plots/coverage.png")
    assert md.index("plots/coverage.png") < md.index("**Verdict.**") < md.index("## Metrics per")
    assert "| pass@1 | 60% | 30% |" in md
    page = (tmp_path / "suff" / "sufficiency.html").read_text()
    assert not re.findall(r"(?:src|href)=[\"'](?!data:)", page)

    state = sweep_state()
    md = write_sweep_report(tmp_path / "sweep", state).read_text()
    assert (
        md.index("3 of 4 cells finished") < md.index("plots/gain_pass1.png") < md.index("## Cells")
    )
    assert md.rstrip().endswith("sweep file: sweep.yaml.")
    page = (tmp_path / "sweep" / "sweep.html").read_text()
    assert not re.findall(r"(?:src|href)=[\"'](?!data:)", page)
