"""Tiny Hugging Face models built locally (random weights, a byte-level BPE trained on the spot).

For tests, benchmarks and trying the Hugging Face path with no hub access: `build_tiny_hf(folder, arch)`
writes a complete model folder (config.json, model.safetensors, tokenizer files, generation config)
that `load_policy` loads like any downloaded model. `qwen2` gets a Qwen-style chat template whose turn
ends with `<|im_end|>` (and `<|endoftext|>` also ends generation); `llama` gets a BOS/EOS pair and no
chat template. Usage:

    build_tiny_hf("runs/tiny-qwen2", "qwen2"); policy = load_policy("runs/tiny-qwen2")
"""

from __future__ import annotations

from pathlib import Path

import torch

QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "Please reason step by step, and put your final answer within \\boxed{}.",
    "The answer is \\boxed{\\frac{1}{2}}. 37+48=85\n85-19=66\nanswer: 66\ncheck: ok\n",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "Find the number of ordered pairs (x, y) of integers such that x^2 + y^2 = 25. #### 12",
    "mate in 1: 6k1/5ppp/8/8/8/8/5PPP/3R2K1 w\nRd8#\nanswer: Rd8#\n<answer>42</answer>",
]


def train_tokenizer(arch: str, vocab_size: int = 512):
    """A byte-level BPE tokenizer (every text encodes) with the special tokens of `arch`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = (
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        if arch == "qwen2"
        else ["<s>", "</s>", "<pad>"]
    )
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 20, trainer)
    if arch == "qwen2":
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>"
        )
        fast.chat_template = QWEN_TEMPLATE
    else:
        from tokenizers import processors

        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", special_tokens=[("<s>", 0)]
        )
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
        )
    return fast


def build_tiny_hf(
    folder: str | Path,
    arch: str = "qwen2",
    seed: int = 0,
    hidden: int = 64,
    layers: int = 2,
    intermediate: int | None = None,
    heads: int = 4,
    kv_heads: int = 2,
) -> Path:
    """Write a random-weight `arch` (qwen2 or llama) causal LM with its tokenizer to `folder` (MLP width
    `intermediate`, default 2 x hidden). Qwen2.5-0.5B's shape (0.36B parameters with this vocabulary):
    hidden=896, layers=24, intermediate=4864, heads=14, kv_heads=2."""
    import transformers as tf

    tok = train_tokenizer(arch)
    common = dict(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=intermediate or 2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=4096,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    if arch == "qwen2":
        config = tf.Qwen2Config(**common, tie_word_embeddings=True)
        eos = [tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")]
    elif arch == "llama":
        config = tf.LlamaConfig(**common, bos_token_id=tok.bos_token_id)
        eos = [tok.eos_token_id]
    else:
        raise ValueError(f"unknown tiny architecture {arch!r} (qwen2, llama)")
    torch.manual_seed(seed)
    model = tf.AutoModelForCausalLM.from_config(config)
    model.generation_config = tf.GenerationConfig(
        eos_token_id=eos, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id
    )
    out = Path(folder)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out
