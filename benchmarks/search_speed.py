"""Wall time of the search methods at one budget, side by side: beam search against best-of-N.

Target (issue: test-time search): beam search at N = 16 takes at most 2x the wall time of
best-of-16 on the same problems (search-and-learn's ratio is about 20x). Loads a run folder's base
model and its PRM, samples `--problems` test problems once, then times each method `--repeats`
times in turn (interleaved, so load on the machine hits every method alike) and prints medians,
tokens generated and judge tokens read per problem, and the ratio to best-of-N. It also times the
policy's prefill calls (`decode_step` on an empty cache: the prompt plus the partial solution, which
every expansion re-encodes) apart from its one-token decoding steps, to show what keeping each
path's KV cache across expansions could save at most.

    .venv/bin/python benchmarks/search_speed.py --run runs/default [--n 16] [--problems 50]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import machine
from reasonlab.config import config_from_dict, read_yaml
from reasonlab.judges.models import load_judge
from reasonlab.models import load_policy
from reasonlab.search.base import SearchContext, SearchSettings, get_method
from reasonlab.tasks import get_task


class PrefillClock:
    """Wraps `policy.decode_step` (an instance attribute shadows the method) to time prefill calls
    (more than one new token) apart from one-token decoding steps."""

    def __init__(self, policy: object) -> None:
        self.prefill_s = self.decode_s = 0.0
        self.prefill_tokens = 0
        inner = policy.decode_step

        def step(input_ids, attention_mask, cache):  # (B, T_new), (B, T_past + T_new)
            start = time.perf_counter()
            out = inner(input_ids, attention_mask, cache)
            spent = time.perf_counter() - start
            if input_ids.shape[1] > 1:
                self.prefill_s += spent
                self.prefill_tokens += int(input_ids.numel())
            else:
                self.decode_s += spent
            return out

        policy.decode_step = step

    def reset(self) -> tuple[float, float, int]:
        out = (self.prefill_s, self.decode_s, self.prefill_tokens)
        self.prefill_s = self.decode_s = 0.0
        self.prefill_tokens = 0
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--problems", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--methods", default="best_of_n,weighted_best_of_n,beam,dvts,mcts")
    args = ap.parse_args()
    cfg = config_from_dict(read_yaml(args.run / "config.yaml"))
    task = get_task(cfg.task.name, **cfg.task.knobs)
    policy = load_policy(args.run / "base")
    judge = load_judge(args.run / "judges" / "prm")
    settings = SearchSettings(max_new_tokens=task.max_new_tokens)
    context = SearchContext(policy, task, judge, settings)
    problems = task.sample("test", args.problems, 1)
    methods = args.methods.split(",")
    clock = PrefillClock(policy)
    times: dict[str, list[float]] = {m: [] for m in methods}
    prefill: dict[str, list[tuple[float, float, int]]] = {m: [] for m in methods}
    last: dict[str, list] = {}
    for _ in range(args.repeats):
        for m in methods:
            clock.reset()
            start = time.perf_counter()
            last[m] = get_method(m)(context, problems, args.n, 0)
            times[m].append(time.perf_counter() - start)
            prefill[m].append(clock.reset())
    ref = statistics.median(times["best_of_n"]) if "best_of_n" in times else None
    print(f"{machine()}; {len(problems)} problems, N = {args.n}, medians of {args.repeats}")
    print(
        "| method | wall s (median) | x best-of-N | accuracy | tokens / problem "
        "| judge tokens / problem | prefill s | decode s | prefill tokens / problem |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for m in methods:
        wall = statistics.median(times[m])
        outs = last[m]
        acc = sum(o.correct for o in outs) / len(outs)
        tokens = sum(o.compute.generated_tokens for o in outs) / len(outs)
        judge_tokens = sum(o.compute.judge_tokens for o in outs) / len(outs)
        ratio = f"{wall / ref:.2f}" if ref else "n/a"
        pre = statistics.median(p[0] for p in prefill[m])
        dec = statistics.median(p[1] for p in prefill[m])
        pre_tokens = prefill[m][-1][2] / len(outs)
        print(
            f"| {m} | {wall:.2f} | {ratio} | {acc:.0%} | {tokens:.0f} | {judge_tokens:.0f} "
            f"| {pre:.2f} | {dec:.2f} | {pre_tokens:.0f} |"
        )


if __name__ == "__main__":
    main()
