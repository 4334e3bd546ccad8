"""A local Hugging Face causal LM as a reasonlab Policy: same protocol as the tiny transformer.

`load_policy(folder)` recognises a Hugging Face folder (a config.json with a `model_type`) and loads it
with `AutoModelForCausalLM` + `AutoTokenizer` from local files only (nothing is fetched from a hub; a
hub id that is not a folder is refused with a hint). Then `reasonlab eval`, `reasonlab rl` and the
judges run on it unchanged:

- `logits(ids, mask)`: the model's forward with positions `cumsum(mask) - 1` (left padding, as in the
  tiny model and Hugging Face `generate`); `completion_logits` runs it on [prompt | completion].
- `max_seq_len`: the config's `max_position_embeddings` (None if it has none); no PPO critic
  (`critic_body()` is None).
- `new_cache` / `decode_step`: the model's own `DynamicCache` (`past_key_values`), so the builtin
  sampler (sampling/builtin.py) decodes with the model's KV cache.
- Prompts: the tokenizer's chat template (one user turn, generation prompt added) when it has one and
  `hf.chat_template` is on; otherwise the tokenizer's own special tokens (a BOS for Llama, none for Qwen)
  plus the prompt.
- Stopping: every id in the generation config's `eos_token_id` (a list for chat models, e.g. Qwen's
  `<|im_end|>` and `<|endoftext|>`) ends a completion.
- device and dtype `auto` (models/precision.py): cuda if available; bfloat16 on a GPU that supports it
  (else float16), float32 on CPU.
- LoRA (`hf.lora_r > 0`): peft adapters on all linear layers (or `hf.lora_targets`); only they train.
  `save` writes the merged weights, so an RL result is a plain Hugging Face folder any tool can load.
- Sampler (`hf.sampler`): builtin (default), hf (`model.generate`) or vllm (sampling/vllm.py).
Usage:

    policy = load_policy("models/Qwen2.5-0.5B-Instruct", options={"dtype": "auto"})
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from reasonlab.errors import CheckpointError, ConfigError
from reasonlab.models.precision import hf_dtype, resolve_device

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")
SAMPLERS = ("builtin", "hf", "vllm")


def _transformers():
    try:
        import transformers
    except ImportError:
        raise ConfigError(
            "Hugging Face models need transformers: pip install 'reasonlab[hf]'"
        ) from None
    return transformers


class HFTokenizer:
    """The Tokenizer protocol over a Hugging Face tokenizer, plus the prompt format of the model."""

    def __init__(self, tok: Any, eos_ids: Iterable[int], chat_template: bool = True) -> None:
        self.tok = tok
        self.eos_ids = tuple(dict.fromkeys(int(i) for i in eos_ids))
        if not self.eos_ids:
            raise CheckpointError(
                f"{tok.name_or_path}: the tokenizer and generation config name no EOS token"
            )
        self.chat = bool(chat_template and getattr(tok, "chat_template", None))

    @property
    def vocab_size(self) -> int:
        return len(self.tok)

    @property
    def pad_id(self) -> int:
        return self.tok.pad_token_id if self.tok.pad_token_id is not None else self.eos_ids[0]

    @property
    def bos_id(self) -> int:
        return self.tok.bos_token_id if self.tok.bos_token_id is not None else self.pad_id

    @property
    def eos_id(self) -> int:
        return self.eos_ids[0]

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False)

    def decode(self, ids: Iterable[int]) -> str:
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        return self.tok.decode(list(ids), skip_special_tokens=True)

    def encode_prompt(self, prompt: str) -> list[int]:
        """The ids a completion is conditioned on: the chat template's user turn + generation prompt,
        or (no template) the tokenizer's special tokens around the plain prompt."""
        if self.chat:
            text = self.tok.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
            return self.tok.encode(text, add_special_tokens=False)
        return self.tok.encode(prompt, add_special_tokens=True)

    def to_dict(self) -> dict[str, Any]:
        """Identity of the tokenizer (kind, vocabulary digest, prompt format), not where it was read from."""
        vocab = json.dumps(sorted(self.tok.get_vocab().items())).encode()
        return {
            "kind": "hf",
            "vocab_size": len(self.tok),
            "vocab_sha256": hashlib.sha256(vocab).hexdigest()[:16],
            "chat_template": self.chat,
        }

    def __repr__(self) -> str:
        return (
            f"HFTokenizer({self.tok.name_or_path!r}, vocab_size={len(self.tok)}, chat={self.chat})"
        )


