"""Math answer checking with math-verify in a worker process, with timeouts that hold on any thread.

`MathChecker.check(gold, text, timeout)` extracts the final answer of a model's `text` with
math-verify and compares it with the reference answer `gold`, in that order (gold first, as
math-verify's authors require: `verify` is deliberately asymmetric). It returns a `Check`: status
"correct", "wrong", "malformed" (no answer could be extracted, or it did not parse), "timeout" or
"error" (the check itself failed), and the extracted answer as math-verify normalised it (`0.5` is
shown as `\\frac{1}{2}`), so a user can see what was compared.

Extraction is math-verify's own: `LatexExtractionConfig(boxed_match_priority=0)` then
`ExprExtractionConfig()`, so the last `\\boxed{}` is the answer, else a "final answer is ..."
anchor, else the last LaTeX or plain expression. Departures, both in `answer_window`, which cuts
the text before math-verify sees it:
- When a text holds boxes, math-verify is given only the last box (with the boxes joined to it by
  "and", "or" or a comma, so "\\boxed{2} and \\boxed{3}" stays one answer). Without `$`
  delimiters, math-verify's plain-box pattern spans from the first box to the last and reads every
  box as one answer set: "\\boxed{1} ... wait ... \\boxed{2}" became {1, 2}, wrong for 2. The last
  box is the rule of the Qwen2.5-Math and lm-eval (minerva_math) graders. A last box that does not
  parse is MALFORMED (math-verify alone would fall back to other spans of the text).
- The window is bounded: at most `MAX_WINDOW_CHARS` characters (boxes are joined from the last one
  backwards while they fit; a last box longer than that is no answer: MALFORMED); without a box it
  is the text's last lines that fit in MAX_WINDOW_CHARS (a last line longer than that is cut at
  a space, or is no answer when it has none). So a 1 MB completion costs one linear scan plus a
  parse of at most MAX_WINDOW_CHARS characters. Some short answers are still slow for sympy (a
  30-character power tower takes seconds): the timeout below bounds those.
The gold is parsed as `\\boxed{gold}` with the same configuration (no window) and cached.

Why a process. math-verify bounds its work with SIGALRM, which Python allows only on the main thread:
in math-verify 0.9 `parse`/`verify` with a timeout raise ValueError off the main thread, and with
`parsing_timeout=None`/`timeout_seconds=None` they run unbounded. A signal also cannot stop sympy
inside a single long C call. So one persistent worker process does all parsing and comparing: it
bounds each check with an interval timer on its own main thread (math-verify's timeouts are off
there), and the parent waits on a socket for at most `timeout + GRACE_S` seconds; past that it kills
the worker, answers "timeout", and the next call starts a fresh one. The worker's address space is
capped (`MEMORY_LIMIT`), so a runaway expression ends in a MemoryError instead of swapping the host.
Calls from several threads are served one at a time; a forked child starts its own worker.

The worker runs `python -P <this file> <fd>` rather than multiprocessing's spawn or forkserver:
those re-import the caller's `__main__` script in the child (an unguarded script would run again),
and this way the worker imports only math-verify (about 0.4 s to start, not reasonlab and torch).
It ignores SIGINT (Ctrl-C stops the parent, which closes it) and exits when its socket closes;
every worker is closed at interpreter exit. POSIX only.

Usage:
    checker = shared_checker()
    checker.check("\\\\frac{1}{2}", "... so the answer is \\\\boxed{0.5}.", timeout=5.0)
    # Check(status='correct', answer='\\\\frac{1}{2}')
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import weakref
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing.connection import Connection
from typing import Any

GRACE_S = 1.0
"""How long past its timeout the parent waits for a check before it kills the worker."""
START_TIMEOUT_S = 120.0
"""How long a new worker may take to import math-verify and say it is ready."""
CLOSE_WAIT_S = 10.0
"""How long `close` waits for a check in progress on another thread."""
MEMORY_LIMIT = 4 << 30
"""Address-space cap of the worker process, in bytes."""
STATUSES: tuple[str, ...] = ("correct", "wrong", "malformed", "timeout", "error")


@dataclass(frozen=True)
class Check:
    """The result of one answer check: a status from STATUSES and the extracted answer, if any."""

    status: str
    answer: str | None = None


class CheckerUnavailable(RuntimeError):
    """The worker process could not be started (math-verify missing or broken)."""


# ---------------------------------------------------------------------------------------------
# The parent side


class MathChecker:
    """A persistent math-verify worker process; `check` is thread-safe and never hangs."""

    def __init__(self, grace_s: float = GRACE_S, start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.grace_s = grace_s
        self.start_timeout_s = start_timeout_s
        self.restarts = 0
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        _LIVE.add(self)

    @property
    def pid(self) -> int | None:
        """The worker's process id, or None when none runs."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the worker now (else the first check does); CheckerUnavailable if it cannot."""
        with self._lock:
            self._ensure_worker()

    def check(self, gold: str, text: str, timeout: float) -> Check:
        """Judge `text` against `gold` within about `timeout` seconds (plus `grace_s` at worst).

        Raises CheckerUnavailable only when no worker can be started at all.
        """
        with self._lock:
            conn = self._ensure_worker()
            try:
                conn.send((str(gold), str(text), float(timeout)))
                if not conn.poll(timeout + self.grace_s):
                    self._stop_worker(kill=True)
                    self.restarts += 1
                    return Check("timeout")
                status, answer = conn.recv()
            except (EOFError, OSError):
                self._stop_worker(kill=True)
                self.restarts += 1
                return Check("error")
            except BaseException:
                self._stop_worker(kill=True)
                raise
            return Check(status, answer)

    def close(self) -> None:
        """Stop the worker (a later check starts a new one). A check still running on another
        thread is cut short when it does not finish within CLOSE_WAIT_S."""
        locked = self._lock.acquire(timeout=CLOSE_WAIT_S)
        try:
            self._stop_worker(kill=not locked)
        finally:
            if locked:
                self._lock.release()

    def forget_worker(self) -> None:
        """In a forked child: drop the parent's worker (the child starts its own) and lock."""
        if self._conn is not None:
            self._conn.close()
        self._proc, self._conn, self._lock = None, None, threading.Lock()

    def _ensure_worker(self) -> Connection:
        if self._conn is None or self._proc is None or self._proc.poll() is not None:
            self._stop_worker(kill=True)
            self._proc, self._conn = start_worker(self.start_timeout_s)
        return self._conn

    def _stop_worker(self, kill: bool) -> None:
        proc, conn = self._proc, self._conn
        self._proc, self._conn = None, None
        if conn is not None:
            conn.close()
        if proc is None:
            return
        if not kill:
            try:
                proc.wait(timeout=1.0)
                return
            except subprocess.TimeoutExpired:
                pass
        proc.kill()
        proc.wait()


