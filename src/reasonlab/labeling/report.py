"""The agreement report of a labeling database: agreement.json, agreement.md, agreement.html.

`agreement_report(db_path)` reads the database through labeling/store.py's Store
and returns one JSON-ready dict:
- `counts`: items (steps / pairs / gold / labelled), labels, annotators (registered / labelling);
- `humans.steps`, on the step items labelled by two or more annotators: the exact agreement on the
  first wrong step (share of rater pairs), Fleiss' kappa on the first wrong step (a nominal
  category) over the items with the modal number of raters (ties: the larger number), Krippendorff's
  alpha (ordinal) on the per-step ratings -1 / 0 / 1 (a step a rater did not rate, e.g. after their
  first wrong step, is missing), and Cohen's kappa for every annotator pair with >= 5 shared items,
  on the first wrong step and on "the solution has a wrong step"; `humans.pairs` the same for the
  choice on pair items (no alpha);
- `annotators`: per annotator their labels, median seconds per label, accuracy on gold items (steps:
  first wrong step equal to the truth's; pairs: the same choice) and the same agreement with the
  truth on non-gold items where it is known;
- `judges`: for each judge named in the step items' `scores`, `agreement.judge_human` against the
  human consensus first wrong step (majority, ties to the earliest error) on every step item with a
  label (threshold tuned in-sample), and on the items whose truth is known both the judge's and the
  humans' agreement with it (exact first wrong step and ProcessBench F1), for comparison;
- `disagreements`: the step items where the human consensus and some judge's earliest flagged step
  (at its tuned threshold) differ, with prompt, steps, each annotator's ratings and comments, each
  judge's scores and flagged step, and the truth when known: where humans are still better than the
  judges, or worse; `disagreement_summary` counts who was right where the truth is known.
Step indices in the JSON are 0-based (-1: no wrong step); the Markdown and HTML number steps from 1.
An empty database gives a valid report whose headline says there are no labels yet.

`agreement_markdown(report)` and `agreement_page(report)` render it (the HTML page is self-contained,
via reports/toolkit.py; every text is escaped); `agreement_html(db_path)` is the page of a database
(the app's /admin/agreement); `write_agreement_report(db_path, out_dir)` writes the three files
atomically. Usage:

    html_path = write_agreement_report(Path("labels.sqlite"), Path("runs/labels"))
    report = json.loads((Path("runs/labels") / "agreement.json").read_text())
"""

from __future__ import annotations

import html
import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

from reasonlab.errors import DataError
from reasonlab.evaluate.processbench import earliest_error, processbench_metrics
from reasonlab.fileio import write_text_atomic
from reasonlab.labeling.agreement import (
    cohen_kappa,
    consensus_first_error,
    first_error_agreement,
    fleiss_kappa,
    judge_human,
    krippendorff_alpha,
    pairwise_agreement,
)
from reasonlab.labeling.store import Store
from reasonlab.reports.toolkit import (
    Table,
    duration,
    html_headline,
    html_page,
    html_raw,
    html_tables,
    markdown_headline,
    markdown_tables,
    percent,
    sig3,
)

MIN_SHARED = 5  # Cohen's kappa only for annotator pairs with at least this many shared items
SHOWN = 200  # disagreements rendered in the Markdown and HTML (all of them are in the JSON)
RATING_MARKS = {1: ("\u2713", "correct"), 0: ("\u25cb", "neutral"), -1: ("\u2717", "wrong")}
STYLE = (
    ".dis-item{border-top:1px solid #ccc;margin-top:1.5em}"
    ".dis-item pre{white-space:pre-wrap;margin:0}.dis-item pre.dis-prompt{margin-bottom:1em}"
    ".dis-item table{border-collapse:collapse;width:100%}"
    ".dis-item td,.dis-item th{border-bottom:1px solid #eee;vertical-align:top}"
    ".dis-human{background:#fdeeec}.dis-mark{font-size:0.9em;color:#b42318}"
)