class HFPolicy:
    """A Hugging Face causal LM and its tokenizer behind the Policy protocol (models/base.py)."""

    kind = "hf"

    def __init__(
        self,
        module: torch.nn.Module,
        tokenizer: HFTokenizer,
        path: Path | None = None,
        sampler: str = "builtin",
    ) -> None:
        if sampler not in SAMPLERS:
            raise ConfigError(
                f"hf.sampler: unknown sampler {sampler!r} (known: {', '.join(SAMPLERS)})"
            )
        self.module, self.tokenizer, self.path, self.sampler = module, tokenizer, path, sampler
        self.lora = False
        # the cache argument was renamed (`past_key_values` -> `cache`) in recent transformers
        self._cache_arg = (
            "cache"
            if "cache" in inspect.signature(type(module).forward).parameters
            else "past_key_values"
        )

    @property
    def config(self) -> Any:
        return self.module.config

    @property
    def max_seq_len(self) -> int | None:
        """The positions the model's config says it holds (`max_position_embeddings`), None if it does not say."""
        n = getattr(self.module.config, "max_position_embeddings", None)
        return int(n) if n is not None else None

    def logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        device = self._device()
        input_ids = input_ids.to(device)
        if attention_mask is None:
            return self.module(input_ids=input_ids, use_cache=False).logits  # (B, T, V)
        attention_mask = attention_mask.to(device)
        positions = (attention_mask.cumsum(-1) - 1).clamp_min(0)  # (B, T)
        return self.module(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions,
            use_cache=False,
        ).logits  # (B, T, V)

    def completion_logits(
        self,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        completion_ids: torch.Tensor,
        completion_mask: torch.Tensor,
        group: torch.Tensor,
    ) -> torch.Tensor:
        """Logits (B, L, V) predicting each completion token, with autograd: the full forward of
        [prompt | completion] (prompts repeated per completion), read at positions W-1 .. W+L-2."""
        width, length = prompt_ids.shape[1], completion_ids.shape[1]
        input_ids = torch.cat([prompt_ids[group], completion_ids], 1)  # (B, W + L)
        attention_mask = torch.cat([prompt_mask[group], completion_mask], 1)  # (B, W + L)
        return self.logits(input_ids, attention_mask)[
            :, width - 1 : width - 1 + length
        ]  # (B, L, V)

    def critic_body(self) -> None:
        """None: the PPO critic (rl/critic.py) is available for tiny transformer bases only."""
        return None

    def new_cache(self, batch_size: int, max_len: int) -> Any:
        return _transformers().DynamicCache()

    @torch.inference_mode()
    def decode_step(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache: Any
    ) -> torch.Tensor:
        t_new = input_ids.shape[1]
        positions = (attention_mask.cumsum(-1) - 1).clamp_min(0)[:, -t_new:]  # (B, T_new)
        out = self.module(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions,
            use_cache=True,
            **{self._cache_arg: cache},
        )
        return out.logits  # (B, T_new, V)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def backbone(self) -> HFBackbone:
        """The model as a reward-model backbone (judges share the policy's weights until they copy them)."""
        return HFBackbone(self.module)

    def enable_lora(
        self, r: int, alpha: float, dropout: float, targets: list[str] | None = None, seed: int = 0
    ) -> None:
        """Wrap the model with peft LoRA adapters of rank `r` (their random init drawn from `seed`, the
        caller's RNG state left as it was); the base weights are frozen."""
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise ConfigError("hf.lora_r: LoRA needs peft: pip install 'reasonlab[hf]'") from None
        config = LoraConfig(
            r=r,
            lora_alpha=alpha,
            lora_dropout=dropout,
            task_type="CAUSAL_LM",
            target_modules=list(targets) if targets else "all-linear",
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.module = get_peft_model(self.module, config)
        self.lora = True

    def save(self, directory: str | Path) -> None:
        """A plain Hugging Face folder (LoRA merged in), written beside and moved into place."""
        d = Path(directory)
        tmp = d.with_name(f".{d.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        module = copy.deepcopy(self.module).merge_and_unload() if self.lora else self.module
        module.save_pretrained(tmp, safe_serialization=True)
        self.tokenizer.tok.save_pretrained(tmp)
        if d.exists():
            shutil.rmtree(d)
        tmp.rename(d)

    def _device(self) -> torch.device:
        for p in self.module.parameters():
            return p.device
        return torch.device("cpu")


def check_model_folder(folder: Path) -> None:
    """CheckpointError naming what is missing when `folder` is not a complete local model."""
    if not folder.is_dir():
        raise CheckpointError(f"model folder not found: {folder}")
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        raise CheckpointError(f"{folder}: no model weights (looked for {', '.join(WEIGHT_FILES)})")
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise CheckpointError(f"{folder}: no tokenizer (looked for {', '.join(TOKENIZER_FILES)})")


def load_hf(folder: Path, meta: Mapping[str, Any], options: Mapping[str, Any]) -> HFPolicy:
    """Load a local Hugging Face model folder (`meta` is its config.json) with `options` (HFConfig fields)."""
    check_model_folder(folder)
    tf = _transformers()
    tf.utils.logging.disable_progress_bar()
    device = resolve_device(options.get("device"))
    dtype = hf_dtype(options.get("dtype", "auto"), device)
    try:
        tok = tf.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        module = tf.AutoModelForCausalLM.from_pretrained(
            str(folder), dtype=dtype, local_files_only=True
        )
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise CheckpointError(
            f"cannot load the Hugging Face model in {folder}: {' '.join(str(e).split())[:300]}"
        ) from None
    module.to(device).eval()
    eos = module.generation_config.eos_token_id if module.generation_config is not None else None
    eos_ids = [
        *(eos if isinstance(eos, list) else [eos] if eos is not None else []),
        *([tok.eos_token_id] if tok.eos_token_id is not None else []),
    ]
    tokenizer = HFTokenizer(tok, eos_ids, chat_template=options.get("chat_template", True))
    policy = HFPolicy(module, tokenizer, folder, sampler=options.get("sampler", "builtin"))
    policy.options = dict(options)  # what the samplers read: decode, vllm_gpu_memory, vllm_sleep
    policy.decode = options.get("decode", "auto")
    return policy


class HFBackbone(torch.nn.Module):
    """A Hugging Face causal LM as a reward-model backbone (judges/models.py): `forward(ids, mask,
    hidden=True)` gives the final normalised hidden states (B, T, D), `head_weight()` the LM head, and
    `cfg.d_model` the width, as the tiny transformer offers them."""

    def __init__(self, lm: torch.nn.Module) -> None:
        super().__init__()
        self.lm = lm
        self.cfg = _BackboneConfig(lm.config)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, hidden: bool = False
    ) -> torch.Tensor:
        positions = (attention_mask.cumsum(-1) - 1).clamp_min(0)  # (B, T)
        out = self.lm(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions,
            use_cache=False,
            output_hidden_states=hidden,
        )
        return out.hidden_states[-1] if hidden else out.logits  # (B, T, D) | (B, T, V)

    def head_weight(self) -> torch.Tensor:
        return self.lm.get_output_embeddings().weight  # (V, D)


class _BackboneConfig:
    """What a judge stores about its backbone: the Hugging Face config (to rebuild it when loading)."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.d_model = int(config.hidden_size)

    def model_dump(self) -> dict[str, Any]:
        return {"hf": self.config.to_dict()}


def backbone_from_config(hf_config: Mapping[str, Any]) -> HFBackbone:
    """An HFBackbone with random weights shaped by a stored Hugging Face config (weights are loaded after)."""
    tf = _transformers()
    values = dict(hf_config)
    config = tf.AutoConfig.for_model(values.pop("model_type"), **values)
    return HFBackbone(tf.AutoModelForCausalLM.from_config(config))


def load_tokenizer(folder: Path, chat_template: bool) -> HFTokenizer:
    """The tokenizer saved in `folder` (a judge folder keeps its backbone's), EOS ids from it."""
    tok = _transformers().AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    return HFTokenizer(
        tok, [tok.eos_token_id] if tok.eos_token_id is not None else [], chat_template
    )
