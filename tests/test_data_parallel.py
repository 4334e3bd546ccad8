"""Data-parallel learners on the session's real local Ray (`ray_local`, 2 CPUs) with gloo: one update
with two learners equals one learner's, for pretraining and for RL under every aggregation (on a batch
whose two halves hold different token counts, so token-mean's global count matters); short runs with
two learners checkpoint rank 0's state and resume exactly; bad input is one line naming the field."""

import dataclasses
import random
import shutil

import pytest
import torch

from reasonlab.config import config_from_dict
from reasonlab.distributed.data_parallel import Shard
from reasonlab.errors import ConfigError
from reasonlab.models import CharTokenizer, TinyPolicy, TransformerConfig, load_policy
from reasonlab.pretrain.trainer import pretrain, validate_pretrain
from reasonlab.rl.learner_group import LearnerGroup
from reasonlab.rl.losses import AGGREGATIONS, aggregation_weights, get_aggregation
from reasonlab.rl.mismatch import sampler_logprobs
from reasonlab.rl.rollouts import Group, make_batch
from reasonlab.rl.trainer import Diverged, build_learner, learn, train_rl, validate_rl
from reasonlab.sampling import generate
from reasonlab.tasks import get_task
from reasonlab.training.tracking import read_metrics
from runs import assert_one_line_error, reasonlab

MODEL = {"d_model": 32, "n_layers": 2, "n_heads": 2, "max_seq_len": 64}
TASK = {"name": "arith", "knobs": {"n_operands": 2, "digits": 1, "operators": "+"}}


def rl_cfg(**rl):
    return config_from_dict(
        {
            "seed": 0,
            "task": TASK,
            "model": MODEL,
            "rl": {
                "steps": 3,
                "prompts_per_step": 4,
                "group_size": 4,
                "max_new_tokens": 8,
                "lr": 1e-2,
                "checkpoint_every": 2,
                "learners": 2,
                **rl,
            },
        }
    )


def pretrain_cfg(steps, **pretrain):
    return config_from_dict(
        {
            "seed": 0,
            "task": TASK,
            "model": MODEL,
            "pretrain": {
                "token_budget": steps * 8 * 32,
                "batch_size": 8,
                "seq_len": 32,
                "warmup_steps": 0,
                "corpus_docs": 200,
                **pretrain,
            },
        }
    )


@pytest.fixture
def base_dir(tmp_path):
    tok = CharTokenizer()
    TinyPolicy.create(TransformerConfig(vocab_size=tok.vocab_size, **MODEL), seed=0).save(
        tmp_path / "base"
    )
    return tmp_path / "base"


def params(module):
    return [p.detach().clone() for p in module.parameters()]


def assert_close(a, b, atol=1e-5):
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, atol=atol, rtol=0)


def uneven_batch(policy):
    """4 groups of 4 real completions cut to 1-4 tokens in the first half of the rows (rank 0's) and
    to 5-8 in the second (rank 1's), with random rewards."""
    rng = random.Random(0)
    problems = get_task(TASK["name"], **TASK["knobs"]).sample("train", 4, 0)
    rollouts = generate(policy, problems, 4, 0, max_new_tokens=8, temperature=1.0)
    groups = []
    for i, p in enumerate(problems):
        cut = []
        for r in rollouts[4 * i : 4 * i + 4]:
            k = rng.randint(1, 4) if i < 2 else rng.randint(5, 8)
            k = min(k, len(r.token_ids))
            cut.append(
                dataclasses.replace(
                    r, token_ids=r.token_ids[:k], logprobs=r.logprobs[:k], mask=r.mask[:k]
                )
            )
        rewards = [{"total": rng.random()} for _ in cut]
        groups.append(Group(p, cut, [None] * 4, rewards))
    batch = make_batch(groups, policy.tokenizer.pad_id)
    rows = [r for g in groups for r in g.rollouts]
    return batch, sampler_logprobs(rows, batch.completion_ids.shape[1])


def with_sgd(learner):
    """Plain SGD (lr 1): the step is the clipped gradient itself. Adam's first step, lr x sign(g), would
    turn rounding noise in near-zero gradients into differences of 2 x lr."""
    learner.optimizer = torch.optim.SGD(learner.policy.module.parameters(), lr=1.0)
    learner.critic_optimizer = torch.optim.SGD(learner.critic.parameters(), lr=1.0)
    return learner


