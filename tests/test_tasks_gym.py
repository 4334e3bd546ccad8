"""Tests for the `gym:<dataset>` tasks: reasoning-gym datasets with their own scorers.

Run: .venv/bin/pytest tests/test_tasks_gym.py -q
"""

from __future__ import annotations

import random
import sys

import pytest

pytest.importorskip("reasoning_gym")

import reasonlab.tasks.gym as gym  # noqa: E402  (registers the gym: family)
from reasonlab.errors import ConfigError, ReasonlabError  # noqa: E402
from reasonlab.tasks import get_task  # noqa: E402
from reasonlab.tasks.base import Task  # noqa: E402
from reasonlab.tasks.traces import Mixture, corpus, render  # noqa: E402
from reasonlab.types import Outcome  # noqa: E402

# small configs keep countdown (a search per entry) fast
DATASETS = {
    "basic_arithmetic": {"max_terms": 4},
    "chain_sum": {},
    "countdown": {"min_numbers": 3, "max_numbers": 3, "size": 500},
    "letter_counting": {},
    "spell_backward": {},
}


@pytest.fixture(scope="module", params=sorted(DATASETS))
def task(request: pytest.FixtureRequest) -> Task:
    return get_task(f"gym:{request.param}", **DATASETS[request.param])


@pytest.fixture(scope="module")
def chain() -> Task:
    return get_task("gym:chain_sum")


def outcome(task: Task, problem, text) -> Outcome:
    return task.verify(problem, text).outcome


def test_reference_answers_verify_in_both_forms(task: Task) -> None:
    for problem in task.sample("train", n=8, seed=1):
        assert problem.task == task.name and problem.id
        for text in (
            f"some thinking\nanswer: {problem.answer}\n",
            f"<answer>{problem.answer}</answer>",
            f"thinking <answer> {problem.answer} </answer>\nmore text\n",
        ):
            verdict = task.verify(problem, text)
            assert verdict.outcome is Outcome.CORRECT, (problem.prompt, text)
            assert verdict.answer == problem.answer.strip()
            assert verdict.steps_valid is None and verdict.first_error is None


def test_wrong_and_malformed(task: Task) -> None:
    problem = task.sample("train", n=1, seed=2)[0]
    assert outcome(task, problem, "answer: 1234567xyz\n") is Outcome.WRONG
    assert outcome(task, problem, "<answer>nope</answer>") is Outcome.WRONG
    for text in ("", "\n\n", "I do not know", "answer:", "answer:   \n", "<answer> </answer>"):
        verdict = task.verify(problem, text)
        assert verdict.outcome is Outcome.MALFORMED, text
        assert not verdict.answer


def test_prompt_instruction_name_and_difficulty(chain: Task) -> None:
    problem = chain.sample("train", n=1, seed=0)[0]
    entry = problem.meta["entry"]
    assert chain.name == "gym:chain_sum" and problem.task == "gym:chain_sum"
    assert problem.prompt == entry["question"] + "\n" + gym.TEMPLATES["line"] + "\n"
    assert problem.answer == entry["answer"]
    assert 0 <= problem.meta["index"] < 10000
    assert problem.difficulty == 0  # metadata["difficulty"] is a dict of ranges, not a level
    tag = get_task("gym:chain_sum", template="tag").sample("train", n=1, seed=0)[0]
    assert tag.prompt.endswith("<answer></answer> tags.\n")
    bare = get_task("gym:chain_sum", template="bare").sample("train", n=1, seed=0)[0]
    assert bare.prompt == bare.meta["entry"]["question"] + "\n"
    assert gym.GymTask.max_new_tokens == 512


def test_extract_answer_rules() -> None:
    ex = gym.extract_answer
    assert ex("answer: 1\nanswer: 2\n") == "2"  # the last answer line
    assert ex("ANSWER:  7 \n") == "7"
    assert ex("<answer>a</answer> <answer>b</answer>\nanswer: c") == "b"  # a tag wins
    assert ex("<answer>x\ny</answer>") == "x\ny"
    assert ex("<answer>a<answer>b</answer>") == "b"
    assert ex("<answer>unclosed\nanswer: 5") == "5"
    assert ex("</answer><answer>") is None
    assert ex("the answer: 3") is None  # the line must start with answer:
    assert ex(None) is None  # type: ignore[arg-type]


