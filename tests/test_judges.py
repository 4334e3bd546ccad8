"""Judges on tiny models: Monte-Carlo labels equal exact labels under a perfect policy, reward models
learn their labels, save/load keeps their scores, the verifier judge is exact, and RL with a learned
reward logs the hacking gap."""

import random

import pytest
import torch

from reasonlab.config import JudgeConfig, config_from_dict
from reasonlab.judges.base import aggregate, score_solutions
from reasonlab.judges.data import eval_records, record_from_text
from reasonlab.judges.models import LearnedJudge, load_judge
from reasonlab.judges.montecarlo import montecarlo_labels, policy_continuer, reference_continuer
from reasonlab.judges.train import class_weights, make_pairs, train_reward_model
from reasonlab.judges.verifier import VerifierJudge
from reasonlab.models import CharTokenizer, TinyPolicy, TransformerConfig
from reasonlab.rl.trainer import make_learner, rl_step
from reasonlab.tasks import get_task
from reasonlab.types import JudgeScores, StepRecord


def tiny_policy(seed=0):
    tok = CharTokenizer()
    return TinyPolicy.create(
        TransformerConfig(
            vocab_size=tok.vocab_size, d_model=32, n_layers=1, n_heads=2, max_seq_len=64
        ),
        seed=seed,
    )


def arith(**knobs):
    return get_task("arith", **{"n_operands": 4, "digits": 1, "operators": "+-", **knobs})


@pytest.mark.parametrize("knobs", [{}, {"n_operands": 6, "digits": 2, "operators": "+-*"}])
def test_montecarlo_labels_equal_exact_labels_under_the_reference_policy(knobs):
    task = arith(**knobs)
    problems = task.sample("train", 40, seed=3)
    records = eval_records(task, problems, seed=3)
    rng = random.Random(0)  # plus solutions with a retracted wrong step and with a junk line
    for p in problems[:10]:
        steps = task.reference_steps(p)
        wrong = task.wrong_step(p, 1, rng)
        text = (
            "\n".join([steps[0], wrong, "check: wrong", *steps[1:], f"answer: {p.answer}"]) + "\n"
        )
        records.append(record_from_text(task, p, text, "backtrack"))
        records.append(
            record_from_text(task, p, "\n".join([steps[0], "so the total is"]) + "\n", "junk")
        )
    assert {r.source for r in records} >= {
        "reference",
        "injected:arithmetic",
        "injected:operand",
        "injected:skipped",
        "injected:right_answer",
    }
    relabelled = montecarlo_labels(task, records, reference_continuer(task), n=2, seed=0)
    for exact, mc in zip(records, relabelled):
        assert mc.labels == exact.labels, (exact.source, exact.steps)
        assert mc.first_error == exact.first_error
        assert all(s in (0.0, 1.0) for s in mc.soft_labels)


def test_montecarlo_labels_with_a_sampled_policy_are_fractions_of_n():
    task = arith()
    records = eval_records(task, task.sample("train", 3, seed=1), seed=1)
    mc = montecarlo_labels(
        task, records, policy_continuer(tiny_policy(), max_new_tokens=24), n=4, seed=0
    )
    for r in mc:
        assert len(r.soft_labels) == len(r.steps)
        assert all(s * 4 == int(s * 4) for s in r.soft_labels[:-1])
        assert list(r.labels) == [
            all(s > 0 for s in r.soft_labels[: i + 1]) for i in range(len(r.steps))
        ]


def test_aggregations_and_scores_per_step():
    assert aggregate([0.9, 0.2, 0.8], "min") == 0.2
    assert aggregate([0.5, 0.5], "product") == 0.25
    assert aggregate([0.9, 0.2, 0.8], "last") == 0.8
    task = arith()
    records = eval_records(task, task.sample("test", 4, seed=0), seed=0)
    policy = tiny_policy()
    for head in ("prm", "orm"):
        judge = LearnedJudge.from_backbone(policy.module, policy.tokenizer, head)
        with torch.no_grad():
            judge.model.head.bias.fill_(0.3)
            judge.model.head.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(0))
        scores = judge.score(records)
        alone = [judge.score([r])[0] for r in records]  # batching and padding change nothing
        for r, s, a in zip(records, scores, alone):
            assert len(s.steps) == len(r.steps) and all(0 < x < 1 for x in s.steps)
            assert s.outcome == pytest.approx(min(s.steps) if head == "prm" else s.steps[-1])
            assert s.steps == pytest.approx(a.steps, abs=1e-5)


