"""RL post-training, top to bottom: sample -> judge -> advantages -> num_iterations x minibatch updates -> log.

One loop serves the GRPO family (GRPO, Dr. GRPO, DAPO, GSPO), RLOO, REINFORCE++ and PPO: the
algorithm is the choice of advantage estimator (`rl.advantage`), policy loss (`rl.policy_loss`),
aggregation (`rl.aggregation`) and KL placement (`rl.kl_in`), all by name from registries. PPO is
`advantage: gae`, which adds a critic (rl/critic.py) trained in the same update. Departures:
- Rewards are per sequence; the KL penalty, when `kl_in: reward`, is the only per-token reward.
- Every step runs one no-grad forward before the first update: the trainer's logprobs of the sampled
  tokens, logged against the sampler's (`rollout/*`, rl/mismatch.py). They are the PPO ratio's old
  logprobs with several passes or minibatches, with the KL in the reward, and with `rl.tis_cap` (TIS
  weights the policy loss by min(pi_old / pi_sampler, cap), pi_old the trainer's, as in verl); with one
  pass and one minibatch otherwise (the default) the old logprobs are the current ones detached
  (ratio 1, as TRL does).
- The loss uses the policy's logits divided by the sampling temperature (TRL does the same); top-p
  is not applied in the loss.
- With `hf.sampler: vllm` the engine runs in this process on the training GPU (sampling/vllm.py, as
  TRL's colocate mode and verl): woken before sampling, asleep during the update (`hf.vllm_sleep`),
  the policy's weights pushed into it once per step after the last optimizer step (only the next
  step's sampling reads them).
- With `rl.judge` a learned reward model scores every completion: its score is the `judge` reward
  (alone or mixed with the verifier's), and `hack/*` metrics compare it with the verifier's truth
  on the same completions at every step, so a policy that learns to fool its judge shows.
- With `rl.rollout_workers` the rollouts are sampled by Ray actors (rl/rollout_workers.py), the same
  rollouts as in this process; the weights are published to them after every step. With `rl.async`
  step t+1's first draw is sampled during step t's update, by the weights before it (one step
  off-policy, `rollout/staleness` 1): the policy loss's ratio is then pi / pi_sampler, the behaviour
  policy's log-probs as its old log-probs; dynamic sampling's refills are sampled after the update. A
  resumed async run samples its first step with the checkpointed weights (staleness 0), so it departs
  from an uninterrupted run from that step on; it is deterministic all the same.
- With `rl.learners` > 1 the update (`learn`) runs on that many Ray actors, each on its share of
  every minibatch, gradients summed (rl/learner_group.py): the same update as one learner's; this
  process keeps sampling and gets rank 0's weights after each update, and rank 0's optimizer and
  critic before each checkpoint, which it writes as with one learner.
- Every draw of prompts and completions is seeded by (seed, step, round): no hidden RNG state, so a
  resumed run repeats exactly what an uninterrupted one does (torch's and Python's global RNG states
  are checkpointed anyway, for reward functions that use them).
Usage:

    reasonlab rl --base runs/default --set rl.steps=100 --set rl.advantage=rloo
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from reasonlab.config import RLConfig, RunConfig
from reasonlab.distributed.cluster import check_fits_together, check_gpus_declared
from reasonlab.distributed.data_parallel import LOCAL, Shard, check_learners_fit
from reasonlab.errors import ConfigError
from reasonlab.judges.base import Judge
from reasonlab.judges.models import find_judge, load_judge
from reasonlab.models import Policy, load_policy, module_device
from reasonlab.rl.advantages import (
    AdvantageInputs,
    AdvantageParams,
    get_advantage,
    needs_groups,
    needs_values,
)
from reasonlab.rl.critic import Critic
from reasonlab.rl.learner_group import LearnerGroup, data_parallel
from reasonlab.rl.losses import (
    ObjectiveParams,
    aggregation_weights,
    approx_kl,
    entropy_from_logits,
    get_aggregation,
    get_kl_estimator,
    get_policy_loss,
    policy_objective,
    value_loss,
)
from reasonlab.rl.metrics import rollout_metrics
from reasonlab.rl.mismatch import mismatch_metrics, sampler_logprobs, tis_weights
from reasonlab.rl.rewards import check_rewards
from reasonlab.rl.rollout_workers import RolloutWorkers, check_workers
from reasonlab.rl.rollouts import (
    Batch,
    Collected,
    collect,
    draw_prompts,
    make_batch,
    round_seed,
    sampling_kwargs,
)
from reasonlab.sampling import check_fits
from reasonlab.sampling import vllm as vllm_sampler
from reasonlab.tasks import Task, get_task
from reasonlab.training.checkpointing import TrainState, latest_state, save_state
from reasonlab.training.optim import make_optimizer
from reasonlab.training.tracking import MetricsLogger, truncate_after

PREFIXES = ("rl/", "reward/", "hack/", "rollout/")  # metric names written by this stage


class Diverged(FloatingPointError):
    """A non-finite loss or gradient: the update is not applied."""


@dataclass
class Learner:
    """Everything an RL step updates or reads besides the data: policy, optimizer, reference, critic."""

    policy: Policy
    optimizer: torch.optim.Optimizer
    reference: Policy | None = None
    critic: Critic | None = None
    critic_optimizer: torch.optim.Optimizer | None = None
    judge: Judge | None = None  # a learned judge: the `judge` reward and the hacking-gap metrics
    # rl.learners > 1: the ranks that run the update; theirs are the optimizer and critic states that
    # count (`group.pull(learner)` copies rank 0's here)
    group: LearnerGroup | None = None


def validate_rl(cfg: RunConfig) -> None:
    """Fail fast on names that are not registered and on combinations that cannot work."""
    rc = cfg.rl
    get_advantage(rc.advantage)
    get_policy_loss(rc.policy_loss)
    get_aggregation(rc.aggregation)
    get_kl_estimator(rc.kl_estimator)
    check_rewards(rc.rewards, rc.judge)
    rl_task(cfg)
    if needs_groups(rc.advantage) and rc.group_size < 2:
        raise ConfigError(
            f"rl.group_size: {rc.advantage} needs groups of at least 2 completions "
            f"(a group baseline of one sample is the sample itself), got {rc.group_size}"
        )
    if rc.kl_importance_correction and rc.kl_in != "loss":
        raise ConfigError(
            "rl.kl_importance_correction: weights the KL penalty of the loss by the importance "
            f"ratio of the policy loss; it needs rl.kl_in: loss, got rl.kl_in: {rc.kl_in}"
        )
    if rc.minibatches > rc.prompts_per_step:
        raise ConfigError(
            f"rl.minibatches: {rc.minibatches} is more than rl.prompts_per_step "
            f"({rc.prompts_per_step}); a minibatch holds whole groups"
        )
    check_workers(cfg)  # rl.rollout_workers, rl.async (reaches Ray only with workers)
    if rc.learners > 1:
        whole, rest = divmod(rc.prompts_per_step, rc.minibatches)
        sizes = sorted({rc.group_size * whole, rc.group_size * (whole + (rest > 0))})
        if any(n % rc.learners for n in sizes):
            raise ConfigError(
                f"rl.learners: {rc.learners} learners do not divide a minibatch of "
                f"{' or '.join(map(str, sizes))} sequences (rl.prompts_per_step x rl.group_size / "
                "rl.minibatches); each learner takes an equal share"
            )
        check_gpus_declared(cfg.device, cfg.ray.learner_gpus, "ray.learner_gpus")
        check_learners_fit(cfg.ray, rc.learners, "rl.learners")  # reaches Ray
    if rc.learners > 1 and rc.rollout_workers > 0:  # every one of them runs at once
        rayc = cfg.ray
        check_fits_together(
            [
                ({"CPU": rayc.rollout_cpus, "GPU": rayc.rollout_gpus}, rc.rollout_workers),
                ({"CPU": rayc.learner_cpus, "GPU": rayc.learner_gpus}, rc.learners),
            ],
            "rl.rollout_workers + rl.learners (ray.rollout_* / ray.learner_* each)",
        )


def rl_task(cfg: RunConfig) -> Task:
    """The task RL trains on: task.knobs with rl.task_knobs over them (ConfigError naming a bad knob)."""
    try:
        return get_task(cfg.task.name, **{**cfg.task.knobs, **cfg.rl.task_knobs})
    except ConfigError as err:
        raise ConfigError(f"rl.task_knobs: {err}") if cfg.rl.task_knobs else err from None


def make_learner(cfg: RunConfig, policy: Policy, reference: Policy | None = None) -> Learner:
    """Optimizer for `policy`, plus a frozen reference (when beta > 0) and a critic (for gae)."""
    validate_rl(cfg)
    rc = cfg.rl
    learner = Learner(policy, make_optimizer(policy.module, rc.lr, rc.weight_decay))
    if rc.beta > 0 or rc.kl_monitor_every > 0:
        learner.reference = reference if reference is not None else copy.deepcopy(policy)
        learner.reference.module.requires_grad_(False).eval()
    if needs_values(rc.advantage):
        learner.critic = Critic.from_policy(policy)
        learner.critic_optimizer = make_optimizer(learner.critic, rc.critic_lr, rc.weight_decay)
    return learner


def rl_step(
    cfg: RunConfig,
    learner: Learner,
    task: Task,
    step: int,
    workers: RolloutWorkers | None = None,
) -> dict[str, float]:
    """One RL step; returns its metrics. Raises Diverged (nothing applied) on a non-finite loss.
    With `workers` the rollouts are sampled on them (the caller publishes the weights after the
    step); with rl.async the next step's first draw is submitted to them before this update."""
    rc = cfg.rl
    t0 = time.perf_counter()
    for group in learner.optimizer.param_groups:
        group["lr"] = rc.lr * min(1.0, (step + 1) / rc.warmup_steps) if rc.warmup_steps else rc.lr
    colocated = uses_vllm(learner.policy)
    if colocated:  # built on first use, in this process, on the training GPU
        vllm_sampler.wake(learner.policy)
    # 1-2. sample a group of completions per prompt and judge them (dynamic sampling refills)
    sample = workers.generate if workers is not None else None
    collected = collect(learner.policy, task, rc, cfg.seed, step, learner.judge, sample)
    metrics = rollout_metrics(collected)
    if workers is not None:
        metrics["rollout/staleness"] = float(workers.staleness(step))  # 1 for async, else 0
        if rc.async_ and step + 1 < rc.steps:  # step + 1's first draw runs during this update
            problems, s = draw_prompts(task, rc, cfg.seed, step + 1, 0)
            workers.submit(problems, rc.group_size, s, **sampling_kwargs(rc, len(problems)))
    if not collected.groups:  # every group had equal rewards: no signal, no update
        return {**metrics, **_timing(collected, 0.0, t0, metrics["rl/completion_tokens"])}
    if colocated:
        vllm_sampler.sleep(learner.policy)  # hf.vllm_sleep: its GPU memory goes to the update
    t = time.perf_counter()
    batch = make_batch(
        collected.groups, learner.policy.tokenizer.pad_id, mask_truncated=rc.overlong == "mask"
    )
    sampler_logp = sampler_logprobs(
        [r for g in collected.groups for r in g.rollouts], batch.completion_ids.shape[1]
    )  # (B, L)
    # 3-4. the update on this batch (with rl.learners > 1 on the ranks, rl/learner_group.py)
    update = learn if learner.group is None else learner.group.learn
    metrics.update(update(cfg, learner, batch, sampler_logp, step))
    if colocated:
        vllm_sampler.push_weights(learner.policy, step + 1)  # what the next step samples from
    return {
        **metrics,
        **_timing(collected, time.perf_counter() - t, t0, metrics["rl/completion_tokens"]),
    }


