"""Training forward for groups of completions that share a prompt: each prompt is computed once.

RL batches hold G completions of each prompt. The plain forward runs the prompt G times (with
autograd); here the prompt rows run once per group and every completion attends to its group's
prompt keys and values, gathered by index, so gradients from all G completions flow into the one
prompt computation. The blocks are the transformer's own (`transformer.block_forward`); only their
attention step is this module's `GroupedAttention`. The result equals the plain forward of
[prompt | completion] (tested, to float rounding: the attention runs on other shapes), with prompt
tokens costing 1/G of the FLOPs. Prompts are left-padded (P, W); completions right-padded (B, L);
`group[b]` is the prompt of completion b. Usage:

    logits = grouped_completion_logits(model, prompt_ids, prompt_mask, completion_ids, group)  # (B, L, V)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from reasonlab.models.transformer import (
    EPS,
    Transformer,
    attention_bias,
    gain_like,
    merge_heads,
    rope_qkv,
    run_blocks,
    split_heads,
)


@dataclass(eq=False)
class GroupedAttention:
    """Attention over the rows [P prompts x W | B completions x L] (N = P*W + B*L rows): each prompt
    attends causally to itself, each completion to its group's prompt keys and values and causally to
    itself. RoPE runs once over all N rows, as one (1, N) sequence whose positions are `freqs`.

    Why the prompt rows do not go through `CausalAttention`: the completions also read the prompt's
    keys and values, which would then have to be split out of the rotated rows a second time; and
    rotating the prompt and completion rows in two calls instead of one changes which elements take the
    vectorised and which the scalar path of the complex multiply, which is not guaranteed to round the
    same. Keeping the grouped forward's own row layout keeps its results (and gradients) unchanged."""

    prompts: tuple[int, int]  # (P, W)
    completions: tuple[int, int]  # (B, L)
    n_heads: int
    freqs: torch.Tensor  # (1, N, 3, 1, Dh/2) complex
    prompt_bias: torch.Tensor  # (P, 1, W, W) additive
    comp_bias: torch.Tensor  # (B, 1, L, W + L) additive
    group: torch.Tensor  # (B,) the prompt row of each completion

    def __call__(self, h: torch.Tensor, layer: int) -> torch.Tensor:  # (N, 3D) -> (N, D)
        (p, w), (b, length), n_heads, group = (
            self.prompts,
            self.completions,
            self.n_heads,
            self.group,
        )
        n_p, dh = p * w, h.shape[-1] // 3 // n_heads
        qkv = rope_qkv(h, (1, h.shape[0], n_heads), self.freqs)[0]  # (N, 3, H, Dh)
        qp, kp, vp = split_heads(qkv[:n_p].view(p, w, 3, n_heads, dh))  # (P, H, W, Dh) each
        qc, kc, vc = split_heads(qkv[n_p:].view(b, length, 3, n_heads, dh))  # (B, H, L, Dh) each
        ap = F.scaled_dot_product_attention(qp, kp, vp, attn_mask=self.prompt_bias)  # (P, H, W, Dh)
        ac = F.scaled_dot_product_attention(
            qc,
            torch.cat([kp[group], kc], 2),
            torch.cat([vp[group], vc], 2),
            attn_mask=self.comp_bias,
        )  # (B, H, L, Dh)
        return torch.cat([merge_heads(ap), merge_heads(ac)])  # (N, D)


def grouped_hidden(
    model: Transformer,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    group: torch.Tensor,
) -> torch.Tensor:
    """Final normalised hidden states that predict each completion token: (B, L, D).

    Position j is the state after reading the prompt and completion tokens before j (j = 0: the
    prompt's last token), i.e. what the plain forward gives at index W - 1 + j."""
    (p, w), (b, l) = prompt_ids.shape, completion_ids.shape
    d, n_p, device = model.cfg.d_model, p * w, prompt_ids.device
    prompt_pos = (prompt_mask.cumsum(-1) - 1).clamp_min(0)  # (P, W)
    comp_pos = prompt_mask.sum(-1)[group][:, None] + torch.arange(l, device=device)  # (B, L)
    rope = model.rope(int(comp_pos.max()) + 1, device)
    freqs = rope[torch.cat([prompt_pos.flatten(), comp_pos.flatten()])][
        None, :, :, None
    ]  # (1, N, 3, 1, Dh/2)
    prompt_bias = attention_bias(prompt_mask, 0, w)  # (P, 1, W, W)
    causal = torch.ones(l, l, dtype=torch.bool, device=device).tril()  # (L, L)
    keys_ok = torch.cat(
        [prompt_mask[group].bool()[:, None, :].expand(b, l, w), causal.expand(b, l, l)], -1
    )
    comp_bias = torch.where(keys_ok, 0.0, float("-inf"))[:, None]  # (B, 1, L, W + L)
    x = F.embedding(
        torch.cat([prompt_ids.flatten(), completion_ids.flatten()]), model.embed.weight
    )  # (N, D)
    attend = GroupedAttention(
        (p, w), (b, l), model.cfg.n_heads, freqs, prompt_bias, comp_bias, group
    )
    x = run_blocks(x, model.layer_weights(), attend)  # (N, D)
    last = x[:n_p].view(p, w, d)[
        :, -1
    ]  # (P, D): left padding puts every prompt's last token at W - 1
    x = torch.cat([last[group][:, None], x[n_p:].view(b, l, d)[:, :-1]], 1)  # (B, L, D)
    return F.rms_norm(x, (d,), gain_like(model.norm.weight, x), EPS)


def grouped_completion_logits(
    model: Transformer,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    group: torch.Tensor,
) -> torch.Tensor:
    """Logits (B, L, V) whose position j predicts completion token j (see grouped_hidden)."""
    return (
        grouped_hidden(model, prompt_ids, prompt_mask, completion_ids, group)
        @ model.head_weight().t()
    )
