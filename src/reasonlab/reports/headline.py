"""The few sentences a report opens with, made from its numbers: pure functions, no I/O.

`run_headline(summary, rl_steps, rl_advantage)` says, from a run's summary.json (and the RL step count and
advantage estimator read from its folder), what RL did to pass@1 and pass@k (the largest k evaluated),
which behaviours changed notably (shortcut and malformed rates by at least 5 points, the completion length
by at least 20%), pass@1 at the other difficulty levels, which judge finds wrong steps best and what
choosing among N samples with it gives; a run without RL gets the base's pass rates instead, a run
without judges no judge sentence. `sufficiency_headline(result)` says whether the base was judged
sufficient for RL and why, quoting the statements of evaluate/verdict.py. `sweep_headline(state)` says
how many cells finished, which base metric best predicted RL's gain (Spearman's rho) and where the gain
was largest. Numbers go through reports/toolkit.py's `percent`, `points`, `sig3`, `duration`, `tokens`.
Usage:

    sentences = run_headline(json.loads(Path("runs/default/summary.json").read_text()), rl_steps=100)
    print(" ".join(sentences))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reasonlab.evaluate.verdict import verdict
from reasonlab.reports.toolkit import duration, percent, points, sig3, tokens

NOTABLE_SHARE = 0.05  # a rate changed notably when it moved by 5 percentage points or more
NOTABLE_LENGTH = 0.2  # a length changed notably when it moved by 20% or more
FEW_CELLS = 5  # fewer finished cells than this make a rank correlation a hint at most
QUOTED = 3  # verdict statements quoted in the sufficiency headline
ADVANTAGES = {
    "grpo": "GRPO",
    "dr_grpo": "Dr. GRPO",
    "rloo": "RLOO",
    "reinforce_pp": "REINFORCE++",
    "reinforce_pp_baseline": "REINFORCE++ (baseline)",
    "gae": "PPO",
}
RATES = (
    ("shortcut_rate", "answer-only (shortcut) samples"),
    ("malformed_rate", "malformed answers"),
)

# ---- a run -----------------------------------------------------------------------------------------------


def run_headline(
    summary: Mapping[str, Any], rl_steps: int | None = None, rl_advantage: str | None = None
) -> list[str]:
    """Sentences for a run's report; only about what summary.json holds."""
    has_rl = "rl/pass@1" in summary and "base/pass@1" in summary
    first = _rl_sentence(summary, rl_steps, rl_advantage) if has_rl else _base_sentence(summary)
    sentences = [first]
    if has_rl:
        sentences += [*_behaviour_sentences(summary), _levels_sentence(summary)]
    sentences += [_judge_sentence(summary), _best_of_n_sentence(summary), _time_sentence(summary)]
    return [s for s in sentences if s]


def largest_k(summary: Mapping[str, Any], models: Sequence[str]) -> int | None:
    """The largest k > 1 with pass@k for every one of `models` in summary.json."""
    ks = [
        int(found[1])
        for key in summary
        if (found := re.fullmatch(r"base/pass@(\d+)", key))
        and all(f"{m}/pass@{found[1]}" in summary for m in models)
    ]
    return max((k for k in ks if k > 1), default=None)


def _rl_sentence(summary: Mapping[str, Any], steps: int | None, advantage: str | None) -> str:
    how = []
    if steps:
        how.append(
            " ".join(filter(None, (str(steps), ADVANTAGES.get(advantage, advantage), "steps")))
        )
    if "time/rl_s" in summary:
        how.append(duration(summary["time/rl_s"]))
    k = largest_k(summary, ("base", "rl"))
    changes = [_change("pass@1", summary["base/pass@1"], summary["rl/pass@1"])]
    if k:
        changes.append(_change(f"pass@{k}", summary[f"base/pass@{k}"], summary[f"rl/pass@{k}"]))
    return f"RL{_aside(how)} {_join_changes(changes)}."


