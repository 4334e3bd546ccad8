"""Builtin sampler: determinism, ordering, greedy and logprobs against the full forward, stops."""

import pytest
import torch

from reasonlab.models import CharTokenizer, TinyPolicy, TransformerConfig
from reasonlab.sampling import generate, top_p_filter
from reasonlab.types import Problem

CFG = TransformerConfig(vocab_size=100, d_model=32, n_layers=2, n_heads=4, max_seq_len=64)
PROMPTS = ["1+1=", "12+345=", "7", "Q: 99-3?\n"]


def problems(prompts=PROMPTS):
    return [
        Problem(id=f"p{i}", task="test", prompt=p, answer="", difficulty=1)
        for i, p in enumerate(prompts)
    ]


@pytest.fixture(scope="module")
def policy():
    return TinyPolicy.create(CFG, seed=0)


def full_logits(policy, rollout):
    """Log-softmax of a full forward over prompt + completion, at the completion's positions: (N, V)."""
    ids = torch.tensor([rollout.prompt_ids + rollout.token_ids])
    with torch.no_grad():
        logits = policy.logits(ids)[0]
    p = len(rollout.prompt_ids)
    return logits[p - 1 : p - 1 + len(rollout.token_ids)]


def test_shapes_order_and_prompts(policy):
    out = generate(policy, problems(), n=3, seed=0, max_new_tokens=6)
    assert [r.problem_id for r in out] == [f"p{i}" for i in range(4) for _ in range(3)]
    tok = policy.tokenizer
    for r in out:
        prompt = PROMPTS[int(r.problem_id[1:])]
        assert r.prompt_ids == (tok.bos_id, *tok.encode(prompt))
        n = len(r.token_ids)
        assert 1 <= n <= 6 and len(r.logprobs) == n and r.mask == (1,) * n
        assert r.finish_reason in ("eos", "length")
        if r.finish_reason == "eos":
            assert r.token_ids[-1] == tok.eos_id and r.text == tok.decode(r.token_ids[:-1])
        else:
            assert n == 6 and tok.eos_id not in r.token_ids and r.text == tok.decode(r.token_ids)


def test_same_seed_same_rollouts_other_seed_differs(policy):
    a = generate(policy, problems(), n=4, seed=1, max_new_tokens=12)
    assert a == generate(policy, problems(), n=4, seed=1, max_new_tokens=12)
    assert [r.token_ids for r in a] != [
        r.token_ids for r in generate(policy, problems(), n=4, seed=2, max_new_tokens=12)
    ]


def test_rollouts_do_not_depend_on_batch_size(policy):
    a = generate(policy, problems(), n=3, seed=5, max_new_tokens=10, batch_size=256)
    b = generate(policy, problems(), n=3, seed=5, max_new_tokens=10, batch_size=5)
    assert [r.token_ids for r in a] == [r.token_ids for r in b]
    for ra, rb in zip(a, b):
        assert ra.logprobs == pytest.approx(rb.logprobs, abs=1e-5)


