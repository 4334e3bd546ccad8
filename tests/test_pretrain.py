"""Pretraining: a smoke test that learns easy arithmetic, exact resume after a kill, and the pieces; the
corpus over a range of difficulty (pretrain.levels): its counts by level, and today's stream without one."""

import math
import random
import re
from collections import Counter

import pytest
import torch

from reasonlab.config import config_from_dict
from reasonlab.evaluate.runner import SamplingParams, evaluate_policy
from reasonlab.models import CharTokenizer, load_policy
from reasonlab.pretrain.corpus import (
    build_stream,
    corpus_mixture,
    corpus_problems,
    get_batch,
    level_counts,
    level_region,
)
from reasonlab.pretrain.trainer import masked_loss, pretrain
from reasonlab.tasks import get_task
from reasonlab.tasks.traces import render
from reasonlab.training.optim import lr_at
from reasonlab.training.tracking import read_metrics

EASY = {
    "name": "easy",
    "seed": 0,
    "task": {"name": "arith", "knobs": {"n_operands": 2, "digits": 1, "operators": "+"}},
    "traces": {"steps": 1.0},
    "model": {"d_model": 64, "n_layers": 2, "n_heads": 2, "max_seq_len": 64},
    "pretrain": {
        "token_budget": 600 * 16 * 64,
        "batch_size": 16,
        "seq_len": 64,
        "lr": 0.003,
        "warmup_steps": 20,
        "corpus_docs": 2000,
        "eval_every": 100,
        "checkpoint_every": 200,
    },
}


def test_pretraining_learns_easy_arithmetic(tmp_path):
    cfg = config_from_dict(EASY)
    policy = pretrain(cfg, tmp_path)
    rows = read_metrics(tmp_path / "metrics.jsonl")
    losses = [r["train/loss"] for r in rows if "train/loss" in r]
    assert len(losses) == 600
    assert sum(losses[-20:]) / 20 < 0.5 * sum(losses[:20]) / 20
    task = get_task("arith", n_operands=2, digits=1, operators="+")
    problems = task.sample(
        "test", 6, seed=1
    )  # one-digit sums: 6 of the 81 are test problems, never trained on
    result = evaluate_policy(policy, task, problems, SamplingParams(n=8, seed=0, max_new_tokens=24))
    assert result["summary"]["pass@1"] > 0.5, result["summary"]


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    raw = {
        **EASY,
        "pretrain": {
            **EASY["pretrain"],
            "token_budget": 40 * 16 * 64,
            "checkpoint_every": 10,
            "eval_every": 10,
        },
    }
    cfg = config_from_dict(raw)
    straight = pretrain(cfg, tmp_path / "straight")

    class Kill(Exception):
        pass

    def kill_at_25(done, total, row):
        if done == 25:
            raise Kill

    with pytest.raises(Kill):
        pretrain(cfg, tmp_path / "resumed", on_step=kill_at_25)
    resumed = pretrain(cfg, tmp_path / "resumed")  # continues from the step-20 checkpoint
    for (name, a), (_, b) in zip(
        straight.module.state_dict().items(), resumed.module.state_dict().items()
    ):
        assert torch.equal(a, b), name
    steps = [
        r["step"] for r in read_metrics(tmp_path / "resumed" / "metrics.jsonl") if "train/loss" in r
    ]
    assert steps == list(range(1, 41))
    reloaded = load_policy(tmp_path / "resumed" / "base")
    x = torch.randint(4, 60, (2, 10))
    assert torch.equal(reloaded.logits(x), resumed.logits(x))


def test_stream_masks_prompts_and_batches_are_pure():
    cfg = config_from_dict(EASY)
    task = get_task("arith", n_operands=2, digits=1, operators="+")
    tok = CharTokenizer()
    stream = build_stream(task, cfg, "train", 10, seed=0, tok=tok)
    text = tok.decode(stream.ids.tolist())
    assert "answer:" in text
    learned = tok.decode([i for i, keep in zip(stream.ids.tolist(), stream.learn.tolist()) if keep])
    assert "=?" not in learned and "answer:" in learned  # prompts are not learned, solutions are
    assert stream.ids[0] == tok.bos_id and (stream.ids == tok.eos_id).sum() == 10
    a = get_batch(stream, 4, 16, seed=3, step=7)
    b = get_batch(stream, 4, 16, seed=3, step=7)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert torch.equal(a[0][:, 1:], a[1][:, :-1])  # targets are inputs shifted by one