def _aside(parts: Sequence[str]) -> str:
    """ " (a, b)" or nothing."""
    return f" ({', '.join(parts)})" if parts else ""


def _change(metric: str, before: float, after: float) -> tuple[str, str]:
    """(verb, rest) for a pass rate before and after RL: ("raised", "pass@1 from 40.2% to 85.7%")."""
    if percent(before) == percent(after):
        return "left", f"{metric} at {percent(before)}"
    return ("raised" if after > before else "lowered"), (
        f"{metric} from {percent(before)} to {percent(after)}"
    )


def _join_changes(changes: Sequence[tuple[str, str]]) -> str:
    """ "raised pass@1 from a to b and pass@64 from c to d"; "but lowered ..." when the verbs differ."""
    (verb, rest), *others = changes
    text = f"{verb} {rest}"
    for other_verb, other_rest in others:
        text += f" and {other_rest}" if other_verb == verb else f" but {other_verb} {other_rest}"
    return text


def _base_sentence(summary: Mapping[str, Any]) -> str:
    if "base/pass@1" not in summary:
        return ""
    about = []
    if "model/params" in summary:
        about.append(f"{sig3(summary['model/params'])} parameters")
    if "time/pretrain_s" in summary:
        about.append(f"pretrained in {duration(summary['time/pretrain_s'])}")
    text = (
        f"The base model{_aside(about)} solves {percent(summary['base/pass@1'])} of test problems"
    )
    text += " in one sample (pass@1)"
    k = largest_k(summary, ("base",))
    if k:
        text += f" and {percent(summary[f'base/pass@{k}'])} in {k} (pass@{k})"
    return text + "."


def _behaviour_sentences(summary: Mapping[str, Any]) -> list[str]:
    """Which of the shortcut rate, the malformed rate and the length RL changed notably, which barely."""
    notable, barely = [], []
    for key, label in RATES:
        before, after = summary.get(f"base/{key}"), summary.get(f"rl/{key}")
        if before is None or after is None:
            continue
        if abs(after - before) >= NOTABLE_SHARE:
            notable.append(_moved(label, before, after, percent, ("rose", "fell")))
        else:
            barely.append(f"{label} ({percent(before)} before, {percent(after)} after)")
    before, after = summary.get("base/mean_length"), summary.get("rl/mean_length")
    if before and after is not None and abs(after - before) >= NOTABLE_LENGTH * before:
        notable.append(_moved("the mean completion", before, after, tokens, ("grew", "shrank")))
    out = []
    if notable:
        out.append(_capital(_listing(notable)) + ".")
    if barely:
        out.append(f"RL barely changed the share of {_listing(barely)}.")
    return out


def _moved(
    label: str, before: float, after: float, show: Callable[[Any], str], verbs: tuple[str, str]
) -> str:
    """ "answer-only samples fell from 60.2% to 0.391%": `verbs` is (up, down)."""
    return f"{label} {verbs[after < before]} from {show(before)} to {show(after)}"


def _levels_sentence(summary: Mapping[str, Any]) -> str:
    """pass@1 before and after RL at the extra difficulty levels (base/d<level>/pass@1)."""
    levels = sorted(
        int(found[1])
        for key in summary
        if (found := re.fullmatch(r"base/d(\d+)/pass@1", key))
        and f"rl/d{found[1]}/pass@1" in summary
    )
    if not levels:
        return ""
    parts = [
        f"from {percent(summary[f'base/d{lv}/pass@1'])} to {percent(summary[f'rl/d{lv}/pass@1'])} "
        f"at difficulty {lv}"
        for lv in levels
    ]
    return f"At the other difficulty levels pass@1 went {_listing(parts)}."


def _judge_names(summary: Mapping[str, Any]) -> list[str]:
    return [found[1] for key in summary if (found := re.fullmatch(r"judge/([^/]+)/f1", key))]


