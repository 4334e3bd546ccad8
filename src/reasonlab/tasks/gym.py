"""`gym:<dataset>`: a reasoning-gym procedural dataset as a reasonlab task, judged by its scorer.

`get_task("gym:chain_sum", max_terms=8)` builds reasoning-gym's `chain_sum` dataset and draws
problems from it. reasoning-gym is imported only when such a task is built, so `import
reasonlab.tasks` stays fast; without it the error says `pip install 'reasonlab[gym]'`.

Knobs:
    <config fields>  the dataset's own config fields (min_terms, max_terms, ...), checked against
                     its config dataclass (unknown name, wrong simple type, failed `validate()` or
                     a failing first entry: ConfigError naming the knob); a list where the default
                     is a tuple becomes a tuple (YAML has no tuples); `seed` is refused: use
                     dataset_seed
    size             entries in the procedural dataset (default 10000); a problem is entry
                     rng.randrange(size), so size bounds the distinct problems
    dataset_seed     the dataset's seed (default 0); reasoning-gym seeds entry i with seed + i, so
                     nearby seeds share most entries, shifted
    template         how the prompt asks for the answer: `line` (default: "answer: X" as the last
                     line, the project's convention), `tag` (reasoning-gym's <answer>X</answer>) or
                     `bare` (the question alone)
    test_fraction    the share of prompts in the test split (the hash split of tasks/base.py; the
                     prompt includes the template's instruction, so changing template reshuffles it)

Format: the prompt is the dataset's question, then the template's instruction line, each ending
with "\\n". The verifier accepts both answer forms: the answer is the text of the last complete
`<answer>...</answer>` tag if there is one, else of the last line starting with `answer:` (any
case), stripped. The reference completion is the answer line alone (`answer: X`), or the tag form
`<answer>X</answer>` for an answer that spans lines (grids, boards), which a line cannot hold.

Verdicts: no answer, or an empty one, is MALFORMED; one longer than `MAX_ANSWER_CHARS` is WRONG
without being scored (Verdict.answer keeps its first MAX_ANSWER_CHARS characters); otherwise the
dataset's `score_answer(answer, entry)` decides: CORRECT iff the score is exactly 1.0, WRONG otherwise. Departures from
reasoning-gym: partial credit (e.g. 0.5 for a near miss) is WRONG, and the raw score is not kept
(Verdict has no field for it). There is no tolerance: spell_backward scores a wrong answer that
extends the right one as a float sum within 1e-15 of 1.0, while reference answers score exactly
1.0 in every dataset (reasoning-gym 0.1.25, 30 entries each). A scorer that raises or returns a
non-number gives WRONG and its warnings are silenced, so the verifier stays total and quiet.
Scorers run without a timeout. A dataset whose scorer gives full marks to a junk answer on its
first entry is refused with a ConfigError (game_of_life_halting in 0.1.25: it scores bool(answer)).
The verifier cannot judge steps: steps_valid and first_error are None.

Difficulty is the entry's `metadata["difficulty"]` where that is an integer level, else 0
(reasoning-gym 0.1.25 stores the config's ranges there, a dict, so every problem has difficulty 0).
reasoning-gym gives answers, not steps: `reference_steps` is [] (the `steps` trace style writes just
the answer line) and `wrong_step` raises. Datasets without an oracle answer (boxnet, graph_color,
propositional_logic, rubiks_cube, rush_hour: any valid answer scores 1) can be verified but not
written as traces (`reference_steps` raises ReasonlabError; Problem.answer is "").

Usage:
    from reasonlab.tasks import get_task
    import reasonlab.tasks.gym  # registers the `gym:` family
    task = get_task("gym:basic_arithmetic", max_terms=4)
    problem = task.sample("train", n=1, seed=0)[0]
    task.verify(problem, "answer: " + problem.answer)
"""

from __future__ import annotations

import dataclasses
import difflib
import random
import re
import typing
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, ClassVar

from reasonlab.errors import ConfigError, ReasonlabError
from reasonlab.tasks.base import Task, int_knob, register_family, short_repr
from reasonlab.types import Outcome, Problem, Verdict

PREFIX = "gym"
TEMPLATES: dict[str, str] = {
    "line": "Give the final answer on the last line, as: answer: <answer>",
    "tag": "Give the final answer inside <answer></answer> tags.",
    "bare": "",
}
"""The instruction line each `template` knob value appends to the question ("" appends nothing)."""
RESERVED = ("seed", "size")  # config fields set by our knobs dataset_seed and size
CACHE_SIZE = 32  # built datasets kept, keyed by (name, config)
PROBE = "zzz not an answer"  # a dataset whose scorer gives this full marks is refused

