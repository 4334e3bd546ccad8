"""What one RL step's rollouts say, before any update: rewards, pass rate, learning signal, lengths,
and, with a learned judge, the hacking gap between the judge and the verifier on the same completions.

Usage:

    metrics = rollout_metrics(collect(policy, task, cfg.rl, seed=0, step=3))
"""

from __future__ import annotations

import torch

from reasonlab.evaluate.runner import is_shortcut
from reasonlab.rl.rollouts import Collected, Group


def rollout_metrics(collected: Collected) -> dict[str, float]:
    """Reward, pass rate, signal and length statistics over every completion sampled this step."""
    groups = collected.sampled
    parts = [p for g in groups for p in g.rewards]
    totals = torch.tensor([p["total"] for p in parts])
    verdicts = [v for g in groups for v in g.verdicts]
    rollouts = [r for g in groups for r in g.rollouts]
    lengths = [len(r.token_ids) for r in rollouts]
    return {
        "reward/mean": float(totals.mean()),
        "reward/std": float(totals.std()) if len(totals) > 1 else 0.0,
        **{f"reward/{k}": sum(p[k] for p in parts) / len(parts) for k in parts[0] if k != "total"},
        "rl/pass_rate": sum(v.correct for v in verdicts) / len(verdicts),
        "rl/shortcut_rate": sum(is_shortcut(v) for v in verdicts) / len(verdicts),
        "rl/zero_var_groups": sum(not g.has_signal() for g in groups) / len(groups),
        "rl/groups_trained": len(collected.groups),
        "rl/length_mean": sum(lengths) / len(lengths),
        "rl/length_max": max(lengths),
        "rl/truncated_rate": sum(r.finish_reason == "length" for r in rollouts) / len(rollouts),
        "rl/completion_tokens": sum(lengths),
        "rl/prompt_tokens": collected.prompt_tokens,
        "rl/trained_tokens": sum(
            len(r.prompt_ids) + len(r.token_ids) for g in collected.groups for r in g.rollouts
        ),
        **hacking_gap(groups),
    }


def hacking_gap(groups: list[Group]) -> dict[str, float]:
    """The learned judge against the verifier on the same completions: their mean scores, the gap,
    the share of wrong answers the judge accepts (score >= 0.5) and of right ones it rejects."""
    if not groups or groups[0].learned is None:
        return {}
    learned = [s for g in groups for s in g.learned]
    truth = [v.correct for g in groups for v in g.verdicts]
    n, wrong = len(truth), sum(not t for t in truth)
    accepted_wrong = sum(s >= 0.5 and not t for s, t in zip(learned, truth))
    rejected_right = sum(s < 0.5 and t for s, t in zip(learned, truth))
    return {
        "hack/judge_mean": sum(learned) / n,
        "hack/verifier_mean": sum(truth) / n,
        "hack/gap": (sum(learned) - sum(truth)) / n,
        "hack/false_accept": accepted_wrong / max(wrong, 1),
        "hack/false_reject": rejected_right / max(n - wrong, 1),
        "hack/judge_accuracy": 1 - (accepted_wrong + rejected_right) / n,
    }