def marked_records(n, seed):
    """Solutions whose wrong steps say so ("bad"), labelled like exact data: a signal a random model can learn."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        steps = tuple(
            rng.choice(["good step", "good step", "bad step"]) for _ in range(rng.randint(1, 4))
        )
        first = next((j for j, s in enumerate(steps) if s == "bad step"), -1)
        labels = tuple(first < 0 or j < first for j in range(len(steps)))
        out.append(StepRecord(f"problem {i % 7}\n", steps, labels, first, first < 0, id=str(i)))
    return out


def train_prm(head="prm", steps=80, seed=0, train_backbone=True):
    policy = tiny_policy(seed)
    train, val = marked_records(200, seed=1), marked_records(60, seed=2)
    cfg = JudgeConfig(batch_size=16, max_steps=steps, eval_every=20, patience=10, lr=3e-3)
    judge = LearnedJudge.from_backbone(
        policy.module, policy.tokenizer, head, train_backbone=train_backbone
    )
    return judge, train_reward_model(judge, train, val, cfg, seed=seed), val


@pytest.mark.parametrize("head", ["prm", "orm", "pairwise"])
def test_each_head_lowers_its_validation_loss_below_chance(head):
    judge, hist, val = train_prm(head)
    assert hist.steps == 80 and hist.evals[0]["step"] == 20
    chance = 0.6931  # a zero head: logit 0 everywhere
    assert hist.best_val_loss < chance - 0.05, hist.evals
    assert not judge.model.training


def test_a_frozen_backbone_trains_only_the_head():
    policy = tiny_policy()
    judge, hist, val = train_prm(steps=60, train_backbone=False, head="prm")
    for (name, p), q in zip(judge.model.backbone.named_parameters(), policy.module.parameters()):
        assert torch.equal(p, q), name
    assert judge.model.reference is None and judge.model.head.weight.abs().sum() > 0
    assert hist.best_val_loss < hist.evals[0]["val_loss"] or hist.best_step == hist.evals[0]["step"]
    assert hist.best_val_loss < 0.6931


def test_soft_labels_are_the_targets_when_asked():
    import math

    from reasonlab.judges.train import pointwise_loss

    policy = tiny_policy()
    judge = LearnedJudge.from_backbone(policy.module, policy.tokenizer, "prm", features="hidden")
    with torch.no_grad():
        judge.model.head.bias.fill_(1.0)  # logit 1 at every step
    rec = StepRecord("p\n", ("a", "b"), (True, False), 1, False, soft_labels=(0.75, 0.0))

    def bce(t: float) -> float:
        p = 1 / (1 + math.exp(-1))
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    hard = pointwise_loss(judge, [rec], (1.0, 1.0)).item()
    soft = pointwise_loss(judge, [rec], (1.0, 1.0), soft=True).item()
    assert hard == pytest.approx((bce(1.0) + bce(0.0)) / 2, rel=1e-5)
    assert soft == pytest.approx((bce(0.75) + bce(0.0)) / 2, rel=1e-5)


def test_class_weights_balance_the_classes():
    recs = [StepRecord("p", ("a", "b", "c"), (True, True, False), 2, False)]
    w_pos, w_neg = class_weights(recs, "prm")
    assert 2 * w_pos == pytest.approx(w_neg) and 2 * w_pos + w_neg == pytest.approx(3)
    pairs = make_pairs(
        [
            StepRecord("p", ("a",), (True,), -1, True),
            StepRecord("p", ("b",), (False,), 0, False),
            StepRecord("q", ("c",), (True,), -1, True),
        ],
        seed=0,
    )
    assert [(a.steps, b.steps) for a, b in pairs] == [(("a",), ("b",))]


def test_a_saved_judge_scores_the_same_after_loading(tmp_path):
    judge, _, val = train_prm(steps=20)
    judge.threshold = 0.37
    judge.save(tmp_path / "prm", extra={"training": {"steps": 20}})
    loaded = load_judge(tmp_path / "prm")
    assert loaded.head == "prm" and loaded.threshold == 0.37
    for a, b in zip(judge.score(val[:8]), loaded.score(val[:8])):
        assert a.steps == pytest.approx(b.steps, abs=1e-6)


def test_the_verifier_judge_reproduces_exact_labels():
    task = arith()
    records = eval_records(task, task.sample("test", 20, seed=5), seed=5)
    for r, s in zip(records, VerifierJudge(task).score(records)):
        assert s.steps == tuple(float(x) for x in r.labels)
        assert s.outcome == float(r.correct)


def test_the_likelihood_judge_scores_a_step_by_its_least_likely_token():
    from reasonlab.judges.likelihood import LikelihoodJudge

    policy = tiny_policy()
    record = StepRecord("12+3-4=?\n", ("12+3=15", "15-4=11\nanswer: 11"))
    scores = LikelihoodJudge(policy).score([record, StepRecord("1+1=?\n", ())])
    tok = policy.tokenizer
    text = ["12+3=15\n", "15-4=11\nanswer: 11\n"]
    ids = [tok.bos_id, *tok.encode(record.prompt)]
    expected = []
    for piece in text:
        probs = []
        for t in tok.encode(piece):
            with torch.no_grad():
                logits = policy.logits(torch.tensor([ids]))[0, -1]
            probs.append(logits.softmax(-1)[t].item())
            ids.append(t)
        expected.append(min(probs))
    assert scores[0].steps == pytest.approx(tuple(expected), rel=1e-4)
    assert scores[0].outcome == pytest.approx(min(expected), rel=1e-4) and scores[1].outcome == 0.0


class Constant:
    """A judge that likes everything: a policy cannot lose by fooling it."""

    name = "constant"

    def __init__(self, value):
        self.value = value

    def score(self, records):
        return [JudgeScores(tuple(self.value for _ in r.steps), self.value) for r in records]


def test_score_solutions_reads_steps_and_gives_zero_without_any():
    assert score_solutions(
        Constant(0.8), ["1+2=?\n"] * 3, ["1+2=3\nanswer: 3\n", "answer: 3\n", ""]
    ) == [0.8, 0.8, 0.0]


def test_rl_with_a_learned_reward_logs_the_hacking_gap():
    cfg = config_from_dict(
        {
            "seed": 0,
            "task": {"name": "arith", "knobs": {"n_operands": 2, "digits": 1, "operators": "+"}},
            "model": {"d_model": 32, "n_layers": 1, "n_heads": 2, "max_seq_len": 64},
            "rl": {
                "steps": 2,
                "prompts_per_step": 4,
                "group_size": 4,
                "max_new_tokens": 8,
                "lr": 1e-2,
                "rewards": {"judge": 1.0},
                "judge": "prm",
            },
        }
    )
    policy = tiny_policy()
    learner = make_learner(cfg, policy)
    learner.judge = Constant(0.9)
    task = get_task("arith", n_operands=2, digits=1, operators="+")
    m = rl_step(cfg, learner, task, 0)
    # the rewards: 0.9 for every completion with a step or an answer line, 0 for the rest
    assert 0.0 <= m["reward/judge"] <= 0.9 + 1e-9 and m["reward/mean"] == pytest.approx(
        m["reward/judge"]
    )
    assert m["hack/gap"] == pytest.approx(m["hack/judge_mean"] - m["hack/verifier_mean"])
    assert m["hack/verifier_mean"] == pytest.approx(m["rl/pass_rate"])
    assert 0.0 <= m["hack/false_accept"] <= 1.0 and 0.0 <= m["hack/judge_accuracy"] <= 1.0


def test_the_judge_reward_needs_a_judge():
    from reasonlab.errors import ConfigError
    from reasonlab.rl.trainer import validate_rl

    cfg = config_from_dict({"rl": {"rewards": {"judge": 1.0}}})
    with pytest.raises(ConfigError, match="rl.judge"):
        validate_rl(cfg)
