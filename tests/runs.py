"""Shared by the tests that run the `reasonlab` command: the tiny main-job and sweep settings and the
helpers that run the command in a subprocess and read its one-line errors."""

import subprocess
import sys
from pathlib import Path

TINY = [
    "--set",
    "pretrain.token_budget=40000",
    "--set",
    "pretrain.batch_size=8",
    "--set",
    "pretrain.seq_len=64",
    "--set",
    "pretrain.eval_every=20",
    "--set",
    "pretrain.checkpoint_every=20",
    "--set",
    "pretrain.corpus_docs=2000",
    "--set",
    "model.d_model=32",
    "--set",
    "model.n_layers=1",
    "--set",
    "model.n_heads=2",
    "--set",
    "eval.n_problems=6",
    "--set",
    "eval.n_samples=4",
    "--set",
    "eval.levels=[2]",
    "--set",
    "eval.level_problems=4",
    "--set",
    "eval.level_samples=2",
    "--set",
    "rl.steps=3",
    "--set",
    "rl.prompts_per_step=4",
    "--set",
    "rl.group_size=4",
    "--set",
    "rl.max_new_tokens=32",
    "--set",
    "rl.checkpoint_every=2",
    "--set",
    "judge.train_problems=30",
    "--set",
    "judge.policy_samples=1",
    "--set",
    "judge.eval_problems=8",
    "--set",
    "judge.best_of_n=4",
    "--set",
    "judge.max_steps=6",
    "--set",
    "judge.eval_every=3",
    "--set",
    "judge.batch_size=8",
]


def reasonlab(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "reasonlab.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


TINY_SWEEP_SET = {  # a sweep file's `set:` that makes each cell a few seconds
    "pretrain": {
        "token_budget": 20000,
        "batch_size": 8,
        "seq_len": 64,
        "eval_every": 20,
        "checkpoint_every": 20,
        "corpus_docs": 1000,
    },
    "model": {"d_model": 32, "n_layers": 1, "n_heads": 2},
    "eval": {"n_problems": 6, "n_samples": 4, "levels": [], "max_new_tokens": 32},
    "rl.steps": 2,
    "rl.prompts_per_step": 4,
    "rl.group_size": 4,
    "rl.max_new_tokens": 32,
    "judge.heads": [],
}


def summary_mtimes(out: Path) -> dict[str, int]:
    """When each finished cell of the sweep in `out` wrote its summary.json (a resume must not rewrite it)."""
    return {p.parent.name: p.stat().st_mtime_ns for p in sorted(out.glob("cells/*/summary.json"))}
