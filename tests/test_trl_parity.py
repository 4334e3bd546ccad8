"""The GRPO-family losses against TRL 1.16's `GRPOTrainer._compute_loss`: same loss and gradients.

One real `trl.GRPOTrainer` on a tiny random-weight Qwen2 (CPU, fp32, built locally, no hub) and one
ragged batch: 2 prompts of 4 tokens x 3 completions of 8, 2, 5 / 1, 7, 3 tokens (right padding),
old and reference logprobs perturbed away from the current ones so ratios differ from 1 and some
clip. TRL's loss is `trainer._compute_loss`; reasonlab's is `policy_objective` on the logprobs of
TRL's own `_get_per_token_logps_and_entropies` (the same model forward on both sides), with the
advantages of reasonlab's `grpo` estimator and the settings that reproduce TRL: std_eps 1e-4,
kl_importance_correction = TRL's use_bias_correction_kl, and the pairings
    loss_type grpo <-> seq_mean_token_mean, bnpo <-> token_mean,
    dapo <-> token_mean (num_items_in_batch = the batch's tokens: one process, no accumulation),
    dr_grpo <-> seq_sum_norm (constant = max_completion_length),
    importance_sampling_level token <-> ppo_clip, sequence <-> gspo.

Tolerances: the loss and its gradient w.r.t. the per-token logprobs (B, T) agree to rtol 1e-6,
atol 1e-8. Parameter gradients agree to rtol 1e-6, atol 1e-6: TRL's fused log-prob head computes
in fp32 whatever the model's dtype, so the two sides' last-bit differences in dL/dlogp come back
through the backward pass as ~1e-7 (on gradients up to ~0.4). The shipped defaults (std_eps 1e-6,
no KL correction) differ from TRL's defaults by more than 1e-5 in the gradient.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from reasonlab.config import RLConfig
from reasonlab.rl.advantages import AdvantageInputs, get_advantage
from reasonlab.rl.losses import get_aggregation, policy_objective
from reasonlab.rl.trainer import advantage_params, objective_params

pytest.importorskip(
    "trl", reason="the TRL parity test needs trl (the dev extra installs trl==1.16.0)"
)

GROUP = 3
PROMPT_LEN = 4
WIDTH = 8  # completion tensor width (the longest completion of the batch)
MAX_COMPLETION = 10  # TRL's max_completion_length = max_new_tokens (Dr. GRPO's constant)
LENGTHS = [8, 2, 5, 1, 7, 3]
REWARDS = [1.0, 0.0, 0.5, 0.0, 0.2, 1.0]
BETA = 0.04
PAIRS = [
    ("grpo", "seq_mean_token_mean"),
    ("bnpo", "token_mean"),
    ("dapo", "token_mean"),
    ("dr_grpo", "seq_sum_norm"),
]
TIGHT = dict(rtol=1e-6, atol=1e-8)  # loss, dL/dlogp
PARAMS = dict(rtol=1e-6, atol=1e-6)  # parameter gradients (fp32 log-prob head, see above)


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    """A GRPOTrainer as TRL builds it, on CPU in fp32, set up as its training loop would be."""
    import datasets
    import transformers
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    from reasonlab.models.tiny_hf import train_tokenizer

    transformers.logging.set_verbosity_error()
    tok = train_tokenizer("qwen2", vocab_size=300)
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        attention_dropout=0.0,  # deterministic in train mode
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    with warnings.catch_warnings():  # transformers 5 renames gradient_checkpointing: FutureWarnings
        warnings.simplefilter("ignore")
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=lambda completions, **_: [0.0] * len(completions),
            args=GRPOConfig(
                output_dir=str(tmp_path_factory.mktemp("trl")),
                report_to="none",
                save_strategy="no",
                disable_tqdm=True,
                use_cpu=True,
                bf16=False,
                fp16=False,
                gradient_checkpointing=False,
                per_device_train_batch_size=len(LENGTHS),
                gradient_accumulation_steps=1,
                steps_per_generation=1,
                num_generations=GROUP,
                max_completion_length=MAX_COMPLETION,
                temperature=1.0,
                beta=0.0,  # > 0 would load a reference model from the hub: set on the trainer
                epsilon=0.2,
                epsilon_high=0.28,
                scale_rewards="group",
            ),
            train_dataset=datasets.Dataset.from_dict({"prompt": ["1+1="] * len(LENGTHS)}),
            processing_class=tok,
        )
        assert not model.is_gradient_checkpointing and model.dtype == torch.float32
    assert trainer.use_vllm is False and trainer.top_entropy_quantile == 1.0
    assert trainer.off_policy_mask_threshold is None and trainer.args.delta is None
    assert not trainer._entropy_bonus_enabled and not trainer.aux_loss_enabled
    trainer.current_gradient_accumulation_steps = 1  # what Trainer's loop sets before a step
    model.train()
    return trainer


@pytest.fixture(scope="module")
def batch(trainer):
    """One ragged batch: ids (B, P + T), masks, rewards (B,), old / reference logprobs (B, T)."""
    g = torch.Generator().manual_seed(0)
    b = len(LENGTHS)
    vocab = trainer.model.config.vocab_size
    prompt_ids = torch.randint(3, vocab, (b // GROUP, PROMPT_LEN), generator=g)
    prompt_ids = prompt_ids.repeat_interleave(GROUP, dim=0)  # (B, P): a group shares its prompt
    completion_ids = torch.randint(3, vocab, (b, WIDTH), generator=g)  # (B, T)
    lengths = torch.tensor(LENGTHS)
    completion_mask = (torch.arange(WIDTH)[None] < lengths[:, None]).long()  # (B, T)
    completion_ids = completion_ids.masked_fill(
        completion_mask == 0, trainer.processing_class.pad_token_id
    )
    prompt_mask = torch.ones_like(prompt_ids)
    input_ids = torch.cat([prompt_ids, completion_ids], 1)  # (B, P + T)
    attention_mask = torch.cat([prompt_mask, completion_mask], 1)  # (B, P + T)
    with torch.no_grad():
        logp, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, input_ids, attention_mask, WIDTH
        )  # (B, T)
    # old: token noise plus a per-sequence shift, so token and sequence ratios both clip somewhere
    shift = torch.tensor([-0.35, 0.3, 0.0, 0.3, 0.1, -0.1])[:, None]  # (B, 1)
    old = logp + 0.3 * torch.randn(logp.shape, generator=g) + shift  # (B, T)
    ref = logp + 0.5 * torch.randn(logp.shape, generator=g)  # (B, T)
    return {
        "prompt_ids": prompt_ids,
        "prompt_mask": prompt_mask,
        "completion_ids": completion_ids,
        "completion_mask": completion_mask,
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "lengths": lengths,
        "rewards": torch.tensor(REWARDS),
        "old": old,
        "ref": ref,
    }


def trl_advantages(rewards: torch.Tensor, scale: str) -> torch.Tensor:
    """TRL 1.16's advantages (`_generate_and_score_completions`, sum_then_normalize), (B,)."""
    from trl.trainer.utils import nanstd

    mean = torch.nanmean(rewards.view(-1, GROUP), dim=1).repeat_interleave(GROUP)  # (B,)
    if scale == "group":
        std = nanstd(rewards.view(-1, GROUP), dim=1).repeat_interleave(GROUP)  # (B,)
    else:
        std = nanstd(rewards).expand_as(rewards)  # (B,)
    return (rewards - mean) / (std + 1e-4)


