"""`reasonlab search` and search/runner.py: the methods x budgets x seeds grid, the oracle, the report.

The runner tests use the shared tiny run folder (conftest.py `tiny_run`) with its RL policy and the
task's exact verifier as the judge; the command runs end to end in a subprocess (tests/runs.py)."""

from __future__ import annotations

import json
import re

import pytest

import reasonlab.search.runner as runner
from reasonlab.errors import ConfigError
from reasonlab.reports.search import search_headline, write_search_report
from reasonlab.search.base import METHODS, SearchContext, SearchSettings
from runs import assert_one_line_error, reasonlab

SELECTORS = ("majority", "best_of_n")  # choose among N independent samples: pass@N bounds them
STAND_INS = not set(SELECTORS) <= set(METHODS)  # the real methods are not written yet


def _stand_in(use_judge: bool):
    """majority / best-of-N on N samples drawn like the oracle's (only while the real ones are missing)."""
    from collections import Counter

    from reasonlab.sampling import generate
    from reasonlab.search.base import Compute, SearchOutcome
    from reasonlab.tasks.parsing import solution_steps
    from reasonlab.types import StepRecord

    def method(ctx, problems, n, seed):
        s = ctx.settings
        if use_judge and ctx.judge is None:
            raise ConfigError("best_of_n needs a judge")
        if not problems:
            return []
        rollouts = generate(
            ctx.policy,
            problems,
            n,
            seed,
            max_new_tokens=s.max_new_tokens,
            temperature=s.temperature,
            top_p=s.top_p,
        )
        out = []
        for i, p in enumerate(problems):
            group = rollouts[i * n : (i + 1) * n]
            verdicts = [ctx.task.verify(p, r.text) for r in group]
            if use_judge:
                records = [
                    StepRecord(p.prompt, tuple(solution_steps(r.text)), problem=p) for r in group
                ]
                scores = [x.outcome for x in ctx.judge.score(records)]
                pick = max(range(n), key=lambda j: scores[j])
            else:
                votes = Counter(v.answer for v in verdicts if v.answer is not None)
                top = votes.most_common(1)[0][0] if votes else None
                pick = next((j for j, v in enumerate(verdicts) if v.answer == top), 0)
            tokens = sum(len(r.token_ids) for r in group)
            spent = Compute(tokens, tokens if use_judge else 0, 0.001)
            v = verdicts[pick]
            out.append(SearchOutcome(p.id, group[pick].text, v.answer, v.correct, n, spent))
        return out

    return method


if STAND_INS:
    METHODS.register("majority", _stand_in(False))
    METHODS.register("best_of_n", _stand_in(True))


@pytest.fixture(scope="module")
def context(tiny_run):
    from reasonlab.config import load_config
    from reasonlab.judges.verifier import VerifierJudge
    from reasonlab.models import load_policy
    from reasonlab.tasks import get_task

    cfg = load_config(tiny_run / "config.yaml")
    task = get_task(cfg.task.name, **cfg.task.knobs)
    settings = SearchSettings(max_new_tokens=task.max_new_tokens, beam_width=2)
    return SearchContext(load_policy(tiny_run / "rl"), task, VerifierJudge(task), settings)


@pytest.fixture(scope="module")
def result(context):
    problems = context.task.sample("test", 4, 1)
    return runner.run_search(context, problems, list(SELECTORS), [2, 4], [0, 1])


def test_the_result_holds_every_method_budget_and_seed(result):
    assert result["budgets"] == [2, 4] and result["seeds"] == [0, 1]
    assert result["method_names"] == list(SELECTORS) and result["n_problems"] == 4
    assert result["judge"] == "verifier" and result["judge_params"] == 0
    assert result["policy_params"] > 0
    for method in SELECTORS:
        for n in ("2", "4"):
            cell = result["methods"][method][n]
            assert 0.0 <= cell["accuracy"] <= 1.0
            assert len(cell["per_seed"]) == 2 and all(0 <= v <= 1 for v in cell["per_seed"])
            assert cell["accuracy"] == pytest.approx(sum(cell["per_seed"]) / 2)
            assert set(cell["by_difficulty"]) == {str(d) for d in result["difficulties"]}
            assert len(cell["correct"]) == 2 and all(len(row) == 4 for row in cell["correct"])
            c = cell["compute"]
            assert c["generated_tokens"] > 0 and c["wall_s"] > 0
            # FLOPs = 2 x parameters x tokens, of the policy and of the judge
            assert c["flops"] == pytest.approx(
                2 * (result["policy_params"] * c["generated_tokens"] + 0 * c["judge_tokens"])
            )
            assert c["flops_per_problem"] == pytest.approx(c["flops"] / 8)
    for n in ("2", "4"):
        o = result["oracle"][n]
        assert 0 <= o["pass@1"] <= o["pass@n"] <= 1
        assert len(o["pass@n_per_seed"]) == 2


