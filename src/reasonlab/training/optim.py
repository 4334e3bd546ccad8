"""The optimizer and learning-rate schedule that pretraining, RL and the critic share.

AdamW with decoupled weight decay on matrices only (nanoGPT's grouping), and a linear warm-up followed
by cosine decay to a floor. Usage:

    opt = make_optimizer(model, lr=3e-3, weight_decay=0.1)
    for group in opt.param_groups: group["lr"] = lr_at(step, total, peak=3e-3, warmup=50, min_ratio=0.1)
"""

from __future__ import annotations

import math

import torch


def lr_at(step: int, total: int, peak: float, warmup: int, min_ratio: float) -> float:
    """Linear warm-up to `peak`, then cosine decay to `min_ratio * peak` at `total`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (norms and embeddings are not decayed).

    Not `fused`: torch's fused AdamW updates parameters without bumping their version counters, which
    the KV cache's weight snapshot (Transformer.decoding_weights) relies on to see an update."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 and "emb" not in name else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), fused=False)
