"""`TinyPolicy`: the Policy (models/base.py) of the tiny transformer (models/transformer.py) and the
character tokenizer, and its checkpoint folder.

- `logits`: the full forward. `new_cache` + `decode_step`: KV-cache decoding, each distinct prompt
  prefilled once (the n samples of a problem share it) and its cache rows copied.
- `completion_logits`: the grouped forward (models/grouped.py), each group's prompt computed once.
- `save` / `load`: `model.safetensors` (the module's state dict) + `config.json` ({"kind": "tiny",
  "model": <TransformerConfig>, "tokenizer": <tokenizer dict>}), each written atomically, weights first;
  `load_policy` (models/checkpoint.py) reads kind "tiny" with `TinyPolicy.load`.
Usage:

    policy = TinyPolicy.create(TransformerConfig(vocab_size=100), seed=0)
    logits = policy.logits(ids, mask)  # (B, T, V)
"""

from __future__ import annotations

import json
import math
import weakref
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from safetensors.torch import save_file

from reasonlab.errors import CheckpointError
from reasonlab.fileio import atomic_write
from reasonlab.models.files import CONFIG, WEIGHTS, load_tensors, one_line
from reasonlab.models.grouped import grouped_completion_logits
from reasonlab.models.tokenizer import CharTokenizer
from reasonlab.models.transformer import KVCache, Transformer, TransformerConfig


