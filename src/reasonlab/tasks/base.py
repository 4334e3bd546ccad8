"""The Task protocol, the task registry, knob validation and the train/test split.

A task owns its problem generator and its exact verifier. Knobs are the keyword arguments of the
task's constructor (all with defaults); `task.knobs` holds the resolved values. A problem belongs
to the test split iff the first 8 bytes of sha256(prompt), read as a fraction of 2**64, are below
the task's `test_fraction` knob, so train and test are disjoint whatever the seed.

Usage:
    from reasonlab.tasks import get_task
    task = get_task("arith", n_operands=3, digits=2)
    problems = task.sample("train", n=100, seed=0)
    verdict = task.verify(problems[0], "answer: 66\\n")
"""

from __future__ import annotations

import abc
import hashlib
import inspect
import math
import random
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, TypeVar

from reasonlab.errors import ConfigError, ReasonlabError, short_repr
from reasonlab.registry import Registry
from reasonlab.types import Problem, Verdict

Split = Literal["train", "test"]
SPLITS: tuple[str, ...] = ("train", "test")


def problem_id(task: str, prompt: str) -> str:
    """A short stable hex id: the first 12 hex digits of sha256(task name + NUL + prompt)."""
    return hashlib.sha256(f"{task}\0{prompt}".encode("utf-8", "surrogatepass")).hexdigest()[:12]


def split_of_prompt(prompt: str, test_fraction: float) -> str:
    """'test' if the prompt's sha256 fraction is below `test_fraction`, else 'train'."""
    digest = hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2**64 < test_fraction else "train"


def int_knob(task: str, name: str, value: Any, lo: int, hi: int) -> int:
    """Validate an integer knob in [lo, hi]; ConfigError naming the knob otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(
            f"invalid knob {name}={short_repr(value)} for task '{task}': "
            f"must be an integer from {lo} to {hi}"
        )
    return value


def fraction_knob(task: str, name: str, value: Any) -> float:
    """Validate a fraction knob in [0, 1]; ConfigError naming the knob otherwise."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ConfigError(
            f"invalid knob {name}={short_repr(value)} for task '{task}': "
            "must be a number from 0 to 1"
        )
    return float(value)


