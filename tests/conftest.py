"""Fixtures shared across test files: one tiny finished run (`reasonlab run` on the TINY settings of
tests/runs.py, about a minute) and a headless browser session for the report checks."""

import pytest

from browser import MISSING_REASON, Browser, browser_available
from runs import TINY, reasonlab


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    proc = reasonlab("run", "--out", str(out), *TINY)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return out


@pytest.fixture(scope="session")
def browser():
    if not browser_available():
        pytest.skip(MISSING_REASON)
    session = Browser()
    yield session
    session.close()