def test_shards_cover_the_rows_once():
    for n, world in [(16, 2), (7, 3), (2, 4)]:
        parts = [range(n)[Shard(r, world).part(n)] for r in range(world)]
        assert [i for p in parts for i in p] == list(range(n))
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_one_rl_update_with_two_learners_equals_one_for_every_aggregation(ray_local, base_dir):
    # PPO (a critic), a KL penalty and an entropy bonus, so every part of the update is compared
    common = {"advantage": "gae", "beta": 0.1, "entropy_coef": 0.01}
    configs = [rl_cfg(aggregation=name, **common) for name in sorted(AGGREGATIONS)]
    configs.append(rl_cfg(num_iterations=2, minibatches=2, micro_batch_size=3, **common))
    batch, sampler_logp = uneven_batch(load_policy(base_dir))
    # the two halves hold different token counts: a per-rank token mean (each rank dividing by its
    # own count) weights the tokens differently from the whole batch's
    mask, half = batch.completion_mask, len(batch.group) // 2
    assert mask[:half].sum() < mask[half:].sum() - 8
    token_mean = get_aggregation("token_mean")
    whole = aggregation_weights(token_mean, mask, 8)  # (B, L)
    per_rank = torch.cat(
        [aggregation_weights(token_mean, m, 8) / 2 for m in (mask[:half], mask[half:])]
    )
    assert (whole - per_rank).abs().max() > 1e-3

    def sgd_on_rank(rank):  # pickled by value: the ranks cannot import this file
        learner = rank.state["learner"]
        learner.optimizer = torch.optim.SGD(learner.policy.module.parameters(), lr=1.0)
        learner.critic_optimizer = torch.optim.SGD(learner.critic.parameters(), lr=1.0)

    group = LearnerGroup.start(
        configs[0], base_dir, build_learner(configs[0], base_dir), build_learner, learn
    )
    start = params(load_policy(base_dir).module)
    try:
        group.actors.run(sgd_on_rank)
        for cfg in configs:
            one = with_sgd(build_learner(cfg, base_dir))
            two = with_sgd(build_learner(cfg, base_dir))
            group.push(two)  # every rank starts from the same weights as `one`
            expected = learn(cfg, one, batch, sampler_logp, 0)
            got = group.learn(cfg, two, batch, sampler_logp, 0)
            assert_close(params(one.policy.module), params(two.policy.module))  # the weight sync
            group.pull(two)
            assert_close(params(one.critic), params(two.critic))
            moved = [(a - b).abs().max() for a, b in zip(params(one.policy.module), start)]
            assert max(moved) > 1e-3
            assert got.keys() == expected.keys()
            for key, value in expected.items():
                assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-6), (
                    cfg.rl.aggregation,
                    key,
                )
        # a non-finite loss on one rank only (NaN rewards in rank 1's rows): every rank refuses the
        # update together (none is left waiting in the gradient sum) and the driver gets Diverged
        nan_rows = torch.arange(len(batch.group)) >= half
        nan_batch = dataclasses.replace(
            batch, rewards=batch.rewards.masked_fill(nan_rows, float("nan"))
        )
        before = params(two.policy.module)
        with pytest.raises(Diverged, match="loss nan"):
            group.learn(configs[0], two, nan_batch, sampler_logp, 1)
        assert all(torch.equal(a, b) for a, b in zip(before, params(two.policy.module)))
    finally:
        group.close()


def rewind(run_dir, copy, stage, step, final):
    """A copy of `run_dir` as a crash right after its checkpoint at `step` leaves it: the later
    checkpoints and the final model gone (the metrics of later steps are still there)."""
    shutil.copytree(run_dir, copy)
    ckpt_dir = copy / "checkpoints" / stage
    for later in ckpt_dir.glob("step_*"):
        if int(later.name.removeprefix("step_")) > step:
            shutil.rmtree(later)
    (ckpt_dir / "latest").write_text(f"step_{step:08d}")
    shutil.rmtree(copy / final)


def test_rl_with_two_learners_checkpoints_rank_0_and_resumes_exactly(ray_local, tmp_path, base_dir):
    cfg = rl_cfg(advantage="gae", rewards={"random": 1.0})  # 3 steps, a checkpoint at 2
    whole = train_rl(cfg, tmp_path / "whole", base_dir)
    state = torch.load(
        tmp_path / "whole" / "checkpoints" / "rl" / "step_00000002" / "state.pt", weights_only=True
    )
    # the driver's own optimizer and critic never step: what was saved is rank 0's
    assert state["optimizer"]["state"] and state["critic"]["value_head.weight"].abs().sum() > 0
    rewind(tmp_path / "whole", tmp_path / "resumed", "rl", 2, "rl")
    resumed = train_rl(cfg, tmp_path / "resumed", base_dir)
    for a, b in zip(whole.module.parameters(), resumed.module.parameters(), strict=True):
        assert torch.equal(a, b)
    reloaded = load_policy(tmp_path / "resumed" / "rl")
    assert all(
        torch.equal(a, b) for a, b in zip(whole.module.parameters(), reloaded.module.parameters())
    )
    assert [r["step"] for r in read_metrics(tmp_path / "resumed" / "metrics.jsonl")] == [1, 2, 3]