def test_masked_loss_and_schedule_by_hand():
    logits = torch.zeros(1, 2, 4)  # uniform over 4 tokens: nll = log 4 everywhere
    targets = torch.tensor([[1, 2]])
    assert masked_loss(logits, targets, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(
        math.log(4)
    )
    assert lr_at(0, 100, 1.0, 10, 0.1) == pytest.approx(0.1)
    assert lr_at(9, 100, 1.0, 10, 0.1) == pytest.approx(1.0)
    assert lr_at(10, 100, 1.0, 10, 0.1) == pytest.approx(1.0)
    assert lr_at(55, 100, 1.0, 10, 0.1) == pytest.approx(0.55)
    assert lr_at(100, 100, 1.0, 10, 0.1) == pytest.approx(0.1)


def stream_before_levels(task, cfg, split, n_docs, seed, tok):
    """build_stream as it was before pretrain.levels, for the byte-for-byte comparison."""
    mix, rng = corpus_mixture(cfg), random.Random(seed)
    ids, learn = [], []
    for problem in task.sample(split, n_docs, seed, distinct=False):
        solution = render(task, problem, mix.choose(rng), rng, error_rate=cfg.traces.error_rate)
        prompt_ids = [tok.bos_id] + tok.encode(problem.prompt)
        solution_ids = tok.encode(solution) + [tok.eos_id]
        ids += prompt_ids + solution_ids
        learn += [cfg.pretrain.loss_on_prompt] * len(prompt_ids) + [True] * len(solution_ids)
    learn[0] = False
    return ids, learn


RANGE = {
    **EASY,
    "task": {"name": "arith", "knobs": {"n_operands": 3, "digits": 1, "operators": "+-"}},
    "traces": {"answer_only": 0.5, "steps": 0.3, "backtrack": 0.2},
}


def test_without_levels_the_stream_is_todays_byte_for_byte():
    cfg = config_from_dict(RANGE)
    assert cfg.pretrain.levels == {}
    task, tok = get_task("arith", **RANGE["task"]["knobs"]), CharTokenizer()
    for split, seed in (("train", 0), ("test", 5)):
        stream = build_stream(task, cfg, split, 300, seed=seed, tok=tok)
        ids, learn = stream_before_levels(task, cfg, split, 300, seed, tok)
        assert stream.ids.tolist() == ids and stream.learn.tolist() == learn


def test_the_corpus_levels_follow_the_configured_distribution():
    shares = {2: 0.1, 4: 0.3, 6: 0.6}
    cfg = config_from_dict({**RANGE, "pretrain": {**RANGE["pretrain"], "levels": shares}})
    task, tok = get_task("arith", **RANGE["task"]["knobs"]), CharTokenizer()
    drawn = corpus_problems(task, cfg, "train", 1000, 0, random.Random(0))
    assert Counter(p.difficulty for _, p in drawn) == {2: 100, 4: 300, 6: 600}  # exact shares
    assert all(len(p.meta["operands"]) == p.difficulty == t.n_operands for t, p in drawn)
    assert all(t.split_of(p) == "train" for t, p in drawn)
    assert [p.difficulty for _, p in drawn[:12]] != sorted(p.difficulty for _, p in drawn[:12])
    again = corpus_problems(task, cfg, "train", 1000, 0, random.Random(0))
    assert [p.prompt for _, p in again] == [
        p.prompt for _, p in drawn
    ]  # a pure function of the seed
    stream = build_stream(task, cfg, "train", 1000, seed=0, tok=tok)
    ids = stream.ids.tolist()
    starts = [i for i, t in enumerate(ids) if t == tok.bos_id] + [len(ids)]
    prompts = [tok.decode(ids[a + 1 : b]).split("=?")[0] for a, b in zip(starts, starts[1:])]
    assert len(prompts) == 1000  # operands = operators + 1, read back from the packed stream
    assert Counter(len(re.findall("[+-]", p)) + 1 for p in prompts) == {2: 100, 4: 300, 6: 600}
    held_out = corpus_problems(task, cfg, "test", 50, 1, random.Random(1))  # 5 / 15 / 30
    assert Counter(p.difficulty for _, p in held_out) == {2: 5, 4: 15, 6: 30}


def test_level_counts_by_largest_remainder_and_the_regions():
    assert level_counts({2: 0.2, 3: 0.2, 4: 0.2, 5: 0.2, 6: 0.2}, 1000) == dict.fromkeys(
        range(2, 7), 200
    )
    # 7 x 1/3 = 2.33 each: the one left over goes to the lowest level
    assert level_counts({5: 1 / 3, 3: 1 / 3, 4: 1 / 3}, 7) == {3: 3, 4: 2, 5: 2}
    # quotas 2.9, 4.1, 3.0 -> floors 2, 4, 3 and one more for the largest remainder (0.9)
    assert level_counts({2: 0.29, 3: 0.41, 4: 0.3}, 10) == {2: 3, 3: 4, 4: 3}
    assert level_counts({2: 0.29, 3: 0.71}, 100) == {2: 29, 3: 71}  # 0.29 x 100 = 28.999...
    assert level_counts({2: 0.5, 3: 0.5, 4: 0.0}, 3) == {2: 2, 3: 1, 4: 0}
    shares = {2: 0.5, 3: 0.0, 4: 0.5, 9: 0.0}  # the range is 2..4: zero shares are not trained
    assert [level_region(shares, lv) for lv in (1, 2, 3, 4, 5, 6, 9)] == [
        "below",
        "in_range",
        "in_range",
        "in_range",
        "edge",
        "beyond",
        "beyond",
    ]
