"""One registry helper, one clash policy: every registry refuses a taken name, naming both objects."""

from __future__ import annotations

import pytest

from reasonlab.errors import ConfigError
from reasonlab.models import checkpoint
from reasonlab.registry import Registry
from reasonlab.rl import advantages, losses, rewards
from reasonlab.tasks import base as tasks_base


def first(fn):
    return 1


def second(fn):
    return 2


def test_register_refuses_a_taken_name_naming_both():
    reg: Registry = Registry("thing")
    reg.register("a", first)
    reg.register("a", first)  # the same object again is fine
    with pytest.raises(
        ValueError, match=r"thing 'a' is already registered by .*first; cannot register .*second"
    ):
        reg.register("a", second)
    assert reg["a"] is first


def test_lookup_names_the_field_and_the_known_names():
    reg: Registry = Registry("estimator")
    reg.decorator("b")(second)
    reg.decorator("a")(first)
    assert reg.lookup("a", "rl.x") is first
    with pytest.raises(ConfigError, match=r"^rl\.x: unknown estimator 'c' \(known: a, b\)$"):
        reg.lookup("c", "rl.x")
    with pytest.raises(ConfigError, match=r"^unknown estimator 3 \(known: a, b\)$"):
        reg.lookup(3)


@pytest.mark.parametrize(
    "registry, name",
    [
        (tasks_base._REGISTRY, "arith"),
        (tasks_base._FAMILIES, "gym"),
        (rewards.REWARDS, "outcome"),
        (advantages.ADVANTAGES, "grpo"),
        (losses.AGGREGATIONS, "token_mean"),
        (losses.POLICY_LOSSES, "ppo_clip"),
        (losses.KL_ESTIMATORS, "k3"),
        (checkpoint._LOADERS, "hf"),
    ],
)
def test_every_registry_refuses_a_clash(registry, name):
    assert isinstance(registry, Registry) and name in registry
    with pytest.raises(ValueError, match=f"{name!r} is already registered by"):
        registry.register(name, second)
    assert registry[name] is not second
