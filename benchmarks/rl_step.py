"""One RL (GRPO) step: reasonlab's trainer against TRL's `GRPOTrainer`, and both against the FLOP floor.

Same shape on both sides: a tiny decoder of ~3.19M parameters (d_model 256, 4 layers, 4 heads,
SwiGLU d_ff 688, tied embeddings, vocab 100: the char vocabulary of `CharTokenizer`), random weights;
--prompts arithmetic prompts like "3+4-2+7-1=?\\n" (the default config's `arith` task: 5 one-digit
operands, "+-"), --group completions each, up to --new-tokens new tokens, temperature 1; beta 0 (no
reference model), one pass over the batch, one optimizer step (AdamW), DAPO's token-mean loss with
clip range 0.2 / 0.28, group-scaled advantages.

  * TRL: `GRPOTrainer` on a `Qwen2ForCausalLM` built from a config (no hub; Qwen2's q/k/v biases add
    3,072 parameters) and a `PreTrainedTokenizerFast` made with `tokenizers` over the same characters
    (BOS prepended, as ours), on CPU in fp32 with gradient checkpointing off (TRL turns it on by default).
    Reward: 1.0 if the completion contains a digit. A step is the time between two `on_step_end`
    callbacks: the whole loop, data and bookkeeping included. Generation (`_generate_single_turn`)
    and reward (`_calculate_rewards`) are timed inside it by wrapping those methods.
  * reasonlab: `rl_step(cfg, learner, task, step)` on `TinyPolicy` with the default config's task and
    rl.group_size / rl.prompts_per_step / rl.max_new_tokens set as above; the step is the call. Its
    training forward computes each group's prompt once (models/grouped.py), so it does less work
    than the floor below, which counts the prompt once per completion as a plain trainer must.

Both report the median of --steps steps after --warmup steps.

FLOP floor of a step (P = parameters, the tied output head counted once as it still costs a matmul
per token; attention scores, <1% at these lengths, left out), from the token counts of each step:
    generation  2 P x (distinct prompt tokens + completion tokens - completions)
                each prompt prefilled once; a completion's first token comes from the prefill's logits
    training    6 P x (prompt tokens of every completion + completion tokens)   forward + backward
    extra       2 P x (the same tokens) per no-grad forward over the whole sequences the framework does
                (old log-probs, reference): counted from forward hooks on the model, so what each
                framework really does, not what it could do (with beta 0 and one pass none is needed).
The peak is a 2048^3 fp32 matmul measured before and after the runs in the same process.
The hooks also give the tokens each model really processed (padding, repeated prompts, finished rows
that keep decoding), reported as "work done" (2 P per token without grad, 6 P with). A sampler that
bypasses the module's forward would be missing from it.

Prints a Markdown table and writes benchmarks/out/rl_step.json. Usage:

    .venv/bin/python benchmarks/rl_step.py [--prompts 4 --group 8 --new-tokens 8 --steps 20 --warmup 3]
                                            [--only trl|ours] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path
from typing import Any

import torch

from common import cpu_busy, machine, matmul_peak_gflops, wait_quiet

OUT = Path(__file__).parent / "out" / "rl_step.json"
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")  # ids 0..3, as reasonlab's CharTokenizer
CHARS = "\n" + "".join(chr(c) for c in range(32, 127))  # then one id per character: vocab 100


def arith_prompts(count: int, seed: int, operands: int = 5) -> list[str]:
    """Prompts in the format of the `arith` task: "d+d-d+d-d=?\\n" with one-digit operands."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        s = str(rng.randint(1, 9))
        for _ in range(operands - 1):
            s += rng.choice("+-") + str(rng.randint(1, 9))
        out.append(s + "=?\n")
    return out