def learn(
    cfg: RunConfig,
    learner: Learner,
    batch: Batch,
    sampler_logp: torch.Tensor,
    step: int,
    shard: Shard = LOCAL,
) -> dict[str, float]:
    """The update of one step on its batch, and its metrics: the trainer's logprobs against the
    sampler's `sampler_logp` (B, L), old / reference logprobs, values and advantages, then
    num_iterations passes of minibatch updates. Raises Diverged (nothing applied) on a non-finite loss.
    On a data-parallel rank (`shard`) the forwards and updates take the rank's share of the rows."""
    rc = cfg.rl
    batch = batch.to(module_device(learner.policy))
    # 3. what stays fixed during the updates: the trainer's logprobs against the sampler's (mismatch
    # metrics, TIS weights), old / reference logprobs, values, advantages
    trainer_logp = _logprobs(
        learner.policy, batch, rc.temperature, rc.micro_batch_size, shard
    )  # (B, L)
    sampler_logp = sampler_logp.to(trainer_logp.device)
    metrics = dict(mismatch_metrics(trainer_logp, sampler_logp, batch.completion_mask, rc.tis_cap))
    is_weights = (
        None
        if rc.tis_cap is None
        else tis_weights(trainer_logp, sampler_logp, batch.completion_mask, rc.tis_cap)
    )  # (B, L)
    on_policy = rc.num_iterations == 1 and rc.minibatches == 1
    kl_reward = rc.beta > 0 and rc.kl_in == "reward"
    old_logp = None if on_policy and not kl_reward and rc.tis_cap is None else trainer_logp
    ratio_logp = sampler_logp if rc.async_ else old_logp  # async: the behaviour policy's
    monitor = rc.kl_monitor_every > 0 and (step + 1) % rc.kl_monitor_every == 0
    ref_logp = (
        _logprobs(learner.reference, batch, rc.temperature, rc.micro_batch_size, shard)
        if rc.beta > 0 or monitor
        else None
    )
    old_values = _values(learner.critic, batch, shard) if learner.critic else None
    token_rewards = place_rewards(batch, rc, ref_logp if kl_reward else None, old_logp)
    inputs = AdvantageInputs(token_rewards, batch.token_mask, rc.group_size, old_values)
    advantages, returns = get_advantage(rc.advantage)(inputs, advantage_params(rc))
    # 4. num_iterations passes of minibatch updates
    stats: list[dict[str, float]] = []
    for iteration in range(rc.num_iterations):
        for rows in minibatch_rows(
            len(batch.group) // rc.group_size,
            rc.group_size,
            rc.minibatches,
            round_seed(cfg.seed, step, 1000 + iteration),
        ):
            stats.append(
                policy_update(
                    learner, batch, rows, advantages, ratio_logp, ref_logp, rc, is_weights, shard
                )
            )
            if learner.critic is not None:
                stats[-1].update(
                    critic_update(learner, batch, rows, returns, old_values, rc, shard)
                )
    return metrics | {k: sum(s[k] for s in stats) / len(stats) for k in stats[0]}


