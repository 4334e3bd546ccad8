"""The solutions view: a solution's chain with judged steps, and the base's and RL model's side by side.

One renderer for "a solution with judged steps", in HTML (`solution_html`) and Markdown
(`solution_markdown`): each step on its own row, marked by the verifier as valid, wrong or retracted
(by a `check: wrong` line) with a colour and a text label, so it reads without colour too; the first
wrong step highlighted; the answer's verdict; each judge's step score as a small bar and its number.
`solutions_section_html` / `solutions_section_markdown` render eval/solutions.json (written by the
main job, experiments/solutions.py): each problem's base and RL solutions side by side (in turn in
Markdown), with filters in HTML (all, wrong answers only, shortcut answers only, problems RL fixed,
problems RL broke) that are radio buttons toggling problem blocks by pure CSS (`:checked`): no
script, nothing fetched, so the page works offline. Every text goes through html.escape.

Inputs are plain dicts (a solution: model, text, answer, reference, outcome, shortcut, first_error,
steps [{text, mark}], judges {name: {steps, score}}; see experiments/solutions.py), so any page can
use the renderer without the run report. Usage:

    from reasonlab.fileio import read_json_or_none
    data = read_json_or_none(run_dir / "eval" / "solutions.json")
    body += solutions_section_html(data)          # "" when there is no data
    lines.append(solutions_section_markdown(data))
"""

from __future__ import annotations

import html
import math
from typing import Any

# mark -> (symbol, text label, text colour, row background)
MARKS: dict[str | None, tuple[str, str, str, str]] = {
    "valid": ("\u2713", "valid", "#1a7f37", "#eef8f0"),
    "wrong": ("\u2717", "wrong", "#b42318", "#fdeeec"),
    "retracted": ("\u21ba", "retracted", "#8a5a00", "#fff6e0"),
    None: ("\u00b7", "not checked", "#555555", "transparent"),
}
OUTCOMES: dict[str, tuple[str, str, str]] = {  # outcome -> (symbol, label, colour)
    "correct": ("\u2713", "right answer", "#1a7f37"),
    "wrong": ("\u2717", "wrong answer", "#b42318"),
    "malformed": ("\u2717", "no answer (malformed)", "#b42318"),
}
STATUS_LABELS = {
    "fixed": "RL fixed it",
    "broke": "RL broke it",
    "both_wrong": "both wrong",
    "both_right": "both right",
    "wrong": "base wrong",
    "right": "base right",
}
MODEL_LABELS = {"base": "base", "rl": "RL model"}
# filter id -> (label, the class a problem block needs to stay shown; None: every block)
FILTERS: dict[str, tuple[str, str | None]] = {
    "all": ("all", None),
    "wrong": ("wrong answers only", "sol-has-wrong"),
    "shortcut": ("shortcut answers only", "sol-has-shortcut"),
    "fixed": ("problems RL fixed", "sol-fixed"),
    "broke": ("problems RL broke", "sol-broke"),
}
BAR_COLOUR = "#4a78c2"
SECTION_STYLE = (
    ".sol-section .sol-pair{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);"
    "gap:1em;align-items:start}"
    ".sol-section .sol-pair>*{overflow-x:auto}"
    ".sol-section .sol-problem{border-top:1px solid #ccc;margin-top:1em}"
    ".sol-section input[name=sol-filter]+label{margin-right:1em}"
    + "".join(
        f"#sol-f-{f}:checked~.sol-problems .sol-problem:not(.{cls}){{display:none}}"
        for f, (_, cls) in FILTERS.items()
        if cls
    )
)


def solution_html(solution: dict[str, Any]) -> str:
    """One solution as an HTML block: its verdict line, a table of its steps (verifier mark, text, each
    judge's score as a bar), the judges' solution scores and the raw text. Self-styled (inline styles)."""
    steps = solution.get("steps") or []
    judges = solution.get("judges") or {}
    names = list(judges)
    first = solution.get("first_error")
    outcome = str(solution.get("outcome") or "unknown")
    head = (
        "<tr><th>#</th><th>verifier</th><th style='text-align:left'>step</th>"
        + "".join(f"<th>{_e(n)}</th>" for n in names)
        + "</tr>"
    )
    rows = []
    for i, step in enumerate(steps):
        mark = step.get("mark")
        symbol, label, colour, background = MARKS.get(mark, MARKS[None])
        is_first = first is not None and first >= 0 and i == first
        classes = f"sol-step sol-{_slug(label)}" + (" sol-first-error" if is_first else "")
        style = f"background:{background}" + (
            ";outline:2px solid #b42318;font-weight:bold" if is_first else ""
        )
        label_text = f"{symbol} {label}" + (" \u2190 first error" if is_first else "")
        scores = "".join(f"<td>{_bar(_at((judges[n] or {}).get('steps'), i))}</td>" for n in names)
        rows.append(
            f"<tr class='{classes}' data-step='{i}' data-mark={_q(mark or 'none')} "
            f"style='{style}'><td>{i + 1}</td>"
            f"<td style='color:{colour};white-space:nowrap'>{_e(label_text)}</td>"
            f"<td><pre style='margin:0;white-space:pre-wrap'>{_e(step.get('text', ''))}</pre></td>"
            f"{scores}</tr>"
        )
    if names:
        rows.append(
            "<tr class='sol-total'><td></td><td>whole solution</td><td></td>"
            + "".join(f"<td>{_bar((judges[n] or {}).get('score'))}</td>" for n in names)
            + "</tr>"
        )
    table = (
        f"<table class='sol-steps' style='border-collapse:collapse;width:100%'>"
        f"<thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"
        if steps
        else "<p><i>no step (empty output)</i></p>"
    )
    raw = (
        "<details><summary>raw text</summary><pre style='white-space:pre-wrap'>"
        f"{_e(solution.get('text', ''))}</pre></details>"
    )
    return (
        f"<div class='sol-solution sol-outcome-{_slug(outcome)}'"
        f"{' data-model=' + _q(solution['model']) if solution.get('model') else ''}>"
        f"<p class='sol-verdict'>{_verdict_html(solution)}</p>{table}{raw}</div>"
    )