def test_partial_credit_is_wrong() -> None:
    task = get_task("gym:spell_backward")
    problem = task.sample("train", n=1, seed=0)[0]
    entry = problem.meta["entry"]
    for near in (problem.answer[:-1], problem.answer + "x"):
        raw = task.dataset.score_answer(near, entry)
        assert 0.0 < raw and raw != 1.0  # reasoning-gym gives partial credit ...
        assert outcome(task, problem, f"answer: {near}") is Outcome.WRONG  # ... we do not
    # a float sum scores the extended word 1 +- 1e-16: why CORRECT means exactly 1.0
    assert abs(task.dataset.score_answer(problem.answer + "x", entry) - 1.0) < 1e-9


def test_scorer_exceptions_are_total(monkeypatch: pytest.MonkeyPatch) -> None:
    task = get_task("gym:prime_factorization")
    problem = task.sample("train", n=1, seed=0)[0]
    with pytest.raises(ValueError):
        task.dataset.score_answer("junk", problem.meta["entry"])  # the raw scorer raises
    assert outcome(task, problem, "answer: junk") is Outcome.WRONG
    assert outcome(task, problem, "answer: " + "9" * 5000) is Outcome.WRONG
    assert outcome(task, problem, "answer: " + problem.answer) is Outcome.CORRECT
    assert outcome(task, problem, None) is Outcome.MALFORMED  # type: ignore[arg-type]

    def raising(answer, entry):
        raise RuntimeError("boom")

    for scorer in (raising, lambda a, e: float("nan"), lambda a, e: "1.0?", lambda a, e: None):
        monkeypatch.setattr(task, "dataset", type("D", (), {"score_answer": staticmethod(scorer)}))
        assert outcome(task, problem, "answer: " + problem.answer) is Outcome.WRONG


def test_warnings_of_the_scorer_are_silenced(recwarn: pytest.WarningsRecorder) -> None:
    task = get_task("gym:pool_matrix")
    problem = task.sample("train", n=1, seed=0)[0]
    assert outcome(task, problem, "<answer>[]</answer>") is Outcome.WRONG
    assert len(recwarn) == 0


def test_unknown_dataset_and_knobs() -> None:
    with pytest.raises(ConfigError, match="did you mean basic_arithmetic"):
        get_task("gym:basic_arithmetc")
    with pytest.raises(ConfigError, match="unknown reasoning-gym dataset"):
        get_task("gym:")
    with pytest.raises(ConfigError, match=r"unknown knob 'max_term'.*valid knobs: .*max_terms"):
        get_task("gym:chain_sum", max_term=3)
    with pytest.raises(ConfigError, match="'seed'.*use dataset_seed"):
        get_task("gym:chain_sum", seed=3)
    with pytest.raises(ConfigError, match=r"invalid knob min_terms=0 .*must be positive"):
        get_task("gym:chain_sum", min_terms=0)
    with pytest.raises(ConfigError, match="invalid knob min_terms='3'.*type int"):
        get_task("gym:chain_sum", min_terms="3")
    with pytest.raises(ConfigError, match="invalid knobs min_terms=5, max_terms=3"):
        get_task("gym:chain_sum", min_terms=5, max_terms=3)
    with pytest.raises(ConfigError, match="template"):
        get_task("gym:chain_sum", template="xml")
    with pytest.raises(ConfigError, match="size"):
        get_task("gym:chain_sum", size=0)
    with pytest.raises(ConfigError, match="test_fraction"):
        get_task("gym:chain_sum", test_fraction=2)
    with pytest.raises(ConfigError, match="default knobs"):
        get_task("gym:composite")  # needs a list of datasets
    with pytest.raises(ConfigError, match="full marks to the junk answer"):
        get_task("gym:game_of_life_halting")  # its scorer accepts any non-empty answer


