"""The solutions view: the verifier's step marks as rendered, the choice of problems, filters, escaping."""

import re

import pytest

from reasonlab.experiments.solutions import (
    add_judge_scores,
    build_solutions,
    solution_record,
)
from reasonlab.reports.solutions import (
    solution_html,
    solution_markdown,
    solutions_section_html,
    solutions_section_markdown,
)
from reasonlab.tasks import get_task
from reasonlab.tasks.parsing import split_lines
from reasonlab.types import JudgeScores

TASK = get_task("arith", n_operands=4, digits=1)
PROBLEM = TASK.sample("test", 1, 0)[0]
ROW = re.compile(r"<tr class='([^']*)' data-step='(\d+)' data-mark=\"([a-z]+)\"")


def off_by_one(step: str) -> str:
    left, result = step.split("=")
    return f"{left}={int(result) + 1}"


def texts() -> dict[str, str]:
    ref = TASK.reference_steps(PROBLEM)
    answer = f"answer: {PROBLEM.answer}\n"
    return {
        "valid": "\n".join(ref) + "\n" + answer,
        "wrong": "\n".join([ref[0], off_by_one(ref[1]), *ref[2:]]) + "\n" + answer,
        "retracted": "\n".join([ref[0], off_by_one(ref[1]), "check: wrong", *ref[1:]])
        + "\n"
        + answer,
    }


class FakeJudge:
    def __init__(self, name, value=0.25, fail=False):
        self.name, self.value, self.fail = name, value, fail
        self.aggregation, self.threshold = "min", 0.5

    def score(self, records):
        if self.fail:
            raise RuntimeError("cannot score")
        return [JudgeScores(tuple(self.value for _ in r.steps), self.value) for r in records]


