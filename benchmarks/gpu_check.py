"""The GPU measurements of the GPU path, in one process: sampling throughput, one RL step against TRL, and
the tiny default run on the GPU. Run by benchmarks/gpu_check.sh (which also runs the device-aware tests).

1. Sampling a Qwen2.5-0.5B-shaped Qwen2 (hidden 896, 24 layers, 14 heads / 2 KV heads, MLP 4864; random
   weights, the 512-token BPE of models/tiny_hf.py: 0.36B parameters) in bfloat16: 128 and 512 sequences x
   256 new tokens, prompts of 48-64 tokens, EOS never ends a sequence. Four ways, each the median of
   --repeats runs after one warm-up run (the warm-up also captures the CUDA graphs / compiles; its time is
   reported apart): the builtin sampler eager (`decode: eager`), the builtin sampler with the static cache
   and CUDA graphs (`decode: static`), bare `model.generate` with its default (dynamic) cache, and
   `generate(cache_implementation="static")` compiled (at 128 sequences only: its compile takes ~30 s).
2. One GRPO step on the same model, 16 prompts x 8 completions, <= 256 new tokens (EOS on: the random model
   samples its EOS now and then, on both sides alike), micro-batch 32, full fine-tune, AdamW, bfloat16
   weights: `rl_step` (reasonlab, static cache + CUDA graphs) against TRL's `GRPOTrainer` without vLLM (when
   trl is importable), each the median of --rl-steps steps after one warm-up step.
3. `reasonlab run --set device=cuda` (the default config, the tiny model) as a subprocess: wall time and
   the summary's pass@1 before and after RL, beside the CPU run's numbers in benchmarks/README.md.

Writes --out (JSON) and prints a Markdown table. Usage (on a machine with a GPU):

    python3 benchmarks/gpu_check.py --out benchmarks/out/gpu_check.json [--only run,sampling,rl]
    python3 benchmarks/gpu_check.py --small --only sampling,rl   # on CPU: checks the script, measures nothing
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import date
from pathlib import Path

import torch

from reasonlab.config import config_from_dict
from reasonlab.models import load_policy
from reasonlab.models.tiny_hf import build_tiny_hf
from reasonlab.rl.trainer import make_learner, rl_step
from reasonlab.sampling import generate
from reasonlab.tasks import get_task
from reasonlab.types import Problem

QWEN_05B = dict(hidden=896, layers=24, intermediate=4864, heads=14, kv_heads=2)
SMALL = dict(
    hidden=64, layers=2, intermediate=128, heads=4, kv_heads=2
)  # --small: the script's own check
NEVER = 10**9  # an EOS id no model samples: every sequence runs the full length
NEW_TOKENS = 256
BATCHES = (128, 512)
DEVICE = "cuda"


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def cuda_seconds(fn: Callable[[], object]) -> float:
    sync()
    t = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t


def prompts(count: int) -> list[Problem]:
    """Prompts of 48 to 64 tokens of the tiny BPE (left padding in every batch)."""
    words = "Compute the sum of the numbers below and reason step by step before you answer".split()
    return [
        Problem(
            str(i),
            "bench",
            " ".join(words[(i + j) % len(words)] for j in range(40 + i % 12)),
            "",
            0,
        )
        for i in range(count)
    ]


def load(folder: Path, decode: str):
    policy = load_policy(folder, options={"device": DEVICE, "dtype": "bfloat16", "decode": decode})
    policy.tokenizer.eos_ids = (NEVER,)
    return policy


def sampling(folder: Path, repeats: int) -> list[dict]:
    eager, static = load(folder, "eager"), load(folder, "static")
    rows = []
    for batch in BATCHES:
        rows.append(sample_batch(eager, static, batch, repeats))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def sample_batch(eager, static, batch: int, repeats: int) -> dict:
    """Tokens/s of the four ways to sample `batch` sequences (first call, then the median of `repeats`)."""
    problems = prompts(batch)
    tok, module = eager.tokenizer.tok, eager.module
    ids = [eager.tokenizer.encode_prompt(p.prompt) for p in problems]
    width = max(map(len, ids))
    input_ids = torch.tensor(
        [[tok.pad_token_id] * (width - len(r)) + r for r in ids], device=DEVICE
    )  # (B, W)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in ids], device=DEVICE)

    def builtin(policy) -> Callable[[], None]:
        def run() -> None:
            out = generate(policy, problems, 1, seed=0, max_new_tokens=NEW_TOKENS, batch_size=batch)
            assert all(len(r.token_ids) == NEW_TOKENS for r in out)

        return run

    def hf_generate(**extra) -> Callable[[], None]:
        def run() -> None:
            with torch.inference_mode():
                module.generate(
                    input_ids=input_ids,
                    attention_mask=mask,
                    do_sample=True,
                    max_new_tokens=NEW_TOKENS,
                    min_new_tokens=NEW_TOKENS,
                    top_k=0,
                    pad_token_id=tok.pad_token_id,
                    **extra,
                )

        return run

    ways = {
        "eager": builtin(eager),
        "static_graphs": builtin(static),
        "generate_dynamic": hf_generate(),
    }
    if batch == BATCHES[0] and DEVICE == "cuda":  # its compile takes ~30 s; once is enough
        ways["generate_static_compiled"] = hf_generate(cache_implementation="static")
    row: dict = {"batch": batch, "new_tokens": NEW_TOKENS}
    for name, run in ways.items():
        row[f"{name}_first_s"] = cuda_seconds(run)
        row[f"{name}_tokens_per_s"] = (
            batch * NEW_TOKENS / statistics.median(cuda_seconds(run) for _ in range(repeats))
        )
    return row


def rl_config(decode: str):
    return config_from_dict(
        {
            "seed": 0,
            "device": DEVICE,
            "dtype": "bfloat16",
            "decode": decode,
            "task": {"name": "arith", "knobs": {"n_operands": 5, "digits": 1, "operators": "+-"}},
            "rl": {
                "prompts_per_step": 16,
                "group_size": 8,
                "max_new_tokens": NEW_TOKENS,
                "micro_batch_size": 32,
                "rewards": {
                    "random": 1.0
                },  # a random model never answers right; the update must still run
                "lr": 1e-6,
            },
        }
    )


def rl_ours(folder: Path, steps: int) -> dict:
    cfg = rl_config("static")
    policy = load_policy(folder, options=cfg.model_options())  # EOS on, as TRL has it
    learner = make_learner(cfg, policy)
    task = get_task("arith", n_operands=5, digits=1, operators="+-")
    first = cuda_seconds(lambda: rl_step(cfg, learner, task, 0))
    times = [cuda_seconds(lambda s=s: rl_step(cfg, learner, task, s)) for s in range(1, steps + 1)]
    return {"first_step_s": first, "step_s": statistics.median(times), "steps_s": times}


def rl_trl(folder: Path, steps: int) -> dict:
    try:
        import datasets
        import transformers
        from trl import GRPOConfig, GRPOTrainer
    except ImportError as err:
        return {"skipped": f"TRL is not importable here ({err})"}
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    warnings.filterwarnings("ignore", category=FutureWarning)  # gradient_checkpointing's new name
    module = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).to(
        DEVICE
    )
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    module.generation_config.eos_token_id = None
    task = get_task("arith", n_operands=5, digits=1, operators="+-")
    data = datasets.Dataset.from_dict(
        {"prompt": [p.prompt for p in task.sample("train", 16 * (steps + 2), 0)]}
    )
    ends: list[float] = []

    class StepTimer(transformers.TrainerCallback):
        def on_step_end(self, *_a, **_k):
            sync()
            ends.append(time.perf_counter())

    def reward(completions: list[str], **_) -> list[float]:
        return [float(hash(c) % 7) / 6 for c in completions]

    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(
            output_dir=out,
            report_to="none",
            save_strategy="no",
            logging_steps=10**6,
            disable_tqdm=True,
            bf16=True,
            use_cpu=DEVICE == "cpu",
            gradient_checkpointing=False,
            per_device_train_batch_size=32,
            gradient_accumulation_steps=4,
            steps_per_generation=4,
            num_generations=8,
            max_completion_length=NEW_TOKENS,
            max_steps=steps + 1,
            temperature=1.0,
            top_k=0,
            beta=0.0,
            loss_type="dapo",
            learning_rate=1e-6,
            log_completions=False,
        )
        trainer = GRPOTrainer(
            model=module, reward_funcs=reward, args=args, train_dataset=data, processing_class=tok
        )
        trainer.remove_callback(transformers.PrinterCallback)  # the end-of-training metrics dict
        trainer.add_callback(StepTimer())
        sync()
        start = time.perf_counter()
        trainer.train()
    marks = [start, *ends]
    times = [b - a for a, b in zip(marks, marks[1:])]
    return {"first_step_s": times[0], "step_s": statistics.median(times[1:]), "steps_s": times[1:]}


def tiny_run(out: Path) -> dict:
    cmd = [sys.executable, "-m", "reasonlab.cli", "run", "--set", "device=cuda", "--out", str(out)]
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=150)
    except subprocess.TimeoutExpired:
        return {"error": "did not finish in 150 s", "wall_s": time.perf_counter() - t}
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:], "wall_s": wall}
    summary = json.loads((out / "summary.json").read_text())
    keys = ("base/pass@1", "rl/pass@1", "base/pass@64", "rl/pass@64", "judge/prm/step_f1")
    return {"wall_s": wall, **{k: summary.get(k) for k in keys}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/gpu_check.json"))
    ap.add_argument("--only", default="run,sampling,rl")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rl-steps", type=int, default=3)
    ap.add_argument(
        "--small",
        action="store_true",
        help="a tiny model and shapes on CPU: checks this script, measures nothing",
    )
    args = ap.parse_args()
    global DEVICE, NEW_TOKENS, BATCHES
    if args.small:
        DEVICE, NEW_TOKENS, BATCHES = "cpu", 16, (4, 8)
    elif not torch.cuda.is_available():
        sys.exit("gpu_check: torch sees no GPU (--small checks the script on CPU)")
    parts = set(args.only.split(","))
    result: dict = {
        "gpu": torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu (--small)",
        "torch": torch.__version__,
        "date": date.today().isoformat(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every part, so a run cut short keeps what it measured
        args.out.write_text(json.dumps(result, indent=2) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        if "run" in parts:  # first: the tiny run's target (< 60 s) is the cheapest to miss
            result["tiny_run"] = tiny_run(Path(tmp) / "default")
            print(json.dumps(result["tiny_run"]), flush=True)
            save()
        folder = build_tiny_hf(Path(tmp) / "qwen2", "qwen2", **(SMALL if args.small else QWEN_05B))
        result["model_params"] = sum(p.numel() for p in load(folder, "eager").module.parameters())
        if "sampling" in parts:
            result["sampling"] = sampling(folder, args.repeats)
            save()
        if "rl" in parts:
            result["rl_step"] = {"reasonlab": rl_ours(folder, args.rl_steps)}
            save()
            result["rl_step"]["trl"] = rl_trl(folder, args.rl_steps)
            print(json.dumps(result["rl_step"]), flush=True)
            save()
    print(markdown(result))


def markdown(r: dict) -> str:
    lines = [
        f"{r['gpu']}, torch {r['torch']}, {r['date']}; model {r.get('model_params', 0) / 1e9:.2f}B params",
        "",
    ]
    lines += ["| measurement | value |", "|---|---|"]
    for row in r.get("sampling", []):
        for k, v in row.items():
            if k.endswith("tokens_per_s"):
                lines.append(f"| sampling {row['batch']} x {row['new_tokens']}: {k} | {v:,.0f} |")
    rl = r.get("rl_step", {})
    for side, v in rl.items():
        lines.append(f"| RL step, {side}: median s | {v.get('step_s', v.get('skipped'))} |")
    if "tiny_run" in r:
        lines.append(f"| tiny default run on the GPU | {json.dumps(r['tiny_run'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