def advantage_params(rc: RLConfig) -> AdvantageParams:
    """The advantage knobs of the config (each estimator reads the ones it needs)."""
    return AdvantageParams(std_scaling=rc.std_scaling, gamma=rc.gamma, lam=rc.lam, eps=rc.std_eps)


def place_rewards(
    batch: Batch, rc: RLConfig, ref_logp: torch.Tensor | None, logp: torch.Tensor | None
) -> torch.Tensor:
    """Token rewards (B, L): the sequence reward on its last token, minus beta x KL(policy, reference)
    per token when `ref_logp` is given (the KL penalty in the reward)."""
    last = torch.nn.functional.one_hot(
        batch.lengths - 1, batch.token_mask.shape[1]
    ).float()  # (B, L)
    token_rewards = last * batch.rewards[:, None]  # (B, L)
    if ref_logp is not None and logp is not None:
        token_rewards = (
            token_rewards
            - rc.beta * get_kl_estimator(rc.kl_estimator)(logp, ref_logp) * batch.token_mask
        )
    return token_rewards


def policy_update(
    learner: Learner,
    batch: Batch,
    rows: torch.Tensor,
    advantages: torch.Tensor,
    old_logp: torch.Tensor | None,
    ref_logp: torch.Tensor | None,
    rc: RLConfig,
    is_weights: torch.Tensor | None = None,
    shard: Shard = LOCAL,
) -> dict[str, float]:
    """One optimizer step of the policy on the sequences `rows` (in micro-batches when configured);
    `is_weights` (B, L), when given, weight each token's policy loss (TIS). On a data-parallel rank
    (`shard`) its share of `rows`; the sums and the gradients are added across ranks before the step."""
    learner.optimizer.zero_grad(set_to_none=True)
    totals: dict[str, float] = {}
    for chunk, aggregate in micro_batches(
        rows, batch, rc.micro_batch_size, get_aggregation(rc.aggregation), rc.max_new_tokens, shard
    ):
        loss, sums = _policy_loss(
            learner, batch, chunk, aggregate, advantages, old_logp, ref_logp, rc, is_weights
        )
        _backward(loss, shard)
        for k, v in {"rl/loss": loss.item(), **sums}.items():
            totals[k] = totals.get(k, 0.0) + v
    totals = shard.sum(totals)  # the whole minibatch's
    grad_norm = _step(
        learner.policy.module, learner.optimizer, rc.grad_clip, shard, totals["rl/loss"]
    )
    tokens = max(totals.pop("tokens"), 1.0)
    return {
        "rl/loss": totals.pop("rl/loss"),
        "rl/grad_norm": grad_norm,
        **{k: v / tokens for k, v in totals.items()},
    }