@pytest.mark.parametrize("kind", ["valid", "wrong", "retracted"])
def test_view_marks_exactly_the_steps_the_verifier_marks(kind):
    text = texts()[kind]
    verdict = TASK.verify(PROBLEM, text)
    retracted = split_lines(text)[1]
    solution = solution_record(TASK, PROBLEM, text, "base")
    expected = [
        "retracted" if r else ("valid" if ok else "wrong")
        for ok, r in zip(verdict.steps_valid, retracted)
    ]
    assert [s["mark"] for s in solution["steps"]] == expected
    assert solution["first_error"] == verdict.first_error
    assert solution["outcome"] == verdict.outcome.value and not solution["shortcut"]
    want = {
        "valid": ["valid"] * 3,
        "wrong": ["valid", "wrong", "wrong"],
        "retracted": ["valid", "retracted", "valid", "valid"],
    }[kind]
    assert expected == want
    assert verdict.first_error == (1 if kind == "wrong" else -1)

    page = solution_html(solution)
    rows = ROW.findall(page)
    assert [int(i) for _, i, _ in rows] == list(range(len(expected)))
    assert [m for _, _, m in rows] == expected
    first = [int(i) for cls, i, _ in rows if "sol-first-error" in cls.split()]
    assert first == ([verdict.first_error] if verdict.first_error >= 0 else [])
    for cls, _, mark in rows:  # the class carries the mark, and a text label says it too
        assert f"sol-{mark}" in cls.split()
    for label in set(expected):
        assert f" {label}" in page
    if kind == "wrong":
        assert "first error" in page and "first wrong step: 2" in page
    md = solution_markdown(solution)
    step_rows = [line for line in md.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(step_rows) == len(expected)
    for line, mark in zip(step_rows, expected):
        assert mark in line
    assert ("first error" in md) == (kind == "wrong")


def test_judge_scores_render_as_bars_with_numbers():
    entries = [
        {"prompt": PROBLEM.prompt, "solutions": {"base": solution_record(TASK, PROBLEM, t)}}
        for t in texts().values()
    ]
    add_judge_scores(entries, {"prm": FakeJudge("prm", 0.25), "bad": FakeJudge("bad", fail=True)})
    solution = entries[0]["solutions"]["base"]
    assert solution["judges"] == {"prm": {"steps": [0.25] * 3, "score": 0.25}}
    page = solution_html(solution)
    assert page.count("width:25.0%") == 4 and page.count("0.250") == 4  # 3 steps + the solution
    assert "<th>prm</th>" in page
    assert "| 0.250 |" in solution_markdown(solution)


def eval_rows(problems, correct, samples):
    """An eval/<model>.json-like dict: problem i has correct[i] of 4 samples right."""
    rows = []
    for p, c, s in zip(problems, correct, samples):
        rows.append(
            {
                "id": p.id,
                "prompt": p.prompt,
                "answer": p.answer,
                "n": 4,
                "n_correct": c,
                "samples": [
                    {"text": s[0], "outcome": "correct"},
                    {"text": s[1], "outcome": "wrong"},
                ],
            }
        )
    return {"problems": rows}


def make_evals(n=40):
    problems = TASK.sample("test", n, 1)
    right = ["\n".join(TASK.reference_steps(p)) + f"\nanswer: {p.answer}\n" for p in problems]
    wrong = [f"answer: {int(p.answer) + 1}\n" for p in problems]  # a wrong shortcut
    samples = list(zip(right, wrong))
    base = [(0, 4, 0, 4, 0)[i % 5] for i in range(n)]
    rl = [(4, 0, 0, 4, 4)[i % 5] for i in range(n)]
    return problems, eval_rows(problems, base, samples), eval_rows(problems, rl, samples)


def test_selection_is_bounded_seeded_and_includes_fixed_and_broke():
    problems, base, rl = make_evals()
    data = build_solutions(TASK, problems, base, rl, {"prm": FakeJudge("prm")}, 6, seed=3)
    assert data == build_solutions(TASK, problems, base, rl, {"prm": FakeJudge("prm")}, 6, seed=3)
    statuses = [p["status"] for p in data["problems"]]
    assert len(statuses) == 6
    assert {"fixed", "broke", "both_wrong", "both_right"} <= set(statuses)
    assert data["counts"] == {"fixed": 16, "broke": 8, "both_wrong": 8, "both_right": 8}
    assert data["models"] == ["base", "rl"] and set(data["judges"]) == {"prm"}
    for p in data["problems"]:
        base_ok = p["solutions"]["base"]["outcome"] == "correct"
        rl_ok = p["solutions"]["rl"]["outcome"] == "correct"
        expected = {(False, True): "fixed", (True, False): "broke"}.get(
            (base_ok, rl_ok), "both_right" if base_ok else "both_wrong"
        )
        assert p["status"] == expected  # the shown completion agrees with the model's verdict
        assert p["solutions"]["base"]["judges"]["prm"]["score"] == 0.25
    other = build_solutions(TASK, problems, base, rl, {}, 6, seed=4)
    assert [p["id"] for p in other["problems"]] != [p["id"] for p in data["problems"]]
    assert build_solutions(TASK, problems, base, rl, {}, 100, seed=3)["problems"].__len__() == 40


def test_section_has_filters_and_classes_and_works_offline():
    problems, base, rl = make_evals()
    data = build_solutions(TASK, problems, base, rl, {}, 8, seed=0)
    page = solutions_section_html(data)
    for f in ("all", "wrong", "shortcut", "fixed", "broke"):
        assert f"id='sol-f-{f}'" in page and f"for='sol-f-{f}'" in page
    blocks = re.findall(r"<div class='(sol-problem [^']*)'", page)
    assert len(blocks) == 8
    classes = {c for b in blocks for c in b.split()}
    assert {"sol-fixed", "sol-broke", "sol-has-wrong", "sol-has-shortcut"} <= classes
    assert "#sol-f-fixed:checked~.sol-problems .sol-problem:not(.sol-fixed){display:none}" in page
    assert "<script" not in page and "http" not in page and "@import" not in page
    assert "sol-pair" in page and page.count("sol-solution") == 16
    md = solutions_section_markdown(data)
    assert md.count("**base**") == 8 and md.count("**RL model**") == 8
    assert solutions_section_html(None) == "" and solutions_section_markdown(None) == ""


def test_without_rl_the_view_shows_the_base_alone():
    problems, base, _ = make_evals(10)
    data = build_solutions(TASK, problems, base, None, {}, 4, seed=0)
    assert data["models"] == ["base"]
    assert {p["status"] for p in data["problems"]} == {"wrong", "right"}
    assert all(set(p["solutions"]) == {"base"} for p in data["problems"])
    assert "no RL model in this run" in solutions_section_html(data)


def test_text_is_escaped():
    text = "<script>alert('x')</script>\n1+1=2 | *bold*\nanswer: <b>3</b>\n"
    solution = solution_record(TASK, PROBLEM, text, "rl")
    page = solution_html(solution)
    assert "<script" not in page and "<b>3" not in page
    assert "&lt;script&gt;alert" in page and "&lt;b&gt;3" in page
    md = solution_markdown(solution)
    assert "<script" not in md and "&lt;script&gt;" in md and "\\|" in md and "\\*bold\\*" in md
    data = {
        "models": ["base", "rl"],
        "problems": [
            {
                "id": "<x>",
                "prompt": "<script>1</script>",
                "status": "broke",
                "solutions": {"base": solution, "rl": solution},
            }
        ],
    }
    section = solutions_section_html(data)
    assert "<script" not in section and "&lt;script&gt;1" in section
    assert "<script" not in solutions_section_markdown(data)


def test_the_section_loads_clean_in_a_browser(browser, tmp_path):
    problems, base, rl = make_evals()
    section = solutions_section_html(build_solutions(TASK, problems, base, rl, {}, 8, seed=0))
    path = tmp_path / "solutions.html"
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>solutions</title></head>"
        f"<body>{section}</body></html>"
    )
    page = browser.check(path)
    assert page.console_errors == [] and page.broken_images == []
    assert "problems RL fixed" in page.text and "RL model" in page.text
