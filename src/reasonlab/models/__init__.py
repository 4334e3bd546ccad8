"""Models: the Policy protocol, the character tokenizer, the tiny transformer and checkpoints.

Usage:

    from reasonlab.models import TinyPolicy, TransformerConfig, load_policy
    policy = TinyPolicy.create(TransformerConfig(vocab_size=100), seed=0); policy.save("out/base")
"""

from reasonlab.models.base import Policy, Tokenizer, module_device
from reasonlab.models.checkpoint import load_policy, register_loader, save_policy
from reasonlab.models.tiny_policy import TinyPolicy
from reasonlab.models.tokenizer import CharTokenizer
from reasonlab.models.transformer import KVCache, Transformer, TransformerConfig

__all__ = [
    "CharTokenizer",
    "KVCache",
    "Policy",
    "TinyPolicy",
    "Tokenizer",
    "Transformer",
    "TransformerConfig",
    "load_policy",
    "module_device",
    "register_loader",
    "save_policy",
]