def test_greedy_is_argmax_of_full_forward(policy):
    out = generate(policy, problems(), n=2, seed=0, max_new_tokens=10, temperature=0.0)
    assert out[0] == out[1]  # greedy ignores the seed's randomness
    for r in out:
        logp = full_logits(policy, r).log_softmax(-1)
        assert list(r.token_ids) == logp.argmax(-1).tolist()
        picked = logp.gather(-1, torch.tensor(r.token_ids)[:, None]).squeeze(-1)
        assert torch.allclose(torch.tensor(r.logprobs), picked, atol=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_logprobs_match_full_forward(policy, temperature):
    out = generate(policy, problems(), n=3, seed=3, max_new_tokens=12, temperature=temperature)
    for r in out:
        logp = (full_logits(policy, r) / temperature).log_softmax(-1)
        picked = logp.gather(-1, torch.tensor(r.token_ids)[:, None]).squeeze(-1)
        assert torch.allclose(torch.tensor(r.logprobs), picked, atol=1e-5)


def test_tiny_top_p_is_greedy(policy):
    greedy = generate(policy, problems(), n=2, seed=0, max_new_tokens=10, temperature=0.0)
    nucleus = generate(policy, problems(), n=2, seed=9, max_new_tokens=10, top_p=1e-6)
    assert [r.token_ids for r in nucleus] == [r.token_ids for r in greedy]
    assert all(lp == pytest.approx(0.0, abs=1e-6) for r in nucleus for lp in r.logprobs)


def test_top_p_filter_keeps_the_smallest_sufficient_set():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = lambda p: torch.isfinite(top_p_filter(logits, p)).tolist()[0]  # noqa: E731
    assert kept(0.5) == [True, False, False, False]
    assert kept(0.6) == [True, True, False, False]
    assert kept(0.9) == [True, True, True, False]
    assert kept(1.0) == [True, True, True, True]


def test_training_mode_is_restored(policy):
    policy.module.train()
    generate(policy, problems()[:1], n=1, seed=0, max_new_tokens=2)
    assert policy.module.training
    policy.module.eval()


def test_bad_arguments(policy):
    for kwargs in [
        dict(n=0),
        dict(temperature=-1.0),
        dict(top_p=0.0),
        dict(stop=[""]),
        dict(stop="\n"),
    ]:
        args = dict(n=1, seed=0) | kwargs
        with pytest.raises(ValueError):
            generate(policy, problems(), **args)


class ScriptedPolicy:
    """A Policy whose completion of prompt i is SCRIPTS[prompt] (then "z" forever), near-deterministically."""

    def __init__(self, scripts: dict[str, list[int]]):
        self.tokenizer = CharTokenizer()
        self.module = torch.nn.Linear(1, 1)
        self.scripts = scripts
        self.steps = 0

    def _script(self, ids):
        prompt = self.tokenizer.decode(ids)
        return self.scripts[prompt] + self.tokenizer.encode("z" * 100)

    def new_cache(self, batch_size, max_len):
        return {"scripts": None, "done": 0}

    def decode_step(self, input_ids, attention_mask, cache):
        if cache["scripts"] is None:
            cache["scripts"] = [self._script(row) for row in input_ids.tolist()]
        else:
            self.steps += 1
        logits = torch.zeros(input_ids.shape[0], input_ids.shape[1], self.tokenizer.vocab_size)
        for b, script in enumerate(cache["scripts"]):
            logits[b, -1, script[cache["done"]]] = 50.0
        cache["done"] += 1
        return logits

    def logits(self, input_ids, attention_mask=None):
        raise NotImplementedError

    def num_parameters(self):
        return 0

    def save(self, directory):
        raise NotImplementedError


def scripted(texts: dict[str, str]) -> ScriptedPolicy:
    tok = CharTokenizer()
    return ScriptedPolicy(
        {p: [tok.eos_id if c == "$" else tok.encode(c)[0] for c in t] for p, t in texts.items()}
    )


def test_stop_strings_cut_text_and_tokens():
    pol = scripted({"a": "12\n\nxyz", "b": "no stop here", "c": "x=5. y", "d": "4\n5\n\n"})
    out = generate(
        pol, problems(["a", "b", "c", "d"]), n=1, seed=0, max_new_tokens=12, stop=["\n\n", "."]
    )
    assert [(r.text, r.finish_reason) for r in out] == [
        ("12\n\n", "stop"),
        ("no stop here", "length"),
        ("x=5.", "stop"),
        ("4\n5\n\n", "stop"),
    ]
    for r in out:
        assert len(r.token_ids) == len(r.logprobs) == len(r.mask)
        assert pol.tokenizer.decode(r.token_ids) == r.text


def test_stop_strings_in_the_prompt_do_not_count():
    out = generate(
        scripted({"x.": "ab.c"}), problems(["x."]), n=1, seed=0, max_new_tokens=8, stop=["."]
    )
    assert (out[0].text, out[0].finish_reason) == ("ab.", "stop")


def test_eos_finishes_and_is_kept_in_tokens():
    pol = scripted({"a": "hi$there", "b": "$"})
    out = generate(pol, problems(["a", "b"]), n=2, seed=0, max_new_tokens=10, stop=["q"])
    eos = pol.tokenizer.eos_id
    assert [(r.text, r.finish_reason) for r in out] == [("hi", "eos")] * 2 + [("", "eos")] * 2
    assert out[0].token_ids == (*pol.tokenizer.encode("hi"), eos)
    assert pol.steps == 2  # decoding stopped once every sequence had finished


def test_eos_before_a_stop_string_wins():
    out = generate(
        scripted({"a": "x$.."}), problems(["a"]), n=1, seed=0, max_new_tokens=6, stop=["."]
    )
    assert (out[0].text, out[0].finish_reason) == ("x", "eos")