def reasonlab_advantages(batch: dict, rc: RLConfig) -> torch.Tensor:
    """reasonlab's estimator on the batch: the reward on each completion's last token, (B, T)."""
    last = torch.nn.functional.one_hot(batch["lengths"] - 1, WIDTH).float()  # (B, T)
    inputs = AdvantageInputs(last * batch["rewards"][:, None], batch["completion_mask"], GROUP)
    advantages, _ = get_advantage(rc.advantage)(inputs, advantage_params(rc))
    return advantages


def rl_config(aggregation: str, level: str, **fields) -> RLConfig:
    return RLConfig(
        aggregation=aggregation,
        policy_loss="ppo_clip" if level == "token" else "gspo",
        epsilon_low=0.2,
        epsilon_high=0.28,
        beta=BETA,
        kl_estimator="k3",
        max_new_tokens=MAX_COMPLETION,
        **fields,
    )


def trl_side(trainer, batch, monkeypatch, loss_type, level, correction):
    """TRL's loss, its gradient w.r.t. the per-token logprobs (B, T), the parameter gradients."""
    trainer.loss_type = loss_type
    trainer.importance_sampling_level = level
    trainer.beta = BETA
    trainer.args.use_bias_correction_kl = correction
    seen = []
    forward = trainer._get_per_token_logps_and_entropies

    def keep_logps(*args, **kwargs):
        logps, entropies, aux = forward(*args, **kwargs)
        logps.retain_grad()  # no change to the values: only keeps dL/dlogp
        seen.append(logps)
        return logps, entropies, aux

    monkeypatch.setattr(trainer, "_get_per_token_logps_and_entropies", keep_logps)
    inputs = {
        k: batch[k] for k in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask")
    }
    inputs.update(
        advantages=trl_advantages(batch["rewards"], "group"),  # (B,)
        old_per_token_logps=batch["old"],
        ref_per_token_logps=batch["ref"],
        num_items_in_batch=batch["completion_mask"].sum(),
    )
    trainer.model.zero_grad(set_to_none=True)
    loss = trainer._compute_loss(trainer.model, inputs)
    loss.backward()
    monkeypatch.undo()
    (logps,) = seen
    return loss.detach(), logps.grad, grads(trainer.model)