def solution_markdown(solution: dict[str, Any]) -> str:
    """One solution in Markdown: its verdict line, then a table of its steps (verifier mark, text, each
    judge's score) with the judges' solution scores in its last row."""
    steps = solution.get("steps") or []
    judges = solution.get("judges") or {}
    names = list(judges)
    first = solution.get("first_error")
    lines = [_verdict_markdown(solution), ""]
    if not steps:
        return "\n".join([*lines, "*no step (empty output)*", ""])
    lines.append("| # | verifier | step | " + "".join(f"{_md(n)} | " for n in names).rstrip())
    lines.append("|---|---|---|" + "---|" * len(names))
    for i, step in enumerate(steps):
        symbol, label, _, _ = MARKS.get(step.get("mark"), MARKS[None])
        text = f"{symbol} {label}"
        if first is not None and first >= 0 and i == first:
            text = f"**{text} \u2190 first error**"
        scores = "".join(f" {_num(_at((judges[n] or {}).get('steps'), i))} |" for n in names)
        lines.append(f"| {i + 1} | {text} | {_md(step.get('text', ''))} |{scores}")
    if names:
        lines.append(
            "| | whole solution | |"
            + "".join(f" {_num((judges[n] or {}).get('score'))} |" for n in names)
        )
    return "\n".join([*lines, ""])


def solutions_section_html(data: dict[str, Any] | None) -> str:
    """The solutions view of a run (eval/solutions.json) as an HTML section; "" without data."""
    if not data:
        return ""
    problems = data.get("problems") or []
    blocks = [_problem_html(k + 1, p) for k, p in enumerate(problems)]
    counts = {
        f: sum(cls is None or cls in _classes(p) for p in problems)
        for f, (_, cls) in FILTERS.items()
    }
    radios = "".join(
        f"<input type='radio' name='sol-filter' id='sol-f-{f}'{' checked' if f == 'all' else ''}>"
        f"<label for='sol-f-{f}'>{_e(label)} ({counts[f]})</label>"
        for f, (label, _) in FILTERS.items()
    )
    return (
        f"<section class='sol-section'><style>{SECTION_STYLE}</style>"
        "<h2>Solutions, step by step</h2>"
        f"<p>{_e(_intro(data))}</p>"
        # the radios are siblings of .sol-problems, as the :checked ~ selectors need
        f"<span class='sol-filters'>Show: </span>{radios}"
        f"<div class='sol-problems'>{''.join(blocks)}</div></section>\n"
    )


def solutions_section_markdown(data: dict[str, Any] | None) -> str:
    """The solutions view of a run (eval/solutions.json) in Markdown; "" without data."""
    if not data:
        return ""
    lines = ["## Solutions, step by step", "", _md(_intro(data)), ""]
    for k, p in enumerate(data.get("problems") or []):
        lines += [f"### {k + 1}. {_md(_prompt(p))} \u2014 {_md(_status_line(p))}", ""]
        solutions = p.get("solutions") or {}
        for model in _models(data, p):
            if solutions.get(model):
                lines.append(solution_markdown(solutions[model]))
    return "\n".join(lines).rstrip() + "\n"


def _intro(data: dict[str, Any]) -> str:
    problems = data.get("problems") or []
    counts = data.get("counts") or {}
    text = (
        f"{len(problems)} test problems, one sampled solution of each model per problem, each step "
        "marked by the verifier (valid, wrong, or retracted by a self-check) with the first wrong "
        "step highlighted"
    )
    if data.get("judges"):
        text += f", and each judge's score ({', '.join(data['judges'])}) after every step"
    if counts:
        text += ". Over all test problems: " + ", ".join(
            f"{STATUS_LABELS.get(s, s)} {n}" for s, n in counts.items()
        )
    return text + " (a model solves a problem when at least half of its samples are right)."