def hf_tokenizer():
    """A character-level `PreTrainedTokenizerFast` with reasonlab's ids; BOS is prepended to each text."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS + tuple(CHARS))}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tk.decoder = decoders.Fuse()
    tk.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", 1)]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side="left",
    )
    text = "3+4 =?\n"
    ids = [1] + [len(SPECIALS) + CHARS.index(c) for c in text]
    assert tok(text)["input_ids"] == ids and tok.decode(ids + [2], skip_special_tokens=True) == text
    return tok


def qwen2_model(tok, d_model: int, n_layers: int, n_heads: int, d_ff: int, seed: int):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=d_model,
        intermediate_size=d_ff,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=n_heads,
        max_position_embeddings=128,
        tie_word_embeddings=True,
        rms_norm_eps=1e-6,
        use_sliding_window=False,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(cfg)


class ForwardCounter:
    """Forward pre-hook on a module: (grad enabled, batch, length) of every call, per step."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls: list[tuple[bool, int, int]] = []
        module.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, _module, args, kwargs) -> None:
        ids = kwargs.get("input_ids")
        if ids is None:
            ids = next((a for a in args if isinstance(a, torch.Tensor)), None)
        if ids is not None and ids.dim() == 2:
            self.calls.append((torch.is_grad_enabled(), ids.shape[0], ids.shape[1]))

    def take(self) -> dict:
        """Tokens this step's calls processed: with grad, without, and in no-grad passes over whole sequences."""
        calls, self.calls = self.calls, []
        grad = [(b, n) for g, b, n in calls if g]
        width = max((n for _, n in grad), default=0)  # training input: prompt + completion
        scoring = [(b, n) for g, b, n in calls if not g and width and n >= width]
        return {
            "grad_tokens": sum(b * n for b, n in grad),
            "nograd_tokens": sum(b * n for g, b, n in calls if not g),
            "scoring_tokens": sum(b * n for b, n in scoring),
            "forward_calls": len(calls),
        }


def floor_flops(
    params: int,
    distinct_prompt_tokens: float,
    prompt_tokens: float,
    completion_tokens: float,
    completions: int,
    extra_passes: float,
) -> dict:
    """The FLOP floor of one step from its token counts (see the module docstring)."""
    train_tokens = prompt_tokens + completion_tokens
    gen = 2 * params * (distinct_prompt_tokens + max(0.0, completion_tokens - completions))
    train = 6 * params * train_tokens
    extra = 2 * params * train_tokens * extra_passes
    return {
        "generation": gen,
        "training": train,
        "extra_forward": extra,
        "total": gen + train + extra,
    }


def summarize(times: list[float], parts: dict[str, list[float]], warmup: int) -> dict:
    kept = times[warmup:]
    return {
        "median_step_s": statistics.median(kept),
        "steps_s": kept,
        "warmup_steps_s": times[:warmup],
        **{
            f"median_{k}_s": statistics.median(v[warmup:])
            for k, v in parts.items()
            if len(v) == len(times)
        },
    }


# --- TRL ------------------------------------------------------------------------------------------------


