"""Judges on a low-precision Hugging Face backbone (a tiny Qwen2 loaded in bfloat16 or float16): the
read-out heads stay float32 and read the backbone's activations cast up (judges/models.py) through
training, scoring, ProcessBench-style metrics, saving and the `reasonlab judge train` command. On the
test device (tests/conftest.py: $REASONLAB_TEST_DEVICE, cpu by default)."""

import json

import pytest
import torch

pytest.importorskip(
    "transformers", reason="Hugging Face tests need transformers: pip install 'reasonlab[hf]'"
)

from reasonlab.config import JudgeConfig  # noqa: E402
from reasonlab.evaluate.processbench import judge_step_metrics, tune_split  # noqa: E402
from reasonlab.judges.data import eval_records  # noqa: E402
from reasonlab.judges.files import write_records  # noqa: E402
from reasonlab.judges.likelihood import LikelihoodJudge  # noqa: E402
from reasonlab.judges.models import HEADS, LearnedJudge, encode, load_judge  # noqa: E402
from reasonlab.judges.train import train_reward_model  # noqa: E402
from reasonlab.models import load_policy  # noqa: E402
from reasonlab.models.tiny_hf import build_tiny_hf  # noqa: E402
from reasonlab.tasks import get_task  # noqa: E402
from runs import reasonlab

TRAIN = JudgeConfig(max_steps=3, eval_every=3, batch_size=8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return build_tiny_hf(tmp_path_factory.mktemp("hf") / "qwen2", "qwen2", seed=3)


@pytest.fixture(scope="module")
def records():
    task = get_task("arith")
    return eval_records(task, task.sample("train", 16, 0), 0)  # 32 records, half with an error


def low_precision(folder, device, dtype="bfloat16"):
    return load_policy(folder, options={"device": str(device), "dtype": dtype})


def trained(policy, head, records, train_backbone=False, features="hidden+likelihood"):
    """A judge on the policy's backbone after a few training steps (records split 24 / 8)."""
    judge = LearnedJudge.from_backbone(
        policy.backbone(),
        policy.tokenizer,
        head,
        features=features,
        train_backbone=train_backbone,
    )
    train_reward_model(judge, records[:24], records[24:], TRAIN, seed=0)
    return judge


def assert_probabilities(scores, records):
    assert len(scores) == len(records)
    for s, r in zip(scores, records):
        assert len(s.steps) == len(r.steps)
        assert all(0.0 <= p <= 1.0 for p in (*s.steps, s.outcome))


@pytest.mark.parametrize("train_backbone", [False, True], ids=["frozen", "fine-tuned"])
@pytest.mark.parametrize("head", HEADS)
def test_heads_train_and_score_on_a_bfloat16_backbone(
    folder, records, device, head, train_backbone
):
    policy = low_precision(folder, device)
    judge = trained(policy, head, records, train_backbone)
    model = judge.model
    assert all(p.dtype == torch.float32 for p in model.head_parameters())
    assert next(model.backbone.parameters()).dtype == torch.bfloat16
    assert any(p.abs().sum() > 0 for p in model.head_parameters())  # trained away from zero
    assert_probabilities(judge.score(records), records)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_read_out_inputs_and_logits_are_float32(folder, records, device, dtype):
    policy = low_precision(folder, device, dtype)
    judge = trained(policy, "prm", records, features="hidden")
    h, feats = judge.model.inputs(encode(judge.tokenizer, records[:4]))
    assert h.dtype == torch.float32 and feats is None
    logits = judge.model.read(h.to(getattr(torch, dtype)), None)  # (S,)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    assert_probabilities(judge.score(records), records)


def test_a_bfloat16_judge_saves_loads_and_measures_as_trained(folder, records, device, tmp_path):
    policy = low_precision(folder, device)
    judge = trained(policy, "prm", records)
    scores = judge.score(records)
    judge.save(tmp_path / "prm")
    reloaded = load_judge(tmp_path / "prm")  # each part in the dtype it was saved in
    assert next(reloaded.model.backbone.parameters()).dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in reloaded.model.head_parameters())
    reloaded.model.to(device)
    for a, b in zip(scores, reloaded.score(records)):
        assert a.steps == pytest.approx(b.steps, abs=1e-6)
    metrics = judge_step_metrics(records, scores, tune_split([r.id.split(":")[0] for r in records]))
    assert 0.0 <= metrics["f1"] <= 1.0 and 0.0 <= metrics["step_auroc"] <= 1.0


def test_the_likelihood_judge_reads_a_bfloat16_policy(folder, records, device):
    scores = LikelihoodJudge(low_precision(folder, device)).score(records)
    assert_probabilities(scores, records)
    assert all(p > 0.0 for s in scores for p in s.steps)


def test_judge_train_command_on_a_bfloat16_base(folder, records, tmp_path, cli_device):
    data = tmp_path / "steps.jsonl"
    write_records(data, records)
    proc = reasonlab(
        "judge",
        "train",
        "--base",
        str(folder),
        "--head",
        "orm",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "orm"),
        *("--set", "hf.dtype=bfloat16", "--set", f"hf.device={cli_device}"),
        *("--set", "judge.max_steps=4", "--set", "judge.eval_every=2"),
        *("--set", "judge.batch_size=8"),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    judge = load_judge(tmp_path / "orm")
    assert next(judge.model.backbone.parameters()).dtype == torch.bfloat16
    proc = reasonlab(
        "judge",
        "eval",
        *("--judge", str(tmp_path / "orm"), "--data", str(data)),
        *("--out", str(tmp_path / "eval.json")),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    metrics = json.loads((tmp_path / "eval.json").read_text())["metrics"]
    assert 0.0 <= metrics["outcome_auroc"] <= 1.0