class TinyPolicy:
    """The Policy implementation for `Transformer` + `CharTokenizer` (see models/base.py)."""

    kind = "tiny"

    def __init__(self, module: Transformer, tokenizer: CharTokenizer) -> None:
        if tokenizer.vocab_size > module.cfg.vocab_size:
            raise ValueError(
                f"tokenizer has {tokenizer.vocab_size} ids, model only {module.cfg.vocab_size}"
            )
        self.module = module
        self.tokenizer = tokenizer
        self.decode = "auto"  # the builtin sampler's loop (config `decode`): auto, static or eager
        self._kv_buffer: torch.Tensor | None = None  # reused by successive caches (see new_cache)
        self._kv_user: weakref.ref[KVCache] | None = None

    @classmethod
    def create(
        cls,
        config: TransformerConfig,
        seed: int = 0,
        tokenizer: CharTokenizer | None = None,
        device: str | torch.device = "cpu",
    ) -> TinyPolicy:
        """A freshly initialised policy; the same seed gives the same weights (global RNG untouched)."""
        with torch.device("meta"):
            module = Transformer(config)
        module.to_empty(device="cpu")
        module.init_weights(torch.Generator().manual_seed(seed))
        return cls(module.to(device), tokenizer or CharTokenizer())

    def place(self, device: str | torch.device, dtype: torch.dtype = torch.float32) -> TinyPolicy:
        """Move the weights to `device` (they stay float32) and compute in `dtype` (models/precision.py)."""
        self.module.to(device)
        self.module.compute_dtype = dtype
        return self

    @property
    def config(self) -> TransformerConfig:
        return self.module.cfg

    @property
    def max_seq_len(self) -> int:
        """The positions the model is built and trained for (`config.max_seq_len`)."""
        return self.module.cfg.max_seq_len

    def logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.module(input_ids, attention_mask)

    @torch.inference_mode()
    def new_cache(self, batch_size: int, max_len: int) -> KVCache:
        """A cache for `batch_size` rows of up to `max_len` positions.

        Its memory is reused from the previous cache once that one is gone: a fresh buffer of this size
        page-faults on first touch, which costs more than the decoding writes themselves. Decoding only
        reads positions it has written, so the buffer is never cleared."""
        cfg, device, dtype = self.config, self.module.embed.weight.device, self.module.compute_dtype
        shape = (cfg.n_layers, batch_size, 2, cfg.n_heads, max_len, cfg.head_dim)
        numel = math.prod(shape)
        self.module.rope(max_len, device)
        buf, in_use = self._kv_buffer, self._kv_user is not None and self._kv_user() is not None
        if (
            buf is None
            or in_use
            or buf.numel() < numel
            or buf.dtype != dtype
            or buf.device != device
        ):
            buf = torch.empty(numel, dtype=dtype, device=device)
        cache = KVCache(buf[:numel].view(shape), *self.module.decoding_weights())
        if not in_use:
            self._kv_buffer, self._kv_user = buf, weakref.ref(cache)
        return cache

    @torch.inference_mode()
    def decode_step(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache: KVCache
    ) -> torch.Tensor:
        if cache.length == 0 and input_ids.shape[1] > 1:
            return self._prefill_distinct(input_ids, attention_mask, cache)
        return self.module(input_ids, attention_mask, cache)

    def _prefill_distinct(
        self, ids: torch.Tensor, mask: torch.Tensor, cache: KVCache
    ) -> torch.Tensor:
        """Prefill each distinct prompt once (the n samples of a problem share it), then copy its cache rows."""
        t = ids.shape[1]
        rows, inverse = torch.unique(
            torch.cat([ids, mask.to(ids.dtype)], 1), dim=0, return_inverse=True
        )
        if rows.shape[0] == ids.shape[0]:
            return self.module(ids, mask, cache)
        small = KVCache(
            cache.kv.new_empty(
                (cache.kv.shape[0], rows.shape[0], *cache.kv.shape[2:4], t, cache.kv.shape[5])
            ),
            cache.weights,
            cache.head,
        )
        logits = self.module(rows[:, :t], rows[:, t:], small)  # (U, T, V)
        cache.kv[:, :, :, :, :t] = small.kv[:, inverse]
        cache.length = t
        return logits[inverse]  # (B, T, V)

    def completion_logits(
        self,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        completion_ids: torch.Tensor,
        completion_mask: torch.Tensor,
        group: torch.Tensor,
    ) -> torch.Tensor:
        """Logits (B, L, V) whose position j predicts completion token j, with autograd: the grouped forward
        (models/grouped.py) runs each prompt once. `completion_mask` is not read: a completion token never
        sees the padding after it (the logits there are unspecified)."""
        with self.module.autocast():
            logits = grouped_completion_logits(
                self.module, prompt_ids, prompt_mask, completion_ids, group
            )  # (B, L, V)
        return logits.float()

    def critic_body(self) -> Transformer:
        """The module a PPO critic copies as its trunk (rl/critic.py): the transformer itself."""
        return self.module

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def save(self, directory: str | Path) -> None:
        """Write `directory` (created if needed): model.safetensors, then config.json, each atomically."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
        meta = {
            "kind": self.kind,
            "model": self.config.model_dump(),
            "tokenizer": self.tokenizer.to_dict(),
        }
        atomic_write(
            d / WEIGHTS, lambda p: save_file(tensors, str(p), metadata={"kind": self.kind})
        )
        atomic_write(d / CONFIG, lambda p: p.write_text(json.dumps(meta, indent=2) + "\n"))

    @classmethod
    def load(cls, directory: str | Path, meta: dict[str, Any]) -> TinyPolicy:
        """The policy saved in `directory`, whose parsed config.json is `meta`; CheckpointError naming the
        file when the config is invalid or the weights are missing, corrupt or of other shapes."""
        d = Path(directory)
        cfg_path = d / CONFIG
        try:
            config = TransformerConfig.model_validate(meta.get("model"))
            tokenizer = CharTokenizer.from_dict(meta.get("tokenizer"))  # type: ignore[arg-type]
        except (ValidationError, ValueError) as e:
            raise CheckpointError(f"invalid checkpoint config {cfg_path}: {one_line(e)}") from None
        if tokenizer.vocab_size > config.vocab_size:
            raise CheckpointError(
                f"invalid checkpoint config {cfg_path}: tokenizer larger than model vocab"
            )
        tensors = load_tensors(d / WEIGHTS)
        with torch.device("meta"):
            module = Transformer(config)
        try:
            module.load_state_dict(tensors, strict=True, assign=True)
        except RuntimeError as e:
            raise CheckpointError(
                f"checkpoint weights {d / WEIGHTS} do not fit {cfg_path}: {one_line(e)}"
            ) from None
        return cls(module.float(), tokenizer)
