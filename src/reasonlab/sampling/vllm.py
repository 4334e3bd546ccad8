"""Sampling with vLLM on GPUs: the same signature and Rollouts as the builtin sampler, for evaluation and
for RL colocated with the trainer on its GPU.

vLLM is imported only when this backend is chosen (`hf.sampler: vllm`; `pip install 'reasonlab[vllm]'`,
vLLM >= 0.10.2). One `vllm.LLM` engine per policy is built from its model folder (`policy.path`) and kept
on the policy, with `hf.vllm_gpu_memory` of the GPU (`gpu_memory_utilization`), prefix caching on, and
`logprobs_mode="processed_logprobs"`: the logprobs are those of the distribution actually sampled from
(after temperature and top-p), as the builtin sampler reports them. Prompts are token ids from
`tokenizer.encode_prompt` (so the chat template is the policy's), EOS ids are stop token ids, stop strings
are kept in the text (as the builtin sampler keeps them), seeds are vLLM's per-request seeds.

Evaluation (`generate` on a policy with no engine yet) builds vLLM's default engine, which serves the
weights saved in the folder. RL (rl/trainer.py) colocates one with the trainer, as TRL's colocate mode
and verl do: `wake` builds it on first use in the training process (`distributed_executor_backend=
"external_launcher"`, one process; with `hf.vllm_sleep`, `enable_sleep_mode`) and loads the policy's
weights into it; `sleep` frees its GPU memory for the update (level 2: KV cache and weights dropped);
`push_weights` loads the updated weights (`LLM.apply_model` -> the model's `load_weights`, streamed one
tensor at a time, LoRA merged: `vllm_weights`) and resets the prefix cache; `wake` reallocates the KV
cache (and pushes the weights again if sleep dropped them with no push since). A copy of the policy
(the RL reference) carries no engine.
Departures from TRL's colocate mode: the merged LoRA weights are computed beside the adapters
(W + scale B A) instead of merging into the model and unmerging after (no rounding drift in the base
weights); only plain LoRA adapters are merged (no DoRA or LoRA-bias variants); one process, one GPU (no
tensor parallelism). Usage:

    reasonlab eval --model models/Qwen2.5-Math-7B --task aime24 -n 16 --sampler vllm
    reasonlab rl --base models/Qwen2.5-0.5B-Instruct --set hf.sampler=vllm --set rl.tis_cap=2
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from reasonlab.config import HFConfig
from reasonlab.errors import ConfigError
from reasonlab.models.base import Policy, module_device
from reasonlab.sampling.eager import check_args, eos_ids
from reasonlab.types import Problem, Rollout

MIN_VERSION = (0, 10, 2)  # logprobs_mode="processed_logprobs" with the temperature applied
PEFT_PREFIX = "base_model.model."  # what peft's wrapper adds in front of the model's own names


@dataclass
class _Engine:
    """A policy's vLLM engine and what it holds."""

    llm: Any
    colocated: bool  # in this process beside the trainer, its weights pushed from the policy
    sleeps: bool = False  # built with sleep mode (hf.vllm_sleep, colocated only)
    asleep: set[str] = field(default_factory=set)  # "weights", "kv_cache" while dropped by sleep
    step: int | None = None  # the RL step whose weights it serves (None: the policy's at build)

    def __deepcopy__(self, memo: dict) -> None:
        """A copy of the policy (e.g. the frozen RL reference) gets no engine: it builds its own if it
        ever samples."""
        return None


def check(policy: Policy) -> None:
    """ConfigError unless vLLM can sample for `policy` here: vLLM installed (and recent enough), a
    Hugging Face model folder to build its engine from."""
    _import_vllm()
    if getattr(policy, "path", None) is None:
        raise ConfigError("hf.sampler: vllm needs a policy loaded from a Hugging Face model folder")