def judge_label(name: str) -> str:
    """prm -> PRM, likelihood -> likelihood: short names are acronyms."""
    return name.upper() if len(name) <= 3 else name


def _judge_sentence(summary: Mapping[str, Any]) -> str:
    """Which judge finds wrong steps best (ProcessBench F1), with the others' scores beside it."""
    names = sorted(_judge_names(summary), key=lambda n: -summary[f"judge/{n}/f1"])
    if not names:
        return ""
    best, *others = names
    policy = summary.get(f"judge/{best}/policy_f1")
    scores = f"ProcessBench F1 {sig3(summary[f'judge/{best}/f1'])} on held-out solutions with "
    scores += "injected errors"
    if policy is not None:
        scores += f", {sig3(policy)} on the base's own samples"
    if not others:
        return f"The {judge_label(best)} judge finds wrong steps with {scores}."
    rest = "; ".join(f"{judge_label(n)} {_f1_pair(summary, n)}" for n in others)
    return f"Of the judges, {judge_label(best)} finds wrong steps best: {scores} ({rest})."


def _f1_pair(summary: Mapping[str, Any], name: str) -> str:
    f1, policy = summary[f"judge/{name}/f1"], summary.get(f"judge/{name}/policy_f1")
    return sig3(f1) if policy is None else f"{sig3(f1)} and {sig3(policy)}"


def _best_of_n_sentence(summary: Mapping[str, Any]) -> str:
    """What choosing one of N base samples with the best judge gives, beside the baselines."""
    found = [re.fullmatch(r"judge/bo(\d+)/pass@1", k) for k in summary]
    n = next((m[1] for m in found if m), None)
    names = [j for j in _judge_names(summary) if summary.get(f"judge/bo{n}/{j}") is not None]
    if n is None or not names:
        return ""
    best = max(names, key=lambda j: summary[f"judge/bo{n}/{j}"])
    against = [f"{percent(summary[f'judge/bo{n}/pass@1'])} for a single sample (pass@1)"]
    if summary.get(f"judge/bo{n}/majority") is not None:
        against.append(f"{percent(summary[f'judge/bo{n}/majority'])} for a majority vote")
    if summary.get(f"judge/bo{n}/pass@{n}") is not None:
        against.append(
            f"{percent(summary[f'judge/bo{n}/pass@{n}'])} for a perfect chooser (pass@{n})"
        )
    return (
        f"Choosing one of {n} base samples, {judge_label(best)} picks a right answer "
        f"{percent(summary[f'judge/bo{n}/{best}'])} of the time, against {_listing(against)}."
    )


def _time_sentence(summary: Mapping[str, Any]) -> str:
    total = summary.get("time/total_s")
    return f"The whole run took {duration(total)}." if total is not None else ""


# ---- a sufficiency result --------------------------------------------------------------------------------


def sufficiency_headline(result: Mapping[str, Any]) -> list[str]:
    """Sentences for a sufficiency report: the base's pass rates at the main level, then whether it was
    judged sufficient and the verdict statements that decided it (evaluate/verdict.py)."""
    statements = result.get("verdict") or verdict(result)
    main = result["main_level"]
    m = {str(k): v for k, v in result["levels"].items()}[str(main)]
    n = result["n"]
    knob = result.get("difficulty_knob")
    first = (
        f"At level {main}{f' ({knob})' if knob else ''} the base solves {percent(m['pass@1'])} "
        f"of problems in one sample and {percent(m.get(f'pass@{n}'))} in {n} (pass@{n})."
    )
    base = [s for s in statements if s["says"] == "base"]
    rl = [s for s in statements if s["says"] == "rl"]
    if base:
        judged, deciding = "The base is not yet sufficient for RL: improve it first.", base
    elif rl:
        judged, deciding = "The base is sufficient for RL.", rl
    else:
        judged, deciding = "No rule of the verdict takes a side.", []
    quoted = [s["text"] for s in deciding[:QUOTED]]
    if len(deciding) > QUOTED:
        rest = ", ".join(s["metric"] for s in deciding[QUOTED:])
        quoted.append(f"The rules {rest} say the same.")
    return [first, judged, *quoted]