def run_trl(args: argparse.Namespace) -> dict:
    import datasets
    import transformers
    import trl
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    warnings.filterwarnings(
        "ignore", category=FutureWarning
    )  # transformers 5 renames gradient_checkpointing
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    rows = args.prompts * args.group
    total = args.warmup + args.steps
    tok = hf_tokenizer()
    model = qwen2_model(tok, args.d_model, args.n_layers, args.n_heads, args.d_ff, seed=0)
    params = sum(p.numel() for p in model.parameters())
    counter = ForwardCounter(model)
    counts: dict[str, list[float]] = {
        "completion_tokens": [],
        "prompt_tokens": [],
        "distinct_prompt_tokens": [],
    }

    def has_digit(
        prompts: list[str], completions: list[str], completion_ids: list[list[int]], **_
    ) -> list[float]:
        counts["completion_tokens"].append(sum(map(len, completion_ids)))
        lengths = [len(tok(p)["input_ids"]) for p in prompts]
        counts["prompt_tokens"].append(sum(lengths))
        counts["distinct_prompt_tokens"].append(
            sum(len(tok(p)["input_ids"]) for p in dict.fromkeys(prompts))
        )
        return [1.0 if any(c.isdigit() for c in text) else 0.0 for text in completions]

    with tempfile.TemporaryDirectory() as out_dir:
        config = GRPOConfig(
            output_dir=out_dir,
            report_to="none",
            save_strategy="no",
            logging_steps=10**6,
            disable_tqdm=True,
            use_cpu=True,
            bf16=False,
            fp16=False,
            gradient_checkpointing=False,
            seed=0,
            dataloader_num_workers=0,
            per_device_train_batch_size=rows,
            gradient_accumulation_steps=1,
            steps_per_generation=1,
            num_generations=args.group,
            max_completion_length=args.new_tokens,
            max_steps=total,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            beta=0.0,
            num_iterations=1,
            loss_type="dapo",
            epsilon=0.2,
            epsilon_high=0.28,
            scale_rewards="group",
            learning_rate=1e-3,
            lr_scheduler_type="constant",
            weight_decay=0.0,
            max_grad_norm=1.0,
            log_completions=False,
        )
        dataset = datasets.Dataset.from_dict(
            {"prompt": arith_prompts(args.prompts * total * 2, seed=0)}
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=has_digit,
            args=config,
            train_dataset=dataset,
            processing_class=tok,
        )
        trainer.remove_callback(PrinterCallback)  # the end-of-training metrics dict
        checkpointing = getattr(model, "is_activation_checkpointing", None)
        assert not (model.is_gradient_checkpointing if checkpointing is None else checkpointing)
        parts: dict[str, list[float]] = {"generate": [], "reward": []}
        pending = {"generate": 0.0, "reward": 0.0}

        def timed_method(name: str, key: str) -> None:
            inner = getattr(trainer, name)

            def wrapper(*a, **kw):
                t = time.perf_counter()
                try:
                    return inner(*a, **kw)
                finally:
                    pending[key] += time.perf_counter() - t

            setattr(trainer, name, wrapper)

        timed_method("_generate_single_turn", "generate")
        timed_method("_calculate_rewards", "reward")
        ends: list[float] = []
        work: list[dict] = []
        load: dict[str, float] = {}

        class StepTimer(TrainerCallback):
            def on_train_begin(self, *_a, **_k):
                ends.append(time.perf_counter())

            def on_step_end(self, *_a, **_k):
                ends.append(time.perf_counter())
                for k in pending:
                    parts[k].append(pending[k])
                    pending[k] = 0.0
                work.append(counter.take())
                if len(ends) == args.warmup + 1:  # the timed steps start here
                    load["busy0"], load["own0"] = cpu_busy(), time.process_time()

        trainer.add_callback(StepTimer())
        wait_quiet(args.quiet_wait)
        trainer.train()
        foreign = (cpu_busy() - load["busy0"]) - (time.process_time() - load["own0"])
    times = [b - a for a, b in zip(ends, ends[1:])]
    assert len(times) == total, (len(times), total)
    steps = range(args.warmup, total)
    tokens = {k: statistics.mean(v[i] for i in steps) for k, v in counts.items()}
    done = {k: statistics.mean(w[k] for w in (work[i] for i in steps)) for k in work[0]}
    train_tokens = tokens["prompt_tokens"] + tokens["completion_tokens"]
    extra = done["scoring_tokens"] / train_tokens
    result = summarize(times, parts, args.warmup)
    result["median_update_s"] = statistics.median(
        t - parts["generate"][i] - parts["reward"][i]
        for i, t in enumerate(times)
        if i >= args.warmup
    )
    return {
        "framework": f"trl {trl.__version__}",
        "transformers": transformers.__version__,
        "model": f"Qwen2ForCausalLM, {params:,} parameters",
        "params": params,
        "config": {
            k: getattr(config, k)
            for k in (
                "per_device_train_batch_size",
                "num_generations",
                "generation_batch_size",
                "steps_per_generation",
                "max_completion_length",
                "beta",
                "num_iterations",
                "loss_type",
                "epsilon",
                "epsilon_high",
                "scale_rewards",
                "learning_rate",
                "max_grad_norm",
                "gradient_checkpointing",
                "bf16",
                "use_cpu",
            )
        },
        **result,
        "tokens_per_step": tokens,
        "forward_tokens_per_step": done,
        "extra_forward_passes": extra,
        "flops": floor_flops(
            params,
            tokens["distinct_prompt_tokens"],
            tokens["prompt_tokens"],
            tokens["completion_tokens"],
            rows,
            extra,
        ),
        "work_done_flops": 2 * params * done["nograd_tokens"] + 6 * params * done["grad_tokens"],
        "foreign_cores": max(0.0, foreign / sum(times[args.warmup :])),
    }


