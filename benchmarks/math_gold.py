"""Gold self-consistency of the math answer checker (tasks/math.py + tasks/mathcheck.py).

Every reference answer of every shipped benchmark file (aime24, aime25, amc23, math500, gsm8k) is fed
back as a model output "... Therefore, the final answer is $\\boxed{<answer>}$." and judged by the
task's `verify`. The answer is written as the FILE writes it (AIME "025", AMC "27.0", GSM8K's text
after "#### " with its commas), so the run checks the reading of the files and math-verify's
extraction and comparison together; the target is 100% correct. Per file: rows, correct %, wrong,
malformed, wall time of all checks (the worker's start is timed apart), and the answers that failed.
Two controls: golds that math-verify reads only as text (no value: those can match by string only),
and a false-accept probe, where each row is answered with the next row's gold (skipped where the
two golds are the same string), which must be WRONG.

Run: python benchmarks/math_gold.py [--data-dir DIR] [--timeout 5] [--json PATH]
(data folder: --data-dir, else $REASONLAB_DATA_DIR, else the files shipped in reasonlab/data/)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

from reasonlab.tasks.base import get_task
from reasonlab.tasks.math import MathTask
from reasonlab.tasks.mathcheck import parse_gold, shared_checker
from reasonlab.types import Outcome

BENCHMARKS = ("aime24", "aime25", "amc23", "math500", "gsm8k")


def raw_answers(path: Path) -> dict[int, str]:
    """line number -> the answer as the file writes it (GSM8K: the text after the last '####')."""
    answers = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if line.strip():
            value = json.loads(line)["answer"]
            answers[number] = (
                value.rpartition("####")[2].strip() if isinstance(value, str) else str(value)
            )
    return answers


def model_output(answer: str) -> str:
    return f"Let me work through this step by step.\nTherefore, the final answer is $\\boxed{{{answer}}}$."


def check_file(task: MathTask) -> dict[str, object]:
    """Judge every gold of one task's file; counts, wall time and the failures."""
    raw = raw_answers(task.path)
    counts = {outcome: 0 for outcome in Outcome}
    failures = []
    start = time.perf_counter()
    for problem in task.problems:
        written = raw[problem.meta["line"]]
        verdict = task.verify(problem, model_output(written))
        counts[verdict.outcome] += 1
        if verdict.outcome is not Outcome.CORRECT:
            failures.append(
                {
                    "id": problem.id,
                    "gold": written,
                    "outcome": verdict.outcome.value,
                    "extracted": verdict.answer,
                }
            )
    wall = time.perf_counter() - start
    rows = len(task.problems)
    accepted = false_accepts(task)
    return {
        "file": task.path.name,
        "rows": rows,
        "skipped": len(task.skipped),
        "correct_pct": 100.0 * counts[Outcome.CORRECT] / rows,
        "wrong": counts[Outcome.WRONG],
        "malformed": counts[Outcome.MALFORMED],
        "wall_s": wall,
        "ms_per_check": 1000 * wall / rows,
        "gold_text_only": sum(
            all(isinstance(v, str) for v in parse_gold(p.answer)) for p in task.problems
        ),
        "probes": accepted["probes"],
        "false_accepts": accepted["accepted"],
        "failures": failures,
    }


def false_accepts(task: MathTask) -> dict[str, object]:
    """Answer each row with the next row's gold; every CORRECT verdict there is a false accept."""
    problems = task.problems
    probes, accepted = 0, []
    for problem, other in zip(problems, problems[1:] + problems[:1]):
        if other.answer == problem.answer:
            continue
        probes += 1
        if task.verify(problem, model_output(other.answer)).correct:
            accepted.append({"id": problem.id, "gold": problem.answer, "answered": other.answer})
    return {"probes": probes, "accepted": accepted}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def markdown(results: list[dict[str, object]]) -> str:
    lines = [
        "| file | rows | correct | wrong | malformed | wall time | per check | gold read as text only "
        "| other row's gold accepted |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['file']} | {r['rows']} | {r['correct_pct']:.1f}% | {r['wrong']} | {r['malformed']} "
            f"| {r['wall_s']:.2f} s | {r['ms_per_check']:.2f} ms | {r['gold_text_only']} "
            f"| {len(r['false_accepts'])} of {r['probes']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        default=None,
        help="benchmark folder (default: $REASONLAB_DATA_DIR, "
        "else the files shipped with reasonlab)",
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per answer check")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    logging.getLogger("math_verify").setLevel(logging.ERROR)

    start = time.perf_counter()
    shared_checker().start()
    start_s = time.perf_counter() - start
    results = [
        check_file(get_task(name, data_dir=args.data_dir, timeout=args.timeout))
        for name in BENCHMARKS
    ]

    print(
        f"machine: {cpu_name()}; load average {os.getloadavg()[0]:.2f}; checker worker start {start_s:.2f} s"
    )
    print(markdown(results))
    for r in results:
        for failure in r["failures"]:
            print(f"{r['file']}: not accepted: {failure}")
        for accepted in r["false_accepts"]:
            print(f"{r['file']}: false accept: {accepted}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"machine": cpu_name(), "worker_start_s": start_s, "results": results}, indent=1
            )
        )


if __name__ == "__main__":
    main()