def test_the_oracle_bounds_every_selector_with_the_verifier_as_judge(result):
    for n in ("2", "4"):
        oracle = result["oracle"][n]["pass@n"]
        for method in SELECTORS:
            assert result["methods"][method][n]["accuracy"] <= oracle + 1e-9, (method, n)


def test_flops_count_the_judge_parameters_too():
    from reasonlab.search.base import Compute

    assert Compute(10, 30, 1.0).flops(100, 7) == 2 * (100 * 10 + 7 * 30)
    assert runner.parameter_count(None) == 0

    class Module:
        def parameters(self):
            import torch

            return [torch.zeros(3, 4), torch.zeros(5)]

    class Judge:
        model = Module()

    assert runner.parameter_count(Judge()) == 17


def test_budgets_and_methods_are_parsed_or_refused():
    assert runner.parse_budgets("16, 1,4,4") == [1, 4, 16]
    for bad in ("0", "a", "4,-1", "1.5", ""):
        with pytest.raises(ConfigError, match="--budgets"):
            runner.parse_budgets(bad)
    with pytest.raises(ConfigError, match="--methods: unknown search method 'nope'"):
        runner.parse_methods("majority,nope")


def test_a_refused_method_stops_everything_before_compute_and_names_what_works(context):
    calls = []

    def picky(ctx, problems, budget, seed):
        if budget < ctx.settings.beam_width:
            raise ConfigError(f"--budgets: beam needs N >= {ctx.settings.beam_width}, got {budget}")
        calls.append(len(problems))
        return []

    METHODS.register("picky_stand_in", picky)
    try:
        with pytest.raises(ConfigError) as err:
            runner.run_search(
                context,
                context.task.sample("test", 2, 1),
                ["majority", "picky_stand_in"],
                [1, 4],
                [0],
            )
    finally:
        del METHODS["picky_stand_in"]
    message = str(err.value)
    assert "beam needs N >= 2, got 1" in message and "still works: majority" in message
    assert "\n" not in message and calls == []


def test_the_report_opens_with_the_headline_and_shows_data(result, tmp_path):
    page_path = write_search_report({**result, "model_name": "tiny"}, tmp_path)
    assert page_path == tmp_path / "search.html"
    page = page_path.read_text()
    md = (tmp_path / "search.md").read_text()
    sentences = search_headline(result)
    assert 1 <= len(sentences) <= 3 and sentences[0].startswith("At N=4 ")
    assert "oracle pass@4" in sentences[0]
    # headline first, then the images, then the tables
    assert page.index("class='headline'") < page.index("<img") < page.index("<table")
    assert md.splitlines()[2] == " ".join(sentences)
    assert md.index("![") < md.index("| method |")
    # self-contained: every image inline, nothing loaded from elsewhere
    assert re.findall(r'<img src="([^"]{5})', page) == ["data:"] * 2
    assert not re.search(r'(src|href)="(?!data:)', page)
    for method in ("majority vote", "best-of-4"):
        assert method in page
    assert (tmp_path / "plots" / "accuracy_vs_n.png").is_file()
    assert not (tmp_path / "search.json").exists()  # written by the command, not the report


def test_several_difficulty_levels_get_their_own_plot(tmp_path):
    cell = {
        "accuracy": 0.5,
        "per_seed": [0.5],
        "by_difficulty": {"3": 0.75, "5": 0.25},
        "candidates": 4,
        "compute": {
            k: 1.0
            for k in (
                "generated_tokens_per_problem",
                "judge_tokens_per_problem",
                "flops_per_problem",
                "wall_s_per_problem",
            )
        },
    }
    oracle = {
        "pass@n": 0.8,
        "pass@1": 0.4,
        "pass@n_per_seed": [0.8],
        "pass@1_per_seed": [0.4],
        "by_difficulty": {"3": {"pass@n": 1.0, "pass@1": 0.6}, "5": {"pass@n": 0.6, "pass@1": 0.2}},
        "compute": cell["compute"],
    }
    result = {
        "task": "arith",
        "n_problems": 2,
        "seeds": [0],
        "budgets": [4],
        "difficulties": [3, 5],
        "judge": "prm",
        "methods": {"beam": {"4": cell}, "best_of_n": {"4": {**cell, "accuracy": 0.25}}},
        "oracle": {"4": oracle},
    }
    write_search_report(result, tmp_path)
    assert (tmp_path / "plots" / "accuracy_by_level.png").is_file()
    assert search_headline(result)[0] == (
        "At N=4 beam search with the PRM reaches 50% against 25% for best-of-4 with the PRM "
        "and 80% for the oracle pass@4 (pass@1 40%)."
    )


