"""Bad input to a search method: one ConfigError with one line naming the method and the field.

Every method checks its budget, its settings and what it needs (a judge; a task whose verifier
marks step boundaries, for the step-level methods) before it samples anything.
"""

from __future__ import annotations

from collections.abc import Sequence

from reasonlab.errors import ConfigError, short_repr
from reasonlab.judges.base import AGGREGATIONS
from reasonlab.search.base import SearchContext
from reasonlab.types import Problem

TERMINALS = ("verifier", "judge")


def check_budget(method: str, budget: object, least: int = 1) -> int:
    """The budget N as an int; ConfigError unless it is an integer >= `least`."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < least:
        raise ConfigError(
            f"search budget: method {method!r} needs an integer >= {least}, got {short_repr(budget)}"
        )
    return budget


def check_settings(method: str, ctx: SearchContext) -> None:
    """The shared knobs every method reads: lengths, temperature, aggregation."""
    s = ctx.settings
    if isinstance(s.max_new_tokens, bool) or not isinstance(s.max_new_tokens, int):
        raise ConfigError(f"search.max_new_tokens: must be an integer, got {s.max_new_tokens!r}")
    if s.max_new_tokens < 1:
        raise ConfigError(f"search.max_new_tokens: method {method!r} needs at least 1")
    if not s.temperature >= 0 or not 0 < s.top_p <= 1:
        raise ConfigError(
            f"search.temperature / search.top_p: method {method!r} needs temperature >= 0 and "
            f"0 < top_p <= 1, got {s.temperature!r}, {s.top_p!r}"
        )
    if s.aggregation not in AGGREGATIONS:
        raise ConfigError(
            f"search.aggregation: unknown aggregation {short_repr(s.aggregation)} "
            f"(known: {', '.join(AGGREGATIONS)})"
        )


def require_judge(method: str, ctx: SearchContext) -> None:
    if ctx.judge is None:
        raise ConfigError(
            f"search.judge: method {method!r} needs a judge (only majority works without)"
        )


def require_steps(method: str, ctx: SearchContext, problems: Sequence[Problem]) -> None:
    """A step-level method needs a verifier that judges steps (arith, countdown, chess; not math or
    gym, whose `steps_valid` is None). Probed on the first problem's bare answer line."""
    s = ctx.settings
    if not isinstance(s.step_stop, str) or not s.step_stop:
        raise ConfigError(f"search.step_stop: method {method!r} needs a non-empty step boundary")
    if not problems:
        return
    probe = ctx.task.verify(problems[0], ctx.task.answer_line(problems[0].answer) + "\n")
    if probe.steps_valid is None:
        raise ConfigError(
            f"search.method: {method!r} searches over steps, but task {ctx.task.name!r} has no step "
            "boundaries (its verifier does not judge steps); use majority, best_of_n or "
            "weighted_best_of_n"
        )


def check_width(method: str, ctx: SearchContext, budget: int) -> int:
    """beam_width M as an int in 1..N; ConfigError naming search.beam_width otherwise."""
    m = ctx.settings.beam_width
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ConfigError(f"search.beam_width: method {method!r} needs an integer >= 1, got {m!r}")
    if budget < m:
        raise ConfigError(
            f"search.beam_width: method {method!r} needs a budget N >= beam_width, "
            f"got N={budget} < beam_width={m}"
        )
    return m


def check_expansions(method: str, ctx: SearchContext) -> int:
    e = ctx.settings.max_expansions
    if isinstance(e, bool) or not isinstance(e, int) or e < 1:
        raise ConfigError(
            f"search.max_expansions: method {method!r} needs an integer >= 1, got {e!r}"
        )
    return e


def check_mcts(ctx: SearchContext) -> None:
    s = ctx.settings
    if not s.c_puct >= 0:
        raise ConfigError(f"search.c_puct: method 'mcts' needs c_puct >= 0, got {s.c_puct!r}")
    if s.mcts_terminal not in TERMINALS:
        raise ConfigError(
            f"search.mcts_terminal: unknown value {short_repr(s.mcts_terminal)} "
            f"(known: {', '.join(TERMINALS)})"
        )
    m = s.beam_width
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ConfigError(f"search.beam_width: method 'mcts' needs an integer >= 1, got {m!r}")
