"""The `reasonlab` command end to end, as a user runs it: the main job on a tiny budget, resume,
and the one-line errors (exit code 2, no traceback, nothing overwritten) for bad input."""

import json

import pytest

from runs import TINY, assert_one_line_error, reasonlab


def test_run_writes_the_run_folder(tiny_run):
    summary = json.loads((tiny_run / "summary.json").read_text())
    for key in (
        "base/pass@1",
        "base/pass@4",
        "base/maj@4",
        "base/loss",
        "base/greedy_pass@1",
        "base/d2/pass@1",
        "rl/pass@1",
        "rl/pass@4",
        "rl/maj@4",
        "rl/greedy_pass@1",
        "rl/d2/pass@1",
        "rl/gain_pass@1",
        "model/params",
        "time/total_s",
        "time/rl_s",
        "time/judges_s",
        "judge/prm/f1",
        "judge/prm/step_auroc",
        "judge/orm/outcome_auroc",
        "judge/bo4/prm",
        "judge/bo4/orm",
        "judge/bo4/majority",
        "judge/bo4/pass@1",
    ):
        assert key in summary, key
    assert 0.0 <= summary["base/pass@1"] <= summary["base/pass@4"] <= 1.0
    assert 0.0 <= summary["rl/pass@1"] <= summary["rl/pass@4"] <= 1.0
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "report.md",
        "report.html",
        "plots/passk.png",
        "plots/loss.png",
        "plots/rl.png",
        "eval/base.json",
        "eval/rl.json",
        "base/model.safetensors",
        "base/config.json",
        "rl/model.safetensors",
        "rl/config.json",
        "judges/prm/config.json",
        "judges/orm/model.safetensors",
        "judges/eval.json",
        "plots/best_of_n.png",
        "plots/calibration.png",
    ):
        assert (tiny_run / name).is_file(), name
    solutions = json.loads((tiny_run / "eval" / "solutions.json").read_text())
    assert solutions["models"] == ["base", "rl"] and set(solutions["judges"]) == {"prm", "orm"}
    assert 0 < len(solutions["problems"]) <= 6  # eval.solutions (24) bounded by eval.n_problems
    assert sum(solutions["counts"].values()) == 6
    for problem in solutions["problems"]:
        assert problem["status"] in ("fixed", "broke", "both_wrong", "both_right")
        assert set(problem["solutions"]) == {"base", "rl"}
        for solution in problem["solutions"].values():
            assert solution["outcome"] in ("correct", "wrong", "malformed")
            assert {s["mark"] for s in solution["steps"]} <= {"valid", "wrong", "retracted", None}
            for head in solution["judges"].values():
                assert len(head["steps"]) == len(solution["steps"]) and 0 <= head["score"] <= 1
    report = (tiny_run / "report.md").read_text()
    assert "plots/passk.png" in report and "plots/rl.png" in report and "Base vs RL" in report
    assert "injected errors" in report and "best-of-4 by prm" in report
    rows = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    pretrain_steps = [r["step"] for r in rows if "train/loss" in r]
    assert pretrain_steps == list(range(1, 40000 // (8 * 64) + 1))
    rl_rows = [r for r in rows if "reward/mean" in r]
    assert [r["step"] for r in rl_rows] == [1, 2, 3]
    for key in (
        "reward/std",
        "rl/pass_rate",
        "rl/zero_var_groups",
        "rl/clip_frac",
        "rl/approx_kl",
        "rl/entropy",
        "rl/length_mean",
        "rl/length_max",
        "rl/tokens_per_s",
        "rl/sample_s",
        "rl/judge_s",
        "rl/update_s",
    ):
        assert all(key in r for r in rl_rows), key


def test_rerun_resumes_without_redoing(tiny_run):
    before = {
        name: (tiny_run / name).read_text()
        for name in ("eval/base.json", "summary.json", "metrics.jsonl")
    }
    proc = reasonlab("run", "--out", str(tiny_run), *TINY)
    assert proc.returncode == 0, proc.stderr
    assert "complete" in proc.stdout
    for name, text in before.items():
        assert (tiny_run / name).read_text() == text, name


def test_different_run_in_same_folder_is_refused(tiny_run):
    before = (tiny_run / "config.yaml").read_text()
    proc = reasonlab("run", "--out", str(tiny_run), *TINY, "--set", "pretrain.lr=0.001")
    assert_one_line_error(proc, "already holds a different run", "pretrain.lr")
    assert (tiny_run / "config.yaml").read_text() == before


def test_a_run_saved_before_a_config_field_existed_is_the_same_run(tmp_path):
    import yaml

    from reasonlab.config import dump_config, load_config
    from reasonlab.errors import RunFolderError
    from reasonlab.experiments.main_job import prepare_run_dir

    cfg = load_config(None)
    saved = yaml.safe_load(dump_config(cfg))
    del saved["rl"][
        "task_knobs"
    ]  # written by a version without rl.task_knobs: it meant the default, {}
    text = yaml.safe_dump(saved, sort_keys=False)
    (tmp_path / "config.yaml").write_text(text)
    prepare_run_dir(tmp_path, cfg)
    assert (tmp_path / "config.yaml").read_text() == text  # kept as written
    with pytest.raises(RunFolderError, match=r"rl\.task_knobs\.n_operands differs"):
        prepare_run_dir(tmp_path, load_config(None, ["rl.task_knobs={n_operands: 3}"]))


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--set", "task.name=nosuch"], ["unknown task", "nosuch"]),
        (["--set", "task.knobs.wings=2"], ["unknown knob", "wings"]),
        (["--set", "pretrain.token_budgt=5"], ["pretrain.token_budgt"]),
        (["--set", "traces.steps=-1"], ["traces.steps"]),
        (["--set", "model.n_heads=3"], ["model.n_heads"]),
        (["--set", "rl.judge=pairwise"], ["rl.judge", "judge.heads"]),
    ],
)
def test_bad_config_is_one_line_and_writes_nothing(tmp_path, args, fragments):
    out = tmp_path / "r"
    assert_one_line_error(reasonlab("run", "--out", str(out), *args), *fragments)
    assert not out.exists()