def _policy_loss(
    learner: Learner,
    batch: Batch,
    rows: torch.Tensor,
    aggregate: Callable,
    advantages: torch.Tensor,
    old_logp: torch.Tensor | None,
    ref_logp: torch.Tensor | None,
    rc: RLConfig,
    is_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The policy loss of the sequences `rows`, and masked sums of the monitored quantities."""
    logits = completion_logits(learner.policy, batch, rows).float() / rc.temperature  # (b, L, V)
    logp = (
        logits.log_softmax(-1).gather(-1, batch.completion_ids[rows, :, None]).squeeze(-1)
    )  # (b, L)
    mask = batch.completion_mask[rows]  # (b, L)
    old = logp.detach() if old_logp is None else old_logp[rows]  # (b, L)
    entropy = entropy_from_logits(logits if rc.entropy_coef > 0 else logits.detach())  # (b, L)
    loss, terms = policy_objective(
        logp,
        old,
        None if ref_logp is None else ref_logp[rows],
        advantages[rows],
        mask,
        aggregate,
        rc.max_new_tokens,
        objective_params(rc),
        entropy,
        None if is_weights is None else is_weights[rows],
    )
    sums = {
        "tokens": float(mask.sum()),
        "rl/clip_frac": _masked_sum(terms.clipped.float(), mask),
        "rl/approx_kl": _masked_sum(approx_kl(logp.detach(), old), mask),
        "rl/entropy": _masked_sum(entropy.detach(), mask),
    }
    if terms.kl is not None:
        sums["rl/kl_ref"] = _masked_sum(terms.kl.detach(), mask)
    return loss, sums


def objective_params(rc: RLConfig) -> ObjectiveParams:
    """The loss knobs of the config; the KL enters the loss only with beta > 0 and `kl_in: loss`."""
    return ObjectiveParams(
        policy_loss=rc.policy_loss,
        eps_low=rc.epsilon_low,
        eps_high=rc.epsilon_high,
        beta=rc.beta if rc.kl_in == "loss" else 0.0,
        kl_estimator=rc.kl_estimator,
        kl_importance_correction=rc.kl_importance_correction,
        entropy_coef=rc.entropy_coef,
    )


def critic_update(
    learner: Learner,
    batch: Batch,
    rows: torch.Tensor,
    returns: torch.Tensor,
    old_values: torch.Tensor,
    rc: RLConfig,
    shard: Shard = LOCAL,
) -> dict[str, float]:
    """One optimizer step of the critic (PPO's value loss, clipped around the values at sampling time);
    on a data-parallel rank on its share of `rows`, as policy_update."""
    learner.critic_optimizer.zero_grad(set_to_none=True)
    totals = {"rl/value_loss": 0.0, "values": 0.0, "tokens": 0.0}
    for chunk, aggregate in micro_batches(
        rows, batch, rc.micro_batch_size, get_aggregation("token_mean"), rc.max_new_tokens, shard
    ):
        values = batch.completion_slice(
            learner.critic(batch.input_ids[chunk], batch.attention_mask[chunk])
        )  # (b, L)
        mask = batch.completion_mask[chunk]
        per_token = value_loss(values, old_values[chunk], returns[chunk], mask, rc.value_clip)
        loss = rc.vf_coef * aggregate(per_token, mask, rc.max_new_tokens)
        _backward(loss, shard)
        totals["rl/value_loss"] += loss.item()
        totals["values"] += _masked_sum(values.detach(), mask)
        totals["tokens"] += float(mask.sum())
    totals = shard.sum(totals)
    _step(learner.critic, learner.critic_optimizer, rc.grad_clip, shard, totals["rl/value_loss"])
    return {
        "rl/value_loss": totals["rl/value_loss"],
        "rl/value_mean": totals["values"] / max(totals["tokens"], 1.0),
    }


def micro_batches(
    rows: torch.Tensor,
    batch: Batch,
    size: int | None,
    aggregate: Callable,
    constant: int,
    shard: Shard = LOCAL,
) -> list[tuple[torch.Tensor, Callable]]:
    """Split `rows` into micro-batches of `size` sequences, each with the aggregation that makes the
    sum of their losses (and gradients) equal the whole minibatch's: a linear aggregation is a
    weighted sum of the per-token losses, with weights set by the whole minibatch's mask. On a
    data-parallel rank (`shard`) only its share of `rows`, with the same weights (token-mean divides
    by the minibatch's token count, not the rank's): the ranks' losses sum to the minibatch's."""
    if shard.world == 1 and (size is None or size >= len(rows)):
        return [(rows, aggregate)]
    weights = aggregation_weights(aggregate, batch.completion_mask[rows], constant)  # (b, L)
    part = shard.part(len(rows))
    rows, weights = rows[part], weights[part]  # (b', ), (b', L)
    size = size or len(rows) or 1
    return [
        (chunk, lambda per_token, mask, c, w=w: (w * per_token).sum())
        for chunk, w in zip(rows.split(size), weights.split(size))
        if len(chunk)
    ]


def _backward(loss: torch.Tensor, shard: Shard = LOCAL) -> None:
    """Accumulate the gradient of `loss`; refuses (Diverged) a non-finite loss. On a data-parallel rank
    a non-finite loss is left out and refused in `_step`, from the ranks' summed loss, by every rank at
    once (one rank raising alone would leave the others waiting in the gradient sum)."""
    if torch.isfinite(loss):
        loss.backward()
    elif shard.world == 1:
        raise Diverged(f"loss {loss.item()}")


def _step(
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    clip: float,
    shard: Shard = LOCAL,
    loss: float = 0.0,
) -> float:
    """Sum the accumulated gradient across data-parallel ranks, clip and apply it; refuses (Diverged) a
    non-finite `loss` (the ranks' sum) or gradient before touching weights."""
    if not math.isfinite(loss):
        optimizer.zero_grad(set_to_none=True)
        raise Diverged(f"loss {loss}")
    shard.all_reduce_grads(module)
    grad_norm = float(torch.nn.utils.clip_grad_norm_(module.parameters(), clip))
    if not math.isfinite(grad_norm):
        optimizer.zero_grad(set_to_none=True)
        raise Diverged(f"gradient norm {grad_norm}")
    optimizer.step()
    return grad_norm


def minibatch_rows(
    n_groups: int, group_size: int, minibatches: int, seed: int
) -> list[torch.Tensor]:
    """Row indices of each minibatch: whole groups, shuffled by `seed` (one minibatch: all rows in order)."""
    if minibatches == 1:
        return [torch.arange(n_groups * group_size)]
    order = torch.randperm(n_groups, generator=torch.Generator().manual_seed(seed))
    parts = [p for p in order.tensor_split(minibatches) if len(p)]
    return [(p[:, None] * group_size + torch.arange(group_size)[None]).flatten() for p in parts]


def completion_logits(policy: Policy, batch: Batch, rows: torch.Tensor) -> torch.Tensor:
    """Logits (b, L, V) predicting the completion tokens of sequences `rows` (`Policy.completion_logits`:
    a tiny transformer computes each group's prompt once, models/grouped.py; a Hugging Face model runs
    [prompt | completion])."""
    prompt_ids, prompt_mask, group = batch.prompts_of(rows)
    return policy.completion_logits(
        prompt_ids,
        prompt_mask,
        batch.completion_ids[rows],
        batch.attention_mask[rows, batch.prompt_width :],
        group,
    )


@torch.no_grad()
def _logprobs(
    policy: Policy,
    batch: Batch,
    temperature: float,
    chunk: int | None = None,
    shard: Shard = LOCAL,
) -> torch.Tensor:
    """Logprobs (B, L) of the completion tokens under `policy` (no gradient), `chunk` sequences per
    forward (rl.micro_batch_size; None: all at once); on a data-parallel rank its share of the rows,
    gathered from every rank."""
    rows = shard.rows(torch.arange(len(batch.group)))
    parts = [batch.completion_mask[:0]]  # (0, L): a rank may have no rows
    for part in rows.split(chunk or len(rows) or 1):
        if len(part):
            logits = completion_logits(policy, batch, part).float() / temperature  # (b, L, V)
            parts.append(
                logits.log_softmax(-1).gather(-1, batch.completion_ids[part, :, None]).squeeze(-1)
            )  # (b, L)
    return shard.gather(torch.cat(parts), len(batch.group))  # (B, L)


@torch.no_grad()
def _values(critic: Critic, batch: Batch, shard: Shard = LOCAL) -> torch.Tensor:
    """The critic's values (B, L) of the completion positions; on a data-parallel rank its share of
    the rows, gathered from every rank."""
    part = shard.part(len(batch.group))
    values = critic(batch.input_ids[part], batch.attention_mask[part])  # (b, W + L)
    return shard.gather(batch.completion_slice(values), len(batch.group))  # (B, L)


def _masked_sum(x: torch.Tensor, mask: torch.Tensor) -> float:
    return float((x * mask).sum())


def _timing(
    collected: Collected, update_s: float, t0: float, completion_tokens: int
) -> dict[str, float]:
    step_s = time.perf_counter() - t0
    return {
        "rl/sample_s": collected.sample_s,
        "rl/judge_s": collected.judge_s,
        "rl/update_s": update_s,
        "rl/step_s": step_s,
        "rl/tokens_per_s": completion_tokens / step_s,
    }


def check_base(cfg: RunConfig, policy: Policy, task: Task) -> None:
    """The base must read the task's prompts and hold prompt + max_new_tokens positions
    (sampling.check_fits, on 64 training problems)."""
    check_fits(
        policy, task.sample("train", 64, cfg.seed), cfg.rl.max_new_tokens, "rl.max_new_tokens"
    )


def prepare_policy(cfg: RunConfig, policy: Policy) -> None:
    """Apply the `hf` training switches: LoRA adapters (Hugging Face models only); with the vllm
    sampler, check that vLLM can run here (a ConfigError before anything is written)."""
    hc = cfg.hf
    if uses_vllm(policy):
        vllm_sampler.check(policy)
    if hc.lora_r > 0:
        if not hasattr(policy, "enable_lora"):
            raise ConfigError(
                "hf.lora_r: LoRA is available for Hugging Face models; the tiny model trains in full"
            )
        if not getattr(policy, "lora", False):
            policy.enable_lora(
                hc.lora_r, hc.lora_alpha, hc.lora_dropout, hc.lora_targets, seed=cfg.seed
            )


def uses_vllm(policy: Policy) -> bool:
    """The policy samples with vLLM (`hf.sampler: vllm`): its engine is colocated with the trainer."""
    return getattr(policy, "sampler", "builtin") == "vllm"


def train_rl(
    cfg: RunConfig,
    run_dir: Path,
    base_dir: Path,
    on_step: Callable[[int, int, dict[str, Any]], None] | None = None,
    policy: Policy | None = None,
) -> Policy:
    """RL from the policy in `base_dir` (or `policy`, that base already loaded: it is trained in place),
    in `run_dir` (resumes from checkpoints/rl); saves run_dir/rl."""
    rc = cfg.rl
    task = rl_task(cfg)
    policy = policy if policy is not None else load_policy(base_dir, options=cfg.model_options())
    check_base(cfg, policy, task)
    prepare_policy(cfg, policy)
    learner = make_learner(
        cfg, policy
    )  # a reference, when one is needed, is copied before resuming
    if rc.judge is not None:
        learner.judge = load_judge(
            find_judge(rc.judge, run_dir, base_dir.parent), cfg.model_options()
        )
        if learner.judge.tokenizer.to_dict() != policy.tokenizer.to_dict():
            raise ConfigError(f"rl.judge: {rc.judge} reads another tokenizer than the policy")
    ckpt_dir = run_dir / "checkpoints" / "rl"
    start = resume(learner, ckpt_dir)
    workers = RolloutWorkers(cfg, base_dir, policy, start) if rc.rollout_workers else None
    metrics_path = run_dir / "metrics.jsonl"
    truncate_after(metrics_path, start, PREFIXES)
    policy.module.train()
    tb = run_dir / "tb" if cfg.tracking.tensorboard else None
    with (
        MetricsLogger(metrics_path, tb) as log,
        workers or contextlib.nullcontext(),
        data_parallel(cfg, base_dir, learner, build_learner, learn),  # rl.learners > 1: the ranks
    ):
        for step in range(start, rc.steps):
            try:
                row = rl_step(cfg, learner, task, step, workers)
            except Diverged as err:
                last = (
                    (ckpt_dir / "latest").read_text().strip()
                    if (ckpt_dir / "latest").is_file()
                    else None
                )
                kept = (
                    f"the last good checkpoint is {ckpt_dir / last}"
                    if last
                    else "no RL checkpoint was written yet"
                )
                raise Diverged(f"RL diverged at step {step + 1} ({err}); {kept}") from None
            if workers is not None:
                workers.publish(policy, step + 1)  # what the next step's draws sample with
            row["rl/lr"] = learner.optimizer.param_groups[0]["lr"]
            log.log(row, step=step + 1)
            if on_step is not None:
                on_step(step + 1, rc.steps, row)
            if (step + 1) % rc.checkpoint_every == 0 or step + 1 == rc.steps:
                checkpoint(learner, ckpt_dir, step + 1)
    policy.module.eval()
    policy.save(run_dir / "rl")
    return policy


def build_learner(cfg: RunConfig, base_dir: Path) -> Learner:
    """A learner built as train_rl builds one from the base in `base_dir` (a data-parallel rank's)."""
    policy = load_policy(base_dir, options=cfg.model_options())
    prepare_policy(cfg, policy)
    return make_learner(cfg, policy)


def checkpoint(learner: Learner, ckpt_dir: Path, step: int) -> None:
    """Write the learner's state; with data-parallel ranks, rank 0's (pulled into the driver's first)."""
    if learner.group is not None:
        learner.group.pull(learner)
    extra: dict[str, Any] = {"torch_rng": torch.get_rng_state(), "python_rng": random.getstate()}
    if learner.critic is not None:
        extra["critic"] = learner.critic.state_dict()
        extra["critic_optimizer"] = learner.critic_optimizer.state_dict()
    save_state(ckpt_dir, TrainState(step=step), learner.policy.module, learner.optimizer, extra)


def resume(learner: Learner, ckpt_dir: Path) -> int:
    """Load the newest RL checkpoint into `learner` in place; the step to start from (0 if none)."""
    found = latest_state(ckpt_dir, learner.policy.module, learner.optimizer)
    if found is None:
        return 0
    state, extra = found
    torch.set_rng_state(extra["torch_rng"])
    random.setstate(extra["python_rng"])
    if learner.critic is not None:
        learner.critic.load_state_dict(extra["critic"])
        learner.critic_optimizer.load_state_dict(extra["critic_optimizer"])
    return state.step
