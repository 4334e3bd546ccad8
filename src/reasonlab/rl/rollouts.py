"""One RL step's data: sample a group of completions per prompt, judge them, pack them into tensors.

`collect` draws `prompts_per_step` training prompts (a pure function of (seed, step, round)), samples
`group_size` completions of each (with `sampling.generate` on the policy, or the `sample` function it is
given: the rollout workers' `generate`, rl/rollout_workers.py), judges every completion with the task
verifier and scores it with the configured reward mix. With DAPO dynamic sampling, groups whose
rewards are all equal (no learning signal under a group baseline) are dropped and further prompts
are drawn, up to `max_refill_rounds` extra rounds; the step then trains on the groups it kept.
With a learned judge, every completion is also scored by it in one batch (`Group.learned`): that is
the `judge` reward, and beside the verifier's verdict it measures the hacking gap.
`make_batch` lays each sequence out as [left-padded prompt | right-padded completion], and also
keeps each group's prompt once, for the forward that computes a shared prompt once per group
(models/grouped.py). Usage:

    collected = collect(policy, task, cfg.rl, seed=0, step=12)
    batch = make_batch(collected.groups, policy.tokenizer.pad_id)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

import numpy as np
import torch

from reasonlab.config import RLConfig
from reasonlab.judges.base import Judge, score_solutions
from reasonlab.rl.rewards import overlong_penalty, score
from reasonlab.sampling import generate
from reasonlab.tasks import Task
from reasonlab.types import Problem, Rollout, Verdict


@dataclass(frozen=True)
class Group:
    """The completions of one prompt, their verdicts and their reward parts (each with a "total")."""

    problem: Problem
    rollouts: list[Rollout]
    verdicts: list[Verdict]
    rewards: list[dict[str, float]]
    learned: list[float] | None = (
        None  # the learned judge's score of each completion, if there is a judge
    )

    @property
    def totals(self) -> list[float]:
        return [r["total"] for r in self.rewards]

    def has_signal(self) -> bool:
        """Rewards differ within the group (a group baseline gives them nonzero advantages)."""
        return max(self.totals) > min(self.totals)


@dataclass
class Collected:
    groups: list[Group]  # what the step trains on (at most prompts_per_step groups)
    sampled: list[Group]  # every group sampled this step, kept or not (for metrics)
    sample_s: float = 0.0
    judge_s: float = 0.0
    rounds: int = 0
    prompt_tokens: int = 0


@dataclass(frozen=True)
class Batch:
    """Token tensors of B = groups x group_size sequences: [prompt (left-padded, W) | completion (L)]."""

    input_ids: torch.Tensor  # (B, W + L)
    attention_mask: torch.Tensor  # (B, W + L), 1 on real tokens
    completion_ids: torch.Tensor  # (B, L)
    token_mask: torch.Tensor  # (B, L) float, 1 on every completion token
    completion_mask: torch.Tensor  # (B, L) float, 1 on tokens that the loss learns from
    lengths: torch.Tensor  # (B,) completion lengths
    rewards: torch.Tensor  # (B,) total reward
    prompt_ids: torch.Tensor  # (P, W) each group's prompt, left-padded
    prompt_mask: torch.Tensor  # (P, W)
    group: torch.Tensor  # (B,) the group (prompt row) of each sequence

    @property
    def prompt_width(self) -> int:
        return self.prompt_ids.shape[1]

    def to(self, device: torch.device) -> Batch:
        """The same batch with every tensor on `device` (the policy's)."""
        return Batch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def completion_slice(self, x: torch.Tensor) -> torch.Tensor:
        """The positions that predict each completion token: (B, W + L, ...) -> (B, L, ...)."""
        w, l = self.prompt_width, self.completion_ids.shape[1]
        return x[:, w - 1 : w - 1 + l]

    def prompts_of(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The prompts of the sequences `rows` and each row's index among them: (P', W), (P', W), (b,)."""
        groups, index = torch.unique(self.group[rows], return_inverse=True)
        return self.prompt_ids[groups], self.prompt_mask[groups], index


def round_seed(seed: int, step: int, round_: int) -> int:
    """The seed of one draw of prompts and completions: a pure function of (seed, step, round)."""
    return int(np.random.SeedSequence([seed, step, round_]).generate_state(1)[0])


Sampler = Callable[..., list[Rollout]]  # (problems, n, seed, **sampling_kwargs) -> rollouts


def draw_prompts(
    task: Task, rc: RLConfig, seed: int, step: int, round_: int
) -> tuple[list[Problem], int]:
    """The prompts of one round of a step and the seed that samples their completions."""
    s = round_seed(seed, step, round_)
    return task.sample("train", rc.prompts_per_step, s), s


def sampling_kwargs(rc: RLConfig, n_problems: int) -> dict[str, Any]:
    """The keyword arguments of `generate` for one round of `n_problems` prompts (one batch)."""
    return {
        "max_new_tokens": rc.max_new_tokens,
        "temperature": rc.temperature,
        "top_p": rc.top_p,
        "batch_size": n_problems * rc.group_size,
    }


def collect(
    policy: object,
    task: Task,
    rc: RLConfig,
    seed: int,
    step: int,
    judge: Judge | None = None,
    sample: Sampler | None = None,
) -> Collected:
    """Sample and judge groups for one step (refilling dropped groups when dynamic sampling is on);
    `sample` (default: `sampling.generate` on `policy`) draws the completions."""
    sample = sample if sample is not None else partial(generate, policy)
    out = Collected(groups=[], sampled=[])
    rounds = 1 + (rc.max_refill_rounds if rc.dynamic_sampling else 0)
    for round_ in range(rounds):
        problems, s = draw_prompts(task, rc, seed, step, round_)
        t = time.perf_counter()
        rollouts = sample(problems, rc.group_size, s, **sampling_kwargs(rc, len(problems)))
        out.sample_s += time.perf_counter() - t
        t = time.perf_counter()
        g = rc.group_size
        learned = learned_scores(judge, problems, rollouts, g) if judge is not None else None
        groups = [
            judge_group(
                task,
                rc,
                p,
                rollouts[i * g : (i + 1) * g],
                learned[i * g : (i + 1) * g] if learned is not None else None,
            )
            for i, p in enumerate(problems)
        ]
        out.judge_s += time.perf_counter() - t
        out.rounds = round_ + 1
        out.prompt_tokens += sum(len(r.prompt_ids) for r in rollouts)
        out.sampled += groups
        out.groups += [grp for grp in groups if grp.has_signal() or not rc.dynamic_sampling]
        if len(out.groups) >= rc.prompts_per_step:
            break
    out.groups = out.groups[: rc.prompts_per_step]
    return out


def learned_scores(
    judge: Judge, problems: Sequence[Problem], rollouts: Sequence[Rollout], n: int
) -> list[float]:
    """The judge's overall score of each completion (rollouts problem-major, n per problem)."""
    return score_solutions(
        judge, [problems[i // n].prompt for i in range(len(rollouts))], [r.text for r in rollouts]
    )


def judge_group(
    task: Task,
    rc: RLConfig,
    problem: Problem,
    rollouts: Sequence[Rollout],
    learned: Sequence[float] | None = None,
) -> Group:
    """Verdicts and reward parts of one prompt's completions (with DAPO's soft overlong penalty if asked)."""
    verdicts = [task.verify(problem, r.text) for r in rollouts]
    scores = list(learned) if learned is not None else [None] * len(rollouts)
    rewards = [score(rc.rewards, problem, r, v, s) for r, v, s in zip(rollouts, verdicts, scores)]
    if rc.overlong == "penalty":
        for r, parts in zip(rollouts, rewards):
            parts["overlong"] = overlong_penalty(
                len(r.token_ids), rc.max_new_tokens, rc.overlong_buffer
            )
            parts["total"] += parts["overlong"]
    return Group(
        problem, list(rollouts), verdicts, rewards, list(learned) if learned is not None else None
    )


def make_batch(groups: Sequence[Group], pad_id: int, mask_truncated: bool = False) -> Batch:
    """Pack groups into tensors; `mask_truncated` zeroes the loss mask of completions cut at the limit."""
    rollouts = [r for g in groups for r in g.rollouts]
    w = max(len(r.prompt_ids) for r in rollouts)
    l = max(len(r.token_ids) for r in rollouts)
    ids = torch.full((len(rollouts), w + l), pad_id, dtype=torch.long)
    attn = torch.zeros(len(rollouts), w + l, dtype=torch.long)
    tmask = torch.zeros(len(rollouts), l)
    cmask = torch.zeros(len(rollouts), l)
    for i, r in enumerate(rollouts):
        p, c = len(r.prompt_ids), len(r.token_ids)
        ids[i, w - p : w] = torch.tensor(r.prompt_ids)
        ids[i, w : w + c] = torch.tensor(r.token_ids)
        attn[i, w - p : w + c] = 1
        tmask[i, :c] = 1.0
        learn = 0.0 if mask_truncated and r.finish_reason == "length" else 1.0
        cmask[i, :c] = torch.tensor(r.mask, dtype=torch.float32) * learn
    rewards = torch.tensor([t for g in groups for t in g.totals], dtype=torch.float32)
    lengths = torch.tensor([len(r.token_ids) for r in rollouts])
    firsts = torch.tensor([i * len(g.rollouts) for i, g in enumerate(groups)])  # one row per group
    group = torch.arange(len(groups)).repeat_interleave(
        torch.tensor([len(g.rollouts) for g in groups])
    )
    return Batch(
        ids,
        attn,
        ids[:, w:],
        tmask,
        cmask,
        lengths,
        rewards,
        ids[firsts, :w],
        attn[firsts, :w],
        group,
    )
