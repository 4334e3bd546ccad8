"""Items for the labeling queue, from step-labelled files and from TRL preference files.

Steps items come from any file `judges/files.py` reads (TRL stepwise JSONL, ProcessBench JSON,
judge evaluation files), parsed by its own record parser, so the same fields are checked with the
same messages; a record's id is the item's key (re-importing a file adds nothing). A record that
carries labels gives the item its truth ({"first_error", "correct"}, never shown to annotators);
records without any label field (`labels`, `label`, `first_error`) are accepted too, with no truth.
Pair items come from TRL preference JSONL (`prompt`, `chosen`, `rejected`, string form): which of
chosen and rejected becomes `a` is a seeded coin flip per record, and the truth says which one was
chosen. A bad file is one DataError naming the file, the line and the field; nothing is imported.

Seeded per item (from the seed and the item's key, so the same file draws the same way whatever
else is imported with it): `gold_rate` of the items whose truth is known become gold (screening)
items, and `overlap` of all items want `k` annotators instead of one. With a `score` function
(`score(prompts, steps_lists) -> {judge name: [[step score, ...] per solution]}`, the run's judges
in the CLI) every new item gets its judges' scores and a priority (labeling/queue.py); pairs are
scored solution by solution, a pair's scores being {judge: [score of a, score of b]}.

Usage:
    items = step_items(Path("eval.jsonl")) + pair_items(Path("prefs.jsonl"), seed=0)
    added = import_files(Store(db), [Path("eval.jsonl")], gold_rate=0.1, overlap=0.2, k=3)
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from reasonlab.errors import ConfigError, DataError, ReasonlabError
from reasonlab.fileio import read_data_text
from reasonlab.judges.files import BadRecord, Skipped, elements, parse_record
from reasonlab.labeling.queue import Weights, pair_priority, priority
from reasonlab.labeling.records import Item, NewItem
from reasonlab.labeling.store import Store
from reasonlab.tasks.parsing import solution_steps

ScoreFn = Callable[[list[str], list[list[str]]], dict[str, list[list[float]]]]
LABEL_FIELDS = ("labels", "label", "first_error")


def step_items(path: Path) -> list[NewItem]:
    """One steps item per record of a step-labelled file; DataError "<file>:<line>: <field>: ..."."""
    path = Path(path)
    items = []
    for line, obj in elements(path, read_data_text(path)):
        try:
            if isinstance(obj, BadRecord):
                raise obj
            labelled = not isinstance(obj, dict) or any(k in obj for k in LABEL_FIELDS)
            record = parse_record(
                obj if labelled else {**obj, "first_error": -1}, f"{path.name}:{line}"
            )
        except BadRecord as bad:
            raise DataError(f"{path}:{line}: {Skipped(line, *bad.skipped).message}") from None
        truth = {"first_error": record.first_error, "correct": record.correct} if labelled else None
        body: dict[str, Any] = {"steps": list(record.steps)}
        if record.source:
            body["origin"] = record.source
        items.append(NewItem(record.id, "steps", record.prompt, body, path.name, truth=truth))
    return items


def pair_items(path: Path, seed: int = 0) -> list[NewItem]:
    """One pair item per record of a TRL preference JSONL file (`prompt`, `chosen`, `rejected`);
    `chosen` lands on side a or b by a coin flip seeded by (seed, key)."""
    path = Path(path)
    items = []
    for line, obj in elements(path, read_data_text(path)):
        where = f"{path}:{line}"
        if isinstance(obj, BadRecord):
            raise DataError(f"{where}: {Skipped(line, *obj.skipped).message}")
        if not isinstance(obj, dict):
            raise DataError(f"{where}: record: not a JSON object")
        for name in ("prompt", "chosen", "rejected"):
            if name not in obj:
                raise DataError(
                    f"{where}: {name}: missing (TRL preference records need prompt, chosen, rejected)"
                )
            if not isinstance(obj[name], str):
                raise DataError(
                    f"{where}: {name}: not a string (only the standard text form is read, "
                    "not conversational messages)"
                )
        ident = obj.get("id")
        if ident is not None and (not isinstance(ident, (str, int)) or isinstance(ident, bool)):
            raise DataError(f"{where}: id: not a string")
        key = str(ident) if ident is not None else "pair:" + content_hash(obj)
        chosen_is_a = random.Random(f"{seed}:{key}:side").random() < 0.5
        a, b = (obj["chosen"], obj["rejected"]) if chosen_is_a else (obj["rejected"], obj["chosen"])
        truth = {"choice": "a" if chosen_is_a else "b"}
        items.append(NewItem(key, "pair", obj["prompt"], {"a": a, "b": b}, path.name, truth=truth))
    return items


def content_hash(obj: dict[str, Any]) -> str:
    text = json.dumps([obj["prompt"], obj["chosen"], obj["rejected"]], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def text_steps(text: str) -> list[str]:
    """A solution text cut into steps: the built-in tasks' line grammar, else its non-blank lines."""
    return solution_steps(text) or [x for x in text.splitlines() if x.strip()] or [text]


