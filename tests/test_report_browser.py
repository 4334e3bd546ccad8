"""Every kind of report opens in a real browser without console errors, and every image resolves.

The reports are written by the real commands on a tiny run (the session's `tiny_run`, shared with
tests/test_cli.py): the run report, `reasonlab compare` of two runs and `reasonlab sufficiency`
(the sweep report is checked beside the sweep it comes from, in tests/test_sweep.py). Debian's
chromium, driven by selenium, loads each HTML file from disk (file://, as a user double-clicking it
would); the check fails on any SEVERE console message, on an image that did not load, and on a
report that is not self-contained (an image that is not a data: URI, so the HTML alone can be
mailed). Skips with the reason where chromium or chromedriver is missing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from browser import MISSING_REASON, Browser, browser_available
from runs import reasonlab

pytestmark = pytest.mark.skipif(not browser_available(), reason=MISSING_REASON)


def assert_clean(browser: Browser, path: Path) -> str:
    """Load `path`; no console error, at least one image, every image loaded and inline."""
    page = browser.check(path)
    assert page.console_errors == [], page.console_errors
    assert page.images >= 1 and page.broken_images == [], page.broken_images
    html = path.read_text(encoding="utf-8")
    assert "<img" in html and 'src="data:image/png;base64,' in html
    assert 'src="plots/' not in html  # self-contained: no image file beside it is needed
    return page.text


def test_the_run_report(browser, tiny_run):
    text = assert_clean(browser, tiny_run / "report.html")
    assert "pass@1" in text


def test_the_compare_report(browser, tiny_run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_run, other)
    config = other / "config.yaml"
    config.write_text(config.read_text().replace("lr: 0.0001", "lr: 0.0002"), encoding="utf-8")
    out = tmp_path / "compared"
    proc = reasonlab("compare", str(tiny_run), str(other), "--out", str(out))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert_clean(browser, out / "report.html")


def test_the_sufficiency_report(browser, tiny_run, tmp_path):
    out = tmp_path / "suff"
    small = ["-n", "4", "--problems", "3", "--best-of", "2", "--control-steps", "2"]
    proc = reasonlab("sufficiency", "--model", str(tiny_run), "--out", str(out), *small)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert_clean(browser, out / "sufficiency.html")