def test_usage_errors_are_one_line():
    assert_one_line_error(reasonlab("eval", "--task", "arith"), "--model")
    assert_one_line_error(reasonlab("run", "--no-such-option"), "--no-such-option")
    assert_one_line_error(reasonlab("eval", "--model", "x", "-n", "many"), "'-n'")


def test_malformed_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: {name: arith\n")
    assert_one_line_error(
        reasonlab("run", "--config", str(bad), "--out", str(tmp_path / "r")), str(bad)
    )


def test_eval_missing_and_corrupt_checkpoint(tmp_path, tiny_run):
    assert_one_line_error(
        reasonlab("eval", "--model", str(tmp_path / "nothing"), "--task", "arith"), "nothing"
    )
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((tiny_run / "base" / "config.json").read_text())
    (broken / "model.safetensors").write_bytes(
        (tiny_run / "base" / "model.safetensors").read_bytes()[:100]
    )
    assert_one_line_error(
        reasonlab("eval", "--model", str(broken), "--task", "arith"), "model.safetensors"
    )


def test_eval_on_a_run_folder(tiny_run, tmp_path):
    out = tmp_path / "e.json"
    proc = reasonlab(
        "eval", "--model", str(tiny_run), "-n", "3", "--problems", "5", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["n_problems"] == 5 and len(result["problems"]) == 5
    assert_one_line_error(
        reasonlab("eval", "--model", str(tiny_run), "--out", str(out)), "already exists"
    )


def test_corrupt_resume_state_is_one_line(tmp_path):
    out = tmp_path / "r"
    proc = reasonlab("pretrain", "--out", str(out), *TINY[:12])
    assert proc.returncode == 0, proc.stderr
    latest = (
        out
        / "checkpoints"
        / "pretrain"
        / (out / "checkpoints" / "pretrain" / "latest").read_text().strip()
    )
    (latest / "state.pt").write_bytes(b"not a checkpoint")
    assert_one_line_error(reasonlab("pretrain", "--out", str(out), *TINY[:12]), "state.pt")


def test_eval_summary_splits_shortcuts_from_stepwise(tiny_run):
    result = json.loads((tiny_run / "eval" / "base.json").read_text())
    s = result["summary"]
    total = sum(p["n"] for p in result["problems"])
    shortcuts = sum(p["n_shortcut"] for p in result["problems"])
    assert s["shortcut_rate"] == shortcuts / total
    correct = (
        s["shortcut_rate"] * s["shortcut_accuracy"]
        + (1 - s["shortcut_rate"]) * s["stepwise_accuracy"]
    )
    assert correct == pytest.approx(s["pass@1"])


RL_TINY = [
    "--set",
    "rl.steps=2",
    "--set",
    "rl.prompts_per_step=2",
    "--set",
    "rl.group_size=4",
    "--set",
    "rl.max_new_tokens=16",
]


def test_rl_command_post_trains_a_base_and_eval_takes_its_model(tiny_run, tmp_path):
    out = tmp_path / "rloo"
    proc = reasonlab(
        "rl", "--base", str(tiny_run), "--out", str(out), *RL_TINY, "--set", "rl.advantage=rloo"
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "rl" / "model.safetensors").is_file() and (out / "config.yaml").is_file()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all("reward/mean" in r for r in rows)
    proc = reasonlab("eval", "--model", str(out), "-n", "2", "--problems", "3")
    assert proc.returncode == 0, proc.stderr
    assert str(out / "rl") in proc.stdout and (out / "eval" / "rl_arith_n2_seed0.json").is_file()


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--set", "rl.advantage=nosuch"], ["rl.advantage", "nosuch"]),
        (["--set", "rl.policy_loss=ppo2"], ["rl.policy_loss", "ppo2"]),
        (["--set", "rl.group_size=1"], ["rl.group_size", "grpo"]),
        (["--set", "rl.max_new_tokens=200"], ["rl.max_new_tokens", "max_seq_len"]),
        (["--set", "rl.rewards={shiny: 1.0}"], ["rl.rewards", "shiny"]),
    ],
)
def test_rl_bad_input_is_one_line_and_writes_nothing(tiny_run, tmp_path, args, fragments):
    out = tmp_path / "bad"
    assert_one_line_error(
        reasonlab("rl", "--base", str(tiny_run), "--out", str(out), *RL_TINY, *args), *fragments
    )
    assert not out.exists()


