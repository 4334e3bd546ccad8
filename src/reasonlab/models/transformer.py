"""A tiny decoder-only transformer with a preallocated KV cache, and `TinyPolicy` around it.

Llama-style block: pre-RMSNorm, fused qkv projection, rotary position embeddings, causal
`scaled_dot_product_attention`, SwiGLU MLP (fused gate/up projection), no biases, tied input/output
embeddings by default. Departures from the Llama reference: RoPE rotates interleaved pairs
(complex multiplication, as in Meta's original code) rather than Hugging Face's rotate-half layout;
padding query rows attend to themselves so left-padded batches never produce NaN; the RoPE table
grows on demand, so positions past `max_seq_len` extrapolate instead of failing.
The cache holds per-layer (B, H, max_len, Dh) tensors written in place; all rows of a batch share
one write position (prompts are left-padded), so prefill + decode equals the full forward.
Usage:

    policy = TinyPolicy.create(TransformerConfig(vocab_size=100), seed=0)
    logits = policy.logits(ids, mask)  # (B, T, V)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from reasonlab.models.tokenizer import CharTokenizer


class TransformerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

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
            raise ValueError(f"d_model {self.d_model} must split into {self.n_heads} heads of even width")
        return self

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


@dataclass
class KVCache:
    """Preallocated keys/values: `k[i]`, `v[i]` are layer i's (B, H, max_len, Dh) tensors."""

    k: torch.Tensor  # (L, B, H, M, Dh)
    v: torch.Tensor  # (L, B, H, M, Dh)
    length: int = 0  # positions filled so far (the same for every row)
    layers: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.layers = list(zip(self.k.unbind(0), self.v.unbind(0)))

    @property
    def max_len(self) -> int:
        return self.k.shape[3]


def rope_table(n: int, head_dim: int, theta: float, device: torch.device) -> torch.Tensor:
    """Unit complex rotations e^{i pos w_j}: (n, Dh/2) complex64."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64, device=device) / head_dim)
    angles = torch.outer(torch.arange(n, dtype=torch.float64, device=device), inv_freq)  # (n, Dh/2)
    return torch.polar(torch.ones_like(angles), angles).to(torch.complex64)


def apply_rope(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs of the last dim of x (..., Dh) by freqs (broadcastable to (..., Dh/2))."""
    xc = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)))  # (..., Dh/2)
    return torch.view_as_real(xc * freqs).flatten(-2).type_as(x)  # (..., Dh)


def attention_mask_4d(attention_mask: torch.Tensor, start: int, t_new: int) -> torch.Tensor:
    """Boolean (B, 1, T_new, S) mask: causal, padded keys hidden, each query always sees itself."""
    s = start + t_new
    key_ok = attention_mask[:, :s] != 0  # (B, S), a fresh tensor
    if t_new == 1:  # decoding: every past key is causal; the new token sees itself
        key_ok[:, -1] = True
        return key_ok[:, None, None, :]
    q_pos = torch.arange(start, s, device=attention_mask.device)[:, None]  # (T, 1)
    k_pos = torch.arange(s, device=attention_mask.device)[None, :]  # (1, S)
    return (key_ok[:, None, None, :] & (k_pos <= q_pos)) | (k_pos == q_pos)