class Task(abc.ABC):
    """A rule-based task: random problems, an exact verifier, reference and wrong steps.

    Subclasses call `super().__init__(test_fraction=...)`, then set `self.knobs` to every resolved
    knob (test_fraction included).
    """

    name: ClassVar[str] = ""
    difficulty_knob: ClassVar[str | None] = None
    """The knob whose value is Problem.difficulty (None if the task has no single one)."""
    # False where the answer line alone can never be CORRECT (countdown: the target is given)
    supports_answer_only: ClassVar[bool] = True
    max_new_tokens: ClassVar[int] = 64
    """The completion length this task's solutions need, used where no length is given (`reasonlab eval`)."""
    knobs: dict[str, Any]
    test_fraction: float

    def __init__(self, *, test_fraction: float = 0.1) -> None:
        self.test_fraction = fraction_knob(self.name, "test_fraction", test_fraction)
        self.knobs = {"test_fraction": self.test_fraction}

    @abc.abstractmethod
    def generate(self, rng: random.Random) -> Problem:
        """One random problem, deterministic given the state of `rng`."""

    @abc.abstractmethod
    def verify(self, problem: Problem, text: str) -> Verdict:
        """Judge a completion. Pure, deterministic and total: malformed text is a verdict."""

    @abc.abstractmethod
    def reference_steps(self, problem: Problem) -> list[str]:
        """The step lines (without newlines) of a correct reference solution."""

    @abc.abstractmethod
    def wrong_step(self, problem: Problem, index: int, rng: random.Random) -> str:
        """A plausible but invalid version of reference step `index`; verify judges it invalid."""

    def reference_continuation(self, problem: Problem, prefix: str) -> str:
        """How a perfect solver continues the partial solution `prefix`: it follows the rules from the
        state the prefix wrote (a wrong value written there is carried on, not corrected), then writes
        the answer line. Used to test Monte-Carlo step labels; a task may leave it unimplemented."""
        raise ReasonlabError(f"task '{self.name}' has no reference continuation")

    def make_problem(
        self, prompt: str, answer: str, difficulty: int, meta: Mapping[str, Any]
    ) -> Problem:
        """Build a Problem of this task, with its id derived from the task name and prompt."""
        return Problem(
            id=problem_id(self.name, prompt),
            task=self.name,
            prompt=prompt,
            answer=answer,
            difficulty=difficulty,
            meta=dict(meta),
        )

    def at_level(self, level: int) -> Task:
        """This task with its difficulty knob set to `level`, every other knob kept (how eval.levels and
        pretrain.levels change a task's difficulty); ConfigError if the task has no difficulty knob or
        `level` is not a valid value of it."""
        if self.difficulty_knob is None:
            raise ConfigError(f"task {self.name!r} has no difficulty knob")
        return get_task(self.name, **{**self.knobs, self.difficulty_knob: level})

    def split_of(self, problem: Problem) -> str:
        """'train' or 'test', decided by a stable hash of the prompt."""
        return split_of_prompt(problem.prompt, self.test_fraction)

    @staticmethod
    def answer_line(answer: str) -> str:
        """The final line of every completion (without its newline)."""
        return f"answer: {answer}"

    def sample(self, split: Split, n: int, seed: int, distinct: bool = True) -> list[Problem]:
        """Exactly `n` problems of `split`, drawn with random.Random(seed); distinct unless told not.

        Raises ReasonlabError when `n` distinct problems are not found within a bounded number of
        draws (the problem space of the chosen knobs is too small for that split).
        """
        if split not in SPLITS:
            raise ConfigError(f"invalid split {short_repr(split)}: must be 'train' or 'test'")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"invalid number of problems n={short_repr(n)}: must be an int >= 0")
        share = self.test_fraction if split == "test" else 1.0 - self.test_fraction
        if n > 0 and share <= 0.0:
            raise ReasonlabError(
                f"task '{self.name}' has no {split} problems (test_fraction={self.test_fraction})"
            )
        max_draws = max(1000, math.ceil(50 * n / share)) if n else 0
        rng = random.Random(seed)
        seen: set[str] = set()
        problems: list[Problem] = []
        for _ in range(max_draws):
            if len(problems) == n:
                break
            problem = self.generate(rng)
            if (distinct and problem.prompt in seen) or self.split_of(problem) != split:
                continue
            seen.add(problem.prompt)
            problems.append(problem)
        if len(problems) < n:
            raise ReasonlabError(
                f"task '{self.name}' found only {len(problems)} distinct {split} problems of the "
                f"{n} asked for in {max_draws} draws; ask for fewer or widen the knobs {self.knobs}"
            )
        return problems


# ---------------------------------------------------------------------------------------------
# Registry

_REGISTRY: Registry[type[Task]] = Registry("task")
_FAMILIES: Registry[Callable[..., Task]] = Registry("task family")
T = TypeVar("T", bound=type[Task])


def register_task(name: str) -> Callable[[T], T]:
    """Class decorator: register a Task subclass under `name` (and set its `name`)."""

    def decorate(cls: T) -> T:
        _REGISTRY.register(name, cls)
        cls.name = name
        return cls

    return decorate


def register_family(prefix: str, factory: Callable[..., Task]) -> None:
    """Register a family of tasks named `<prefix>:<member>` (e.g. `gym:countdown`):
    `factory(member, **knobs) -> Task` builds one and validates its knobs (ConfigError otherwise)."""
    _FAMILIES.register(prefix, factory)


def list_tasks() -> list[str]:
    """Names of the registered tasks, sorted; a family shows as `<prefix>:<name>`."""
    return sorted([*_REGISTRY, *(f"{prefix}:<name>" for prefix in _FAMILIES)])


def knob_names(cls: type[Task]) -> list[str]:
    """The knobs of a task class: its constructor's keyword parameters, sorted."""
    params = inspect.signature(cls.__init__).parameters.values()
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sorted(p.name for p in params if p.name != "self" and p.kind in kinds)


def get_task(name: str, **knobs: Any) -> Task:
    """Instantiate the task `name` with `knobs`; ConfigError for an unknown task or knob."""
    prefix, sep, member = name.partition(":") if isinstance(name, str) else ("", "", "")
    if sep and prefix in _FAMILIES:
        return _FAMILIES[prefix](member, **knobs)
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError(f"unknown task {short_repr(name)} (known: {', '.join(list_tasks())})")
    valid = knob_names(cls)
    for knob in knobs:
        if knob not in valid:
            raise ConfigError(
                f"unknown knob '{knob}' for task '{name}' (valid knobs: {', '.join(valid)})"
            )
    return cls(**knobs)
