"""A tiny decoder-only transformer with a preallocated KV cache (its Policy is models/tiny_policy.py).

Llama-style block: pre-RMSNorm, fused qkv projection, rotary position embeddings, causal
`scaled_dot_product_attention`, SwiGLU MLP (fused gate/up projection), no biases, tied input/output
embeddings by default. Departures from the Llama reference: RoPE rotates interleaved pairs
(complex multiplication, as in Meta's original code) rather than Hugging Face's rotate-half layout;
padding query rows attend to themselves so left-padded batches never produce NaN; the RoPE table
grows on demand, so positions past `max_seq_len` extrapolate instead of failing.
Every forward runs the same block (`block_forward`: norm, qkv GEMM, attention, output projection, MLP);
only its attention step differs, passed in as a strategy: `CausalAttention` (whole sequences, the full
forward), `CachedAttention` (new tokens against the KV cache) and `grouped.GroupedAttention`
(completions against their group's shared prompt, models/grouped.py).
Decoding (`Transformer.forward(..., cache=KVCache)`, driven by `TinyPolicy.new_cache` + `decode_step`)
is tuned for small batches on CPU: per layer one (B, 2, H, max_len, Dh) key/value tensor written in
place at a position shared by all rows (prompts are left-padded), weights snapshotted per cache with
the RMSNorm gains folded in, and padding skipped in the prefill GEMMs. It equals the full forward to
~1e-6 (not bit for bit: the gains are folded into the weights and attention runs on other shapes). Usage:

    model = TinyPolicy.create(TransformerConfig(vocab_size=100), seed=0).module  # a Transformer
    logits = model(ids, mask)  # (B, T, V); model(ids, mask, hidden=True): final hidden states (B, T, D)
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from reasonlab.config import Strict

EPS = 1e-6  # RMSNorm epsilon


class TransformerConfig(Strict):
    vocab_size: int = Field(gt=0)
    """Number of token ids (the tokenizer's vocab_size)."""
    d_model: int = Field(128, gt=0)
    """Width of the residual stream."""
    n_layers: int = Field(4, gt=0)
    """Number of transformer blocks."""
    n_heads: int = Field(4, gt=0)
    """Attention heads per block; d_model / n_heads must be even (RoPE rotates pairs)."""
    d_ff: int = Field(512, gt=0)
    """Hidden width of the SwiGLU MLP; None or missing means 4 x d_model."""
    max_seq_len: int = Field(128, gt=0)
    """Positions the model is built (and trained) for; the RoPE table starts this long."""
    rope_theta: float = Field(10000.0, gt=0)
    """Base of the rotary frequencies."""
    tie_embeddings: bool = True
    """Use the token embedding matrix as the output projection."""

    @model_validator(mode="before")
    @classmethod
    def _default_d_ff(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("d_ff") is None:
            data = {**data, "d_ff": 4 * data.get("d_model", 128)}
        return data

    @model_validator(mode="after")
    def _check_heads(self) -> TransformerConfig:
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ValueError(
                f"d_model {self.d_model} must split into {self.n_heads} heads of even width"
            )
        return self

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


@dataclass
class LayerWeights:
    """One block's matrices laid out (in, out) for `x @ W`. For training they are transposed views of
    the parameters and the RMSNorm gains are applied separately; for decoding (`folded`) they are
    contiguous copies with the gains folded in (W diag(g)), which saves ops and speeds up small-batch GEMMs."""

    qkv: torch.Tensor  # (D, 3D)
    proj: torch.Tensor  # (D, D)
    gate_up: torch.Tensor  # (D, 2F)
    down: torch.Tensor  # (F, D)
    attn_gain: torch.Tensor | None  # (D,), None when folded
    mlp_gain: torch.Tensor | None  # (D,)


@dataclass(eq=False)
class KVCache:
    """Preallocated keys/values (`layers[i]`: layer i's (B, 2, H, max_len, Dh)) and a snapshot of the
    weights to decode with, taken when the cache is made: a cache belongs to one version of the weights."""

    kv: torch.Tensor  # (L, B, 2, H, M, Dh): [:, :, 0] keys, [:, :, 1] values
    weights: list[LayerWeights]
    head: torch.Tensor  # (D, V), final norm gain folded in
    length: int = 0  # positions filled so far (the same for every row)
    layers: list[torch.Tensor] = field(init=False, repr=False)  # per-layer views of kv

    def __post_init__(self) -> None:
        self.layers = list(self.kv.unbind(0))

    @property
    def max_len(self) -> int:
        return self.kv.shape[4]


def rope_table(n: int, head_dim: int, theta: float, device: torch.device) -> torch.Tensor:
    """Rotations for q, k and (identity) v at each position: (n, 3, Dh/2) complex64."""
    inv_freq = 1.0 / theta ** (
        torch.arange(0, head_dim, 2, dtype=torch.float64, device=device) / head_dim
    )
    angles = torch.outer(torch.arange(n, dtype=torch.float64, device=device), inv_freq)  # (n, Dh/2)
    rot = torch.polar(torch.ones_like(angles), angles)  # (n, Dh/2)
    return torch.stack([rot, rot, torch.ones_like(rot)], dim=1).to(torch.complex64)


def apply_rope(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs of the last dim of x (..., Dh) by freqs (broadcastable to (..., Dh/2))."""
    xc = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)))  # (..., Dh/2)
    return torch.view_as_real(xc * freqs).flatten(-2).type_as(x)  # (..., Dh)


def attention_bias(attention_mask: torch.Tensor, start: int, t_new: int) -> torch.Tensor:
    """Additive (B, 1, T_new, S) mask: causal, padded keys hidden, each query always sees itself."""
    s = start + t_new
    key_ok = attention_mask[:, :s] != 0  # (B, S), a fresh tensor
    if t_new == 1:  # decoding: every past key is causal; the new token sees itself
        key_ok[:, -1] = True
        allowed = key_ok[:, None, None, :]  # (B, 1, 1, S)
    else:
        q_pos = torch.arange(start, s, device=attention_mask.device)[:, None]  # (T, 1)
        k_pos = torch.arange(s, device=attention_mask.device)[None, :]  # (1, S)
        allowed = (key_ok[:, None, None, :] & (k_pos <= q_pos)) | (k_pos == q_pos)  # (B, 1, T, S)
    return torch.where(allowed, 0.0, float("-inf"))


def positions(attention_mask: torch.Tensor, start: int, t_new: int) -> torch.Tensor:
    """Position of each new token, counting real tokens only: (B, T_new)."""
    if t_new == 1:
        return (attention_mask[:, : start + 1].sum(-1, keepdim=True) - 1).clamp_min_(0)
    return (attention_mask[:, : start + t_new].cumsum(-1) - 1).clamp_min_(0)[:, start:]


class Block(nn.Module):
    """Parameters of one pre-norm block: attention (fused qkv) + SwiGLU MLP (fused gate/up)."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.attn_norm = nn.RMSNorm(d, eps=EPS)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.mlp_norm = nn.RMSNorm(d, eps=EPS)
        self.gate_up = nn.Linear(d, 2 * cfg.d_ff, bias=False)
        self.down = nn.Linear(cfg.d_ff, d, bias=False)

    def weights(self, folded: bool = False) -> LayerWeights:
        if not folded:
            return LayerWeights(
                self.qkv.weight.t(),
                self.proj.weight.t(),
                self.gate_up.weight.t(),
                self.down.weight.t(),
                self.attn_norm.weight,
                self.mlp_norm.weight,
            )
        with torch.no_grad():
            return LayerWeights(
                (self.qkv.weight * self.attn_norm.weight).t().contiguous(),
                self.proj.weight.t().contiguous(),
                (self.gate_up.weight * self.mlp_norm.weight).t().contiguous(),
                self.down.weight.t().contiguous(),
                None,
                None,
            )


Attend = Callable[[torch.Tensor, int], torch.Tensor]
"""The attention step of a block: (fused q/k/v projections (N, 3D) of the block's token rows, layer index)
-> the attention heads' outputs (N, D) for the same rows, before the output projection."""


def block_forward(x: torch.Tensor, w: LayerWeights, attend: Attend, layer: int) -> torch.Tensor:
    """One pre-norm block on token rows x (N, D): x + Attn(RMSNorm(x)) W_proj, then x + SwiGLU(RMSNorm(x)).

    Every forward runs this function; only `attend` differs (CausalAttention for whole sequences,
    CachedAttention for new tokens against a KV cache, grouped.GroupedAttention for completions that
    share a prompt). It gets the qkv GEMM's output and does the rest of attention: RoPE (`rope_qkv`),
    the head split, scaled_dot_product_attention and the head merge (`split_heads`, `merge_heads`).

    Why RoPE is in the strategy and not in the block: each forward rotates its rows in its own layout
    (the full forward as (B, T); the cached prefill after scattering its N real rows into the padded
    (B, T) layout, zeros for padding; the grouped forward all prompt and completion rows as one (1, N)
    sequence). Rotating another layout (e.g. the N rows before the scatter, or prompts and completions
    in two calls) changes the shapes the elementwise complex multiply runs on, which is not guaranteed
    to round the same; with each layout kept, every op sees the inputs it saw before this function was
    shared, so every path's outputs and gradients are unchanged bit for bit."""
    h = torch.mm(F.rms_norm(x, (x.shape[-1],), gain_like(w.attn_gain, x), EPS), w.qkv)  # (N, 3D)
    x = torch.addmm(x, attend(h, layer), w.proj)  # (N, D): residual fused into the GEMM
    return mlp_residual(x, w)


def mlp_residual(x: torch.Tensor, w: LayerWeights) -> torch.Tensor:
    """x + SwiGLU(RMSNorm(x)) for token rows x (N, D)."""
    gate, up = torch.mm(
        F.rms_norm(x, (x.shape[-1],), gain_like(w.mlp_gain, x), EPS), w.gate_up
    ).chunk(2, dim=-1)  # (N, F) each
    return torch.addmm(x, F.silu(gate) * up, w.down)  # (N, D)


def gain_like(gain: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    """An RMSNorm gain in the activations' dtype (under autocast they are bf16, the parameter float32);
    the same tensor when the dtypes agree."""
    return gain if gain is None or gain.dtype == x.dtype else gain.to(x.dtype)


def run_blocks(x: torch.Tensor, weights: Iterable[LayerWeights], attend: Attend) -> torch.Tensor:
    """Token rows x (N, D) through one block per entry of `weights` (layer i gets index i)."""
    for i, w in enumerate(weights):
        x = block_forward(x, w, attend, i)
    return x


def rope_qkv(h: torch.Tensor, shape: tuple[int, int, int], freqs: torch.Tensor) -> torch.Tensor:
    """Fused projections h (B*T, 3D) as (B, T, 3, H, Dh), q and k rotated (v's rotation is the identity);
    `shape` is (B, T, H), freqs (B|1, T, 3, 1, Dh/2)."""
    (b, t, n_heads), d = shape, h.shape[-1] // 3
    return apply_rope(h.view(b, t, 3, n_heads, d // n_heads), freqs)  # (B, T, 3, H, Dh)


def split_heads(qkv: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(B, T, 3, H, Dh) -> q, k, v, each a (B, H, T, Dh) view."""
    return qkv.permute(2, 0, 3, 1, 4).unbind(0)


def merge_heads(a: torch.Tensor) -> torch.Tensor:
    """Attention output (B, H, T, Dh) -> token rows (B*T, D)."""
    b, n_heads, t, dh = a.shape
    return a.transpose(1, 2).reshape(b * t, n_heads * dh)


@dataclass(eq=False)
class CausalAttention:
    """Causal self-attention within each of B sequences of T tokens (rows sequence-major, B*T): the
    full forward. The same object serves every layer."""

    shape: tuple[int, int, int]  # (B, T, H)
    freqs: torch.Tensor  # (B|1, T, 3, 1, Dh/2) complex
    mask: torch.Tensor | None  # (B, 1, T, T) additive, or None for plain causal

    def __call__(self, h: torch.Tensor, layer: int) -> torch.Tensor:  # (B*T, 3D) -> (B*T, D)
        q, k, v = split_heads(rope_qkv(h, self.shape, self.freqs))  # (B, H, T, Dh) each
        a = F.scaled_dot_product_attention(
            q, k, v, attn_mask=self.mask, is_causal=self.mask is None
        )  # (B, H, T, Dh)
        return merge_heads(a)  # (B*T, D)


@dataclass(eq=False)
class CachedAttention:
    """T new tokens of B rows against a KV cache: each layer writes the new keys and values at positions
    [start, start + T) of its cache tensor and attends to [0, start + T). With `real` (a prefill with
    padding) the block's GEMMs ran on the N real rows only: they are scattered into the padded (B*T)
    layout here, padding as zeros (masked as keys), and only the real rows are returned."""

    shape: tuple[int, int, int]  # (B, T, H)
    freqs: torch.Tensor  # (B, T, 3, 1, Dh/2) complex
    mask: torch.Tensor  # (B, 1, T, start + T) additive
    layers: list[torch.Tensor]  # per layer (B, 2, H, M, Dh): the cache's keys and values
    start: int  # positions already in the cache
    real: torch.Tensor | None = (
        None  # (N,) indices of the real tokens in B*T when rows hold only those
    )

    def __call__(
        self, h: torch.Tensor, layer: int
    ) -> torch.Tensor:  # (B*T | N, 3D) -> (B*T | N, D)
        (b, t, _), d, start, real = self.shape, h.shape[-1] // 3, self.start, self.real
        if (
            real is not None
        ):  # padding rows skipped the GEMMs; they enter attention as zeros (and are masked)
            h = h.new_zeros(b * t, 3 * d).index_copy_(0, real, h)  # (B*T, 3D)
        qkv = rope_qkv(h, self.shape, self.freqs)  # (B, T, 3, H, Dh)
        kv = self.layers[layer]  # (B, 2, H, M, Dh)
        kv[:, :, :, start : start + t] = qkv[:, :, 1:].permute(
            0, 2, 3, 1, 4
        )  # one write for k and v
        q, k, v = qkv[:, :, 0].transpose(1, 2), kv[:, 0, :, : start + t], kv[:, 1, :, : start + t]
        a = merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask))  # (B*T, D)
        return a if real is None else a.index_select(0, real)  # (B*T | N, D)


class Transformer(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.RMSNorm(cfg.d_model, eps=EPS)
        self.lm_head = (
            None if cfg.tie_embeddings else nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        )
        self._rope: torch.Tensor | None = (
            None  # (N, 3, Dh/2) complex, grown on demand; not a parameter
        )
        self._decoding: tuple[tuple, tuple[list[LayerWeights], torch.Tensor]] | None = None
        self.compute_dtype = (
            torch.float32
        )  # matrix products in bf16 / fp16 under autocast (precision.py)

    def autocast(self) -> contextlib.AbstractContextManager:
        """`torch.autocast` to the compute dtype on the weights' device (nothing in float32)."""
        if self.compute_dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.embed.weight.device.type, dtype=self.compute_dtype)

    def rope(self, n: int, device: torch.device) -> torch.Tensor:
        if self._rope is None or self._rope.shape[0] < n or self._rope.device != device:
            with torch.inference_mode(False):  # a normal tensor, usable by training after sampling
                size = max(n, self.cfg.max_seq_len)
                self._rope = rope_table(size, self.cfg.head_dim, self.cfg.rope_theta, device)
        return self._rope

    def init_weights(self, generator: torch.Generator) -> None:
        """GPT-2-style init from a local generator: N(0, 0.02), residual outputs scaled by 1/sqrt(2L)."""
        resid_std = 0.02 / math.sqrt(2 * self.cfg.n_layers)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if "norm" in name:
                    p.fill_(1.0)
                else:
                    std = resid_std if name.endswith(("proj.weight", "down.weight")) else 0.02
                    p.normal_(0.0, std, generator=generator)

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, T)
        attention_mask: torch.Tensor | None = None,  # (B, T_past + T), 1 = real token
        cache: KVCache | None = None,
        hidden: bool = False,  # return the final normalised hidden states (B, T, D) instead of logits
    ) -> torch.Tensor:  # (B, T, V)
        b, t = input_ids.shape
        start = cache.length if cache is not None else 0
        if cache is not None and start + t > cache.max_len:
            raise ValueError(f"KV cache holds {cache.max_len} positions, got {start + t}")
        if cache is None and attention_mask is None:
            mask, pos = None, torch.arange(t, device=input_ids.device)[None]  # (1, T)
        else:
            if attention_mask is None:
                attention_mask = torch.ones(b, start + t, dtype=torch.long, device=input_ids.device)
            if attention_mask.shape != (b, start + t):
                raise ValueError(
                    f"attention_mask shape {tuple(attention_mask.shape)} != {(b, start + t)}"
                )
            mask, pos = (
                attention_bias(attention_mask, start, t),
                positions(attention_mask, start, t),
            )
        freqs = self.rope(start + t, input_ids.device)[pos].unsqueeze(-2)  # (B|1, T, 3, 1, Dh/2)
        x = F.embedding(input_ids, self.embed.weight).view(b * t, -1)  # (B*T, D)
        shape = (b, t, self.cfg.n_heads)
        if cache is not None:
            return self._forward_cached(x, shape, freqs, mask, attention_mask, cache)
        with self.autocast():
            x = run_blocks(x, self.layer_weights(), CausalAttention(shape, freqs, mask))
            x = F.rms_norm(x, (x.shape[-1],), gain_like(self.norm.weight, x), EPS)
            out = x if hidden else torch.mm(x, self.head_weight().t())  # (B*T, D) | (B*T, V)
        return out.view(b, t, -1).float()  # (B, T, D) hidden | (B, T, V) logits, float32 either way

    def _forward_cached(
        self,
        x: torch.Tensor,
        shape: tuple[int, int, int],
        freqs: torch.Tensor,
        mask: torch.Tensor,
        attention_mask: torch.Tensor,
        cache: KVCache,
    ) -> torch.Tensor:
        """Run new tokens x (B*T, D) against the cache with its snapshot weights; logits (B, T, V)."""
        (b, t, _), start = shape, cache.length
        x, mask = (
            x.to(cache.kv.dtype),
            mask.to(cache.kv.dtype),
        )  # decoding runs in the cache's dtype
        real = attention_mask[:, start:].reshape(-1).nonzero().squeeze(1) if t > 1 else None  # (N,)
        if real is not None and real.shape[0] == b * t:
            real = None  # no padding among the new tokens
        if real is not None:
            x = x.index_select(0, real)  # (N, D): prefill skips padding in every GEMM
        x = run_blocks(
            x, cache.weights, CachedAttention(shape, freqs, mask, cache.layers, start, real)
        )
        cache.length = start + t
        logits = torch.mm(F.rms_norm(x, (x.shape[-1],), None, EPS), cache.head)  # (B*T | N, V)
        if real is not None:
            logits = logits.new_zeros(b * t, logits.shape[-1]).index_copy_(
                0, real, logits
            )  # padding: 0
        return logits.view(b, t, -1)  # (B, T, V)

    def layer_weights(self) -> Iterator[LayerWeights]:
        """Each block's training weights (transposed views of its parameters), made as the loop reaches it."""
        return (layer.weights() for layer in self.layers)

    def head_weight(self) -> torch.Tensor:
        return self.embed.weight if self.lm_head is None else self.lm_head.weight  # (V, D)

    @torch.no_grad()
    def decoding_weights(self) -> tuple[list[LayerWeights], torch.Tensor]:
        """Folded, contiguous copies of the weights for a KV cache (see LayerWeights); remade only
        after a parameter changed (an optimizer step bumps its version, `.to()` moves its data)."""
        key = (self.compute_dtype, *((p.data_ptr(), p._version) for p in self.parameters()))
        if self._decoding is None or self._decoding[0] != key:
            head = (self.head_weight() * self.norm.weight).t().contiguous()  # (D, V)
            layers = [layer.weights(folded=True) for layer in self.layers]
            if self.compute_dtype != torch.float32:  # folded in float32, then rounded once
                layers = [
                    LayerWeights(*(_cast(w, self.compute_dtype) for w in vars(lw).values()))
                    for lw in layers
                ]
                head = head.to(self.compute_dtype)
            self._decoding = (key, (layers, head))
        return self._decoding[1]


def _cast(w: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    return None if w is None else w.to(dtype)
