"""`reasonlab compare RUN RUN ...`: run folders side by side in one report (reports/compare.py).

Writes <out>/report.md, report.html (self-contained), plots/ and compare.json: the config fields that
differ, the headline metrics with the best run of each row marked, and the RL and pass@k curves
overlaid. Bad input (a missing folder, one that is not a run, the same folder twice, fewer than two
runs, an output folder holding something other than a compare report) is one line and exit code 2,
before anything is written. Usage:

    reasonlab compare runs/default runs/rloo                  # -> runs/compare-default-rloo
    reasonlab compare runs/a runs/b runs/c --out runs/abc
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from reasonlab.cli.common import console


def compare(
    runs: list[Path] = typer.Argument(
        ..., help="Two or more run folders.", metavar="RUN", show_default=False
    ),
    out: Optional[Path] = typer.Option(
        None,
        "--out",
        "-o",
        help="Output folder (default: runs/compare-<run names>); an earlier compare report there "
        "is rewritten, any other non-empty folder refused.",
    ),
) -> None:
    """Compare run folders side by side: config differences, metrics, curves.

    The best run of each metric row is marked (higher pass rates and maj@k,
    lower shortcut and malformed rates and RL time).
    The RL and pass@k curves have one line per run.
    """
    from reasonlab.reports.compare import check_out, check_runs, default_out, write_compare_report

    check_runs(runs)
    out = out or default_out(runs)
    check_out(out)
    report = write_compare_report(runs, out)
    console.print(f"report: {out / 'report.html'}  ({report})")