def reasonlab_side(trainer, batch, rc: RLConfig):
    """reasonlab's loss on TRL's logprobs, dL/dlogp (B, T), the parameter gradients, the terms."""
    trainer.model.zero_grad(set_to_none=True)
    logp, _, _ = trainer._get_per_token_logps_and_entropies(
        trainer.model, batch["input_ids"], batch["attention_mask"], WIDTH
    )  # (B, T)
    logp.retain_grad()
    loss, terms = policy_objective(
        logp,
        batch["old"],
        batch["ref"],
        reasonlab_advantages(batch, rc),
        batch["completion_mask"],
        get_aggregation(rc.aggregation),
        rc.max_new_tokens,
        objective_params(rc),
    )
    loss.backward()
    return loss.detach(), logp.grad, grads(trainer.model), terms


def grads(model) -> dict[str, torch.Tensor]:
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def max_grad_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.mark.parametrize("scale", ["group", "batch"])
def test_grpo_advantages_equal_trls_with_std_eps_1e_4(batch, scale):
    expected = trl_advantages(batch["rewards"], scale)  # (B,)
    rc = RLConfig(std_scaling=scale, std_eps=1e-4)
    mask = batch["completion_mask"].bool()
    actual = reasonlab_advantages(batch, rc)  # (B, T)
    torch.testing.assert_close(actual, expected[:, None].expand_as(actual) * mask, **TIGHT)
    shipped = reasonlab_advantages(batch, RLConfig(std_scaling=scale))  # std_eps 1e-6
    assert float((shipped[:, 0] - expected).abs().max()) > 1e-5


@pytest.mark.parametrize("level", ["token", "sequence"])
@pytest.mark.parametrize("correction", [False, True])
@pytest.mark.parametrize("loss_type, aggregation", PAIRS)
def test_loss_and_gradients_equal_trls(
    trainer, batch, monkeypatch, loss_type, aggregation, level, correction
):
    expected_loss, expected_dlogp, expected_grads = trl_side(
        trainer, batch, monkeypatch, loss_type, level, correction
    )
    rc = rl_config(aggregation, level, std_eps=1e-4, kl_importance_correction=correction)
    loss, dlogp, actual_grads, terms = reasonlab_side(trainer, batch, rc)
    assert terms.clipped.any() and terms.kl_penalty is not None  # the clip and the KL both act
    torch.testing.assert_close(loss, expected_loss, **TIGHT)
    torch.testing.assert_close(dlogp, expected_dlogp, **TIGHT)
    for name, grad in expected_grads.items():
        torch.testing.assert_close(
            actual_grads[name], grad, **PARAMS, msg=lambda m, n=name: f"{n}: {m}"
        )


def test_shipped_defaults_differ_from_trls_defaults(trainer, batch, monkeypatch):
    """TRL's defaults (std + 1e-4, use_bias_correction_kl=True) against reasonlab's shipped ones
    (std + 1e-6, no correction), beta 0.04: each of the two differences alone moves the gradient
    well past the parity tolerance."""
    from trl import GRPOConfig

    assert GRPOConfig.__dataclass_fields__["use_bias_correction_kl"].default is True
    _, _, expected_grads = trl_side(trainer, batch, monkeypatch, "grpo", "token", True)
    aligned = {"std_eps": 1e-4, "kl_importance_correction": True}
    for fields in ({}, {"std_eps": 1e-4}, {"kl_importance_correction": True}, aligned):
        rc = rl_config("seq_mean_token_mean", "token", **fields)
        _, _, actual_grads, _ = reasonlab_side(trainer, batch, rc)
        diff = max_grad_diff(actual_grads, expected_grads)
        if fields == aligned:
            assert diff < PARAMS["atol"], diff
        else:
            assert diff > 10 * PARAMS["atol"], (fields, diff)
