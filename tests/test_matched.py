"""The compute-matched arm: RL's cost in pretraining tokens against hand-computed values, more pretraining of
a finished base (its schedule, new windows, exact resume, refusal of an unfinished base), and a sweep with the
arm end to end: every cell gets its more-pretrained base evaluated, a rerun skips it, changed settings are
refused, a diverging arm is recorded while the rest finishes."""

import json

import pytest
import torch

from reasonlab.config import RLConfig, config_from_dict, load_config
from reasonlab.errors import ConfigError, RunFolderError
from reasonlab.experiments.matched import MatchedConfig, rl_compute, rl_rows, run_matched
from reasonlab.pretrain.trainer import continue_pretraining, pretrain, total_steps
from reasonlab.training.tracking import read_metrics
from test_sweep import SHORTCUT, assert_one_line_error, reasonlab, write_sweep

BASE = {
    "name": "base",
    "seed": 0,
    "task": {"name": "arith", "knobs": {"n_operands": 2, "digits": 1, "operators": "+"}},
    "model": {"d_model": 32, "n_layers": 1, "n_heads": 2, "max_seq_len": 64},
    "pretrain": {
        "token_budget": 30 * 8 * 32,
        "batch_size": 8,
        "seq_len": 32,
        "lr": 0.003,
        "warmup_steps": 20,
        "min_lr_ratio": 0.1,
        "corpus_docs": 500,
        "eval_every": 10,
        "checkpoint_every": 10,
    },
}


def rows(*tokens):
    """RL metric rows, one per step: (prompt, completion[, trained]) tokens."""
    out = []
    for step, t in enumerate(tokens, start=1):
        row = {"step": step, "rl/prompt_tokens": t[0], "rl/completion_tokens": t[1]}
        if len(t) == 3:
            row["rl/trained_tokens"] = t[2]
        out.append(row)
    return out


def test_rl_cost_in_pretraining_tokens_by_hand():
    # on-policy GRPO, no KL, monitor every 2 steps: step 1 costs 2N x 40 sampled + 6N x 40 trained = 320N,
    # step 2 adds a reference forward, 2N x 40: 400N; in 6N units (pretraining tokens): 720 / 6 = 120.
    rc = RLConfig(beta=0.0, kl_monitor_every=2)
    assert rl_compute(rows((10, 30), (10, 30)), rc) == {
        "rl_steps": 2,
        "sampled_tokens": 80,
        "trained_tokens": 80,
        "pretrain_tokens": 120,
    }
    # two passes of two minibatches, beta > 0: old logprobs and reference forwards on every step; 30 of 60
    # sampled tokens trained: 2N x 60 + (6N x 2 + 2N + 2N) x 30 = 600N -> 100 tokens
    rc = RLConfig(beta=0.01, num_iterations=2, minibatches=2, kl_monitor_every=0)
    assert rl_compute(rows((20, 40, 30)), rc)["pretrain_tokens"] == 100
    assert rl_compute([], rc)["pretrain_tokens"] == 0
    with pytest.raises(ConfigError, match="dynamic sampling"):
        rl_compute(rows((10, 30)), RLConfig(dynamic_sampling=True))
    assert rl_compute(rows((10, 30, 12)), RLConfig(dynamic_sampling=True, kl_monitor_every=0))[
        "pretrain_tokens"
    ] == round((40 + 3 * 12) * 2 / 6)


def test_more_pretraining_replays_the_schedule_on_new_windows_and_resumes_exactly(tmp_path):
    cfg = config_from_dict(BASE)
    base = pretrain(cfg, tmp_path / "base")
    extra = 20 * 8 * 32 + 100  # 20 steps (a partial step is dropped)
    more = continue_pretraining(cfg, tmp_path / "base", tmp_path / "more", extra)
    moved = [
        not torch.equal(a, b)
        for a, b in zip(base.module.state_dict().values(), more.module.state_dict().values())
    ]
    assert any(moved)
    lrs = [
        r["train/lr"] for r in read_metrics(tmp_path / "more" / "metrics.jsonl") if "train/lr" in r
    ]
    assert len(lrs) == 20 and lrs[0] == pytest.approx(
        0.003 / 2
    )  # warm-up of 2 steps (a tenth of 20)
    assert max(lrs) == pytest.approx(0.003) and lrs[-1] == pytest.approx(
        0.0003, rel=0.1
    )  # the base's final lr
    assert (tmp_path / "more" / "model" / "config.json").is_file()

    class Kill(Exception):
        pass

    def kill_at_15(done, total, row):
        if done == 15:
            raise Kill

    with pytest.raises(Kill):
        continue_pretraining(
            cfg, tmp_path / "base", tmp_path / "resumed", extra, on_step=kill_at_15
        )
    resumed = continue_pretraining(
        cfg, tmp_path / "base", tmp_path / "resumed", extra
    )  # from its step 10
    for (name, a), (_, b) in zip(
        more.module.state_dict().items(), resumed.module.state_dict().items()
    ):
        assert torch.equal(a, b), name

    assert total_steps(cfg) == 30
    shifted = continue_pretraining(cfg, tmp_path / "base", tmp_path / "lr", extra, peak_lr=0.001)
    assert max(
        r["train/lr"] for r in read_metrics(tmp_path / "lr" / "metrics.jsonl") if "train/lr" in r
    ) == pytest.approx(0.001)
    assert not torch.equal(
        next(iter(shifted.module.parameters())), next(iter(more.module.parameters()))
    )

    with pytest.raises(RunFolderError, match="has not finished"):
        continue_pretraining(cfg, tmp_path / "nothing", tmp_path / "never", extra)