@dataclass(frozen=True)
class _Item:
    id: int
    key: str
    kind: str  # 'steps' | 'pair'
    prompt: str
    steps: list[str]  # steps items; [] for pairs
    truth: Any  # steps: first wrong step (int) or None if unknown; pairs: the choice or None
    gold: bool
    scores: dict[str, list[float]]


@dataclass(frozen=True)
class _Label:
    item_id: int
    annotator: int
    value: Any  # steps: first wrong step (-1 none); pairs: the choice
    ratings: list[int] | None
    comments: dict[str, str]
    seconds: float | None


# ---- reading the database ----------------------------------------------------------------------------


def _truth(kind: str, truth: Any) -> Any:
    if not isinstance(truth, dict):
        return None
    value = truth.get("first_error" if kind == "steps" else "choice")
    if kind == "steps":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    return value if isinstance(value, str) else None


def _load(db_path: Path) -> tuple[dict[int, _Item], list[_Label], dict[int, dict[str, str]], str]:
    """(items by id, labels, annotators by id {name, role}, protocol), read through the Store."""
    db_path = Path(db_path)
    if not db_path.is_file():
        raise DataError(f"{db_path}: no such labeling database")
    with Store(db_path) as store:
        items = {
            it.id: _Item(
                id=it.id,
                key=it.key,
                kind=it.kind,
                prompt=it.prompt,
                steps=[str(s) for s in it.steps],
                truth=_truth(it.kind, it.truth),
                gold=it.gold,
                scores=it.scores,
            )
            for it in store.items()
        }
        labels = []
        for lab in store.all_labels():
            value = lab["first_error"] if lab["kind"] == "steps" else lab["choice"]
            if value is not None:
                labels.append(
                    _Label(
                        item_id=lab["item_id"],
                        annotator=lab["annotator_id"],
                        value=value,
                        ratings=lab["ratings"],
                        comments=lab["comments"],
                        seconds=lab["seconds"],
                    )
                )
        annotators = {a.id: {"name": a.name, "role": a.role} for a in store.annotators()}
        protocol = store.protocol
    return items, labels, annotators, protocol


# ---- human-human -------------------------------------------------------------------------------------


def _modal_raters(sizes: Sequence[int]) -> int | None:
    """The most common number of raters per item; ties go to the larger number."""
    if not sizes:
        return None
    votes = Counter(sizes)
    return max(votes, key=lambda m: (votes[m], m))


def _fleiss(by_item: Mapping[int, Mapping[int, Hashable]]) -> dict[str, Any]:
    """Fleiss' kappa on the items with the modal number (>= 2) of raters, values as categories."""
    multi = {i: v for i, v in by_item.items() if len(v) >= 2}
    m = _modal_raters([len(v) for v in multi.values()])
    chosen = [list(v.values()) for v in multi.values() if len(v) == m]
    categories = sorted({x for values in chosen for x in values}, key=str)
    counts = [[values.count(c) for c in categories] for values in chosen]
    return {"raters": m, "n_items": len(chosen), "kappa": fleiss_kappa(counts) if counts else None}


def _cohen_pairs(
    by_item: Mapping[int, Mapping[int, Hashable]], names: Mapping[int, str], binary: bool
) -> list[dict[str, Any]]:
    """Cohen's kappa for each annotator pair with >= MIN_SHARED shared items (and exact agreement)."""
    raters = sorted({a for v in by_item.values() for a in v})
    rows = []
    for a, b in combinations(raters, 2):
        shared = [v for v in by_item.values() if a in v and b in v]
        if len(shared) < MIN_SHARED:
            continue
        xs, ys = [v[a] for v in shared], [v[b] for v in shared]
        row = {
            "a": names.get(a, str(a)),
            "b": names.get(b, str(b)),
            "n": len(shared),
            "kappa": cohen_kappa(xs, ys),
            "agreement": sum(x == y for x, y in zip(xs, ys)) / len(shared),
        }
        if binary:  # steps: also on "the solution has a wrong step"
            row["kappa_has_error"] = cohen_kappa([x >= 0 for x in xs], [y >= 0 for y in ys])
        rows.append(row)
    return rows