def generate(
    policy: Policy,
    problems: Sequence[Problem],
    n: int,
    seed: int,
    *,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_p: float = 1.0,
    stop: Sequence[str] = (),
    batch_size: int = 256,
) -> list[Rollout]:
    """Sample `n` completions of every problem's prompt with vLLM; problem-major."""
    check_args(n, max_new_tokens, temperature, top_p, stop, batch_size)
    engine = _engine(policy)
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    tok = policy.tokenizer
    eos = eos_ids(tok)
    prompts = [list(tok.encode_prompt(p.prompt)) for p in problems]
    params = SamplingParams(
        n=n,
        temperature=float(temperature),
        top_p=float(top_p),
        max_tokens=max_new_tokens,
        stop=list(stop) or None,
        stop_token_ids=list(eos),
        include_stop_str_in_output=True,
        logprobs=0,
        seed=seed,
    )
    results = engine.generate(
        [TokensPrompt(prompt_token_ids=ids) for ids in prompts], params, use_tqdm=False
    )
    out: list[Rollout] = []
    for problem, ids, res in zip(problems, prompts, results):
        for c in res.outputs:
            token_ids = tuple(c.token_ids)
            logprobs = tuple(float(step[t].logprob) for step, t in zip(c.logprobs or [], token_ids))
            if c.finish_reason == "length":
                reason = "length"
            elif isinstance(c.stop_reason, str):
                reason = "stop"
            else:
                reason = "eos"
            out.append(
                Rollout(
                    problem.id,
                    tuple(ids),
                    token_ids,
                    c.text,
                    logprobs,
                    (1,) * len(token_ids),
                    reason,
                )
            )
    return out


# ---------------------------------------------------------------------------------------------
# Colocated with the trainer (RL)


def wake(policy: Policy) -> None:
    """Make the colocated engine ready to generate: built on first use (its weights pushed from the
    policy), its weights pushed again if sleep dropped them, its KV cache reallocated."""
    state = _colocated(policy)
    if "weights" in state.asleep:
        _load(state, policy, state.step)
    if "kv_cache" in state.asleep:
        _release_torch_cache(policy)
        state.llm.wake_up(tags=["kv_cache"])
        state.asleep.discard("kv_cache")


def sleep(policy: Policy) -> None:
    """Free the colocated engine's GPU memory for the update (hf.vllm_sleep; level 2: the KV cache and
    the weights are dropped, the weights are pushed after the update); without sleep mode, nothing."""
    state = _colocated(policy)
    if state.sleeps and not state.asleep:
        state.llm.sleep(level=2)
        state.asleep = {"weights", "kv_cache"}


def push_weights(policy: Policy, step: int) -> None:
    """The policy's current weights into its colocated engine, tagged with the RL step they come from
    (nothing to do when that step's are already there); its prefix cache is reset."""
    state = _colocated(policy)
    if state.step != step or "weights" in state.asleep:
        _load(state, policy, step)


def vllm_weights(module: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) pairs for vLLM's `load_weights`, one at a time: the parameters of the plain Hugging
    Face model under its own names (those of its state dict; a tied LM head once, as the input
    embedding, which vLLM ties itself), detached. A peft LoRA model gives its base weights with the
    active adapters merged (W + scale B A, computed beside the adapters, nothing modified) under the
    unwrapped names (`base_model.model.` and `.base_layer` dropped, `lora_*` tensors left out)."""
    lora = {name: m for name, m in module.named_modules() if _is_lora_layer(m)}
    for name, param in module.named_parameters():
        parts = name.split(".")
        if any(p.startswith("lora_") for p in parts) or "original_module" in parts:
            continue
        tensor = param.detach()
        owner = name.rpartition(".")[0].removesuffix(".base_layer")
        if parts[-2:] == ["base_layer", "weight"] and owner in lora:
            tensor = _merged(lora[owner], tensor)
        yield _plain_name(name), tensor


def _plain_name(name: str) -> str:
    """A peft parameter name as the unwrapped model names it."""
    name = name.removeprefix(PEFT_PREFIX)
    return name.replace(".base_layer.", ".").replace(".modules_to_save.default.", ".")


def _is_lora_layer(module: torch.nn.Module) -> bool:
    return hasattr(module, "lora_A") and hasattr(module, "get_delta_weight")


def _merged(layer: Any, weight: torch.Tensor) -> torch.Tensor:
    """The weight of a peft LoRA layer's base with its active, unmerged adapters added (a new tensor)."""
    if layer.disable_adapters:
        return weight
    names = [
        a for a in layer.active_adapters if a in layer.lora_A and a not in layer.merged_adapters
    ]
    for name in names:
        if name in getattr(layer, "lora_variant", {}) or getattr(layer, "lora_bias", {}).get(name):
            raise ConfigError(
                "hf.sampler: vllm merges plain LoRA adapters only (no DoRA or LoRA-bias variants)"
            )
        weight = weight + layer.get_delta_weight(name).to(weight.dtype)  # (out, in)
    return weight


