"""Worst-case verifier time: every task's `verify` on adversarial texts of 1 KB, 30 KB and 1 MB.

Each input family is a text a sampler can produce (long digit runs, many short lines, runs of
spaces, nested or unclosed `\\boxed{`, one huge sum, unicode digits and control characters), cut or
repeated to the size. For each (task, family, size) the script times `task.verify(problem, text)`
`--repeats` times and keeps the median; it prints one table of medians and, per task and size, the
worst family. The math tasks run through their checker's worker process (its start is excluded:
one warm-up call first); their hard bound is the task's `timeout` plus the checker's grace.
Run it from another source tree with PYTHONPATH=OTHER/src to compare versions side by side;
`--sizes 1000,30000` keeps a quadratic version from running for an hour.

    .venv/bin/python benchmarks/verifiers.py [--repeats 5] [--sizes 1000,30000,1000000] [--json F]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable

from common import machine

TASKS = ["arith", "countdown", "chess", "gym:chain_sum", "gsm8k", "math500"]


def families() -> dict[str, Callable[[int], str]]:
    """Input family -> text of (about) n characters."""

    def repeat(unit: str) -> Callable[[int], str]:
        return lambda n: (unit * (n // len(unit) + 1))[:n]

    return {
        "zeros then x (answer line)": lambda n: "answer: " + "0" * max(n - 9, 0) + "x",
        "digit run (answer line)": lambda n: "answer: " + "7" * max(n - 8, 0),
        "step lines 1+1=2": repeat("1+1=2\n"),
        "blank lines": repeat("\n"),
        "spaces": repeat(" "),
        "short junk lines": repeat("x\n"),
        "move lines Nf3": repeat("Nf3\n"),
        "one long step line": lambda n: "1" * (n // 2) + "+" + "1" * (n // 2) + "=2",
        "sum 1+1+...": lambda n: "+".join(["1"] * max(n // 2, 1)),
        "numbers 1 2 3 ...": lambda n: " ".join(str(i) for i in range(1, n // 2 + 2))[:n],
        "boxes \\boxed{1}": repeat("\\boxed{1}"),
        "unclosed \\boxed{": repeat("\\boxed{"),
        "open braces": lambda n: "\\boxed{" + "{" * n,
        "box then rambling": lambda n: "\\boxed{42}" + (" and so on" * (n // 10)),
        "unicode digits, controls": repeat("\u0663\uff11\x00\x1f\x0b\x85\u2028\ud800 "),
        "answer tags": repeat("<answer>1</answer>"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", default="1000,30000,1000000")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--json", help="write the measurements here")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    import reasonlab.tasks.chess  # noqa: F401  (registers the task)
    import reasonlab.tasks.gym  # noqa: F401
    from reasonlab.tasks import get_task

    rows = []
    for name in args.tasks.split(","):
        task = get_task(name)
        problem = task.generate(random.Random(0))
        task.verify(problem, "warm-up \\boxed{0}")
        for family, make in families().items():
            for size in sizes:
                text = make(size)
                times = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    task.verify(problem, text)
                    times.append(time.perf_counter() - start)
                ms = 1000 * statistics.median(times)
                rows.append({"task": name, "family": family, "chars": len(text), "ms": ms})
                print(f"{name:14s} {family:28s} {len(text):>9,d} chars {ms:10.2f} ms", flush=True)

    print(f"\nworst median per task and size ({machine()}):")
    print("| task | " + " | ".join(f"{s:,} chars" for s in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for name in args.tasks.split(","):
        cells = []
        for size in sizes:
            mine = [r for r in rows if r["task"] == name and abs(r["chars"] - size) <= 16]
            worst = max(mine, key=lambda r: r["ms"])
            cells.append(f"{worst['ms']:.1f} ms ({worst['family']})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
