"""The sufficiency metrics on hand-built rollouts with values computed by hand, the edge of competence,
the generation-verification gap, the verdict on crafted results and each of its rules at its threshold,
the random reward, and one tiny `reasonlab sufficiency` run end to end (report written, second run
refused, bad input one line)."""

import copy
import json
import math
import sys

import pytest

from reasonlab.evaluate import verdict as verdict_module
from reasonlab.evaluate.sufficiency import (
    answer_entropy,
    edge_of_competence,
    generation_verification_gap,
    level_metrics,
    selection_metrics,
)
from reasonlab.evaluate.verdict import RULES, headline, rules_table, verdict
from reasonlab.rl.rewards import REWARDS, score
from reasonlab.types import Outcome, Problem, Rollout, Verdict


def record(n_correct, answers, checking=0, backtracking=0, valid=None, distinct=None):
    """One problem's evaluate_policy record with 4 samples (only the fields the metrics read)."""
    return {
        "n": len(answers),
        "n_correct": n_correct,
        "n_malformed": sum(a is None for a in answers),
        "n_checking": checking,
        "n_backtracking": backtracking,
        "n_correct_all_steps_valid": n_correct if valid is None else valid,
        "n_distinct_correct": (1 if n_correct else 0) if distinct is None else distinct,
        "answers": answers,
    }


# 3 problems x 4 samples: never solved (one malformed), solved twice, always solved
RECORDS = [
    record(0, [None, "3", "3", "4"]),
    record(2, ["5", "5", "6", "7"], checking=1, backtracking=1, valid=1, distinct=1),
    record(4, ["9", "9", "9", "9"], checking=2, valid=4, distinct=3),
]
H = 1.5 * math.log(2)  # entropy of (1/4, 1/2, 1/4)


def test_level_metrics_by_hand():
    m = level_metrics(RECORDS, 4)
    assert set(m) == {
        "pass@1",
        "pass@2",
        "pass@4",
        "headroom",
        "learnable",
        "never",
        "always",
        "check_rate",
        "backtrack_rate",
        "process_valid_rate",
        "distinct_correct",
        "answer_entropy",
        "malformed_rate",
    }
    expected = {
        "pass@1": (0 + 2 / 4 + 1) / 3,
        "pass@2": (0 + (1 - 1 / 6) + 1) / 3,  # solved twice of 4: 1 - C(2,2)/C(4,2)
        "pass@4": 2 / 3,
        "headroom": 2 / 3 - 1 / 2,
        "learnable": 1 / 3,
        "never": 1 / 3,
        "always": 1 / 3,
        "check_rate": 3 / 12,
        "backtrack_rate": 1 / 12,
        "process_valid_rate": 5 / 6,
        "distinct_correct": (1 + 3) / 2,  # over the two problems solved at least once
        "answer_entropy": (H + H + 0) / 3,
        "malformed_rate": 1 / 12,
    }
    for key, value in expected.items():
        assert m[key] == pytest.approx(value), key


def test_level_metrics_pass_keys_are_powers_of_two_and_n():
    records = [record(1, ["1", "2", "3", "4", "5", "6"])]
    m = level_metrics(records, 6)
    assert sorted(k for k in m if k.startswith("pass@")) == ["pass@1", "pass@2", "pass@4", "pass@6"]
    assert m["pass@1"] == pytest.approx(1 / 6) and m["pass@6"] == 1.0
    assert m["pass@4"] == pytest.approx(
        1 - 0.0 - (5 * 4 * 3 * 2) / (6 * 5 * 4 * 3)
    )  # 1 - C(5,4)/C(6,4)
    assert (
        level_metrics([record(0, [None] * 4)], 4)["process_valid_rate"] == 0.0
    )  # no correct answer


def test_answer_entropy():
    assert answer_entropy(["1", "2", "3", "4"]) == pytest.approx(math.log(4))
    assert answer_entropy([None, None, "none", "none"]) == pytest.approx(
        math.log(2)
    )  # malformed is its own answer
    assert answer_entropy(["7"] * 5) == 0.0
    assert answer_entropy([]) == 0.0


def levels_of(*pairs, n=8):
    return {level: {"pass@1": p1, f"pass@{n}": pn} for level, (p1, pn) in pairs}


