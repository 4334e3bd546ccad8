"""What every report is made of: tables, a missing value, Markdown and HTML pages, saved figures.

A table is (title, header, rows); cells go through `fmt` (floats to 3 decimals, a missing value as
"n/a"). `markdown_tables` / `html_tables` render a list of tables the same way in every report, and
`html_page` wraps a body in the one stylesheet. Usage:

    tables = [("Base vs RL", ["metric", "base", "RL"], [["pass@1", fmt(0.3412), fmt(None)]])]
    md = "\\n".join(["# title", "", *markdown_tables(tables), *markdown_figures(figures)])
    page = html_page("reasonlab run: default", html_tables(tables) + html_figures(figures))
"""

from __future__ import annotations

import html
from collections.abc import Sequence
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
    "img{max-width:100%%}"
)


def fmt(x: Any) -> Any:
    """A cell: floats rounded to 3 decimals, None as "n/a", anything else as it is."""
    if x is None:
        return MISSING
    return round(x, 3) if isinstance(x, float) else x


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


def html_figures(figures: Sequence[Figure]) -> str:
    esc = html.escape
    return "".join(
        f"<h2>{esc(c)}</h2><img src='plots/{esc(p.name)}' alt='{esc(c)}'>" for c, p in figures
    )


def html_page(title: str, body: str, width: str = "60em") -> str:
    """A whole HTML document: the title, the shared stylesheet, the body."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE % width}</style></head><body>{body}</body></html>\n"
    )


def save_figure(fig: Any, path: Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG (tight layout) and close it."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
