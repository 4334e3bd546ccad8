"""Named registries: tasks, task families, rewards, advantage estimators, losses, KL estimators and
checkpoint loaders all register the same way and refuse a name clash the same way.

A `Registry` is a dict from name to object with two rules: `register` refuses a name that another
object holds (naming both; registering the same object again, or a redefinition of the same
qualified name such as a reloaded module, is allowed), and `lookup` fails with one ConfigError that
names the config field and the known names. Usage:

    LOSSES = Registry("policy loss")

    @LOSSES.decorator("ppo_clip")
    def ppo_clip(...): ...

    LOSSES.lookup("ppo_clip", field="rl.policy_loss")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from reasonlab.errors import ConfigError, short_repr

T = TypeVar("T")


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


class Registry(dict[str, T]):
    """name -> object, with one clash policy (refuse, naming both) and one unknown-name error."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, name: str, obj: T) -> T:
        """Put `obj` under `name`; ValueError when another object already holds the name."""
        known = self.get(name)
        if known is not None and known is not obj and _qualname(known) != _qualname(obj):
            raise ValueError(
                f"{self.kind} {name!r} is already registered by {_qualname(known)}; "
                f"cannot register {_qualname(obj)} under the same name"
            )
        self[name] = obj
        return obj

    def decorator(self, name: str) -> Callable[[T], T]:
        """`@registry.decorator(name)` registers the decorated object under `name`."""
        return lambda obj: self.register(name, obj)

    def lookup(self, name: Any, field: str | None = None, noun: str | None = None) -> T:
        """The object under `name`; ConfigError "<field>: unknown <noun> 'name' (known: ...)" otherwise."""
        obj = self.get(name) if isinstance(name, str) else None
        if obj is None:
            prefix = f"{field}: " if field else ""
            known = ", ".join(sorted(self))
            raise ConfigError(
                f"{prefix}unknown {noun or self.kind} {short_repr(name)} (known: {known})"
            )
        return obj