def test_edge_of_competence():
    assert (
        edge_of_competence(levels_of((3, (0.9, 1.0)), (5, (0.5, 1.0))), 8) is None
    )  # all within competence
    assert (
        edge_of_competence(levels_of((3, (0.1, 0.0)), (5, (0.0, 0.0))), 8) is None
    )  # beyond: never solved
    assert (
        edge_of_competence(levels_of((3, (0.1, 0.6)), (5, (0.05, 0.3))), 8) == 3
    )  # the first level
    middle = levels_of((7, (0.01, 0.2)), (3, (0.8, 1.0)), (5, (0.15, 0.9)), (9, (0.0, 0.0)))
    assert edge_of_competence(middle, 8) == 5  # the easiest one, whatever the mapping's order
    assert (
        edge_of_competence({4: {"pass@1": 0.19, "pass@4": 0.5}}, 8) == 4
    )  # pass@n missing: the largest k


def test_generation_verification_gap():
    assert generation_verification_gap(0.6, 0.4, 0.8) == pytest.approx(0.5)
    assert generation_verification_gap(0.8, 0.4, 0.8) == pytest.approx(1.0)
    assert generation_verification_gap(0.3, 0.4, 0.8) == pytest.approx(
        -0.25
    )  # worse than a random pick
    assert generation_verification_gap(0.5, 0.5, 0.5) is None