# --- reasonlab ------------------------------------------------------------------------------------------


def run_ours(args: argparse.Namespace) -> dict:
    """Our GRPO step through the trainer's public API; raises ImportError while that is not there yet."""
    from reasonlab.config import load_config
    from reasonlab.models import CharTokenizer, TinyPolicy, TransformerConfig
    from reasonlab.rl.trainer import make_learner, rl_step
    from reasonlab.tasks import get_task

    cfg = load_config(
        None,
        [
            f"rl.group_size={args.group}",
            f"rl.prompts_per_step={args.prompts}",
            f"rl.max_new_tokens={args.new_tokens}",
            "rl.beta=0",
            "rl.num_iterations=1",
            "rl.minibatches=1",
        ],
    )
    tok = CharTokenizer()
    policy = TinyPolicy.create(
        TransformerConfig(
            vocab_size=tok.vocab_size,
            d_model=args.d_model,
            n_layers=args.n_layers,
            n_heads=args.n_heads,
            d_ff=args.d_ff,
            max_seq_len=128,
        ),
        seed=0,
    )
    params = policy.num_parameters()
    counter = ForwardCounter(policy.module)
    learner = make_learner(cfg, policy)
    task = get_task(cfg.task.name, **cfg.task.knobs)
    times: list[float] = []
    parts: dict[str, list[float]] = {"generate": [], "reward": [], "update": []}
    metrics: list[dict[str, float]] = []
    work: list[dict] = []
    wait_quiet(args.quiet_wait)
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            busy0, own0 = cpu_busy(), time.process_time()
        t = time.perf_counter()
        m = rl_step(cfg, learner, task, step)
        times.append(time.perf_counter() - t)
        work.append(counter.take())
        metrics.append(m)
        for key, name in (("generate", "sample_s"), ("reward", "judge_s"), ("update", "update_s")):
            parts[key].append(float(m[f"rl/{name}"]))
    foreign = (cpu_busy() - busy0) - (time.process_time() - own0)
    kept = metrics[args.warmup :]
    rows = args.prompts * args.group
    completion = statistics.mean(float(m["rl/completion_tokens"]) for m in kept)
    prompt = statistics.mean(
        float(m["rl/prompt_tokens"]) for m in kept
    )  # over all prompts x group rows
    done = {k: statistics.mean(w[k] for w in work[args.warmup :]) for k in work[0]}
    # the training forward (models/grouped.py) reads the weights without module.forward, so the hook
    # misses it: it processes each distinct prompt once plus every completion token
    done["grad_tokens"] += prompt / args.group + completion
    extra = done["scoring_tokens"] / (prompt + completion)
    tokens = {
        "completion_tokens": completion,
        "prompt_tokens": prompt,
        "distinct_prompt_tokens": prompt / args.group,
    }
    return {
        "framework": "reasonlab",
        "model": f"TinyPolicy, {params:,} parameters",
        "params": params,
        "config": cfg.rl.model_dump() if hasattr(cfg.rl, "model_dump") else str(cfg.rl),
        **summarize(times, parts, args.warmup),
        "tokens_per_step": tokens,
        "forward_tokens_per_step": done,
        "extra_forward_passes": extra,
        "flops": floor_flops(
            params, tokens["distinct_prompt_tokens"], prompt, completion, rows, extra
        ),
        "work_done_flops": 2 * params * done["nograd_tokens"] + 6 * params * done["grad_tokens"],
        "foreign_cores": max(0.0, foreign / sum(times[args.warmup :])),
    }


