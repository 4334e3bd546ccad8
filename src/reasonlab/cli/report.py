"""`reasonlab report RUN`: (re)write a run folder's report from its files.

Usage:

    reasonlab report runs/default
"""

from __future__ import annotations

from pathlib import Path

import typer

from reasonlab.cli.common import console
from reasonlab.errors import ReasonlabError


def report(run_dir: Path = typer.Argument(..., help="A run folder.")) -> None:
    """(Re)write report.md and report.html with plots for a run folder."""
    from reasonlab.reports.run import write_report

    if not (run_dir / "config.yaml").is_file():
        raise ReasonlabError(f"{run_dir} is not a run folder (no config.yaml)")
    console.print(f"report: {write_report(run_dir)}")
