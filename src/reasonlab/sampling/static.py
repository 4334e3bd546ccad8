"""The builtin sampler's static decoding path: a preallocated KV cache and one fixed-shape decode step
(the model's forward for one new token, then `sample_step`), captured as a CUDA graph on a GPU.

`sampling/builtin.generate` sends each batch here instead of its eager loop when `uses_static` says so:
the policy's `decode` is `static`, or `auto` on a CUDA device, and the model has a static path (the
tiny transformer, models/static_tiny.py; Hugging Face Llama, Qwen2, Qwen3 and Mistral with SDPA or
eager attention, through transformers' `StaticCache`). `static` on any other model, or on a model whose
sliding window is shorter than the cache, decodes eagerly (the same rollouts, only slower).

- Buffers (per engine, i.e. per batch bucket B and cache length M): the KV cache, a (B, M) attention
  mask (left-padded prompt, then ones), (B, M) uniforms, (B, M) output tokens and log-probs, the input
  token (B,), and (1,) counters `step` (the output column) and `slot` (the cache position of the input
  token). The step reads and writes only these, so one CUDA graph per (B, M, temperature, top_p)
  replays it for every token of every later batch of those shapes.
- Buckets: a batch of b rows runs as B = the next of 1, 2, 4, ..., 512 (multiples of 512 beyond),
  the extra rows copies of the first (their output is dropped); M = prompt width + max_new_tokens
  rounded up to a multiple of 64. The last `MAX_ENGINES` engines of a policy are kept between calls
  (their caches and graphs stay on the device; `release(policy)` frees them) and are dropped when a
  parameter moves (another data pointer, dtype or module).
- Prefill: eager and not captured (the policy's own `decode_step` into the static cache), then step 0
  is sampled from its logits by the same function the graph runs.
- Capture (CUDA): `WARMUP_STEPS` steps on a side stream, the counters and input token restored, then
  `torch.cuda.graph`; one memory pool per policy. On CPU the same step runs uncaptured (warm-up and
  restore included), so CPU tests check everything but the capture itself.
- Host syncs: none inside a step. Every `CHECK_EVERY` steps the tokens since the last check are copied
  to the host (non-blocking, into pinned memory) and checked one block behind the device, so the GPU
  always has the next block queued: EOS and stop strings are checked per step in step order exactly as
  the eager loop does (a stop string only for rows whose new token is a trigger id), and the loop ends
  at the step where every row has finished. Up to 2 * CHECK_EVERY - 1 steps may run past that point;
  they are cut off like any token after a row's end.
Departures from the references: Hugging Face `generate` with a static cache compiles the forward
(`torch.compile` mode reduce-overhead) and samples outside the graph; here the graph is captured
directly and holds the sampling too (inverse-CDF with the uniforms drawn up front, as in builtin.py).
vLLM captures graphs over batch-size buckets the same way but pages its KV cache and schedules
sequences continuously; here a batch runs until all its rows end, its attention spans all M positions
of its rows' cache (masked), and the rollouts equal the eager loop's up to float rounding (different
batch shapes and attention lengths: a near-tie can, rarely, flip). Usage:

    policy.decode = "static"  # or "auto" on a GPU
    rollouts = generate(policy, problems, n=8, seed=0, max_new_tokens=256)  # sampling/builtin.py
"""

from __future__ import annotations

import functools
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from reasonlab.errors import ConfigError
from reasonlab.models.base import Policy
from reasonlab.models.hf import HFPolicy
from reasonlab.models.static_tiny import StaticDecoder
from reasonlab.models.tiny_policy import TinyPolicy
from reasonlab.sampling import eager
from reasonlab.sampling.eager import (
    Params,
    check_stops,
    finish_row,
    left_pad,
    sample_step,
)