def test_pretraining_with_two_learners_equals_one_and_resumes_exactly(ray_local, tmp_path):
    pretrain(pretrain_cfg(2, checkpoint_every=1), tmp_path / "one")
    cfg = pretrain_cfg(2, learners=2, checkpoint_every=1)
    two = pretrain(cfg, tmp_path / "two")
    # one update on the same batch: the weights after step 1 (AdamW, as configured)
    one_1, two_1 = (
        torch.load(tmp_path / r / "checkpoints" / "pretrain" / "step_00000001" / "state.pt")
        for r in ("one", "two")
    )
    assert_close(list(one_1["model"].values()), list(two_1["model"].values()))
    assert two_1["optimizer"]["state"]  # rank 0's: the driver's optimizer never steps
    rows = [read_metrics(tmp_path / r / "metrics.jsonl")[0] for r in ("one", "two")]
    for key in ("train/loss", "train/grad_norm"):
        assert rows[1][key] == pytest.approx(rows[0][key], rel=1e-5), key
    # resumed from rank 0's checkpoint at step 1, step 2 is the same again
    rewind(tmp_path / "two", tmp_path / "resumed", "pretrain", 1, "base")
    resumed = pretrain(cfg, tmp_path / "resumed")
    for a, b in zip(two.module.parameters(), resumed.module.parameters(), strict=True):
        assert torch.equal(a, b)
    base = load_policy(tmp_path / "resumed" / "base")
    assert all(torch.equal(a, b) for a, b in zip(two.module.parameters(), base.module.parameters()))


@pytest.mark.parametrize(
    "validate, cfg, pattern",
    [
        (
            validate_rl,
            rl_cfg(learners=3),
            r"rl\.learners: 3 learners do not divide a minibatch of 16",
        ),
        (
            validate_rl,
            rl_cfg(prompts_per_step=3, group_size=3, minibatches=2),
            r"rl\.learners: 2 learners do not divide a minibatch of 3 or 6",
        ),
        (validate_rl, rl_cfg(learners=4), r"rl\.learners .* 4 x .* do not fit"),  # 2 CPUs
        (validate_pretrain, pretrain_cfg(1, learners=3), r"pretrain\.learners: 3 learners do not"),
        (
            validate_pretrain,
            pretrain_cfg(1, learners=4),
            r"pretrain\.learners .* 4 x .* do not fit",
        ),
    ],
)
def test_learners_that_do_not_divide_the_batch_or_fit_are_one_clear_error(
    ray_local, validate, cfg, pattern
):
    with pytest.raises(ConfigError, match=pattern):
        validate(cfg)


def test_learners_on_gpus_the_cluster_lacks_are_one_clear_error(ray_local):
    with pytest.raises(ConfigError, match=r"rl\.learners.*GPU"):
        validate_rl(config_from_dict({**rl_cfg().model_dump(), "ray": {"learner_gpus": 1}}))
    with pytest.raises(ConfigError, match=r"ray\.learner_gpus"):
        validate_rl(config_from_dict({**rl_cfg().model_dump(), "ray": {"learner_gpus": 0.5}}))


def test_the_cli_refuses_bad_learners_before_writing(ray_local, tmp_path, base_dir, monkeypatch):
    out = tmp_path / "out"
    proc = reasonlab("pretrain", "--out", str(out), "--set", "pretrain.learners=3")
    assert_one_line_error(proc, "pretrain.learners", "do not divide pretrain.batch_size")
    assert not out.exists()
    # more learners than the cluster holds: the command joins the session's 2-CPU cluster to ask
    monkeypatch.setenv("RAY_ADDRESS", ray_local.get_runtime_context().gcs_address)
    proc = reasonlab("rl", "--base", str(base_dir), "--out", str(out), "--set", "rl.learners=4")
    assert_one_line_error(proc, "rl.learners", "do not fit")
    assert not out.exists()
