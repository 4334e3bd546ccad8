"""Test-time search methods on a tiny arith policy: the equalities between methods, the bounds
with the exact verifier as the judge, exact budgets, reproducibility, and bad input."""

import dataclasses

import pytest
import torch

from reasonlab import sampling
from reasonlab.errors import ConfigError
from reasonlab.judges.likelihood import LikelihoodJudge
from reasonlab.judges.verifier import VerifierJudge
from reasonlab.models import CharTokenizer, TinyPolicy, TransformerConfig
from reasonlab.pretrain.trainer import masked_loss
from reasonlab.search.base import METHODS, SearchContext, SearchSettings, get_method
from reasonlab.tasks import get_task

N = 8
ALL = ("majority", "best_of_n", "weighted_best_of_n", "beam", "dvts", "mcts")
SETTINGS = SearchSettings(max_new_tokens=32, beam_width=2, temperature=1.0)


def weak_policy(task, steps=1000, seed=0):
    """A 1-layer policy trained for a few seconds on reference solutions: right about half the time."""
    tok = CharTokenizer()
    cfg = TransformerConfig(
        vocab_size=tok.vocab_size, d_model=32, n_layers=1, n_heads=2, max_seq_len=64
    )
    policy = TinyPolicy.create(cfg, seed=seed)
    rows = []
    for p in task.sample("train", 256, seed=seed):
        text = (
            "".join(s + "\n" for s in task.reference_steps(p)) + task.answer_line(p.answer) + "\n"
        )
        prompt, solution = [tok.bos_id, *tok.encode(p.prompt)], [*tok.encode(text), tok.eos_id]
        rows.append((prompt + solution, [0] * (len(prompt) - 1) + [1] * len(solution)))
    width = max(len(ids) for ids, _ in rows)
    ids = torch.tensor([r + [tok.pad_id] * (width - len(r)) for r, _ in rows])
    weight = torch.tensor([w + [0] * (width - 1 - len(w)) for _, w in rows], dtype=torch.float)
    opt = torch.optim.AdamW(policy.module.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(rows), (32,), generator=gen)
        loss = masked_loss(policy.logits(ids[idx, :-1]), ids[idx, 1:], weight[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy.module.eval()
    return policy


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny matrices: one thread is fastest, and steady when other jobs share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def setup():
    task = get_task("arith", n_operands=3, digits=1, operators="+")
    policy = weak_policy(task)
    return task, policy, task.sample("test", 16, seed=1)


def ctx(setup, judge="verifier", **settings):
    task, policy, _ = setup
    judges = {"verifier": VerifierJudge(task), "likelihood": LikelihoodJudge(policy), None: None}
    return SearchContext(policy, task, judges[judge], dataclasses.replace(SETTINGS, **settings))


def run(method, context, problems, budget=N, seed=0):
    return get_method(method)(context, problems, budget, seed)


def same(a, b):
    """Outcomes equal but for wall time."""
    strip = lambda o: dataclasses.replace(o, compute=dataclasses.replace(o.compute, wall_s=0.0))  # noqa: E731
    return [strip(o) for o in a] == [strip(o) for o in b]


def test_every_method_is_registered():
    assert set(ALL) <= set(METHODS)


def test_beam_of_width_n_and_one_expansion_is_best_of_n_on_the_same_samples(setup):
    problems = setup[2]
    best = run("best_of_n", ctx(setup, "likelihood"), problems)
    beam = run("beam", ctx(setup, "likelihood", beam_width=N, max_expansions=1), problems)
    assert same(best, beam)
    assert all(o.candidates == N for o in beam)


def test_dvts_with_one_subtree_is_a_beam_search_of_width_one(setup):
    problems = setup[2]
    dvts = run("dvts", ctx(setup, "likelihood", beam_width=4), problems, budget=4)
    beam = run("beam", ctx(setup, "likelihood", beam_width=1), problems, budget=4)
    assert same(dvts, beam)


def test_mcts_with_zero_simulations_returns_the_greedy_sample(setup):
    task, policy, problems = setup
    greedy = sampling.generate(policy, problems, 1, 5, max_new_tokens=32, temperature=0.0)
    out = run("mcts", ctx(setup), problems, budget=0, seed=3)
    assert [o.text for o in out] == [r.text for r in greedy]
    assert [o.compute.generated_tokens for o in out] == [len(r.token_ids) for r in greedy]


def test_with_the_verifier_as_judge_accuracy_lies_between_pass_at_1_and_pass_at_n(setup):
    """Selection methods choose among the very N samples that pass@k counts, so pass@N bounds them;
    a tree search with the oracle PRM prunes wrong steps and may beat N independent samples, so only
    the lower bound is claimed for it."""
    task, policy, problems = setup
    samples = sampling.generate(policy, problems, N, 0, max_new_tokens=32, temperature=1.0)
    right = [
        [task.verify(p, r.text).correct for r in samples[i * N : (i + 1) * N]]
        for i, p in enumerate(problems)
    ]
    pass1 = sum(map(sum, right)) / (N * len(problems))
    pass_n = sum(map(any, right)) / len(problems)
    assert pass1 < pass_n  # a weak policy: search has room to help
    for method in ALL:
        out = run(method, ctx(setup, None if method == "majority" else "verifier"), problems)
        accuracy = sum(o.correct for o in out) / len(problems)
        upper = pass_n if method in ("majority", "best_of_n", "weighted_best_of_n") else 1.0
        assert pass1 <= accuracy <= upper, (method, pass1, accuracy, pass_n)


class Recorder:
    """Wraps sampling.generate: the rows per problem and the tokens of every call."""

    def __init__(self, monkeypatch):
        self.calls = []
        real = sampling.generate

        def generate(policy, problems, n, seed, **kw):
            out = real(policy, problems, n, seed, **kw)
            rows = {}
            for p in problems:
                rows[p.id] = rows.get(p.id, 0) + n
            self.calls.append((rows, sum(len(r.token_ids) for r in out)))
            return out

        monkeypatch.setattr(sampling, "generate", generate)


@pytest.mark.parametrize("method", ALL)
def test_budgets_are_honoured_exactly(setup, monkeypatch, method):
    problems = setup[2][:6]
    rec = Recorder(monkeypatch)
    out = run(
        method, ctx(setup, None if method == "majority" else "verifier", beam_width=2), problems
    )
    generated = sum(o.compute.generated_tokens for o in out)
    assert generated == sum(tokens for _, tokens in rec.calls) > 0  # every generated token counted
    most = {"beam": N, "dvts": N, "mcts": 2}.get(method)  # candidates per expansion and problem
    if most is None:  # selection: one call, exactly N completions of each problem
        assert [rows for rows, _ in rec.calls] == [{p.id: N for p in problems}]
        assert all(o.candidates == N for o in out)
    else:
        assert max(max(rows.values()) for rows, _ in rec.calls) <= most
    if method == "mcts":
        assert len(rec.calls) <= N  # one expansion per simulation
    if method == "dvts":  # N / M subtrees of M children each
        assert max(rec.calls[0][0].values()) == N
    assert all(o.compute.wall_s > 0 for o in out)
    assert all((o.compute.judge_tokens > 0) == (method != "majority") for o in out)


@pytest.mark.parametrize("method", ALL)
def test_seeds_make_every_method_reproducible(setup, method):
    problems = setup[2][:6]
    context = ctx(setup, None if method == "majority" else "likelihood")
    first = run(method, context, problems, seed=7)
    assert same(first, run(method, context, problems, seed=7))
    assert not same(first, run(method, context, problems, seed=8))  # other samples, other costs


def test_the_judge_reads_each_partial_solution_once(setup):
    task, policy, problems = setup

    class Counting:
        name = "counting"

        def __init__(self):
            self.inner, self.seen = LikelihoodJudge(policy), []

        def score(self, records):
            self.seen += [(r.problem.id, r.steps) for r in records]
            return self.inner.score(records)

    judge = Counting()
    context = dataclasses.replace(ctx(setup), judge=judge)
    out = run("beam", context, problems[:4], budget=N)
    assert len(judge.seen) == len(set(judge.seen))  # cached: never asked twice
    tok = policy.tokenizer
    by_problem = {}
    for pid, steps in judge.seen:
        prompt = next(p.prompt for p in problems if p.id == pid)
        text = prompt + "".join(s + "\n" for s in steps)
        by_problem[pid] = by_problem.get(pid, 0) + len(tok.encode(text))
    assert [o.compute.judge_tokens for o in out] == [by_problem[p.id] for p in problems[:4]]


def test_bad_input_is_one_clear_config_error(setup):
    task, policy, problems = setup
    cases = [
        ("beam", ctx(setup, beam_width=4), 2, "search.beam_width"),
        ("dvts", ctx(setup, beam_width=4), 3, "search.beam_width"),
        ("best_of_n", ctx(setup), 0, "search budget"),
        ("majority", ctx(setup, judge=None), -1, "search budget"),
        ("mcts", ctx(setup), -1, "search budget"),
        ("beam", ctx(setup), 1.5, "search budget"),
        ("best_of_n", ctx(setup, judge=None), N, "search.judge"),
        ("weighted_best_of_n", ctx(setup, judge=None), N, "search.judge"),
        ("beam", ctx(setup, judge=None), N, "search.judge"),
        ("dvts", ctx(setup, judge=None), N, "search.judge"),
        ("mcts", ctx(setup, judge=None), N, "search.judge"),
        ("beam", ctx(setup, aggregation="mean"), N, "search.aggregation"),
        ("mcts", ctx(setup, mcts_terminal="oracle"), N, "search.mcts_terminal"),
        ("beam", ctx(setup, max_expansions=0), N, "search.max_expansions"),
        ("best_of_n", ctx(setup, max_new_tokens=200), N, "search.max_new_tokens"),
    ]
    for method, context, budget, field in cases:
        with pytest.raises(ConfigError) as err:
            run(method, context, problems[:2], budget=budget)
        message = str(err.value)
        assert field in message and "\n" not in message, (method, message)
        assert method in message or field == "search.aggregation" or "max_new_tokens" in field


class NoSteps:
    """A task whose verifier judges answers only (as math and gym do): steps_valid is None."""

    name = "nosteps"

    def __init__(self, task):
        self.task = task

    def verify(self, problem, text):
        return dataclasses.replace(
            self.task.verify(problem, text), steps_valid=None, first_error=None
        )

    def answer_line(self, answer):
        return self.task.answer_line(answer)


@pytest.mark.parametrize("method", ["beam", "dvts", "mcts"])
def test_step_level_methods_need_step_boundaries(setup, method):
    task, policy, problems = setup
    context = SearchContext(policy, NoSteps(task), VerifierJudge(task), SETTINGS)
    with pytest.raises(ConfigError, match=f"'{method}' searches over steps.*no step boundaries"):
        run(method, context, problems[:2])


def test_selection_works_without_step_boundaries(setup):
    task, policy, problems = setup
    context = SearchContext(policy, NoSteps(task), None, SETTINGS)
    out = run("majority", context, problems[:3])
    assert len(out) == 3 and all(o.candidates == N for o in out)


@pytest.mark.parametrize("method", ALL)
def test_no_problems_is_a_dry_run_of_the_checks(setup, monkeypatch, method):
    rec = Recorder(monkeypatch)
    assert run(method, ctx(setup, None if method == "majority" else "verifier"), []) == []
    assert rec.calls == []
    with pytest.raises(ConfigError):
        run(
            method,
            ctx(setup, judge=None, beam_width=N + 1),
            [],
            budget=N if method != "majority" else 0,
        )
