"""Pretraining: a smoke test that learns easy arithmetic, exact resume after a kill, and the pieces."""

import math

import pytest
import torch

from reasonlab.config import config_from_dict
from reasonlab.evaluate.runner import SamplingParams, evaluate_policy
from reasonlab.models import CharTokenizer, load_policy
from reasonlab.pretrain.corpus import build_stream, get_batch
from reasonlab.pretrain.trainer import masked_loss, pretrain
from reasonlab.tasks import get_task
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