needs_methods = pytest.mark.skipif(
    STAND_INS or "beam" not in METHODS,
    reason="the search methods (search/selection.py, tree.py) are not there yet",
)


@needs_methods
def test_the_command_writes_search_json_and_the_report(tiny_run, tmp_path):
    out = tmp_path / "search"
    args = ["search", "--model", str(tiny_run), "--judge", "verifier", "--problems", "3"]
    args += ["--methods", "majority,best_of_n", "--budgets", "1,2", "--out", str(out)]
    proc = reasonlab(*args)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    result = json.loads((out / "search.json").read_text())
    assert set(result["methods"]) == {"majority", "best_of_n"} and result["budgets"] == [1, 2]
    assert result["model"] == str(tiny_run / "rl") and result["judge"] == "verifier"
    assert (out / "search.html").is_file() and (out / "search.md").is_file()
    assert "oracle pass@N" in proc.stdout
    again = reasonlab(*args)  # an earlier search report is rewritten
    assert again.returncode == 0, again.stderr


@needs_methods
@pytest.mark.parametrize(
    "extra, fragments",
    [
        (["--methods", "majority,nope"], ["--methods", "nope"]),
        (["--budgets", "0,4"], ["--budgets", "'0'"]),
        (["--budgets", "4,x"], ["--budgets", "'x'"]),
        (["--methods", "majority,beam", "--budgets", "2", "--beam-width", "4"], ["still works"]),
        (["--judge", "nowhere"], ["--judge", "nowhere"]),
        (["--aggregation", "mean"], ["--aggregation"]),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tiny_run, tmp_path, extra, fragments):
    out = tmp_path / "search"
    args = ["search", "--model", str(tiny_run), "--judge", "verifier", "--problems", "2"]
    proc = reasonlab(*args, "--budgets", "4", "--out", str(out), *extra)
    assert_one_line_error(proc, *fragments)
    assert not out.exists()


def test_an_output_folder_holding_something_else_is_refused(tiny_run, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    proc = reasonlab("search", "--model", str(tiny_run), "--methods", "majority", "--out", str(out))
    assert_one_line_error(proc, str(out), "holds no search report")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


class NoSteps:
    """The task with a verifier that judges no step (like math and gym:<dataset>)."""

    def __init__(self, task):
        self.task = task

    def __getattr__(self, name):
        return getattr(self.task, name)

    def verify(self, problem, text):
        from dataclasses import replace

        return replace(self.task.verify(problem, text), steps_valid=None, first_error=None)


def test_a_task_without_steps_refuses_the_step_searches_and_names_what_works(context):
    from dataclasses import replace

    no_steps = replace(context, task=NoSteps(context.task))
    problems = context.task.sample("test", 2, 1)
    with pytest.raises(ConfigError) as err:
        runner.run_search(no_steps, problems, ["majority", "best_of_n", "beam", "mcts"], [2], [0])
    message = str(err.value)
    assert "'beam' searches over steps" in message and "'mcts' searches over steps" in message
    assert message.endswith("still works: majority, best_of_n") and "\n" not in message


def test_leniently_beam_skips_the_budgets_below_its_width(context):
    problems = context.task.sample("test", 2, 1)
    with pytest.raises(ConfigError, match="beam_width"):
        runner.run_search(context, problems, ["majority", "beam"], [1, 2], [0])
    result = runner.run_search(context, problems, ["majority", "beam"], [1, 2], [0], lenient=True)
    assert set(result["methods"]["beam"]) == {"2"} and set(result["methods"]["majority"]) == {
        "1",
        "2",
    }
    assert result["skipped"] == {"beam": [1]}
    assert 0 <= result["methods"]["beam"]["2"]["accuracy"] <= 1


@needs_methods
def test_the_command_searches_with_the_run_prm(tiny_run, tmp_path):
    out = tmp_path / "prm"
    proc = reasonlab(
        "search", "--model", str(tiny_run), "--problems", "2", "--methods", "beam,mcts",
        "--budgets", "2", "--beam-width", "2", "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    result = json.loads((out / "search.json").read_text())
    assert result["judge"] == "prm" and result["judge_params"] > 0
    cell = result["methods"]["beam"]["2"]
    assert cell["compute"]["judge_tokens"] > 0
    assert cell["compute"]["flops"] == pytest.approx(
        2
        * (
            result["policy_params"] * cell["compute"]["generated_tokens"]
            + result["judge_params"] * cell["compute"]["judge_tokens"]
        )
    )