def test_a_sweep_with_the_matched_arm(tmp_path):
    path = write_sweep(tmp_path, grid={"pretrain.lr": [0.003, 0.001]}, matched={"compute": "flops"})
    out = tmp_path / "out"
    proc = reasonlab("sweep", "--config", str(path), "--out", str(out))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert proc.stdout.count("more pretraining:") == 2 and "Compute-matched" in proc.stdout
    state = json.loads((out / "sweep.json").read_text())
    for row in state["cells"]:
        cell = out / row["dir"]
        cfg = load_config(cell / "config.yaml")
        expected = rl_compute(rl_rows(cell / "metrics.jsonl"), cfg.rl)["pretrain_tokens"]
        assert row["matched"]["extra_tokens"] == expected > 0
        more = json.loads((cell / "more_pretraining_flops" / "eval" / "more.json").read_text())
        pass1 = sum(p["n_correct"] / p["n"] for p in more["problems"]) / len(more["problems"])
        assert row["more"]["pass@1"] == pytest.approx(pass1, abs=1e-4)
        assert row["more_gain"]["pass@4"] == pytest.approx(
            row["more"]["pass@4"] - row["base"]["pass@4"], abs=1e-4
        )
        steps = [
            r["step"]
            for r in read_metrics(cell / "more_pretraining_flops" / "metrics.jsonl")
            if "train/loss" in r
        ]
        assert len(steps) == max(1, expected // (8 * 64))
    report = (out / "sweep.md").read_text()
    assert (
        "Compute-matched" in report
        and "plots/matched.png" in report
        and (out / "plots" / "matched.png").is_file()
    )

    arm = out / "cells" / "lr-0.003" / "more_pretraining_flops" / "matched.json"
    before = arm.stat().st_mtime_ns
    proc = reasonlab("sweep", "--config", str(path), "--out", str(out))
    assert proc.returncode == 0 and proc.stdout.count("finished earlier, skipped") == 2, proc.stderr
    assert (
        arm.stat().st_mtime_ns == before
        and json.loads((out / "sweep.json").read_text())["cells"][0]["more"]
        == state["cells"][0]["more"]
    )

    changed = write_sweep(tmp_path, grid={"pretrain.lr": [0.003, 0.001]}, matched={"peak_lr": 0.01})
    assert_one_line_error(
        reasonlab("sweep", "--config", str(changed), "--out", str(out)),
        "more_pretraining_flops",
        "other matched settings",
    )
    cell = out / "cells" / "lr-0.003"
    with pytest.raises(RunFolderError, match="other matched settings"):
        run_matched(load_config(cell / "config.yaml"), cell, MatchedConfig(peak_lr=0.01))
    assert arm.stat().st_mtime_ns == before


def test_a_diverging_arm_is_recorded_and_the_sweep_goes_on(tmp_path):
    path = write_sweep(
        tmp_path,
        grid={"traces": [SHORTCUT], "rl.steps": [6]},
        labels={"traces": ["shortcut"]},
        matched={"peak_lr": 1.0e30},
    )  # six RL steps: enough extra tokens for several steps
    out = tmp_path / "out"
    proc = reasonlab("sweep", "--config", str(path), "--out", str(out))
    assert proc.returncode == 1, proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    row = json.loads((out / "sweep.json").read_text())["cells"][0]
    assert row["status"] == "finished" and "diverged" in row["matched_error"] and "more" not in row
    assert "traces-shortcut__steps-6 (more pretraining)" in (out / "sweep.md").read_text()