def _problem_html(k: int, problem: dict[str, Any]) -> str:
    solutions = problem.get("solutions") or {}
    columns = []
    for model in ("base", "rl"):
        solution = solutions.get(model)
        columns.append(
            f"<div>{solution_html(solution)}</div>"
            if solution
            else f"<div><p><i>no {_e(MODEL_LABELS[model])} in this run</i></p></div>"
        )
    return (
        f"<div class='{' '.join(['sol-problem', *sorted(_classes(problem))])}' "
        f"data-id={_q(problem.get('id', ''))}>"
        f"<h3>{k}. <code>{_e(_prompt(problem))}</code> \u2014 {_e(_status_line(problem))}</h3>"
        f"<div class='sol-pair'>{''.join(columns)}</div></div>"
    )


def _classes(problem: dict[str, Any]) -> set[str]:
    """The filter classes of a problem block: its status and whether a shown answer is wrong / a shortcut."""
    shown = [s for s in (problem.get("solutions") or {}).values() if s]
    out = {f"sol-{_slug(str(problem.get('status', '')))}"}
    if any(s.get("outcome") != "correct" for s in shown):
        out.add("sol-has-wrong")
    if any(s.get("shortcut") for s in shown):
        out.add("sol-has-shortcut")
    return out


def _models(data: dict[str, Any], problem: dict[str, Any]) -> list[str]:
    return list(data.get("models") or problem.get("solutions") or [])


def _prompt(problem: dict[str, Any]) -> str:
    return " ".join(str(problem.get("prompt", "")).split())


def _status_line(problem: dict[str, Any]) -> str:
    status = str(problem.get("status", ""))
    acc = problem.get("accuracy") or {}
    parts = [f"{MODEL_LABELS.get(m, m)} {_pct(v)} right" for m, v in acc.items()]
    return STATUS_LABELS.get(status, status) + (f" ({', '.join(parts)})" if parts else "")


def _verdict_parts(solution: dict[str, Any]) -> tuple[str, str, str, str, str]:
    """(model, answer, verdict text, its colour, the rest of the line)."""
    outcome = str(solution.get("outcome") or "unknown")
    symbol, label, colour = OUTCOMES.get(outcome, ("?", outcome, "#555555"))
    model = MODEL_LABELS.get(solution.get("model"), str(solution.get("model") or "solution"))
    answer = solution.get("answer")
    rest = []
    if solution.get("reference") is not None and outcome != "correct":
        rest.append(f"reference {solution['reference']}")
    first = solution.get("first_error")
    if first is not None and first >= 0:
        rest.append(f"first wrong step: {first + 1}")
    elif first == -1 and any(step.get("mark") for step in solution.get("steps") or []):
        rest.append("no wrong step")
    if solution.get("shortcut"):
        rest.append("shortcut: answer without steps")
    return (
        model,
        "none" if answer is None else str(answer),
        f"{symbol} {label}",
        colour,
        "; ".join(rest),
    )


def _verdict_html(solution: dict[str, Any]) -> str:
    model, answer, verdict, colour, rest = _verdict_parts(solution)
    return (
        f"<b>{_e(model)}</b>: answer <code>{_e(answer)}</code> "
        f"<span style='color:{colour};font-weight:bold'>{_e(verdict)}</span>"
        + (f" ({_e(rest)})" if rest else "")
    )


def _verdict_markdown(solution: dict[str, Any]) -> str:
    model, answer, verdict, _, rest = _verdict_parts(solution)
    return f"**{_md(model)}**: answer {_md(answer)}, **{verdict}**" + (
        f" ({_md(rest)})" if rest else ""
    )


def _bar(score: Any) -> str:
    """A score in [0, 1] as a small bar (a span whose width is the score in %) and its number."""
    value = _finite(score)
    if value is None:
        return "<span class='sol-score'>n/a</span>"
    width = round(100 * min(max(value, 0.0), 1.0), 1)
    return (
        f"<span class='sol-score' style='white-space:nowrap'>"
        "<span style='display:inline-block;width:3em;height:0.7em;background:#e4e4e4;"
        "vertical-align:middle'>"
        f"<span class='sol-bar' style='display:block;height:100%;width:{width}%;"
        f"background:{BAR_COLOUR}'></span></span> {value:.3f}</span>"
    )


def _num(score: Any) -> str:
    value = _finite(score)
    return "n/a" if value is None else f"{value:.3f}"


def _finite(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(x)


def _at(values: Any, i: int) -> Any:
    return values[i] if isinstance(values, list | tuple) and i < len(values) else None


def _pct(x: Any) -> str:
    value = _finite(x)
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower())


def _e(text: Any) -> str:
    """Element text, escaped (attribute values go through `_q`)."""
    return html.escape(str(text), quote=False)


def _q(text: Any) -> str:
    """An attribute value, quoted and escaped."""
    return f'"{html.escape(str(text), quote=True)}"'


def _md(text: Any) -> str:
    """Text for a Markdown table cell or line: HTML-escaped, Markdown's marks and pipes escaped,
    newlines as <br>."""
    out = html.escape(str(text), quote=False)
    for c in "\\`*_[]|":
        out = out.replace(c, "\\" + c)
    return "<br>".join(line.strip() for line in out.splitlines()) if "\n" in out else out