# ---- a sweep ---------------------------------------------------------------------------------------------


def sweep_headline(state: Mapping[str, Any]) -> list[str]:
    """Sentences for a sweep report: cells finished and failed, the base metric that best predicted RL's
    gain in pass@1 and in pass@k, the cell with the largest gain, RL against more pretraining."""
    cells = state["cells"]
    done = [r for r in cells if r.get("status") == "finished"]
    failed = [r["name"] for r in cells if r.get("status") == "failed"]
    first = f"{len(done)} of {len(cells)} cells finished"
    first += f"; {len(failed)} failed ({', '.join(failed)})." if failed else "."
    sentences = [first, _predictor_sentence(state, done), _largest_gain_sentence(done)]
    return [s for s in [*sentences, _matched_sentence(done)] if s]


def _sweep_gain(row: Mapping[str, Any], which: str) -> float | None:
    return row["gain"].get(f"pass@{row['k']}" if which == "pass@k" else which)


def _k_label(done: Sequence[Mapping[str, Any]]) -> str:
    ks = {r["k"] for r in done}
    return f"pass@{ks.pop()}" if len(ks) == 1 else "pass@k"


def _predictor_sentence(state: Mapping[str, Any], done: Sequence[Mapping[str, Any]]) -> str:
    """The base metric with the largest |rho| for each gain, its sign in words."""
    corr = state.get("correlations") or {}
    parts, fewest = [], None
    for which in ("pass@1", "pass@k"):
        ranked = [(m, c[which], c["cells"]) for m, c in corr.items() if c.get(which) is not None]
        if not ranked:
            continue
        metric, rho, cells = max(ranked, key=lambda t: abs(t[1]))
        tied = [m for m, r, _ in ranked if m != metric and abs(r) == abs(rho)]
        fewest = min(cells, fewest or cells)
        label = _k_label(done) if which == "pass@k" else which
        trend = "larger" if rho > 0 else "smaller"
        parts.append(
            f"for the gain in {label}, {metric} (Spearman rho {rho:+.2f} over {cells} cells: "
            f"the higher the base's {metric}, the {trend} the gain"
            + (f"; {_listing(tied)} as strongly" if tied else "")
            + ")"
        )
    if not parts:
        return ""
    text = f"The base metric that best predicted RL's gain: {'; '.join(parts)}."
    if fewest < FEW_CELLS:
        text += f" With fewer than {FEW_CELLS} cells this is a hint at most."
    return text


def _largest_gain_sentence(done: Sequence[Mapping[str, Any]]) -> str:
    rows = [r for r in done if _sweep_gain(r, "pass@1") is not None]
    if not rows:
        return ""
    best = max(rows, key=lambda r: _sweep_gain(r, "pass@1"))
    change = _sweep_gain(best, "pass@1")
    before, after = percent(best["base"].get("pass@1")), percent(best["rl"].get("pass@1"))
    where = f"{points(change)} in cell {best['name']} (from {before} to {after})"
    if change > 0:
        return f"The largest gain in pass@1 was {where}."
    return f"RL gained no pass@1 in any cell; the best change was {where}."


def _matched_sentence(done: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        r
        for r in done
        if "more_gain" in r and None not in (_sweep_gain(r, "pass@1"), r["more_gain"].get("pass@1"))
    ]
    if not rows:
        return ""
    wins = sum(_sweep_gain(r, "pass@1") > r["more_gain"]["pass@1"] for r in rows)
    return (
        f"At the same cost, RL gained more pass@1 than more pretraining in {wins} of {len(rows)} "
        "cells."
    )


# ---- words -----------------------------------------------------------------------------------------------


def _listing(items: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