_DATASETS: OrderedDict[tuple[str, str], Any] = OrderedDict()
_OPEN, _CLOSE = "<answer>", "</answer>"
# A line whose stripped text starts with "answer:" in any ASCII case. Linear: the space run stops at
# "a" or a newline, neither of which it matches, and the rest of the line is one final repeat.
_ANSWER_LINE = re.compile(r"^[^\S\n]*[Aa][Nn][Ss][Ww][Ee][Rr]:([^\n]*)", re.MULTILINE)
MAX_ANSWER_CHARS = 10_000
"""Longest answer passed to a dataset's scorer; a longer one is WRONG unscored (scorers are
third-party code with no time bound; the longest reference answer of reasoning-gym 0.1.25's datasets
at their default configs is far shorter)."""


def extract_answer(text: str) -> str | None:
    """The stripped text of the last complete `<answer>...</answer>` tag, else of the last line
    starting with `answer:` (any case), else None. Linear time, total on any string."""
    if not isinstance(text, str):
        return None
    close = text.rfind(_CLOSE)
    if close >= 0:
        start = text.rfind(_OPEN, 0, close)
        if start >= 0:
            return text[start + len(_OPEN) : close].strip()
    lines = _ANSWER_LINE.findall(text)  # the text after "answer:" on each answer line
    return lines[-1].strip() if lines else None


def _import_gym() -> Any:
    """The reasoning_gym module, or a ConfigError saying how to install it."""
    try:
        import reasoning_gym
    except ImportError:
        raise ConfigError(
            "the gym: tasks need reasoning-gym: pip install 'reasonlab[gym]'"
        ) from None
    return reasoning_gym


def _registry() -> dict[str, tuple[type, type]]:
    """reasoning-gym's dataset registry: name -> (dataset class, config class)."""
    _import_gym()
    from reasoning_gym.factory import DATASETS

    return DATASETS


def _simple_type(config_cls: type, name: str) -> type | None:
    """The field's annotation if it is exactly int, float, bool or str, else None."""
    try:
        hint = typing.get_type_hints(config_cls).get(name)
    except Exception:  # annotations of third-party classes may not resolve; then skip the check
        return None
    return hint if hint in (int, float, bool, str) else None


