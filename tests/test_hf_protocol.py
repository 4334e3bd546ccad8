"""The Policy members the RL trainer reads (`max_seq_len`, `completion_logits`, `critic_body`) on a tiny
Hugging Face model built locally, on the test device (tests/conftest.py) in its `auto` dtype: the
trainer no longer probes model types."""

import pytest
import torch

pytest.importorskip(
    "transformers", reason="Hugging Face tests need transformers: pip install 'reasonlab[hf]'"
)

from reasonlab.config import config_from_dict  # noqa: E402
from reasonlab.errors import ConfigError  # noqa: E402
from reasonlab.models import Policy, load_policy  # noqa: E402
from reasonlab.models.tiny_hf import build_tiny_hf  # noqa: E402
from reasonlab.rl.critic import Critic  # noqa: E402
from reasonlab.rl.trainer import check_base  # noqa: E402
from reasonlab.tasks import get_task  # noqa: E402


@pytest.fixture(scope="module")
def policy(tmp_path_factory, device):
    folder = build_tiny_hf(tmp_path_factory.mktemp("hf") / "qwen2", "qwen2", seed=2)
    return load_policy(folder, options={"device": str(device)})


def test_runs_on_the_test_device_in_the_auto_dtype(policy, device, auto_dtype):
    weight = next(policy.module.parameters())
    assert weight.device.type == device.type and weight.dtype == auto_dtype


def test_members_of_the_protocol(policy):
    assert isinstance(policy, Policy)
    assert policy.max_seq_len == policy.module.config.max_position_embeddings == 4096
    assert policy.critic_body() is None
    with pytest.raises(ConfigError, match="tiny transformer bases only"):
        Critic.from_policy(policy)


def test_completion_logits_are_the_full_forward_of_prompt_and_completion(policy):
    g = torch.Generator().manual_seed(0)
    pad = policy.tokenizer.pad_id
    prompt_ids = torch.randint(5, 200, (2, 6), generator=g)
    prompt_mask = torch.ones_like(prompt_ids)
    prompt_ids[1, :2], prompt_mask[1, :2] = pad, 0  # left-padded prompt
    group = torch.tensor([0, 0, 1, 1, 1])
    completions = torch.randint(5, 200, (5, 4), generator=g)
    completion_mask = torch.ones_like(completions)
    completions[1, 2:], completion_mask[1, 2:] = pad, 0  # right-padded completion
    ids = torch.cat([prompt_ids[group], completions], 1)
    mask = torch.cat([prompt_mask[group], completion_mask], 1)
    got = policy.completion_logits(prompt_ids, prompt_mask, completions, completion_mask, group)
    assert got.shape == (5, 4, policy.module.config.vocab_size) and got.requires_grad
    assert torch.equal(got, policy.logits(ids, mask)[:, 5:9])  # the same computation, in any dtype


def test_check_base_reads_max_seq_len(policy):
    cfg = config_from_dict(
        {
            "task": {"name": "arith", "knobs": {"n_operands": 2, "digits": 1, "operators": "+"}},
            "rl": {"max_new_tokens": 5000},
        }
    )
    with pytest.raises(
        ConfigError, match="rl.max_new_tokens: prompts of .* exceed the model's max_seq_len 4096"
    ):
        check_base(cfg, policy, get_task("arith", n_operands=2, digits=1, operators="+"))