def _engine(policy: Policy) -> Any:
    """The policy's engine, awake: the colocated one if RL built it, else vLLM's default, built here."""
    state = getattr(policy, "_vllm", None)
    if state is None:
        state = _Engine(_build(policy, colocated=False), colocated=False)
        policy._vllm = state
    if state.asleep:
        wake(policy)
    return state.llm


def _colocated(policy: Policy) -> _Engine:
    """The policy's colocated engine, built (and loaded with the policy's weights) if it has none."""
    state = getattr(policy, "_vllm", None)
    if state is None or not state.colocated:
        options = _options(policy)
        state = _Engine(
            _build(policy, colocated=True), colocated=True, sleeps=bool(options["vllm_sleep"])
        )
        policy._vllm = state
        _load(state, policy, None)
    return state


def _load(state: _Engine, policy: Policy, step: int | None) -> None:
    """Load the policy's weights into the engine (its weights' memory mapped back first if asleep)."""
    if "weights" in state.asleep:
        _release_torch_cache(policy)
        state.llm.wake_up(tags=["weights"])
        state.asleep.discard("weights")
    weights = vllm_weights(policy.module)
    with torch.no_grad():
        state.llm.apply_model(lambda model: model.load_weights(weights))
    state.llm.reset_prefix_cache()  # cached prefixes hold keys and values of the old weights
    state.step = step


def _build(policy: Policy, colocated: bool) -> Any:
    """A `vllm.LLM` for the policy's folder; `colocated`: in this process (one-process torch.distributed
    environment set up for it), with sleep mode when hf.vllm_sleep asks for it."""
    check(policy)
    from vllm import LLM

    options = _options(policy)
    kwargs: dict[str, Any] = {}
    if colocated:
        _one_process_distributed_env()
        kwargs = {
            "distributed_executor_backend": "external_launcher",  # in this process: weights pushed in place
            "enable_sleep_mode": bool(options["vllm_sleep"]),
            "seed": 0,  # the engine's own seed, as TRL sets it; every request carries its seed
        }
    dtype = str(next(policy.module.parameters()).dtype).removeprefix("torch.")
    return LLM(
        model=str(policy.path),
        dtype=dtype,
        gpu_memory_utilization=float(options["vllm_gpu_memory"]),
        enable_prefix_caching=True,  # n samples, search expansions, RL groups re-send shared prefixes
        logprobs_mode="processed_logprobs",  # after temperature and top-p: what was sampled from
        **kwargs,
    )


def _options(policy: Policy) -> dict[str, Any]:
    """The vLLM options of the policy (`load_policy`'s options, HFConfig's defaults under them)."""
    defaults = HFConfig().model_dump(include={"vllm_gpu_memory", "vllm_sleep"})
    return {**defaults, **getattr(policy, "options", {})}


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError:
        raise ConfigError(
            "hf.sampler: vllm is not installed (pip install 'reasonlab[vllm]', GPUs only)"
        ) from None
    if _version(vllm.__version__) < MIN_VERSION:
        raise ConfigError(
            f"hf.sampler: vllm {vllm.__version__} is too old; reasonlab needs vllm >= "
            f"{'.'.join(map(str, MIN_VERSION))} (pip install -U 'reasonlab[vllm]')"
        )
    return vllm


def _version(text: str) -> tuple[int, ...]:
    """The release numbers a version string starts with: '0.11.0rc2.dev5' -> (0, 11, 0)."""
    return tuple(int(n) for n in re.findall(r"\d+", re.match(r"[\d.]*", text).group())[:3])


def _one_process_distributed_env() -> None:
    """What vLLM's in-process engine initialises torch.distributed from: one process, rank 0, a free
    local port (values already set, e.g. by a launcher, are kept)."""
    for key, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1"}.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MASTER_ADDR", "localhost")
    if not os.environ.get("MASTER_PORT"):
        with socket.socket() as s:
            s.bind(("localhost", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])


def _release_torch_cache(policy: Policy) -> None:
    """Hand the memory torch's allocator keeps cached (the update's activations) back to the GPU, where
    vLLM maps its weights and KV cache on waking."""
    if module_device(policy).type == "cuda":
        torch.cuda.empty_cache()
