"""Serve the labeling app with uvicorn (one process; SQLite in WAL mode takes the concurrent writes).

`serve` runs in the foreground until interrupted (`reasonlab label serve`); `serving` runs the same
app in a background thread on a free port for as long as a `with` block lasts (tests, the
simulated annotators, benchmarks) and yields its base URL; `spawn` starts `reasonlab label serve`
as its own process (what the load and crash tests kill with SIGKILL) and waits until it answers.

Usage:
    serve(Path("labels.sqlite"), "127.0.0.1", 8765)      # or: reasonlab label serve --db labels.sqlite
    with serving(Path("labels.sqlite")) as url:           # "http://127.0.0.1:<free port>"
        urllib.request.urlopen(url + "/healthz")
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reasonlab.labeling.app import create_app


def serve(db_path: Path, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Run the app over `db_path` until interrupted (the database is checked before listening)."""
    import uvicorn

    uvicorn.run(create_app(Path(db_path)), host=host, port=port, log_level="info")


@contextmanager
def serving(
    db_path: Path, host: str = "127.0.0.1", port: int = 0, timeout: float = 20.0
) -> Iterator[str]:
    """The app over `db_path` served from a background thread (port 0: a free one); yields its URL
    once it answers, and stops it (finishing the requests in flight) when the block ends."""
    import uvicorn

    app = create_app(Path(db_path))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the labeling app did not start on {host}:{sock.getsockname()[1]}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    """Poll `url`/healthz until it answers 200; RuntimeError after `timeout` s or if `process` ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the labeling server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"the labeling server at {url} did not answer within {timeout:.0f} s")


def spawn(
    db_path: Path, port: int, host: str = "127.0.0.1", log: Path | None = None
) -> subprocess.Popen:
    """`reasonlab label serve` in its own process (same interpreter), up and answering on return."""
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    cmd = [sys.executable, "-m", "reasonlab.cli", "label", "serve", "--db", str(db_path)]
    process = subprocess.Popen(
        [*cmd, "--host", host, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT
    )
    if log is not None:
        out.close()  # the child holds its own copy
    try:
        wait_until_up(f"http://{host}:{port}", process=process)
    except RuntimeError:
        process.kill()
        process.wait()
        raise
    return process