def test_missing_reasoning_gym(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "reasoning_gym", None)
    with pytest.raises(ConfigError, match=r"pip install 'reasonlab\[gym\]'"):
        get_task("gym:chain_sum")


def test_sample_is_deterministic(chain: Task) -> None:
    first = chain.sample("train", n=30, seed=5)
    assert first == chain.sample("train", n=30, seed=5)
    assert first == get_task("gym:chain_sum").sample("train", n=30, seed=5)
    assert first != chain.sample("train", n=30, seed=6)
    other_seed = get_task("gym:chain_sum", dataset_seed=7).sample("train", n=30, seed=5)
    assert [p.prompt for p in first] != [p.prompt for p in other_seed]


def test_split_is_disjoint(chain: Task) -> None:
    train = chain.sample("train", n=200, seed=0)
    test = chain.sample("test", n=40, seed=0)
    assert not {p.prompt for p in train} & {p.prompt for p in test}
    assert all(chain.split_of(p) == "test" for p in test)


def test_knobs_pass_through() -> None:
    task = get_task("gym:chain_sum", min_terms=8, max_terms=8, max_digits=2)
    assert task.knobs == {
        "min_terms": 8, "max_terms": 8, "min_digits": 1, "max_digits": 2,
        "allow_negation": False, "size": 10000, "dataset_seed": 0, "template": "line",
        "test_fraction": 0.1,
    }  # fmt: skip
    for problem in task.sample("train", n=10, seed=0):
        expression = problem.meta["entry"]["metadata"]["expression"]
        assert len(expression.split()) == 2 * 8 - 1
        assert problem.meta["entry"]["metadata"]["num_terms"] == 8
    short = get_task("gym:chain_sum", max_terms=2).sample("train", n=10, seed=0)
    assert all(p.meta["entry"]["metadata"]["num_terms"] == 2 for p in short)
    listed = get_task("gym:basic_arithmetic", operators=["+", "-"])
    assert listed.knobs["operators"] == ("+", "-")  # a YAML list becomes the config's tuple
    assert all("*" not in p.meta["entry"]["question"] for p in listed.sample("train", 10, 0))


def test_datasets_are_built_once_per_config() -> None:
    a, b = get_task("gym:chain_sum", max_terms=5), get_task("gym:chain_sum", max_terms=5)
    assert a.dataset is b.dataset
    assert get_task("gym:chain_sum", max_terms=4).dataset is not a.dataset


def test_steps_and_corpus(task: Task) -> None:
    problem = task.sample("train", n=1, seed=0)[0]
    assert task.reference_steps(problem) == []
    with pytest.raises(ReasonlabError):
        task.wrong_step(problem, 0, random.Random(0))
    n = 10 if task.name == "gym:countdown" else 50  # countdown searches for each entry
    docs = corpus(task, n=n, mixture=Mixture({"steps": 1}), seed=0)
    problems = task.sample("train", n=len(docs), seed=0)
    for doc, p in zip(docs, problems):
        assert doc == p.prompt + f"answer: {p.answer}\n"
        assert outcome(task, p, doc[len(p.prompt) :]) is Outcome.CORRECT


def test_multiline_answers_use_the_tag() -> None:
    task = get_task("gym:rotate_matrix")
    problem = task.sample("train", n=1, seed=0)[0]
    assert "\n" in problem.answer
    text = render(task, problem, "steps", random.Random(0))
    assert text == f"<answer>{problem.answer}</answer>\n"
    assert outcome(task, problem, text) is Outcome.CORRECT


def test_datasets_without_an_oracle_answer() -> None:
    task = get_task("gym:rush_hour")
    problem = task.sample("train", n=1, seed=0)[0]
    assert problem.answer == "" and not task.supports_answer_only
    assert outcome(task, problem, "answer: junk") is Outcome.WRONG
    with pytest.raises(ReasonlabError, match="no reference answer"):
        task.reference_steps(problem)