DECODE_MODES = ("auto", "static", "eager")
HF_MODEL_TYPES = ("llama", "qwen2", "qwen3", "mistral")
HF_ATTENTION = ("sdpa", "eager")  # attention implementations whose decode step has no host sync
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
LENGTH_STEP = 64  # the cache length M is a multiple of this
CHECK_EVERY = 8  # steps between host checks of EOS and stop strings
WARMUP_STEPS = 2  # steps run before a capture (then undone)
MAX_ENGINES = 3  # (B, M) engines kept per policy


def uses_static(policy: Policy, device: torch.device) -> bool:
    """Whether `generate` decodes this policy on `device` with the static path (see the module docstring)."""
    mode = getattr(policy, "decode", "auto")
    if mode not in DECODE_MODES:
        raise ConfigError(f"decode: unknown mode {mode!r} (known: {', '.join(DECODE_MODES)})")
    if mode == "eager" or (mode == "auto" and device.type != "cuda"):
        return False
    return _supported(policy)


def batch_bucket(n: int) -> int:
    """The batch size a batch of `n` rows runs as: the next bucket, or the next multiple of the largest."""
    top = BATCH_BUCKETS[-1]
    return next((b for b in BATCH_BUCKETS if b >= n), -(-n // top) * top)


def length_bucket(n: int) -> int:
    """The cache length for `n` positions: the next multiple of LENGTH_STEP."""
    return -(-n // LENGTH_STEP) * LENGTH_STEP


def release(policy: Policy) -> None:
    """Free the policy's static engines (KV caches, buffers, CUDA graphs)."""
    _ENGINES.pop(policy, None)


def generate_batch(
    policy: Policy,
    prompts: list[tuple[int, ...]],
    uniforms: torch.Tensor,
    params: Params,
    triggers: torch.Tensor | None,
) -> list[tuple]:
    """Decode one batch like eager.generate_batch; per row (token_ids, text, logprobs, mask, finish_reason)."""
    b, steps_max = len(prompts), params.max_new_tokens
    width = max(len(p) for p in prompts)
    engine = _engine(policy, batch_bucket(b), length_bucket(width + steps_max), uniforms.device)
    if engine is None:  # a sliding window shorter than the cache: no static cache for it
        return eager.generate_batch(policy, prompts, uniforms, params, triggers)
    engine.start(policy, prompts, uniforms, params)
    check = _StopCheck(policy, b, steps_max, params, triggers)
    steps = _decode(engine, params, b, steps_max, check)
    logps = engine.logps[:b, :steps].tolist()
    return [
        finish_row(policy, tok_row, lp_row, check.stop_at.get(r), params.eos_ids)
        for r, (tok_row, lp_row) in enumerate(zip(check.tokens[:, :steps].tolist(), logps))
    ]


def _decode(engine: _Engine, params: Params, b: int, steps_max: int, check: _StopCheck) -> int:
    """Run the step CHECK_EVERY tokens at a time, checking each block on the host while the next
    runs; the number of steps the eager loop would have run (every row ended, or steps_max)."""
    pending = deque([engine.fetch(b, 0, 1)])  # step 0, sampled after the prefill
    step = engine.stepper(params.temperature, params.top_p) if steps_max > 1 else None
    t = 1
    while pending:
        if t < steps_max:
            end = min(t + CHECK_EVERY, steps_max)
            for _ in range(t, end):
                step()
            pending.append(engine.fetch(b, t, end))
            t = end
        block = pending.popleft()
        done = check.feed(block.start, block.wait())
        if done is not None:
            return done
    return steps_max


@dataclass
class _Block:
    """Tokens of steps [start, start + k) of the real rows, on the host once `ready` has passed."""

    start: int
    tokens: torch.Tensor  # (b, k) long, pinned on CUDA
    ready: torch.cuda.Event | None = None

    def wait(self) -> torch.Tensor:
        if self.ready is not None:
            self.ready.synchronize()
        return self.tokens


class _StopCheck:
    """The eager loop's end-of-row bookkeeping on the host, fed the tokens block by block in step order:
    EOS (any of `eos_ids`), then stop strings for rows whose new token is a trigger id."""

    def __init__(
        self,
        policy: Policy,
        b: int,
        steps_max: int,
        params: Params,
        triggers: torch.Tensor | None,
    ) -> None:
        self.policy, self.stop = policy, params.stop
        self.tokens = torch.zeros(b, steps_max, dtype=torch.long)  # (b, L) host copy
        self.finished = torch.zeros(b, dtype=torch.bool)  # (b,)
        self.eos = torch.tensor(params.eos_ids)
        self.triggers = triggers.cpu() if triggers is not None else None
        self.stop_at: dict[int, tuple[int, str]] = {}

    def feed(self, start: int, block: torch.Tensor) -> int | None:
        """Take steps [start, start + k) (b, k); the step count at which every row had ended, else None."""
        self.tokens[:, start : start + block.shape[1]] = block
        for t in range(start, start + block.shape[1]):
            tok = self.tokens[:, t]  # (b,)
            self.finished |= torch.isin(tok, self.eos)
            if self.triggers is not None:
                rows = (
                    (torch.isin(tok, self.triggers) & ~self.finished).nonzero().flatten().tolist()
                )
                if rows:
                    hit = check_stops(self.policy, self.tokens, rows, t, self.stop, self.stop_at)
                    self.finished[hit] = True
            if bool(self.finished.all()):
                return t + 1
        return None


class _StaticModel(Protocol):
    """A model's static decode step: eager prefill into its fixed cache, then one token at `slot`."""

    def load_weights(self) -> None: ...
    def prefill(self, policy: Policy, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor: ...
    def logits(
        self, tokens: torch.Tensor, mask: torch.Tensor, slot: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor: ...
    def state(self) -> list[torch.Tensor]: ...


class _Engine:
    """Static buffers for B rows and M cache positions, the model's static step, and its replays."""

    def __init__(
        self, model: _StaticModel, batch: int, max_len: int, device: torch.device, pool: Any
    ) -> None:
        self.model, self.batch, self.max_len = model, batch, max_len
        self.device, self.pool = device, pool
        shape = (batch, max_len)
        self.mask = torch.zeros(shape, dtype=torch.long, device=device)  # (B, M)
        self.uniforms = torch.zeros(shape, dtype=torch.float64, device=device)  # (B, M)
        self.tokens = torch.zeros(shape, dtype=torch.long, device=device)  # (B, M)
        self.logps = torch.zeros(shape, dtype=torch.float32, device=device)  # (B, M)
        self.cur = torch.zeros(batch, dtype=torch.long, device=device)  # (B,) the input token
        self.step = torch.zeros(1, dtype=torch.long, device=device)  # output column
        self.slot = torch.zeros(1, dtype=torch.long, device=device)  # cache position of `cur`
        self.graphs: dict[tuple[float, float], torch.cuda.CUDAGraph | None] = {}
        self.captures = 0  # sampling settings prepared (warmed up, captured on CUDA) so far

    def start(
        self,
        policy: Policy,
        prompts: list[tuple[int, ...]],
        uniforms: torch.Tensor,
        params: Params,
    ) -> None:
        """Fill the buffers for a new batch (rows past len(prompts) copy the first), prefill, sample step 0."""
        b, steps = uniforms.shape
        rows = prompts + [prompts[0]] * (self.batch - b)
        width = max(len(p) for p in rows)
        ids, mask = left_pad(rows, params.pad_id, self.max_len - width, self.device)
        self.mask.copy_(mask)  # (B, M); ids (B, P)
        self.uniforms[:b, :steps] = uniforms
        self.uniforms[b:, :steps] = uniforms[:1]
        self.step.zero_()
        self.slot.fill_(width)
        self.model.load_weights()
        logits = self.model.prefill(policy, ids, self.mask[:, :width])  # (B, V)
        self._record(logits, params.temperature, params.top_p)

    def stepper(self, temperature: float, top_p: float) -> Callable[[], None]:
        """The decode step for these sampling settings: its CUDA graph's replay (captured on first use)
        on a GPU, the step function itself elsewhere (warmed up the same way on first use)."""
        key, fn = (temperature, top_p), functools.partial(self._step, temperature, top_p)
        if key not in self.graphs:
            _warm_up(fn, [self.cur, self.step, self.slot, *self.model.state()], self.device)
            self.graphs[key] = _capture(fn, self.pool) if self.device.type == "cuda" else None
            self.captures += 1
        graph = self.graphs[key]
        return fn if graph is None else graph.replay

    def fetch(self, b: int, start: int, end: int) -> _Block:
        """Tokens of steps [start, end) of the first b rows, copied to the host without waiting."""
        src = self.tokens[:b, start:end]
        if self.device.type != "cuda":
            return _Block(start, src.cpu().clone())
        dst = torch.empty(src.shape, dtype=src.dtype, pin_memory=True)
        dst.copy_(src, non_blocking=True)
        ready = torch.cuda.Event()
        ready.record()
        return _Block(start, dst, ready)

    def _step(self, temperature: float, top_p: float) -> None:
        """One token for every row, reading and writing only the static buffers (no host sync)."""
        positions = slot_positions(self.mask, self.slot)  # (B, 1)
        logits = self.model.logits(self.cur, self.mask, self.slot, positions)  # (B, V)
        self.slot.add_(1)
        self._record(logits, temperature, top_p)

    def _record(self, logits: torch.Tensor, temperature: float, top_p: float) -> None:
        """Sample column `step` from logits (B, V), write it to the outputs, make it the next input."""
        u = self.uniforms.index_select(1, self.step).squeeze(1)  # (B,)
        tok, logp = sample_step(logits, u, temperature, top_p)  # (B,), (B,)
        self.tokens.index_copy_(1, self.step, tok[:, None])
        self.logps.index_copy_(1, self.step, logp[:, None])
        self.cur.copy_(tok)
        self.step.add_(1)


def slot_positions(mask: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
    """RoPE position of the token at cache position `slot` (1,) in each row: cumsum(mask) - 1, (B, 1)."""
    return (mask.cumsum(-1) - 1).clamp_min(0).index_select(1, slot)


def _capture(fn: Callable[[], None], pool: Any) -> torch.cuda.CUDAGraph:
    """`fn` recorded as a CUDA graph (after `_warm_up`); nothing runs until it is replayed."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        fn()
    return graph


def _warm_up(fn: Callable[[], None], state: list[torch.Tensor], device: torch.device) -> None:
    """Run `fn` WARMUP_STEPS times (on a side stream on CUDA, as capture requires) and put `state` back.
    The steps also write keys, values and outputs ahead of the current position; the real steps
    overwrite them before anything reads them."""
    saved = [t.clone() for t in state]
    if device.type == "cuda":
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                fn()
        torch.cuda.current_stream(device).wait_stream(side)
    else:
        for _ in range(WARMUP_STEPS):
            fn()
    for t, s in zip(state, saved):
        t.copy_(s)


class _TinyStatic:
    """The tiny transformer's static step (models/static_tiny.py)."""

    def __init__(self, policy: TinyPolicy, batch: int, max_len: int) -> None:
        self.decoder = StaticDecoder(policy.module, batch, max_len)

    def load_weights(self) -> None:
        self.decoder.load_weights()

    def prefill(self, policy: Policy, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return policy.decode_step(ids, mask, self.decoder.cache())[:, -1]  # (B, V)

    def logits(
        self, tokens: torch.Tensor, mask: torch.Tensor, slot: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        return self.decoder.logits(tokens, mask, slot, positions)  # (B, V)

    def state(self) -> list[torch.Tensor]:
        return []


class _HFStatic:
    """A Hugging Face model's static step: its forward with a `StaticCache` of M positions, the (B, M)
    mask and explicit position ids; the cache advances its own (tensor) length in place."""

    def __init__(self, policy: HFPolicy, cache: Any) -> None:
        self.module, self.cache = policy.module, cache
        self.cache_arg = getattr(policy, "_cache_arg", "past_key_values")

    def load_weights(self) -> None:
        """Nothing to copy: the graph reads the parameters themselves (updated in place)."""

    def prefill(self, policy: Policy, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self.cache.reset()  # zeros in place: the graph keeps the same tensors
        return policy.decode_step(ids, mask, self.cache)[:, -1]  # (B, V)

    def logits(
        self, tokens: torch.Tensor, mask: torch.Tensor, slot: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        out = self.module(
            input_ids=tokens[:, None],
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{self.cache_arg: self.cache},
        )
        return out.logits[:, -1]  # (B, V)

    def state(self) -> list[torch.Tensor]:
        return [layer.cumulative_length for layer in self.cache.layers]


def _hf_static_cache(config: Any, max_len: int) -> Any | None:
    """transformers' StaticCache of `max_len` positions with full-attention layers only; a sliding-window
    layer is replaced by a full one when its window spans the whole cache (it cannot bind), and None is
    returned when it is shorter (its Python-side counters would be frozen into the graph)."""
    from transformers.cache_utils import StaticCache, StaticLayer

    cache = StaticCache(config=config, max_cache_len=max_len)
    window = getattr(config, "sliding_window", None)
    for i, layer in enumerate(cache.layers):
        if type(layer) is StaticLayer:
            continue
        if not getattr(layer, "is_sliding", False) or window is None or window < max_len:
            return None
        cache.layers[i] = StaticLayer(max_cache_len=max_len)
    return cache


def _supported(policy: Policy) -> bool:
    if isinstance(policy, TinyPolicy):
        return True
    if isinstance(policy, HFPolicy):
        config = policy.module.config
        return (
            getattr(config, "model_type", None) in HF_MODEL_TYPES
            and getattr(config, "_attn_implementation", None) in HF_ATTENTION
        )
    return False


def _static_model(policy: Policy, batch: int, max_len: int) -> _StaticModel | None:
    if isinstance(policy, TinyPolicy):
        return _TinyStatic(policy, batch, max_len)
    cache = _hf_static_cache(policy.module.config, max_len)
    return None if cache is None else _HFStatic(policy, cache)


@dataclass(eq=False)
class _Engines:
    """A policy's engines, most recently used last, valid while its parameters stay where they are."""

    signature: tuple
    engines: OrderedDict[tuple[int, int], _Engine] = field(default_factory=OrderedDict)
    pool: Any = (
        None  # CUDA graph memory pool shared by the policy's graphs (never run concurrently)
    )


_ENGINES: weakref.WeakKeyDictionary[Any, _Engines] = weakref.WeakKeyDictionary()


def _signature(policy: Policy) -> tuple:
    """What a captured step depends on: the module, its compute dtype and each parameter's storage."""
    module = policy.module
    params = tuple((p.data_ptr(), p.dtype) for p in module.parameters())
    return id(module), getattr(module, "compute_dtype", None), params


def _engine(policy: Policy, batch: int, max_len: int, device: torch.device) -> _Engine | None:
    """The policy's engine for (batch, max_len), made (evicting the least recently used) if needed;
    None when the model has no static cache of that length."""
    signature = _signature(policy)
    entry = _ENGINES.get(policy)
    if entry is None or entry.signature != signature:
        entry = _ENGINES[policy] = _Engines(signature)
    key = (batch, max_len)
    if key not in entry.engines:
        model = _static_model(policy, batch, max_len)
        if model is None:
            return None
        while len(entry.engines) >= MAX_ENGINES:
            entry.engines.popitem(last=False)
        if device.type == "cuda" and entry.pool is None:
            entry.pool = torch.cuda.graph_pool_handle()
        entry.engines[key] = _Engine(model, batch, max_len, device, entry.pool)
    entry.engines.move_to_end(key)
    return entry.engines[key]
