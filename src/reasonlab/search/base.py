"""What every test-time search method shares: its inputs, its result per problem, its compute.

A method spends a budget of N completions per problem (N is the "budget" of search-and-learn and
Snell et al. 2024: best-of-N samples N completions; a beam search of width M keeps M beams and
samples N candidates per expansion, N / M per beam; DVTS runs N / M independent subtrees of width
M; MCTS runs N simulations) and returns one chosen completion per problem, with what it cost:
tokens the policy generated, tokens the judge read, wall time. FLOPs are counted as 2 x parameters
per token for each model (the forward pass only; prompt prefill is not counted, for every method
alike), so methods compare at equal compute. Methods are registered by name in `METHODS`.

Usage:
    from reasonlab.search.base import SearchContext, SearchSettings, get_method
    outcomes = get_method("beam")(SearchContext(policy, task, judge), problems, budget=16, seed=0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reasonlab.registry import Registry
from reasonlab.types import Problem

if TYPE_CHECKING:
    from reasonlab.judges.base import Judge
    from reasonlab.models.base import Policy
    from reasonlab.tasks.base import Task


@dataclass(frozen=True)
class SearchSettings:
    """Knobs shared by the methods; each method reads the ones it needs."""

    temperature: float = 0.8  # sampling temperature of every completion and expansion
    top_p: float = 1.0
    max_new_tokens: int = 64  # longest completion (a beam stops growing there)
    beam_width: int = 4  # M: beams kept (beam), subtree width (dvts)
    aggregation: str = "last"  # how a judge's step scores rank a partial or whole solution
    step_stop: str = "\n"  # the task's step boundary: an expansion generates up to it
    c_puct: float = 1.0  # MCTS exploration constant
    max_expansions: int = 40  # beam/dvts: most expansions (search-and-learn's num_iterations); the
    # last one generates to the end of the solution (no step stop), so every kept beam finishes
    mcts_terminal: str = "judge"  # MCTS value of a finished solution: "judge" (the judge's
    # aggregated score: no answer key at test time, like every other method) or "verifier" (1/0
    # from the task's verifier, which reads the reference answer, as rStar-Math's training-time
    # rollouts do: an oracle, not a test-time method)


@dataclass
class Compute:
    """What a search spent: policy tokens generated, judge tokens read, wall seconds."""

    generated_tokens: int = 0
    judge_tokens: int = 0
    wall_s: float = 0.0

    def add(self, other: Compute) -> None:
        self.generated_tokens += other.generated_tokens
        self.judge_tokens += other.judge_tokens
        self.wall_s += other.wall_s

    def flops(self, policy_params: int, judge_params: int) -> float:
        """2 x parameters per token of each model (forward passes; prefill not counted)."""
        return 2.0 * (policy_params * self.generated_tokens + judge_params * self.judge_tokens)


@dataclass(frozen=True)
class SearchOutcome:
    """One problem's result: the chosen completion, its verdict, what was considered and spent."""

    problem_id: str
    text: str
    answer: str | None
    correct: bool
    candidates: int  # complete solutions the method chose among
    compute: Compute = field(default_factory=Compute)


@dataclass
class SearchContext:
    """The models a search uses. `judge` None means no judge (only majority vote works then)."""

    policy: Policy
    task: Task
    judge: Judge | None = None
    settings: SearchSettings = field(default_factory=SearchSettings)


SearchMethod = Callable[[SearchContext, Sequence[Problem], int, int], list[SearchOutcome]]
"""(context, problems, budget N, seed) -> one SearchOutcome per problem, in order."""

METHODS: Registry[SearchMethod] = Registry("search method")


def register_method(name: str) -> Callable[[SearchMethod], SearchMethod]:
    """Decorator: register a search method under `name`."""
    return METHODS.decorator(name)


def get_method(name: str) -> SearchMethod:
    """The method registered as `name`; ConfigError naming --methods otherwise."""
    return METHODS.lookup(name, "--methods")