def test_selection_metrics_by_hand():
    scores = [[0.9, 0.2, 0.5], [0.1, 0.3, 0.3]]
    correct = [[True, False, False], [False, False, True]]
    answers = [["1", "2", "2"], ["4", "5", "6"]]
    m = selection_metrics(scores, correct, answers, seed=0)
    assert m["best_of_n"] == pytest.approx(
        (1.0 + 0.5) / 2
    )  # second problem: a tie at 0.3, one of two right
    assert m["pass@1"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert m["pass@n"] == 1.0
    assert m["gap"] == pytest.approx((0.75 - 1 / 3) / (1 - 1 / 3))
    # "2" wins the first; "4", "5", "6" tie in the second, one of three right
    assert m["majority"] == pytest.approx((0.0 + 1 / 3) / 2)
    # AUROC: positives 0.9, 0.3 against negatives 0.2, 0.5, 0.1, 0.3: 0.9 wins 4, 0.3 wins 2 and ties 1
    assert m["auroc"] == pytest.approx((4 + 2.5) / 8)
    assert m["n"] == 3


def crafted(
    p1, pn, learnable, never, always, check=0.0, backtrack=0.0, valid=1.0, malformed=0.0, **extra
):
    metrics = {
        "pass@1": p1,
        "pass@8": pn,
        "headroom": pn - p1,
        "learnable": learnable,
        "never": never,
        "always": always,
        "check_rate": check,
        "backtrack_rate": backtrack,
        "process_valid_rate": valid,
        "distinct_correct": 1.5,
        "answer_entropy": 0.7,
        "malformed_rate": malformed,
    }
    return {"n": 8, "main_level": 5, "levels": {"5": metrics, **extra.pop("levels", {})}, **extra}


def said(result):
    return {s["metric"]: s for s in verdict(result)}


def test_verdict_on_a_base_ready_for_rl():
    result = crafted(
        0.3,
        0.9,
        0.6,
        0.1,
        0.3,
        check=0.2,
        backtrack=0.05,
        levels={"7": {"pass@1": 0.1, "pass@8": 0.5}},
        judge={
            "name": "prm",
            "levels": {
                "5": {
                    "n": 4,
                    "best_of_n": 0.7,
                    "pass@1": 0.3,
                    "pass@n": 0.9,
                    "gap": 0.4 / 0.6,
                    "auroc": 0.85,
                }
            },
        },
        control={"steps": 30, "outcome_gain": 0.2, "random_gain": 0.02},
    )
    s = said(result)
    for statement in s.values():
        assert set(statement) == {"metric", "value", "says", "text"} and statement["says"] in (
            "rl",
            "base",
            "neutral",
        )
    for metric in (
        "headroom",
        "learnable",
        "check_rate",
        "backtrack_rate",
        "gap",
        "process_valid_rate",
        "random_control",
    ):
        assert s[metric]["says"] == "rl", metric
    assert s["edge_of_competence"]["says"] == "rl" and s["edge_of_competence"]["value"] == 7
    assert s["coverage"]["says"] == "neutral"
    assert "prm" in s["gap"]["text"]
    assert headline(verdict(result)).startswith("RL will pay off here")


def test_verdict_on_an_insufficient_base():
    result = crafted(
        0.01,
        0.05,
        0.04,
        0.95,
        0.01,
        valid=0.6,
        malformed=0.7,
        judge={
            "name": "likelihood",
            "levels": {
                "5": {
                    "n": 4,
                    "best_of_n": 0.02,
                    "pass@1": 0.01,
                    "pass@n": 0.04,
                    "gap": 1 / 3,
                    "auroc": 0.6,
                }
            },
        },
        control={"steps": 30, "outcome_gain": 0.1, "random_gain": 0.06},
    )
    s = said(result)
    for metric in ("coverage", "learnable", "check_rate", "backtrack_rate", "malformed_rate"):
        assert s[metric]["says"] == "base", metric
    assert s["headroom"]["says"] == "neutral"
    assert s["edge_of_competence"]["says"] == "rl"  # pass@1 < 0.2 and pass@n > 0 at the main level
    assert s["process_valid_rate"]["says"] == "neutral" and s["process_valid_rate"][
        "text"
    ].startswith("Warning")
    assert s["random_control"]["says"] == "neutral" and "Amplifying" in s["random_control"]["text"]
    assert "improve the base first" in headline(verdict(result))


def test_verdict_edges_and_missing_sections():
    nothing = crafted(0.0, 0.0, 0.0, 1.0, 0.0)  # never solved at all: no edge, no process statement
    s = said(nothing)
    assert s["edge_of_competence"]["says"] == "base" and s["edge_of_competence"]["value"] is None
    assert "process_valid_rate" not in s and "gap" not in s and "random_control" not in s
    saturated = crafted(
        0.95,
        1.0,
        0.1,
        0.0,
        0.9,
        check=0.3,
        backtrack=0.3,
        control={"steps": 30, "outcome_gain": 0.0, "random_gain": 0.01},
    )
    s = said(saturated)
    assert s["learnable"]["says"] == "neutral" and "saturated" in s["learnable"]["text"]
    assert s["edge_of_competence"]["says"] == "neutral"
    assert (
        s["random_control"]["says"] == "neutral" and "Inconclusive" in s["random_control"]["text"]
    )
    no_gap = crafted(
        0.5,
        0.9,
        0.5,
        0.1,
        0.4,
        judge={
            "name": "j",
            "levels": {
                5: {
                    "n": 4,
                    "best_of_n": 0.5,
                    "pass@1": 0.5,
                    "pass@n": 0.5,
                    "gap": None,
                    "auroc": None,
                }
            },
        },
    )
    assert said(no_gap)["gap"]["says"] == "neutral"


def test_rules_table_lists_every_rule_in_order_as_the_docstring_does():
    full = crafted(
        0.3,
        0.9,
        0.6,
        0.1,
        0.3,
        check=0.2,
        backtrack=0.05,
        judge={
            "name": "prm",
            "levels": {
                "5": {
                    "n": 4,
                    "best_of_n": 0.7,
                    "pass@1": 0.3,
                    "pass@n": 0.9,
                    "gap": 0.4 / 0.6,
                    "auroc": 0.85,
                }
            },
        },
        control={"steps": 30, "outcome_gain": 0.2, "random_gain": 0.02},
    )
    table = rules_table()
    assert (
        [name for name, _, _ in table]
        == [rule.name for rule in RULES]
        == [s["metric"] for s in verdict(full)]
    )
    assert len(table) == 11
    doc = " ".join(verdict_module.__doc__.split())  # the docstring's table, whitespace normalised
    for name, metric, conditions in table:
        assert metric and conditions.endswith(("-> rl", "-> base", "-> neutral")), name
        assert f" {name} {conditions} " in doc, name
    rows = dict((name, conditions) for name, _, conditions in table)
    assert rows["coverage"] == "pass@n < 0.1 -> base; else -> neutral"
    assert rows["random_control"] == (
        "with a control run: true_gain < 0.02 -> neutral; random_gain >= 0.5 * "
        "true_gain -> neutral; else -> rl"
    )


EPS = 1e-9
COMFORTABLE = {
    "judge": {
        "name": "j",
        "levels": {
            "5": {"n": 4, "best_of_n": 0.7, "pass@1": 0.3, "pass@n": 0.9, "gap": 0.5, "auroc": 0.8}
        },
    },
    "control": {"steps": 30, "outcome_gain": 0.2, "random_gain": 0.0},
}


def at_boundary(metrics=None, gap="keep", control=None):
    """A comfortable result (every rule on its rl or neutral side) with some main-level metrics, the judge's gap
    or the control's gains replaced."""
    result = crafted(
        0.5, 0.9, 0.5, 0.1, 0.4, check=0.2, backtrack=0.2, **copy.deepcopy(COMFORTABLE)
    )
    result["levels"]["5"].update(metrics or {})
    if gap != "keep":
        result["judge"]["levels"]["5"]["gap"] = gap
    result["control"].update(control or {})
    return result


# (rule, result, says, a phrase of its text): each threshold of the docstring's table, just below and at it
BOUNDARIES = [
    ("coverage", at_boundary({"pass@8": 0.1 - EPS}), "base", "Improve the base first"),
    ("coverage", at_boundary({"pass@8": 0.1}), "neutral", "the ceiling"),
    ("headroom", at_boundary({"headroom": 0.2 - EPS}), "neutral", "already close"),
    ("headroom", at_boundary({"headroom": 0.2}), "rl", "of headroom"),
    (
        "learnable",
        at_boundary({"learnable": 0.2 - EPS, "never": 0.4, "always": 0.4}),
        "base",
        "never solved",
    ),
    (
        "learnable",
        at_boundary({"learnable": 0.2 - EPS, "never": 0.4 - EPS, "always": 0.4}),
        "neutral",
        "saturated",
    ),
    ("learnable", at_boundary({"learnable": 0.2}), "rl", "learning signal"),
    ("edge_of_competence", at_boundary({"pass@1": 0.2 - EPS}), "rl", "Level 5 is the edge"),
    ("edge_of_competence", at_boundary({"pass@1": 0.2}), "neutral", "measure harder levels"),
    (
        "edge_of_competence",
        at_boundary({"pass@1": 0.1, "pass@8": 0.0}),
        "base",
        "nothing is ever solved",
    ),
    ("check_rate", at_boundary({"check_rate": 0.01 - EPS}), "base", "traces with checks"),
    ("check_rate", at_boundary({"check_rate": 0.01}), "rl", "can amplify"),
    (
        "backtrack_rate",
        at_boundary({"backtrack_rate": 0.01 - EPS}),
        "base",
        "traces with backtracking",
    ),
    ("backtrack_rate", at_boundary({"backtrack_rate": 0.01}), "rl", "can amplify"),
    ("gap", at_boundary(gap=None), "neutral", "nothing for j to choose"),
    ("gap", at_boundary(gap=0.2), "neutral", "closes only 20%"),
    ("gap", at_boundary(gap=0.2 + EPS), "rl", "reward or a selector"),
    ("process_valid_rate", at_boundary({"process_valid_rate": 0.9 - EPS}), "neutral", "Warning"),
    ("process_valid_rate", at_boundary({"process_valid_rate": 0.9}), "rl", "sound reasoning"),
    (
        "random_control",
        at_boundary(control={"outcome_gain": 0.02 - EPS}),
        "neutral",
        "Inconclusive",
    ),
    (
        "random_control",
        at_boundary(control={"outcome_gain": 0.02, "random_gain": 0.01}),
        "neutral",
        "Amplifying",
    ),
    (
        "random_control",
        at_boundary(control={"outcome_gain": 0.02, "random_gain": 0.01 - EPS}),
        "rl",
        "teaches",
    ),
    ("malformed_rate", at_boundary({"malformed_rate": 0.5}), "neutral", "50.0% of samples"),
    (
        "malformed_rate",
        at_boundary({"malformed_rate": 0.5 + EPS}),
        "base",
        "teach the format first",
    ),
    ("diversity", at_boundary(), "neutral", "1.5 distinct correct solutions"),
]


@pytest.mark.parametrize(
    "rule, result, says, phrase",
    BOUNDARIES,
    ids=[f"{rule}-{says}-{i}" for i, (rule, _, says, _) in enumerate(BOUNDARIES)],
)
def test_each_rule_fires_at_its_documented_threshold(rule, result, says, phrase):
    statement = said(result)[rule]
    assert statement["says"] == says and phrase in statement["text"], statement


def test_the_boundary_results_start_from_a_comfortable_side():
    assert {m: s["says"] for m, s in said(at_boundary()).items()} == {
        "coverage": "neutral",
        "headroom": "rl",
        "learnable": "rl",
        "edge_of_competence": "neutral",
        "check_rate": "rl",
        "backtrack_rate": "rl",
        "gap": "rl",
        "process_valid_rate": "rl",
        "random_control": "rl",
        "malformed_rate": "neutral",
        "diversity": "neutral",
    }
    assert said(at_boundary({"pass@1": 0.2 - EPS}))["edge_of_competence"]["value"] == 5


def test_every_rule_has_a_case_for_each_side_it_takes_and_no_statement_without_its_input():
    sides = {
        name: {case.says for case in rule.cases} for name, rule in ((r.name, r) for r in RULES)
    }
    assert {side for says in sides.values() for side in says} == {"rl", "base", "neutral"}
    assert all(rule.cases[-1].when.text in ("else", "always") for rule in RULES)
    bare = crafted(0.0, 0.5, 0.3, 0.1, 0.1)  # pass@1 0: no process statement; no judge, no control
    assert [s["metric"] for s in verdict(bare)] == [
        r.name for r in RULES if r.name not in ("gap", "process_valid_rate", "random_control")
    ]


def rollout(problem_id, ids):
    return Rollout(
        problem_id, (1,), tuple(ids), "", tuple(0.0 for _ in ids), tuple(1 for _ in ids), "eos"
    )


def test_random_reward_is_deterministic_and_about_half():
    reward = REWARDS["random"]
    problems = [Problem(f"p{i}", "arith", "1+1\n", "2", 2) for i in range(40)]
    right, wrong = Verdict(Outcome.CORRECT, "2"), Verdict(Outcome.WRONG, "3")
    values = [reward(p, rollout(p.id, [j % 7, j, 5]), right) for p in problems for j in range(50)]
    assert set(values) == {0.0, 1.0}
    assert 0.45 < sum(values) / len(values) < 0.55
    again = [reward(p, rollout(p.id, [j % 7, j, 5]), wrong) for p in problems for j in range(50)]
    assert again == values  # same problem and tokens: same coin, whatever the verdict
    assert score({"random": 1.0}, problems[0], rollout("p0", [1, 2]), right)["total"] in (0.0, 1.0)


# --------------------------------------------------------------------------------------------
# End to end: a tiny model pretrained here, measured with a tiny budget

TINY = [
    "--set",
    "pretrain.token_budget=30000",
    "--set",
    "pretrain.batch_size=8",
    "--set",
    "pretrain.seq_len=64",
    "--set",
    "pretrain.eval_every=100",
    "--set",
    "pretrain.checkpoint_every=100",
    "--set",
    "pretrain.corpus_docs=1000",
    "--set",
    "model.d_model=32",
    "--set",
    "model.n_layers=1",
    "--set",
    "model.n_heads=2",
    "--set",
    "eval.levels=[3]",
    "--set",
    "eval.max_new_tokens=32",
    "--set",
    "rl.prompts_per_step=4",
    "--set",
    "rl.group_size=4",
    "--set",
    "rl.max_new_tokens=32",
    "--set",
    "rl.kl_monitor_every=0",
]
SMALL = ["-n", "4", "--problems", "3", "--best-of", "2", "--control-steps", "2"]


def cli(monkeypatch, capsys, *args):
    """Run `reasonlab ARGS` in this process; (exit code, stdout, stderr)."""
    from reasonlab.cli import main

    monkeypatch.setattr(sys, "argv", ["reasonlab", *args])
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(code, err, *fragments):
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    from reasonlab.cli import main

    run_dir = tmp_path_factory.mktemp("suff") / "tiny"
    mp = pytest.MonkeyPatch()
    mp.setattr(sys, "argv", ["reasonlab", "pretrain", "--out", str(run_dir), *TINY])
    try:
        main()
    finally:
        mp.undo()
    return run_dir


def test_cli_writes_the_report_and_refuses_to_overwrite(tiny_base, tmp_path, monkeypatch, capsys):
    out = tmp_path / "suff"
    code, stdout, err = cli(
        monkeypatch, capsys, "sufficiency", "--model", str(tiny_base), "--out", str(out), *SMALL
    )
    assert code == 0, err + stdout
    result = json.loads((out / "sufficiency.json").read_text())
    for key in (
        "model",
        "task",
        "knobs",
        "main_level",
        "n",
        "levels",
        "coverage",
        "judge",
        "edge_of_competence",
        "control",
        "verdict",
        "headline",
        "time",
    ):
        assert key in result, key
    assert result["main_level"] == 5 and sorted(result["levels"]) == ["3", "5"]
    for metrics in result["levels"].values():
        assert {"pass@1", "pass@4", "headroom", "learnable", "check_rate", "answer_entropy"} <= set(
            metrics
        )
        assert metrics["learnable"] + metrics["never"] + metrics["always"] == pytest.approx(1.0)
    assert len(result["coverage"]["5"]) == 4
    assert {"best_of_n", "gap", "auroc", "majority"} <= set(result["judge"]["levels"]["5"])
    c = result["control"]
    assert (
        c["steps"] == 2 and len(c["outcome"]["pass_rate"]) == 2 and len(c["random"]["reward"]) == 2
    )
    assert {s["says"] for s in result["verdict"]} <= {"rl", "base", "neutral"}
    for name in (
        "sufficiency.md",
        "sufficiency.html",
        "plots/coverage.png",
        "plots/learnable.png",
        "plots/behaviour.png",
        "plots/selection.png",
        "plots/control.png",
    ):
        assert (out / name).is_file(), name
    report = (out / "sufficiency.md").read_text()
    assert (
        report.index("**Verdict.**") < report.index("## Metrics per level")
        and "plots/coverage.png" in report
    )
    before = (out / "sufficiency.json").read_text()
    code, _, err = cli(
        monkeypatch, capsys, "sufficiency", "--model", str(tiny_base), "--out", str(out), *SMALL
    )
    assert_one_line(code, err, str(out), "already holds")
    assert (out / "sufficiency.json").read_text() == before


def test_cli_bad_input_is_one_line(tiny_base, tmp_path, monkeypatch, capsys):
    from reasonlab.models import CharTokenizer, TinyPolicy, TransformerConfig

    out = str(tmp_path / "never")
    args = ("sufficiency", "--out", out, *SMALL)
    assert_one_line(
        *cli(monkeypatch, capsys, *args, "--model", str(tiny_base), "--task", "nope")[::2], "nope"
    )
    assert_one_line(
        *cli(monkeypatch, capsys, *args, "--model", str(tiny_base), "--knob", "colour=3")[::2],
        "colour",
    )
    assert_one_line(
        *cli(monkeypatch, capsys, *args, "--model", str(tiny_base), "--levels", "3,x")[::2],
        "--levels",
    )
    assert_one_line(
        *cli(monkeypatch, capsys, *args, "--model", str(tiny_base), "--max-new-tokens", "0")[::2],
        "--max-new-tokens",
    )
    assert_one_line(
        *cli(monkeypatch, capsys, *args, "--model", str(tmp_path / "missing"), "--task", "arith")[
            ::2
        ],
        "missing",
    )
    short = tmp_path / "short"  # a model whose context cannot hold the task's prompt and completion
    tok = CharTokenizer()
    TinyPolicy.create(
        TransformerConfig(
            vocab_size=tok.vocab_size, d_model=16, n_layers=1, n_heads=2, max_seq_len=32
        ),
        seed=0,
    ).save(short)
    assert_one_line(
        *cli(monkeypatch, capsys, *args, "--model", str(short), "--task", "arith")[::2],
        "max_seq_len",
    )
    assert not (tmp_path / "never").exists()


def test_the_random_reward_control_trains_at_the_measured_level():
    from reasonlab.config import load_config
    from reasonlab.experiments.sufficiency import _control_config
    from reasonlab.rl.trainer import rl_task

    run = load_config(
        None, ["rl.task_knobs={n_operands: 3}"]
    )  # a run whose RL trained off its level
    control = _control_config(run, "arith", {**run.task.knobs, "n_operands": 7}, seed=0, steps=2)(
        "random"
    )
    assert control.rl.task_knobs == {} and rl_task(control).knobs["n_operands"] == 7
    assert control.rl.steps == 2 and control.rl.rewards == {"random": 1.0}