def positions(attention_mask: torch.Tensor, start: int, t_new: int) -> torch.Tensor:
    """Position of each new token, counting real tokens only: (B, T_new)."""
    return (attention_mask[:, : start + t_new].cumsum(-1) - 1).clamp_min(0)[:, start:]


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        self.attn_norm = nn.RMSNorm(d, eps=1e-6)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.mlp_norm = nn.RMSNorm(d, eps=1e-6)
        self.gate_up = nn.Linear(d, 2 * cfg.d_ff, bias=False)
        self.down = nn.Linear(cfg.d_ff, d, bias=False)

    def forward(
        self,
        x: torch.Tensor,  # (B, T, D)
        freqs: torch.Tensor,  # (B|1, T, 1, 1, Dh/2) complex
        mask: torch.Tensor | None,  # (B, 1, T, S) bool, or None for plain causal
        kv: tuple[torch.Tensor, torch.Tensor] | None,  # layer cache, each (B, H, M, Dh)
        start: int,
    ) -> torch.Tensor:
        b, t, d = x.shape
        h = self.qkv(self.attn_norm(x)).view(b, t, 3, self.n_heads, self.head_dim)  # (B, T, 3, H, Dh)
        qk = apply_rope(h[:, :, :2], freqs)  # (B, T, 2, H, Dh)
        q, k, v = qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2), h[:, :, 2].transpose(1, 2)
        if kv is not None:
            k_cache, v_cache = kv
            k_cache[:, :, start : start + t] = k
            v_cache[:, :, start : start + t] = v
            k, v = k_cache[:, :, : start + t], v_cache[:, :, : start + t]  # (B, H, S, Dh)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None)  # (B, H, T, Dh)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        gate, up = self.gate_up(self.mlp_norm(x)).chunk(2, dim=-1)  # (B, T, F) each
        return x + self.down(F.silu(gate) * up)


class Transformer(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.RMSNorm(cfg.d_model, eps=1e-6)
        self.lm_head = None if cfg.tie_embeddings else nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self._rope: torch.Tensor | None = None  # (N, Dh/2) complex, grown on demand; not a parameter

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
                raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} != {(b, start + t)}")
            mask, pos = attention_mask_4d(attention_mask, start, t), positions(attention_mask, start, t)
        freqs = self.rope(start + t, input_ids.device)[pos][:, :, None, None]  # (B|1, T, 1, 1, Dh/2)
        x = self.embed(input_ids)  # (B, T, D)
        for i, layer in enumerate(self.layers):
            x = layer(x, freqs, mask, cache.layers[i] if cache is not None else None, start)
        if cache is not None:
            cache.length = start + t
        x = self.norm(x)
        head = self.embed.weight if self.lm_head is None else self.lm_head.weight
        return F.linear(x, head)  # (B, T, V)


class TinyPolicy:
    """The Policy implementation for `Transformer` + `CharTokenizer` (see models/base.py)."""

    kind = "tiny"

    def __init__(self, module: Transformer, tokenizer: CharTokenizer) -> None:
        if tokenizer.vocab_size > module.cfg.vocab_size:
            raise ValueError(f"tokenizer has {tokenizer.vocab_size} ids, model only {module.cfg.vocab_size}")
        self.module = module
        self.tokenizer = tokenizer

    @classmethod
    def create(
        cls, config: TransformerConfig, seed: int = 0, tokenizer: CharTokenizer | None = None,
        device: str | torch.device = "cpu",
    ) -> TinyPolicy:
        """A freshly initialised policy; the same seed gives the same weights (global RNG untouched)."""
        with torch.device("meta"):
            module = Transformer(config)
        module.to_empty(device="cpu")
        module.init_weights(torch.Generator().manual_seed(seed))
        return cls(module.to(device), tokenizer or CharTokenizer())

    @property
    def config(self) -> TransformerConfig:
        return self.module.cfg

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.module(input_ids, attention_mask)

    @torch.inference_mode()
    def new_cache(self, batch_size: int, max_len: int) -> KVCache:
        cfg, p = self.config, self.module.embed.weight
        shape = (cfg.n_layers, batch_size, cfg.n_heads, max_len, cfg.head_dim)
        self.module.rope(max_len, p.device)
        return KVCache(torch.zeros(shape, dtype=p.dtype, device=p.device),
                       torch.zeros(shape, dtype=p.dtype, device=p.device))

    @torch.inference_mode()
    def decode_step(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache: KVCache) -> torch.Tensor:
        return self.module(input_ids, attention_mask, cache)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def save(self, directory: str | Path) -> None:
        from reasonlab.models.checkpoint import save_policy

        save_policy(self, directory)