# --- report ---------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=4, help="distinct prompts per step")
    ap.add_argument("--group", type=int, default=8, help="completions per prompt")
    ap.add_argument("--new-tokens", type=int, default=8, help="longest completion")
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--n-layers", type=int, default=4)
    ap.add_argument("--n-heads", type=int, default=4)
    ap.add_argument("--d-ff", type=int, default=688)
    ap.add_argument("--only", choices=["trl", "ours"], help="run one side only")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="max seconds to wait for an idle CPU per side",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    wait_quiet(args.quiet_wait)
    peak_before = matmul_peak_gflops()
    sides: dict[str, Any] = {}
    notes: list[str] = []
    if args.only != "ours":
        sides["trl"] = run_trl(args)
    if args.only != "trl":
        try:
            sides["ours"] = run_ours(args)
        except ImportError as e:
            notes.append(f"reasonlab side not run: the RL trainer is not importable yet ({e}).")
    peak = statistics.median([peak_before, matmul_peak_gflops()]) * 1e9
    for side in sides.values():
        side["floor_s"] = side["flops"]["total"] / peak
        side["floor_no_extra_s"] = (side["flops"]["total"] - side["flops"]["extra_forward"]) / peak
        side["times_floor"] = side["median_step_s"] / side["floor_s"]
    result = {
        "date": date.today().isoformat(),
        "machine": machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "matmul_peak_gflops": peak / 1e9,
        "shape": {
            "prompts": args.prompts,
            "group": args.group,
            "completions": args.prompts * args.group,
            "new_tokens": args.new_tokens,
            "d_model": args.d_model,
            "n_layers": args.n_layers,
            "n_heads": args.n_heads,
            "d_ff": args.d_ff,
            "vocab": len(SPECIALS) + len(CHARS),
        },
        "steps": args.steps,
        "warmup": args.warmup,
        **sides,
        "notes": notes,
    }
    if "trl" in sides and "ours" in sides:
        result["trl_over_ours"] = sides["trl"]["median_step_s"] / sides["ours"]["median_step_s"]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))


def markdown(r: dict) -> str:
    s = r["shape"]
    lines = [
        f"One GRPO step: {s['prompts']} prompts x {s['group']} completions of up to {s['new_tokens']} new tokens; "
        f"d_model {s['d_model']}, {s['n_layers']} layers, {s['n_heads']} heads, d_ff {s['d_ff']}, vocab {s['vocab']}; "
        f"median of {r['steps']} steps after {r['warmup']}; {r['machine']}; fp32 matmul peak "
        f"{r['matmul_peak_gflops']:.0f} GFLOP/s.",
        "",
        "| framework | model | median step | generate | reward | update (TRL: the rest) | tokens (prompt + completion) "
        "| extra fwd passes | FLOP floor | x floor |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def fmt(d: dict, k: str) -> str:
        return f"{d[k] * 1e3:.0f} ms" if k in d else "-"

    for name in ("trl", "ours"):
        if name not in r:
            continue
        d, t = r[name], r[name]["tokens_per_step"]
        lines.append(
            f"| {d['framework']} | {d['model']} | {d['median_step_s'] * 1e3:.0f} ms | {fmt(d, 'median_generate_s')} "
            f"| {fmt(d, 'median_reward_s')} | {fmt(d, 'median_update_s')} "
            f"| {t['prompt_tokens']:.0f} + {t['completion_tokens']:.0f} | {d['extra_forward_passes']:.2f} "
            f"| {d['floor_s'] * 1e3:.1f} ms | {d['times_floor']:.1f}x |"
        )
    if "trl_over_ours" in r:
        lines += ["", f"TRL / reasonlab step time: {r['trl_over_ours']:.2f}x."]
    for name in ("trl", "ours"):
        if name in r:
            d, w = r[name], r[name]["forward_tokens_per_step"]
            lines += [
                "",
                f"{d['framework']}: the model's forward saw {w['nograd_tokens']:.0f} tokens without grad "
                f"and {w['grad_tokens']:.0f} with grad per step ({w['forward_calls']:.0f} calls): "
                f"{d['work_done_flops'] / d['flops']['total']:.2f}x the floor's FLOPs.",
            ]
    lines += [f"Note: {n}" for n in r["notes"]]
    busy = {n: r[n]["foreign_cores"] for n in ("trl", "ours") if n in r}
    if busy:
        lines += [
            "",
            "Other processes' CPU use during the timed steps (cores): "
            + ", ".join(f"{n} {v:.2f}" for n, v in busy.items())
            + ".",
        ]
    if any(v >= 0.25 for v in busy.values()):
        lines += [
            "",
            "WARNING: other processes kept a core busy during the runs; with torch's default threads every "
            "parallel op then waits for that core, so these timings are distorted. Rerun on an idle machine.",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