def start_worker(start_timeout_s: float) -> tuple[subprocess.Popen[bytes], Connection]:
    """Launch `python -P <this file> <fd>` and wait until it has imported math-verify."""
    ours, theirs = socket.socketpair()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-P", os.path.abspath(__file__), str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError as e:
        ours.close()
        raise CheckerUnavailable(f"cannot start the math answer checker: {e}") from None
    finally:
        theirs.close()
    conn = Connection(ours.detach())
    try:
        hello = (
            conn.recv() if conn.poll(start_timeout_s) else ("failed", "it did not start in time")
        )
    except (EOFError, OSError):
        hello = ("failed", "it exited while starting")
    if hello[0] != "ready":
        conn.close()
        proc.kill()
        proc.wait()
        raise CheckerUnavailable(
            f"cannot start the math answer checker: {hello[1]} "
            "(it needs math-verify: pip install 'math-verify[antlr4_13_2]')"
        )
    return proc, conn


_LIVE: weakref.WeakSet[MathChecker] = weakref.WeakSet()
_SHARED: MathChecker | None = None
_SHARED_LOCK = threading.Lock()


def shared_checker() -> MathChecker:
    """The process-wide checker that the math tasks use (created on first use)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = MathChecker()
        return _SHARED


@atexit.register
def close_all() -> None:
    """Stop every live worker (run at interpreter exit)."""
    for checker in list(_LIVE):
        checker.close()


def forget_all_in_child() -> None:
    for checker in list(_LIVE):
        checker.forget_worker()


os.register_at_fork(after_in_child=forget_all_in_child)


# ---------------------------------------------------------------------------------------------
# The worker side (runs in its own process: stdlib and math-verify only)


class CheckTimeout(BaseException):
    """Raised in the worker by its interval timer; a BaseException so that math-verify's
    `except Exception` handlers do not swallow it."""


def serve(fd: int) -> None:
    """The worker's loop: receive (gold, text, timeout), send (status, answer); exit on EOF."""
    conn = Connection(fd)
    try:
        configure_worker()
        parse_gold("0")  # imports math-verify and sympy before the first check
    except Exception as e:  # any import failure is reported to the parent, which raises it
        conn.send(("failed", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = run_check(*request)
        except CheckTimeout:
            reply = ("timeout", None)
        try:
            conn.send(reply)
        except OSError:
            return


def configure_worker() -> None:
    """Silence output, ignore Ctrl-C, cap memory and install the timer's handler."""
    import logging
    import warnings

    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, raise_timeout)
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = MEMORY_LIMIT if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT, hard)
        if soft == resource.RLIM_INFINITY or soft > limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass


def raise_timeout(signum: int, frame: Any) -> None:
    raise CheckTimeout()