def _alpha_units(items: Mapping[int, _Item], labels: Sequence[_Label]) -> list[list[int | None]]:
    """(steps of the multiply labelled step items, their raters) ratings, None where not rated."""
    by_item: dict[int, list[_Label]] = defaultdict(list)
    for lab in labels:
        by_item[lab.item_id].append(lab)
    units = []
    for item_id, labs in by_item.items():
        if len(labs) < 2:
            continue
        n_steps = max(len(items[item_id].steps), *(len(lab.ratings or []) for lab in labs))
        for j in range(n_steps):
            units.append(
                [lab.ratings[j] if lab.ratings and j < len(lab.ratings) else None for lab in labs]
            )
    return units


def _humans(
    items: Mapping[int, _Item], labels: Sequence[_Label], kind: str, names: Mapping[int, str]
) -> dict[str, Any]:
    """Human-human agreement on the items of one kind labelled by two or more annotators."""
    mine = [lab for lab in labels if items[lab.item_id].kind == kind]
    by_item: dict[int, dict[int, Any]] = defaultdict(dict)
    for lab in mine:
        by_item[lab.item_id][lab.annotator] = lab.value
    multi = {i: v for i, v in by_item.items() if len(v) >= 2}
    values = {i: list(v.values()) for i, v in multi.items()}
    exact = first_error_agreement(values) if kind == "steps" else pairwise_agreement(values)
    out: dict[str, Any] = {
        "n_items": len(multi),
        "n_labels": sum(len(v) for v in multi.values()),
        "n_pairs": sum(len(v) * (len(v) - 1) // 2 for v in multi.values()),
        "agreement": exact,
        "fleiss": _fleiss(multi),
        "cohen": _cohen_pairs(by_item, names, binary=kind == "steps"),
    }
    if kind == "steps":
        units = _alpha_units(items, [lab for lab in mine if lab.item_id in multi])
        pairable = [u for u in units if sum(v is not None for v in u) >= 2]
        out["alpha_ordinal"] = {
            "alpha": krippendorff_alpha(units, "ordinal"),
            "n_units": len(pairable),
            "n_values": sum(v is not None for u in pairable for v in u),
        }
    return out


# ---- annotators --------------------------------------------------------------------------------------


def _hits(labs: Sequence[_Label], items: Mapping[int, _Item]) -> dict[str, Any]:
    n = len(labs)
    right = sum(lab.value == items[lab.item_id].truth for lab in labs)
    return {"n": n, "correct": right, "accuracy": right / n if n else None}


def _annotators(
    items: Mapping[int, _Item], labels: Sequence[_Label], annotators: Mapping[int, dict[str, str]]
) -> list[dict[str, Any]]:
    rows = []
    for aid, who in annotators.items():
        labs = [lab for lab in labels if lab.annotator == aid]
        seconds = [lab.seconds for lab in labs if lab.seconds is not None]
        known = [lab for lab in labs if items[lab.item_id].truth is not None]
        rows.append(
            {
                "name": who["name"],
                "role": who["role"],
                "labels": len(labs),
                "step_labels": sum(items[lab.item_id].kind == "steps" for lab in labs),
                "pair_labels": sum(items[lab.item_id].kind == "pair" for lab in labs),
                "median_seconds": statistics.median(seconds) if seconds else None,
                "gold": _hits([lab for lab in known if items[lab.item_id].gold], items),
                "truth": _hits([lab for lab in known if not items[lab.item_id].gold], items),
            }
        )
    return rows


# ---- judges against humans ---------------------------------------------------------------------------


def _f1(predicted: Sequence[int], labels: Sequence[int]) -> float | None:
    raw = processbench_metrics(predicted, labels)
    return raw["f1"] if raw["n_error"] and raw["n_correct"] else None


def _judges(
    items: Mapping[int, _Item], consensus: Mapping[int, int]
) -> tuple[dict[str, Any], dict[str, dict[int, int]]]:
    """({judge: metrics}, {judge: {item id: earliest flagged step at the tuned threshold}})."""
    names = sorted({j for i in consensus for j in items[i].scores})
    results: dict[str, Any] = {}
    flagged: dict[str, dict[int, int]] = {}
    for name in names:
        scored = [
            i
            for i in consensus
            if isinstance(items[i].scores.get(name), list)
            and len(items[i].scores[name]) == len(items[i].steps)
            and len(items[i].steps) > 0
            and consensus[i] < len(items[i].steps)
        ]
        skipped = sum(name in items[i].scores for i in consensus) - len(scored)
        scores = [[float(s) for s in items[i].scores[name]] for i in scored]
        metrics = judge_human(scores, [consensus[i] for i in scored])
        predicted = {i: earliest_error(s, metrics["threshold"]) for i, s in zip(scored, scores)}
        known = [i for i in scored if items[i].truth is not None]
        truth = [items[i].truth for i in known]
        n = len(known)
        metrics["truth"] = {
            "n_items": n,
            "judge_exact": sum(predicted[i] == t for i, t in zip(known, truth)) / n if n else None,
            "human_exact": sum(consensus[i] == t for i, t in zip(known, truth)) / n if n else None,
            "judge_f1": _f1([predicted[i] for i in known], truth) if n else None,
            "human_f1": _f1([consensus[i] for i in known], truth) if n else None,
        }
        metrics["n_skipped"] = skipped
        results[name] = metrics
        flagged[name] = predicted
    return results, flagged


def _disagreements(
    items: Mapping[int, _Item],
    labels: Sequence[_Label],
    consensus: Mapping[int, int],
    flagged: Mapping[str, Mapping[int, int]],
    judges: Mapping[str, Any],
    names: Mapping[int, str],
) -> list[dict[str, Any]]:
    out = []
    for i in sorted(consensus):
        mine = {j: f[i] for j, f in flagged.items() if i in f}
        if all(fe == consensus[i] for fe in mine.values()):
            continue
        item = items[i]
        truth = item.truth
        out.append(
            {
                "item_id": i,
                "key": item.key,
                "gold": item.gold,
                "prompt": item.prompt,
                "steps": item.steps,
                "human_first_error": consensus[i],
                "humans": [
                    {
                        "annotator": names.get(lab.annotator, str(lab.annotator)),
                        "first_error": lab.value,
                        "ratings": lab.ratings,
                        "comments": lab.comments,
                    }
                    for lab in labels
                    if lab.item_id == i
                ],
                "judges": {
                    j: {
                        "first_error": fe,
                        "threshold": judges[j]["threshold"],
                        "scores": item.scores[j],
                        "right": None if truth is None else fe == truth,
                    }
                    for j, fe in mine.items()
                },
                "truth_first_error": truth,
                "human_right": None if truth is None else consensus[i] == truth,
            }
        )
    return out


def _disagreement_summary(disagreements: Sequence[dict[str, Any]]) -> dict[str, Any]:
    known = [d for d in disagreements if d["truth_first_error"] is not None]
    judges = sorted({j for d in disagreements for j in d["judges"]})
    return {
        "n_items": len(disagreements),
        "with_truth": len(known),
        "humans_right": sum(bool(d["human_right"]) for d in known),
        "judges_right": {
            j: sum(bool(d["judges"].get(j, {}).get("right")) for d in known) for j in judges
        },
    }


# ---- the report --------------------------------------------------------------------------------------


def agreement_report(db_path: Path) -> dict[str, Any]:
    """The agreement report of the database at `db_path` as a JSON-ready dict (see the module doc).

    DataError when the file is missing or is not a labeling database."""
    items, labels, annotators, protocol = _load(Path(db_path))
    names = {aid: a["name"] for aid, a in annotators.items()}
    step_labels: dict[int, list[int]] = defaultdict(list)
    for lab in labels:
        if items[lab.item_id].kind == "steps":
            step_labels[lab.item_id].append(lab.value)
    consensus = {i: consensus_first_error(v) for i, v in step_labels.items()}
    judges, flagged = _judges(items, consensus)
    disagreements = _disagreements(items, labels, consensus, flagged, judges, names)
    labelled = {lab.item_id for lab in labels}
    report: dict[str, Any] = {
        "db": str(db_path),
        "protocol": protocol,
        "counts": {
            "items": len(items),
            "step_items": sum(it.kind == "steps" for it in items.values()),
            "pair_items": sum(it.kind == "pair" for it in items.values()),
            "gold_items": sum(it.gold for it in items.values()),
            "labelled_items": len(labelled),
            "labels": len(labels),
            "step_labels": sum(items[lab.item_id].kind == "steps" for lab in labels),
            "pair_labels": sum(items[lab.item_id].kind == "pair" for lab in labels),
            "annotators": len(annotators),
            "annotators_labelling": len({lab.annotator for lab in labels}),
        },
        "humans": {
            "steps": _humans(items, labels, "steps", names),
            "pairs": _humans(items, labels, "pair", names),
        },
        "annotators": _annotators(items, labels, annotators),
        "judges": judges,
        "disagreement_summary": _disagreement_summary(disagreements),
        "disagreements": disagreements,
    }
    report["headline"] = agreement_headline(report)
    return report


def agreement_headline(report: Mapping[str, Any]) -> list[str]:
    """The sentences the report opens with, from its numbers only."""
    c = report["counts"]
    if not c["labels"]:
        return [
            f"No labels yet: the database holds {c['items']} items ({c['step_items']} with steps, "
            f"{c['pair_items']} pairs) and {c['annotators']} annotators."
        ]
    sentences = [
        f"{c['annotators_labelling']} annotators gave {c['labels']} labels on "
        f"{c['labelled_items']} items ({c['step_labels']} step labels, {c['pair_labels']} pair labels)."
    ]
    steps, pairs = report["humans"]["steps"], report["humans"]["pairs"]
    if steps["n_items"]:
        sentences.append(
            f"On the {steps['n_items']} step items labelled by two or more annotators, "
            f"{percent(steps['agreement'])} of annotator pairs name the same first wrong step "
            f"(Krippendorff's ordinal alpha on the step ratings: {sig3(steps['alpha_ordinal']['alpha'])})."
        )
    elif c["step_labels"]:
        sentences.append(
            "No step item has two labels yet, so human-human agreement is not measured."
        )
    if pairs["n_items"]:
        sentences.append(
            f"On the {pairs['n_items']} pairs compared by two or more annotators, "
            f"{percent(pairs['agreement'])} of annotator pairs make the same choice."
        )
    judges = report["judges"]
    if judges:
        best = max(judges, key=lambda j: (judges[j]["f1"] is not None, judges[j]["f1"] or 0.0))
        b = judges[best]
        sentences.append(
            f"Against the human consensus on {b['n_items']} solutions, the best judge, {best}, "
            f"reaches ProcessBench F1 {sig3(b['f1'])} (threshold tuned in-sample; "
            f"{sig3(b['f1_at_0.5'])} at 0.5) and step AUROC {sig3(b['step_auroc'])}."
        )
        s = report["disagreement_summary"]
        text = f"Humans and judges disagree on the first wrong step of {s['n_items']} solutions"
        if s["with_truth"]:
            right = ", ".join(f"{j} on {n}" for j, n in s["judges_right"].items())
            text += (
                f"; of the {s['with_truth']} whose truth is known the humans are right on "
                f"{s['humans_right']}, {right}"
            )
        sentences.append(text + ".")
    return sentences


# ---- tables ------------------------------------------------------------------------------------------


def _share(hits: Mapping[str, Any]) -> str:
    return f"{percent(hits['accuracy'])} of {hits['n']}" if hits["n"] else "n/a"


def report_tables(report: Mapping[str, Any]) -> list[Table]:
    """Counts, human-human agreement (steps, per annotator pair, pairs), annotators, judges."""
    humans = report["humans"]
    return [
        _counts_table(report["counts"]),
        *_step_tables(humans["steps"]),
        _pair_table(humans["pairs"]),
        _annotator_table(report["annotators"]),
        *_judge_tables(report["judges"]),
    ]


def _counts_table(c: Mapping[str, Any]) -> Table:
    rows = [
        ["items (with steps / pairs)", f"{c['items']} ({c['step_items']} / {c['pair_items']})"],
        ["gold items", c["gold_items"]],
        ["items labelled", c["labelled_items"]],
        ["labels (steps / pairs)", f"{c['labels']} ({c['step_labels']} / {c['pair_labels']})"],
        ["annotators (labelling / registered)", f"{c['annotators_labelling']} / {c['annotators']}"],
    ]
    return "Counts", ["what", "number"], rows


def _fleiss_row(name: str, fl: Mapping[str, Any]) -> list[Any]:
    raters = fl["raters"] or "n/a"
    return [name, sig3(fl["kappa"]), f"{fl['n_items']} items with {raters} annotators each"]


def _step_tables(steps: Mapping[str, Any]) -> list[Table]:
    al = steps["alpha_ordinal"]
    rows = [
        [
            "exact agreement on the first wrong step",
            percent(steps["agreement"]),
            f"{steps['n_pairs']} annotator pairs",
        ],
        _fleiss_row("Fleiss' kappa, first wrong step", steps["fleiss"]),
        [
            "Krippendorff's alpha (ordinal), step ratings -1 / 0 / 1",
            sig3(al["alpha"]),
            f"{al['n_units']} steps, {al['n_values']} ratings",
        ],
    ]
    title = f"Human-human agreement on step items ({steps['n_items']} items labelled by 2 or more)"
    header = ["annotators", "shared items", "kappa, first wrong step", "kappa, has a wrong step"]
    pairs = [
        [
            f"{r['a']} & {r['b']}",
            r["n"],
            sig3(r["kappa"]),
            sig3(r["kappa_has_error"]),
            percent(r["agreement"]),
        ]
        for r in steps["cohen"]
    ]
    return [
        (title, ["statistic", "value", "on"], rows),
        (
            f"Cohen's kappa per annotator pair on step items (>= {MIN_SHARED} shared)",
            [*header, "exact agreement"],
            pairs or [["none yet", "", "", "", ""]],
        ),
    ]


def _pair_table(pairs: Mapping[str, Any]) -> Table:
    rows = [
        [
            "agreement on the choice",
            percent(pairs["agreement"]),
            f"{pairs['n_pairs']} annotator pairs",
        ],
        _fleiss_row("Fleiss' kappa, choice", pairs["fleiss"]),
    ]
    rows += [
        [f"Cohen's kappa, {r['a']} & {r['b']}", sig3(r["kappa"]), f"{r['n']} shared items"]
        for r in pairs["cohen"]
    ]
    title = f"Human-human agreement on pairs ({pairs['n_items']} items labelled by 2 or more)"
    return title, ["statistic", "value", "on"], rows


def _annotator_table(annotators: Sequence[Mapping[str, Any]]) -> Table:
    header = ["annotator", "labels (steps / pairs)", "median time", "gold accuracy"]
    rows = [
        [
            a["name"] + (" (admin)" if a["role"] == "admin" else ""),
            f"{a['labels']} ({a['step_labels']} / {a['pair_labels']})",
            duration(a["median_seconds"]),
            _share(a["gold"]),
            _share(a["truth"]),
        ]
        for a in annotators
    ]
    return "Annotators", [*header, "agreement with the truth (non-gold)"], rows


def _judge_tables(judges: Mapping[str, Any]) -> list[Table]:
    if not judges:
        return []
    humans = [
        [
            j,
            m["n_items"],
            sig3(m["f1"]),
            sig3(m["threshold"]),
            sig3(m["f1_at_0.5"]),
            sig3(m["step_auroc"]),
            percent(m["exact"]),
        ]
        for j, m in judges.items()
    ]
    truth = [
        [
            j,
            t["n_items"],
            percent(t["judge_exact"]),
            percent(t["human_exact"]),
            sig3(t["judge_f1"]),
            sig3(t["human_f1"]),
        ]
        for j, t in ((j, m["truth"]) for j, m in judges.items())
    ]
    return [
        (
            "Judges against the human consensus first wrong step",
            ["judge", "solutions", "F1 (tuned in-sample)", "threshold", "F1 at 0.5"]
            + ["step AUROC", "same first wrong step"],
            humans,
        ),
        (
            "Judges and humans against the exact truth (same solutions, truth known)",
            ["judge", "solutions", "judge: same first wrong step", "humans: same first wrong step"]
            + ["judge F1", "humans F1"],
            truth,
        ),
    ]


# ---- the disagreement list ---------------------------------------------------------------------------


def _step_name(fe: Any) -> str:
    """A 0-based first wrong step for a reader: 'step 3' (1-based) or 'no wrong step'."""
    if fe is None:
        return "unknown"
    return "no wrong step" if fe < 0 else f"step {fe + 1}"


def _summary(d: Mapping[str, Any]) -> str:
    """One paragraph: what the humans, each judge and the truth say."""
    humans = d["humans"]
    agree = sum(h["first_error"] == d["human_first_error"] for h in humans)
    each = ", ".join(f"{h['annotator']}: {_step_name(h['first_error'])}" for h in humans)
    parts = [f"Humans: {_step_name(d['human_first_error'])} ({agree} of {len(humans)}; {each})."]
    for j, v in d["judges"].items():
        verdict = "" if v["right"] is None else (" (right)" if v["right"] else " (wrong)")
        parts.append(
            f"{j}: {_step_name(v['first_error'])} at threshold {sig3(v['threshold'])}{verdict}."
        )
    if d["truth_first_error"] is None:
        parts.append("Truth: unknown.")
    else:
        verdict = " (humans right)" if d["human_right"] else " (humans wrong)"
        parts.append(f"Truth: {_step_name(d['truth_first_error'])}{verdict}.")
    return " ".join(parts)


def _marks(d: Mapping[str, Any], j: int) -> list[str]:
    marks = []
    if d["human_first_error"] == j:
        marks.append("humans' first wrong step")
    marks += [f"{name} flags first" for name, v in d["judges"].items() if v["first_error"] == j]
    if d["truth_first_error"] == j:
        marks.append("true first wrong step")
    return marks


def _rating(h: Mapping[str, Any], j: int) -> tuple[str, str]:
    ratings = h.get("ratings") or []
    if j >= len(ratings):
        return "", "not rated"
    return RATING_MARKS.get(ratings[j], ("?", str(ratings[j])))


def _comment(h: Mapping[str, Any], j: int) -> str:
    return str((h.get("comments") or {}).get(str(j), ""))


def _disagreement_html(d: Mapping[str, Any]) -> str:
    e = html.escape
    humans, judges = d["humans"], d["judges"]
    head = "<tr><th>#</th><th style='text-align:left'>step</th>"
    head += "".join(f"<th>{e(h['annotator'])}</th>" for h in humans)
    head += "".join(f"<th>{e(j)}</th>" for j in judges) + "<th>marks</th></tr>"
    rows = []
    for j, text in enumerate(d["steps"]):
        cells = ""
        for h in humans:
            symbol, word = _rating(h, j)
            note = _comment(h, j)
            cells += f"<td title='{e(word)}'>{e(symbol)} {e(word if symbol else '')}"
            cells += f"<br><i>{e(note)}</i></td>" if note else "</td>"
        for v in judges.values():
            score = v["scores"][j] if j < len(v["scores"]) else None
            below = " \u2190 flagged" if v["first_error"] == j else ""
            cells += f"<td>{e(sig3(score))}{e(below)}</td>"
        marks = "; ".join(_marks(d, j))
        cls = " class='dis-human'" if d["human_first_error"] == j else ""
        rows.append(
            f"<tr{cls}><td>{j + 1}</td><td><pre>{e(text)}</pre></td>{cells}"
            f"<td class='dis-mark'>{e(marks)}</td></tr>"
        )
    gold = " (gold)" if d["gold"] else ""
    return (
        f"<div class='dis-item' id='item-{d['item_id']}'><h3>Item {d['item_id']}: {e(d['key'])}{e(gold)}</h3>"
        f"<p>{e(_summary(d))}</p><p><b>Problem</b></p><pre class='dis-prompt'>{e(d['prompt'])}</pre>"
        f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _md(text: Any) -> str:
    return html.escape(str(text)).replace("|", "\\|").replace("\n", "<br>")


def _disagreement_markdown(d: Mapping[str, Any]) -> list[str]:
    humans, judges = d["humans"], d["judges"]
    gold = " (gold)" if d["gold"] else ""
    lines = [f"### Item {d['item_id']}: {_md(d['key'])}{gold}", "", html.escape(_summary(d)), ""]
    prompt = html.escape(str(d["prompt"])).splitlines()
    lines += ["Problem:", "", *(f"> {line}" if line.strip() else ">" for line in prompt), ""]
    header = ["#", "step", *(_md(h["annotator"]) for h in humans), *map(_md, judges), "marks"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for j, text in enumerate(d["steps"]):
        cells = [str(j + 1), _md(text)]
        for h in humans:
            symbol, word = _rating(h, j)
            note = _comment(h, j)
            rated = f"{symbol} {word}" if symbol else ""
            cells.append(rated + (f" ({_md(note)})" if note else ""))
        for v in judges.values():
            score = v["scores"][j] if j < len(v["scores"]) else None
            cells.append(sig3(score) + (" \u2190 flagged" if v["first_error"] == j else ""))
        marks = "; ".join(_marks(d, j))
        cells.append(f"**{marks}**" if marks else "")
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


DISAGREEMENT_INTRO = (
    "Solutions where the human consensus first wrong step (majority of the annotators, ties to the "
    "earliest error) differs from the first step some judge scores below its threshold (tuned "
    "in-sample against the humans). Steps are numbered from 1; each annotator's column shows their "
    "rating of the step (\u2713 correct, \u25cb neutral, \u2717 wrong; empty: not rated, as after their "
    "first wrong step) and their comment; each judge's column its probability that the solution is "
    "still right after the step."
)


def _shown(report: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    dis = report["disagreements"]
    return dis[:SHOWN], max(0, len(dis) - SHOWN)


# ---- rendering and writing ---------------------------------------------------------------------------


def _flat(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Scalar values of the report under dotted keys (lists of rows and the disagreements left out)."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        elif not isinstance(v, list):
            out[f"{prefix}{k}"] = v
    return out


def _title(report: Mapping[str, Any]) -> str:
    return f"Labeling agreement: {Path(report['db']).name}"


def agreement_markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown: title, headline, tables, the disagreement list."""
    lines = [f"# {_title(report)}", "", *markdown_headline(report["headline"])]
    lines += markdown_tables(report_tables(report))
    if report["disagreements"]:
        shown, more = _shown(report)
        lines += ["## Where humans and judges disagree", "", DISAGREEMENT_INTRO, ""]
        for d in shown:
            lines += _disagreement_markdown(d)
        if more:
            lines += [f"And {more} more in agreement.json.", ""]
    return "\n".join(lines)


def agreement_page(report: Mapping[str, Any]) -> str:
    """The report as one self-contained HTML page (loads nothing; every text escaped)."""
    e = html.escape
    body = f"<style>{STYLE}</style><h1>{e(_title(report))}</h1>" + html_headline(report["headline"])
    body += html_tables(report_tables(report))
    if report["disagreements"]:
        shown, more = _shown(report)
        body += f"<h2>Where humans and judges disagree</h2><p>{e(DISAGREEMENT_INTRO)}</p>"
        body += "".join(_disagreement_html(d) for d in shown)
        if more:
            body += f"<p>And {more} more in agreement.json.</p>"
    body += html_raw("agreement.json", _flat({k: v for k, v in report.items() if k != "headline"}))
    return html_page(_title(report), body)


def agreement_html(db_path: Path) -> str:
    """The agreement page of the database at `db_path`."""
    return agreement_page(agreement_report(db_path))


def write_agreement_report(db_path: Path, out_dir: Path) -> Path:
    """Write agreement.json, agreement.md and agreement.html (atomically) in `out_dir`; the HTML path."""
    report = agreement_report(db_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(
        out_dir / "agreement.json", json.dumps(report, indent=2, allow_nan=False) + "\n"
    )
    write_text_atomic(out_dir / "agreement.md", agreement_markdown(report))
    write_text_atomic(out_dir / "agreement.html", agreement_page(report))
    return out_dir / "agreement.html"
