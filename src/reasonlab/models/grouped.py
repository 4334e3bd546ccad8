"""Training forward for groups of completions that share a prompt: each prompt is computed once.

RL batches hold G completions of each prompt. The plain forward runs the prompt G times (with
autograd); here the prompt rows run once per group and every completion attends to its group's
prompt keys and values, gathered by index, so gradients from all G completions flow into the one
prompt computation. The result equals the plain forward of [prompt | completion] (tested), with
prompt tokens costing 1/G of the FLOPs. Prompts are left-padded (P, W); completions right-padded
(B, L); `group[b]` is the prompt of completion b. Usage:

    logits = grouped_completion_logits(model, prompt_ids, prompt_mask, completion_ids, group)  # (B, L, V)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reasonlab.models.transformer import EPS, Transformer, apply_rope, attention_bias, mlp_residual


def grouped_hidden(model: Transformer, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                   completion_ids: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """Final normalised hidden states that predict each completion token: (B, L, D).

    Position j is the state after reading the prompt and completion tokens before j (j = 0: the
    prompt's last token), i.e. what the plain forward gives at index W - 1 + j."""
    (p, w), (b, l) = prompt_ids.shape, completion_ids.shape
    d, n_heads = model.cfg.d_model, model.cfg.n_heads
    dh, n_p = d // n_heads, p * w
    device = prompt_ids.device
    prompt_pos = (prompt_mask.cumsum(-1) - 1).clamp_min(0)  # (P, W)
    comp_pos = prompt_mask.sum(-1)[group][:, None] + torch.arange(l, device=device)  # (B, L)
    rope = model.rope(int(comp_pos.max()) + 1, device)
    freqs = rope[torch.cat([prompt_pos.flatten(), comp_pos.flatten()])][None, :, :, None]  # (1, N, 3, 1, Dh/2)
    prompt_bias = attention_bias(prompt_mask, 0, w)  # (P, 1, W, W)
    causal = torch.ones(l, l, dtype=torch.bool, device=device).tril()  # (L, L)
    keys_ok = torch.cat([prompt_mask[group].bool()[:, None, :].expand(b, l, w), causal.expand(b, l, l)], -1)
    comp_bias = torch.where(keys_ok, 0.0, float("-inf"))[:, None]  # (B, 1, L, W + L)
    x = F.embedding(torch.cat([prompt_ids.flatten(), completion_ids.flatten()]), model.embed.weight)  # (N, D)
    for layer in model.layers:
        wt = layer.weights()
        h = torch.mm(F.rms_norm(x, (d,), wt.attn_gain, EPS), wt.qkv)  # (N, 3D)
        qkv = apply_rope(h.view(1, -1, 3, n_heads, dh), freqs)[0]  # (N, 3, H, Dh)
        qp, kp, vp = qkv[:n_p].view(p, w, 3, n_heads, dh).permute(2, 0, 3, 1, 4).unbind(0)  # (P, H, W, Dh)
        qc, kc, vc = qkv[n_p:].view(b, l, 3, n_heads, dh).permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, L, Dh)
        ap = F.scaled_dot_product_attention(qp, kp, vp, attn_mask=prompt_bias)  # (P, H, W, Dh)
        ac = F.scaled_dot_product_attention(qc, torch.cat([kp[group], kc], 2), torch.cat([vp[group], vc], 2),
                                            attn_mask=comp_bias)  # (B, H, L, Dh)
        a = torch.cat([ap.transpose(1, 2).reshape(n_p, d), ac.transpose(1, 2).reshape(b * l, d)])  # (N, D)
        x = mlp_residual(torch.addmm(x, a, wt.proj), wt)  # (N, D)
    last = x[:n_p].view(p, w, d)[:, -1]  # (P, D): left padding puts every prompt's last token at W - 1
    x = torch.cat([last[group][:, None], x[n_p:].view(b, l, d)[:, :-1]], 1)  # (B, L, D)
    return F.rms_norm(x, (d,), model.norm.weight, EPS)


def grouped_completion_logits(model: Transformer, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                              completion_ids: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """Logits (B, L, V) whose position j predicts completion token j (see grouped_hidden)."""
    return grouped_hidden(model, prompt_ids, prompt_mask, completion_ids, group) @ model.head_weight().t()