def run_check(gold: str, text: str, timeout: float) -> tuple[str, str | None]:
    """(status, extracted answer) of one check, bounded by a `timeout`-second interval timer."""
    found: dict[str, str | None] = {"answer": None}
    signal.setitimer(signal.ITIMER_REAL, max(timeout, 1e-3))
    try:
        status = judge(gold, text, found)
    except CheckTimeout:
        status = "timeout"
    except Exception:  # a sympy or parser failure is a verdict on this answer, not a crash
        status = "error"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return status, found["answer"]


def judge(gold: str, text: str, found: dict[str, str | None]) -> str:
    """Extract the answer of `text` (stored in found["answer"]) and compare the gold with it."""
    from math_verify import verify

    window = answer_window(text)
    if window is None:
        return "malformed"
    predicted = parse_answer(window)
    found["answer"] = answer_string(predicted)
    if not any(not isinstance(p, str) for p in predicted):
        return "malformed"
    return "correct" if verify(parse_gold(gold), predicted, timeout_seconds=None) else "wrong"


@lru_cache(maxsize=1)
def extraction_config() -> tuple[Any, ...]:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    return (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())


def parse_answer(text: str) -> list[Any]:
    """math-verify's parse of the final answer in `text` (a model output's `answer_window`, or a
    boxed gold): [sympy value, its string], [string] or []."""
    from math_verify import parse

    return parse(text, extraction_config=extraction_config(), parsing_timeout=None)


@lru_cache(maxsize=4096)
def parse_gold(gold: str) -> list[Any]:
    """The parsed reference answer, as math-verify's parse of `\\boxed{gold}`."""
    return parse_answer(f"\\boxed{{{gold}}}")


MAX_WINDOW_CHARS = 1_000
"""Longest text math-verify is given for one answer (see `answer_window`)."""
BOX = re.compile(r"\\boxed\s*\{")  # linear: the space run stops at "{", which it cannot match
BRACE_TOKEN = re.compile(r"\\.|[{}]", re.DOTALL)  # an escape pair or a brace: no repeat at all
SPACES_OR_DOLLARS = re.compile(r"[\s$]+")  # one repeat at the end of the pattern: linear
SPACE = re.compile(r"\s")
JOINS = frozenset({"", ",", ";", "and", "or", ", and", ", or", ",and", ",or"})


def answer_window(text: str) -> str | None:
    """The part of a model's text that holds its final answer, at most MAX_WINDOW_CHARS long: the
    last box with the boxes joined to it, else the last lines; None when that is longer."""
    spans = box_spans(text)
    if spans:
        first, end = len(spans) - 1, spans[-1][1]
        while (
            first > 0
            and end - spans[first - 1][0] <= MAX_WINDOW_CHARS
            and joined(text[spans[first - 1][1] : spans[first][0]])
        ):
            first -= 1
        start = spans[first][0]
        return text[start:end] if end - start <= MAX_WINDOW_CHARS else None
    body = text.rstrip()
    if len(body) <= MAX_WINDOW_CHARS:
        return body
    cut = len(body) - MAX_WINDOW_CHARS
    line_start = body.find("\n", cut)
    if line_start >= 0:
        return body[line_start + 1 :]
    space = SPACE.search(body, cut)
    return None if space is None else body[space.end() :]


def joined(gap: str) -> bool:
    """Whether the text between two boxes joins them into one answer: only spaces and `$`, with at
    most one ",", ";", "and", "or", ", and" or ", or" among them."""
    return SPACES_OR_DOLLARS.sub(" ", gap).strip().lower() in JOINS


def box_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each outermost, closed `\\boxed{...}` of `text`, in one pass over its braces
    (escaped braces, `\\{` and `\\}`, do not count)."""
    boxes = list(BOX.finditer(text))
    if not boxes:
        return []
    closes = brace_partners(text, boxes[0].end() - 1)
    spans: list[tuple[int, int]] = []
    for match in boxes:
        end = closes.get(match.end() - 1)
        if end is None or (spans and match.start() < spans[-1][1]):
            continue
        spans.append((match.start(), end))
    return spans


def brace_partners(text: str, start: int) -> dict[int, int]:
    """For each `{` at or after `start` that is closed: its index -> the index just past the brace
    that closes it. A backslash escapes the character after it (as LaTeX's `\\{`)."""
    closes: dict[int, int] = {}
    opened: list[int] = []
    for token in BRACE_TOKEN.finditer(text, start):
        char = token.group()
        if char == "{":
            opened.append(token.start())
        elif char == "}" and opened:
            closes[opened.pop()] = token.end()
    return closes


def answer_string(parsed: list[Any]) -> str | None:
    """The extracted answer as text: the string math-verify keeps beside the parsed value."""
    return next((p for p in reversed(parsed) if isinstance(p, str)), None)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