def plan_items(
    items: Sequence[NewItem],
    *,
    gold_rate: float = 0.0,
    overlap: float = 0.0,
    k: int = 3,
    seed: int = 0,
    score: ScoreFn | None = None,
    weights: Weights = Weights(),
) -> list[NewItem]:
    """The items with their gold flag, `want` and (given `score`) judge scores and priority."""
    if not 0.0 <= gold_rate <= 1.0:
        raise ConfigError(f"--gold-rate: {gold_rate}, expected a share in [0, 1]")
    if not 0.0 <= overlap <= 1.0:
        raise ConfigError(f"--overlap: {overlap}, expected a share in [0, 1]")
    if k < 1:
        raise ConfigError(f"--k: {k}, expected at least 1 annotator per overlapping item")
    if gold_rate > 0 and items and not any(i.truth is not None for i in items):
        raise ConfigError("--gold-rate: no item has known labels to screen annotators with")
    scores = judge_scores(items, score) if score is not None else [{} for _ in items]
    out = []
    for item, judged in zip(items, scores):
        rng = random.Random(f"{seed}:{item.key}:plan")
        gold = item.truth is not None and rng.random() < gold_rate
        want = k if rng.random() < overlap else 1
        rank = pair_priority if item.kind == "pair" else priority
        out.append(
            replace(
                item,
                gold=gold,
                want=want,
                scores=judged,
                priority=rank(judged, item.truth, weights) if judged else 0.0,
            )
        )
    return out


def judge_scores(items: Sequence[NewItem | Item], score: ScoreFn) -> list[dict[str, list[float]]]:
    """{judge: step scores} per steps item and {judge: [score of a, score of b]} per pair item."""
    prompts: list[str] = []
    steps: list[list[str]] = []
    for item in items:
        if item.kind == "steps":
            prompts.append(item.prompt)
            steps.append(list(item.body["steps"]))
        else:
            prompts += [item.prompt, item.prompt]
            steps += [text_steps(item.body["a"]), text_steps(item.body["b"])]
    if not prompts:
        return []
    by_judge = score(prompts, steps)
    for judge, rows in by_judge.items():
        if len(rows) != len(prompts) or any(len(r) != len(s) for r, s in zip(rows, steps)):
            raise ReasonlabError(f"judge {judge!r}: scored {len(rows)} of {len(prompts)} solutions")
    out, at = [], 0
    for item in items:
        if item.kind == "steps":
            out.append({j: [float(x) for x in rows[at]] for j, rows in by_judge.items()})
            at += 1
        else:
            out.append(
                {
                    j: [
                        float(rows[at][-1]) if rows[at] else 0.0,
                        float(rows[at + 1][-1]) if rows[at + 1] else 0.0,
                    ]
                    for j, rows in by_judge.items()
                }
            )
            at += 2
    return out


def read_items(paths: Sequence[Path], pairs: bool = False, seed: int = 0) -> list[NewItem]:
    """The items of every file (steps files, or preference files with `pairs`)."""
    items: list[NewItem] = []
    for path in paths:
        items += pair_items(path, seed) if pairs else step_items(path)
    return items


def import_files(
    store: Store,
    paths: Sequence[Path],
    *,
    pairs: bool = False,
    gold_rate: float = 0.0,
    overlap: float = 0.0,
    k: int = 3,
    seed: int = 0,
    score: ScoreFn | None = None,
    weights: Weights = Weights(),
) -> tuple[int, int]:
    """Read, plan and add the items of `paths`: (items added, items read). Items whose key is
    already in the database are skipped (and not scored)."""
    items = read_items(paths, pairs, seed)
    known = store.existing_keys([i.key for i in items])
    fresh = [i for i in items if i.key not in known]
    planned = plan_items(
        fresh, gold_rate=gold_rate, overlap=overlap, k=k, seed=seed, score=score, weights=weights
    )
    return store.add_items(planned), len(items)
