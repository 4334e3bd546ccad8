"""The tiny transformer's one-token decode step over a preallocated, fixed-shape KV cache.

`StaticDecoder(model, batch, max_len)` owns a (n_layers, B, 2, H, M, Dh) key/value buffer and static
copies of the model's decoding weights (`Transformer.decoding_weights()`: folded gains, possibly bf16;
the cache takes their dtype). `logits(tokens, mask, slot, positions)` runs one new token per row whose
cache position `slot` is a (1,) tensor, so every tensor shape is the same at every step and the step
can be captured once as a CUDA graph and replayed (sampling/static.py). The block is the transformer's
own (`run_blocks`); only its attention step is this module's `StaticAttention`, which writes the new
key and value at `slot` and attends over all M positions, masking those not yet written.
Departures from the eager cached forward (`Transformer.forward(..., cache=KVCache)`): attention runs
over the whole buffer with an additive mask instead of a slice of length `start + 1` (the result equals
it to float rounding), and the weights are copied into fixed tensors (`load_weights`) instead of being
read from the per-version snapshot, so a graph keeps reading the current weights after an update.
Prefill is the eager one: `KVCache` views of the same buffer (`cache()`) go through `decode_step`. Usage:

    dec = StaticDecoder(model, batch=8, max_len=128); policy.decode_step(ids, mask, dec.cache())
    logits = dec.logits(tokens, mask, slot, positions)  # (B, V)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from reasonlab.models.transformer import (
    EPS,
    KVCache,
    LayerWeights,
    Transformer,
    merge_heads,
    rope_qkv,
    run_blocks,
)


def key_bias(mask: torch.Tensor, slot: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive (B, 1, 1, M) mask for a new token at cache position `slot` (1,): it sees the real
    tokens at positions <= slot (and always itself), nothing later."""
    k = torch.arange(mask.shape[1], device=mask.device)  # (M,)
    allowed = ((mask != 0) & (k <= slot)) | (k == slot)  # (B, M)
    return torch.where(allowed, 0.0, float("-inf")).to(dtype)[:, None, None, :]


@dataclass(eq=False)
class StaticAttention:
    """One new token per row against the whole (B, 2, H, M, Dh) cache of each layer: the new key and
    value are written at `slot` (a (1,) tensor, so the shapes never change) and the query attends to
    all M positions under `bias`. The same object serves every layer."""

    shape: tuple[int, int, int]  # (B, 1, H)
    freqs: torch.Tensor  # (B, 1, 3, 1, Dh/2) complex
    bias: torch.Tensor  # (B, 1, 1, M) additive
    layers: list[torch.Tensor]  # per layer (B, 2, H, M, Dh)
    slot: torch.Tensor  # (1,) long

    def __call__(self, h: torch.Tensor, layer: int) -> torch.Tensor:  # (B, 3D) -> (B, D)
        qkv = rope_qkv(h, self.shape, self.freqs)  # (B, 1, 3, H, Dh)
        kv = self.layers[layer]  # (B, 2, H, M, Dh)
        kv.index_copy_(3, self.slot, qkv[:, :, 1:].permute(0, 2, 3, 1, 4))  # k and v at the slot
        q = qkv[:, :, 0].transpose(1, 2)  # (B, H, 1, Dh)
        a = F.scaled_dot_product_attention(q, kv[:, 0], kv[:, 1], attn_mask=self.bias)
        return merge_heads(a)  # (B, D)


class StaticDecoder:
    """A fixed (B, M) KV cache and fixed weight tensors for the tiny transformer's decode step."""

    def __init__(self, model: Transformer, batch: int, max_len: int) -> None:
        weights, head = model.decoding_weights()
        cfg = model.cfg
        shape = (cfg.n_layers, batch, 2, cfg.n_heads, max_len, cfg.head_dim)
        self.model = model
        self.kv = torch.zeros(shape, dtype=head.dtype, device=head.device)
        self.layers = list(self.kv.unbind(0))  # per layer (B, 2, H, M, Dh)
        self.weights = [LayerWeights(*map(_clone, vars(w).values())) for w in weights]
        self.head = head.clone()  # (D, V)
        self.rope = model.rope(
            max_len, head.device
        )  # (N >= M, 3, Dh/2) complex, held for the graph

    @property
    def dtype(self) -> torch.dtype:
        return self.kv.dtype

    def load_weights(self) -> None:
        """Copy the model's current decoding weights into the fixed tensors (in place)."""
        weights, head = self.model.decoding_weights()
        for dst, src in zip(self.weights, weights):
            for d, s in zip(vars(dst).values(), vars(src).values()):
                if d is not None:
                    d.copy_(s)
        self.head.copy_(head)

    def cache(self) -> KVCache:
        """An empty `KVCache` over the same buffer and weights, for the eager prefill."""
        return KVCache(self.kv, self.weights, self.head)

    def logits(
        self, tokens: torch.Tensor, mask: torch.Tensor, slot: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        """Run tokens (B,) at cache position `slot` (1,) with RoPE positions (B, 1), the whole (B, M)
        attention mask given: logits (B, V) in the cache's dtype."""
        b = tokens.shape[0]
        freqs = self.rope[positions].unsqueeze(-2)  # (B, 1, 3, 1, Dh/2)
        x = F.embedding(tokens, self.model.embed.weight).to(self.dtype)  # (B, D)
        attend = StaticAttention(
            (b, 1, self.model.cfg.n_heads),
            freqs,
            key_bias(mask, slot, self.dtype),
            self.layers,
            slot,
        )
        x = run_blocks(x, self.weights, attend)  # (B, D)
        return torch.mm(F.rms_norm(x, (x.shape[-1],), None, EPS), self.head)  # (B, V)


def _clone(w: torch.Tensor | None) -> torch.Tensor | None:
    return None if w is None else w.clone()
