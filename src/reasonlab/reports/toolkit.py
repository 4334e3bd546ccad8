"""What every report is made of: numbers for a reader, tables, Markdown and HTML pages, saved figures.

Numbers a person reads go through `sig3` (3 significant figures), `percent` (rates and pass@k, "85.7%"),
`points` (a change in a rate, "+45.4 points"), `duration` ("38.4 s", "2.15 min") and `tokens`
("23.7 tokens"); a missing value is "n/a" everywhere. `fmt` keeps raw values (floats to 3 decimals) for
the collapsed raw summary. A table is (title, header, rows); `markdown_tables` / `html_tables` render a
list of tables the same way in every report. A report opens with its headline sentences
(`markdown_headline` / `html_headline`) and ends with its raw values collapsed (`markdown_raw` /
`html_raw`); `html_figures` inlines each PNG as a data: URI so the HTML page stands alone, and
`html_page` wraps a body in the one stylesheet. Usage:

    tables = [("Base vs RL", ["metric", "base", "RL"], [["pass@1", percent(0.3412), percent(None)]])]
    md = "\\n".join(["# title", "", *markdown_tables(tables), *markdown_figures(figures)])
    page = html_page("reasonlab run: default", html_tables(tables) + html_figures(figures))
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

Table = tuple[str, list[str], list[list[Any]]]  # (title, header, rows)
Figure = tuple[str, Path]  # (caption, PNG path)
MISSING = "n/a"
STYLE = (
    "body{font-family:sans-serif;max-width:%s;margin:2em auto}td,th{padding:2px 10px}"
    "img{max-width:100%%}.headline{font-size:1.15em;line-height:1.5}summary{cursor:pointer}"
)
LARGE = ((1e9, "billion"), (1e6, "million"))


def fmt(x: Any) -> Any:
    """A raw cell: floats rounded to 3 decimals, None as "n/a", anything else as it is."""
    if x is None:
        return MISSING
    return round(x, 3) if isinstance(x, float) else x


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and not math.isnan(x)


def sig3(x: Any) -> str:
    """A number to 3 significant figures, trailing zeros dropped: 0.85671 -> "0.857", 123456 ->
    "123,000", 1062528 -> "1.06 million", 0.00012 -> "0.00012"; None or NaN -> "n/a"."""
    if not _number(x):
        return MISSING
    if x == 0 or math.isinf(x):
        return str(x).replace("0.0", "0")
    for size, word in LARGE:
        if abs(x) >= size:
            return f"{sig3(x / size)} {word}"
    magnitude = math.floor(math.log10(abs(x)))
    if magnitude < -4:
        mantissa, exponent = f"{x:.2e}".split("e")
        return f"{_trim(mantissa)}e{exponent}"
    decimals = 2 - magnitude
    return _trim(f"{round(x, decimals):,.{max(0, decimals)}f}")


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent(x: Any) -> str:
    """A share as a percentage to 3 significant figures: 0.85671 -> "85.7%", 1 -> "100%"; a share just
    short of 1 stays below 100% (">99.9%"), a tiny one above 0 ("<0.01%")."""
    if not _number(x):
        return MISSING
    if 0 < abs(x) < 1e-4:
        return "<0.01%" if x > 0 else ">-0.01%"
    text = sig3(100 * x) + "%"
    return ">99.9%" if text == "100%" and x < 1 else text


def points(delta: Any) -> str:
    """A change in a share, in percentage points with its sign: 0.4543 -> "+45.4 points"."""
    if not _number(delta):
        return MISSING
    sign = "+" if delta > 0 else "-" if delta < 0 else ""
    size = sig3(abs(100 * delta))
    return f"{sign}{size} {'point' if size == '1' else 'points'}"


def duration(seconds: Any) -> str:
    """Seconds in the unit that reads best, to 3 significant figures: "38.4 s", "2.15 min", "1.5 h"."""
    if not _number(seconds):
        return MISSING
    if abs(seconds) < 60:
        return f"{sig3(seconds)} s"
    if abs(seconds) < 3600:
        return f"{sig3(seconds / 60)} min"
    return f"{sig3(seconds / 3600)} h"


def tokens(x: Any) -> str:
    """A length in tokens to 3 significant figures: 23.72 -> "23.7 tokens", 1 -> "1 token"."""
    if not _number(x):
        return MISSING
    text = sig3(x)
    return f"{text} {'token' if text == '1' else 'tokens'}"


def markdown_tables(tables: Sequence[Table]) -> list[str]:
    """Lines of Markdown: per table a `## title` heading, the header row and the rows."""
    lines: list[str] = []
    for caption, header, rows in tables:
        lines += [
            f"## {caption}",
            "",
            "| " + " | ".join(map(str, header)) + " |",
            "|" + "---|" * len(header),
        ]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
        lines += [""]
    return lines


def markdown_figures(figures: Sequence[Figure]) -> list[str]:
    """Lines of Markdown: per figure a `## caption` heading and the image (relative to plots/)."""
    lines: list[str] = []
    for caption, path in figures:
        lines += [f"## {caption}", "", f"![{caption}](plots/{path.name})", ""]
    return lines


def html_tables(tables: Sequence[Table]) -> str:
    esc = html.escape
    out = ""
    for caption, header, rows in tables:
        head = "".join(f"<th>{esc(str(h))}</th>" for h in header)
        cells = "".join(
            "<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in rows
        )
        out += f"<h2>{esc(caption)}</h2><table><tr>{head}</tr>{cells}</table>"
    return out


def image_data_uri(path: Path) -> str:
    """A PNG file as a data: URI, so a page shows it without the file beside it."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def html_figures(figures: Sequence[Figure]) -> str:
    """Per figure an <h2> caption and the image inlined as a data: URI."""
    esc = html.escape
    return "".join(
        f'<h2>{esc(c)}</h2><img src="{image_data_uri(p)}" alt="{esc(c)}">' for c, p in figures
    )


def markdown_headline(sentences: Sequence[str]) -> list[str]:
    """Lines of Markdown: the headline sentences as one paragraph."""
    return [" ".join(sentences), ""] if sentences else []


def html_headline(sentences: Sequence[str]) -> str:
    return f"<p class='headline'>{html.escape(' '.join(sentences))}</p>" if sentences else ""


def markdown_raw(name: str, values: Mapping[str, Any]) -> list[str]:
    """Lines of Markdown: a final "## Raw summary" section with every value of `name` (raw, via fmt)."""
    lines = ["## Raw summary", "", f"All of {name} ({len(values)} values).", ""]
    lines += ["| key | value |", "|---|---|"]
    return lines + [f"| {k} | {fmt(v)} |" for k, v in values.items()] + [""]


def html_raw(name: str, values: Mapping[str, Any]) -> str:
    """Every value of `name` (raw, via fmt) in a collapsed <details> block."""
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(str(k))}</td><td>{esc(str(fmt(v)))}</td></tr>" for k, v in values.items()
    )
    return (
        f"<details><summary>All of {esc(name)} ({len(values)} values)</summary>"
        f"<table>{rows}</table></details>"
    )


def html_page(title: str, body: str, width: str = "60em") -> str:
    """A whole HTML document: the title, the shared stylesheet, the body; it loads nothing else."""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f'<link rel="icon" href="data:,"><title>{html.escape(title)}</title>'
        f"<style>{STYLE % width}</style></head><body>{body}</body></html>\n"
    )


def save_figure(fig: Any, path: Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG (tight layout) and close it."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