def _default(field: dataclasses.Field) -> Any:
    """A config field's default value (None where it has none)."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _type_ok(expected: type | None, value: Any) -> bool:
    if expected is None:
        return True
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _build(name: str, config: dict[str, Any]) -> Any:
    """The dataset `name` with `config`, its first entry generated; cached by (name, config)."""
    key = (name, repr(sorted(config.items())))
    if key in _DATASETS:
        _DATASETS.move_to_end(key)
        return _DATASETS[key]
    dataset = _import_gym().create_dataset(name, **config)
    _ = dataset[0]  # fail now, as a config error, rather than at the first sample
    _DATASETS[key] = dataset
    if len(_DATASETS) > CACHE_SIZE:
        _DATASETS.popitem(last=False)
    return dataset


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class GymTask(Task):
    """One reasoning-gym dataset; problems are its entries, the verdict is its scorer's."""

    max_new_tokens: ClassVar[int] = 512

    def __init__(
        self,
        dataset: str,
        *,
        size: int = 10000,
        dataset_seed: int = 0,
        template: str = "line",
        test_fraction: float = 0.1,
        **config: Any,
    ) -> None:
        self.name = f"{PREFIX}:{dataset}"  # type: ignore[misc]  (one class, many task names)
        super().__init__(test_fraction=test_fraction)
        registry = _registry()
        if not isinstance(dataset, str) or dataset not in registry:
            close = difflib.get_close_matches(str(dataset), list(registry), n=5, cutoff=0.5)
            hint = (
                f"did you mean {', '.join(close)}?"
                if close
                else f"{len(registry)} are listed in reasoning_gym.factory.DATASETS"
            )
            raise ConfigError(
                f"unknown reasoning-gym dataset {short_repr(dataset)} in task "
                f"'{PREFIX}:{dataset}' ({hint})"
            )
        self.dataset_name = dataset
        self.size = int_knob(self.name, "size", size, 1, 10**9)
        self.dataset_seed = int_knob(self.name, "dataset_seed", dataset_seed, 0, 2**63 - 1)
        if template not in TEMPLATES:
            raise ConfigError(
                f"invalid knob template={short_repr(template)} for task '{self.name}': "
                f"must be one of {', '.join(TEMPLATES)}"
            )
        self.template = template
        config_cls = registry[dataset][1]
        fields = {f.name: f for f in dataclasses.fields(config_cls)}
        valid = sorted({*fields, "size", "dataset_seed", "template", "test_fraction"} - {"seed"})
        given: dict[str, Any] = {}
        for knob, value in config.items():
            if knob not in fields or knob == "seed":
                use = ": use dataset_seed" if knob == "seed" else ""
                raise ConfigError(
                    f"unknown knob '{knob}' for task '{self.name}'{use} "
                    f"(valid knobs: {', '.join(valid)})"
                )
            default = _default(fields[knob])
            if isinstance(default, tuple) and isinstance(value, list):
                value = tuple(value)
            expected = _simple_type(config_cls, knob)
            if not _type_ok(expected, value):
                raise ConfigError(
                    f"invalid knob {knob}={short_repr(value)} for task '{self.name}': must be "
                    f"of type {getattr(expected, '__name__', expected)} (default {default!r})"
                )
            given[knob] = value
        self.dataset = self._checked_build(given)
        self.knobs = {
            **{k: getattr(self.dataset.config, k) for k in fields if k not in RESERVED},
            "size": self.size,
            "dataset_seed": self.dataset_seed,
            "template": self.template,
            "test_fraction": self.test_fraction,
        }
        first = self.dataset[0]
        if self._score(PROBE, first) == 1.0:
            raise ConfigError(
                f"task '{self.name}' is refused: its reasoning-gym scorer gives full marks to the "
                f"junk answer {PROBE!r}, so its verdicts mean nothing"
            )
        # no oracle answer: the answer line alone can never be CORRECT
        self.supports_answer_only = first.get("answer") is not None  # type: ignore[misc]

    def _checked_build(self, given: dict[str, Any]) -> Any:
        """The dataset built from the given knobs; ConfigError naming the knob that breaks it."""
        base = {"seed": self.dataset_seed, "size": self.size}
        try:
            return _build(self.dataset_name, {**base, **given})
        except Exception as exc:  # third-party config checks raise anything (assert, TypeError)
            reason = _reason(exc)
        if not given:
            raise ConfigError(
                f"task '{self.name}' cannot be built with its default knobs: {reason}"
            )
        culprits = []
        for knob, value in given.items():
            try:
                _build(self.dataset_name, {**base, knob: value})
            except Exception:  # as above: any failure of the knob alone blames it
                culprits.append(knob)
        shown = ", ".join(f"{k}={short_repr(given[k])}" for k in (culprits or given))
        noun = "knob" if len(culprits) == 1 else "knobs"
        raise ConfigError(f"invalid {noun} {shown} for task '{self.name}': {reason}")

    @staticmethod
    def answer_line(answer: str) -> str:
        """`answer: X`, or `<answer>X</answer>` when X spans lines (a line cannot hold it)."""
        if "\n" in answer or "\r" in answer:
            return f"{_OPEN}{answer}{_CLOSE}"
        return f"answer: {answer}"

    def generate(self, rng: random.Random) -> Problem:
        index = rng.randrange(self.size)
        try:
            entry = dict(self.dataset[index])
        except Exception as exc:  # third-party generator code; report which entry failed
            raise ReasonlabError(
                f"task '{self.name}' failed to generate entry {index}: {_reason(exc)}"
            ) from None
        question = str(entry["question"]).rstrip()
        instruction = TEMPLATES[self.template]
        prompt = f"{question}\n{instruction}\n" if instruction else f"{question}\n"
        answer = entry.get("answer")
        level = entry.get("metadata", {}).get("difficulty")
        difficulty = level if isinstance(level, int) and not isinstance(level, bool) else 0
        meta = {"index": index, "entry": entry}
        return self.make_problem(prompt, "" if answer is None else str(answer), difficulty, meta)

    def verify(self, problem: Problem, text: str) -> Verdict:
        answer, entry = extract_answer(text), problem.meta["entry"]
        if not answer:
            return Verdict(outcome=Outcome.MALFORMED, answer=None)
        if len(answer) > MAX_ANSWER_CHARS:
            return Verdict(outcome=Outcome.WRONG, answer=answer[:MAX_ANSWER_CHARS])
        correct = self._score(answer, entry) == 1.0  # exact: see the module docstring
        return Verdict(outcome=Outcome.CORRECT if correct else Outcome.WRONG, answer=answer)

    def _score(self, answer: str, entry: Mapping[str, Any]) -> float | None:
        """The dataset's score of `answer`, or None where its scorer fails (quietly)."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return float(self.dataset.score_answer(answer, entry))
        except Exception:  # the scorer is third-party code fed model text: a failure is no score
            return None

    def reference_steps(self, problem: Problem) -> list[str]:
        if problem.meta["entry"].get("answer") is None:
            raise ReasonlabError(
                f"task '{self.name}' has no reference answer (its scorer accepts any valid "
                "answer), so it cannot be written as a trace; use it for RL or evaluation"
            )
        return []

    def wrong_step(self, problem: Problem, index: int, rng: random.Random) -> str:
        raise ReasonlabError(
            f"task '{self.name}' has no steps to corrupt (reasoning-gym gives answers only)"
        )


register_family(PREFIX, GymTask)