def test_rl_from_a_missing_or_incompatible_base(tiny_run, tmp_path):
    assert_one_line_error(
        reasonlab("rl", "--base", str(tmp_path / "nothing"), "--out", str(tmp_path / "a")),
        "nothing",
    )
    alien = tmp_path / "alien"
    alien.mkdir()
    meta = json.loads((tiny_run / "base" / "config.json").read_text())
    meta["model"]["d_model"] = 64  # weights of a 32-wide model under a 64-wide config
    (alien / "config.json").write_text(json.dumps(meta))
    (alien / "model.safetensors").write_bytes(
        (tiny_run / "base" / "model.safetensors").read_bytes()
    )
    assert_one_line_error(
        reasonlab("rl", "--base", str(alien), "--out", str(tmp_path / "b"), *RL_TINY), "do not fit"
    )
    assert not (tmp_path / "b").exists()


def test_judge_eval_of_a_trained_judge_with_best_of_n(tiny_run, tmp_path):
    out = tmp_path / "prm_eval.json"
    proc = reasonlab(
        "judge",
        "eval",
        "--judge",
        str(tiny_run / "judges" / "prm"),
        "--policy",
        str(tiny_run),
        "--problems",
        "6",
        "--best-of",
        "4",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    prm = result["judges"]["prm"]
    assert (
        set(prm["best_of_n"]) == {"1", "2", "4"}
        and prm["injected"]["n_error"] + prm["injected"]["n_correct"] > 0
    )
    assert "best_of_4" in proc.stdout and "majority_of_4" in proc.stdout
    assert_one_line_error(
        reasonlab("judge", "eval", "--judge", str(tiny_run / "judges" / "prm"), "--out", str(out)),
        "already exists",
    )


def test_judge_eval_of_the_verifier_on_injected_errors_is_perfect(tmp_path):
    out = tmp_path / "v.json"
    proc = reasonlab(
        "judge",
        "eval",
        "--judge",
        "verifier",
        "--task",
        "arith",
        "--problems",
        "40",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    m = json.loads(out.read_text())["metrics"]
    assert m["f1"] == 1.0 and m["step_auroc"] == 1.0 and m["outcome_auroc"] == 1.0


def test_judge_eval_runs_a_baseline_on_processbench(tmp_path, monkeypatch):
    monkeypatch.delenv(
        "REASONLAB_DATA_DIR", raising=False
    )  # no --data-dir: the files shipped with the package
    out = tmp_path / "pb.json"
    proc = reasonlab(
        "judge",
        "eval",
        "--judge",
        "always-correct",
        "--data",
        "processbench:gsm8k",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["n_records"] == 400 and result["skipped"] == []
    m = result["metrics"]
    assert m["acc_correct"] == 1.0 and m["acc_error"] == 0.0 and m["f1"] == 0.0


def test_processbench_data_dir_and_env_override_the_shipped_files(tmp_path, monkeypatch):
    from reasonlab.tasks.mathdata import shipped_data_dir

    rows = json.loads(
        (shipped_data_dir() / "processbench" / "gsm8k.json").read_text(encoding="utf-8")
    )
    folder = tmp_path / "mine"
    (folder / "processbench").mkdir(parents=True)
    (folder / "processbench" / "gsm8k.json").write_text(json.dumps(rows[:2]), encoding="utf-8")
    monkeypatch.delenv("REASONLAB_DATA_DIR", raising=False)
    args = ("judge", "eval", "--judge", "always-correct", "--data", "processbench:gsm8k")
    proc = reasonlab(*args, "--data-dir", str(folder), "--out", str(tmp_path / "dir.json"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "dir.json").read_text())["n_records"] == 2
    monkeypatch.setenv("REASONLAB_DATA_DIR", str(folder))
    proc = reasonlab(*args, "--out", str(tmp_path / "env.json"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "env.json").read_text())["n_records"] == 2
    assert_one_line_error(
        reasonlab(
            "judge",
            "eval",
            "--judge",
            "always-correct",
            "--data",
            "processbench:math",
            "--out",
            str(tmp_path / "none.json"),
        ),
        str(folder / "processbench" / "math.json"),
        "REASONLAB_DATA_DIR",
    )


def test_judge_eval_skips_bad_records_and_names_them(tmp_path):
    good = {
        "prompt": "1+2+3=?",
        "completions": ["1+2=3", "3+3=7", "answer: 7"],
        "labels": [True, False, False],
    }
    lines = [
        json.dumps(good),
        json.dumps({**good, "labels": [True]}),
        "{not json",
        json.dumps({k: v for k, v in good.items() if k != "completions"}),
        json.dumps({**good, "completions": [], "labels": []}),
        json.dumps({**good, "id": "b"}),
    ]
    data = tmp_path / "steps.jsonl"
    data.write_text("\n".join(lines) + "\n")
    proc = reasonlab(
        "judge",
        "eval",
        "--judge",
        "symbolic-arithmetic",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "o.json"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "skipped 4 of 6" in proc.stdout
    result = json.loads((tmp_path / "o.json").read_text())
    assert sorted(s["line"] for s in result["skipped"]) == [2, 3, 4, 5]
    strict = reasonlab(
        "judge",
        "eval",
        "--judge",
        "symbolic-arithmetic",
        "--data",
        str(data),
        "--strict",
        "--out",
        str(tmp_path / "s.json"),
    )
    assert_one_line_error(strict, "steps.jsonl:2", "labels")
    assert not (tmp_path / "s.json").exists()
    empty = tmp_path / "bad.jsonl"
    empty.write_text(lines[1] + "\n")
    assert_one_line_error(
        reasonlab(
            "judge",
            "eval",
            "--judge",
            "always-correct",
            "--data",
            str(empty),
            "--out",
            str(tmp_path / "e.json"),
        ),
        "bad.jsonl",
        "no usable records",
    )
    assert_one_line_error(
        reasonlab(
            "judge", "eval", "--judge", "always-correct", "--data", str(tmp_path / "none.jsonl")
        ),
        "none.jsonl",
    )
    assert_one_line_error(
        reasonlab("judge", "eval", "--judge", str(tmp_path / "nojudge")), "nojudge", "baseline"
    )


def test_judge_train_then_rl_with_the_learned_reward(tiny_run, tmp_path):
    judge = tmp_path / "orm"
    data = tmp_path / "labelled.jsonl"
    proc = reasonlab(
        "judge",
        "train",
        "--base",
        str(tiny_run),
        "--head",
        "orm",
        "--out",
        str(judge),
        "--write-data",
        str(data),
        "--set",
        "judge.train_problems=20",
        "--set",
        "judge.max_steps=4",
        "--set",
        "judge.eval_every=2",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((judge / "config.json").read_text())["head"] == "orm"
    first = json.loads(data.read_text().splitlines()[0])
    assert len(first["completions"]) == len(first["labels"]) > 0 and isinstance(
        first["labels"][0], bool
    )
    proc = reasonlab(
        "judge",
        "eval",
        "--judge",
        str(judge),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "own.json"),
    )
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "rl"
    proc = reasonlab(
        "rl",
        "--base",
        str(tiny_run),
        "--out",
        str(out),
        *RL_TINY,
        "--set",
        f"rl.judge={judge}",
        "--set",
        "rl.rewards={judge: 1.0}",
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all("hack/gap" in r and "reward/judge" in r for r in rows)
    assert_one_line_error(
        reasonlab("judge", "train", "--base", str(tiny_run), "--head", "orm", "--out", str(judge)),
        "already holds a judge",
    )
    assert_one_line_error(
        reasonlab("judge", "train", "--base", str(tiny_run), "--head", "critic"), "--head"
    )
    assert_one_line_error(
        reasonlab(
            "rl",
            "--base",
            str(tiny_run),
            "--out",
            str(tmp_path / "x"),
            *RL_TINY,
            "--set",
            f"rl.judge={tmp_path / 'missing'}",
            "--set",
            "rl.rewards={judge: 1.0}",
        ),
        "missing",
    )
    assert not (tmp_path / "x").exists()


def test_the_main_job_can_reward_rl_with_the_prm_it_trained(tmp_path):
    out = tmp_path / "prm_rl"
    proc = reasonlab(
        "run", "--out", str(out), *TINY, "--set", "rl.judge=prm", "--set", "rl.rewards={judge: 1.0}"
    )
    assert proc.returncode == 0, proc.stderr
    rows = [
        json.loads(line)
        for line in (out / "metrics.jsonl").read_text().splitlines()
        if '"hack/gap"' in line
    ]
    assert len(rows) == 3 and all(r["reward/judge"] == r["hack/judge_mean"] for r in rows)
    assert (out / "plots" / "hacking.png").is_file() and "hacking gap" in (
        out / "report.md"
    ).read_text()
