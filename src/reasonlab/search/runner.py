"""Run test-time search methods at several budgets and seeds, with the oracle beside them.

`run_search(context, problems, methods, budgets, seeds)` first checks every (method, budget) pair
(`check_methods`: a method that cannot run with this judge, task or budget raises ConfigError, and
all such refusals are reported at once, naming the methods that would still work, before any
compute is spent), then calls each method on every budget and seed, and returns a JSON-ready dict:

- per method and budget N (`result["methods"][name][str(N)]`): accuracy (mean over problems and
  seeds) with the value of each seed, accuracy per difficulty level (`Problem.difficulty`), the mean
  number of candidates chosen among, and the compute (generated tokens, judge tokens, wall seconds,
  FLOPs = 2 x parameters x tokens of each model, search/base.py `Compute.flops`), as totals and per
  problem (divided by problems x seeds);
- the oracle per budget (`result["oracle"][str(N)]`): N samples per problem drawn the way
  best-of-N draws them (same seed, temperature, top-p and length), judged by the task's verifier:
  pass@N (the best any selector of those N samples can do) and pass@1, per seed and per level, with
  the sampling's compute. Tree searches (beam, DVTS, MCTS) build other candidates and may beat it.

Parameter counts: the policy's `num_parameters()`; a judge's `num_parameters()` if it has one, else
the sum over its torch module (`model`), else its policy's (the likelihood judge), else 0 (the
verifier and the rule-based baselines cost no FLOPs). Usage:

    result = run_search(SearchContext(policy, task, judge), problems, ["majority", "beam"],
                        budgets=[4, 16], seeds=[0])
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from reasonlab.errors import ConfigError
from reasonlab.evaluate.passk import pass_at_k
from reasonlab.search.base import METHODS, Compute, SearchContext, get_method
from reasonlab.search.selection import sample_all
from reasonlab.types import Problem

DEFAULT_METHODS = ("majority", "best_of_n", "weighted_best_of_n", "beam", "dvts", "mcts")
STEP_METHODS = ("beam", "dvts", "mcts")  # search over steps: the task's verifier must mark them
Progress = Callable[[int, int, dict], None]  # (done, total, row) after each method x budget x seed


def parameter_count(model: Any) -> int:
    """Parameters a model or judge runs per token (0 for None, the verifier and rule baselines)."""
    if model is None:
        return 0
    if callable(getattr(model, "num_parameters", None)):
        return int(model.num_parameters())
    module = getattr(model, "model", None)
    if module is not None and callable(getattr(module, "parameters", None)):
        return int(sum(p.numel() for p in module.parameters()))
    policy = getattr(model, "policy", None)
    if policy is not None and callable(getattr(policy, "num_parameters", None)):
        return int(policy.num_parameters())
    return 0


def parse_budgets(text: str, flag: str = "--budgets") -> list[int]:
    """'1,4,16' -> [1, 4, 16] (sorted, distinct); ConfigError naming `flag` for anything else."""
    items = [x.strip() for x in str(text).split(",") if x.strip()]
    if not items:
        raise ConfigError(f"{flag}: name at least one budget, like 1,4,16")
    out = set()
    for item in items:
        if not item.isascii() or not item.isdigit() or int(item) < 1:
            raise ConfigError(f"{flag}: budgets are positive integers like 1,4,16, got {item!r}")
        out.add(int(item))
    return sorted(out)


def parse_methods(text: str, flag: str = "--methods") -> list[str]:
    """'majority,beam' -> ['majority', 'beam'] (order kept, repeats dropped); ConfigError naming
    `flag` for an unknown method."""
    names = list(dict.fromkeys(x.strip() for x in str(text).split(",") if x.strip()))
    if not names:
        raise ConfigError(f"{flag}: name at least one method (known: {', '.join(sorted(METHODS))})")
    for name in names:
        get_method(name)
    return names


def check_methods(
    context: SearchContext,
    methods: Sequence[str],
    budgets: Sequence[int],
    problems: Sequence[Problem] = (),
    lenient: bool = False,
) -> dict[str, list[int]]:
    """Ask each method whether it can run here, at no compute: its `check(context, budget)` when it has
    one, else a call on no problems (every method checks its budget, settings and judge before it
    samples, search/checks.py); a step-level method (beam, DVTS, MCTS, or one marked
    `needs_steps = True`) also has the task's step boundaries probed on the first of `problems`.

    Returns the budgets each method runs at. A refusal is one ConfigError listing every refusal and the
    methods that still work; with `lenient`, a method refusing only some budgets (beam and DVTS below
    the beam width) runs at the others, and only a method refusing every budget is an error."""
    if problems:  # a prompt plus the longest completion must fit the model (ConfigError otherwise)
        from reasonlab.sampling import check_fits

        check_fits(context.policy, problems, context.settings.max_new_tokens, "max_new_tokens")
    refused: dict[str, str] = {}
    runs: dict[str, list[int]] = {}
    for name in methods:
        method = get_method(name)
        accepted, reason = [], ""
        try:
            for budget in budgets:
                try:
                    _dry_run(method, context, budget)
                    accepted.append(budget)
                except ConfigError as err:
                    reason = reason or str(err)
                    if not lenient:
                        raise
            if problems and getattr(method, "needs_steps", name in STEP_METHODS):
                from reasonlab.search.checks import require_steps

                require_steps(name, context, problems[:1])
            if not accepted:
                raise ConfigError(reason)
        except ConfigError as err:
            refused[name] = str(err)
        runs[name] = accepted
    if refused:
        works = [m for m in methods if m not in refused]
        rest = f"; still works: {', '.join(works)}" if works else "; no method can run"
        reasons = "; ".join(
            msg if name in msg else f"{name}: {msg}" for name, msg in refused.items()
        )
        raise ConfigError(f"{reasons}{rest}")
    return runs


def _dry_run(method: Any, context: SearchContext, budget: int) -> None:
    """ConfigError if `method` refuses `budget` here; no sampling (a call on no problems)."""
    check = getattr(method, "check", None)
    if callable(check):
        check(context, budget)
        return
    try:
        method(context, [], budget, 0)
    except ConfigError:
        raise
    except Exception:  # noqa: BLE001 - past its checks, a method need not expect an empty list
        pass


def run_search(
    context: SearchContext,
    problems: Sequence[Problem],
    methods: Sequence[str],
    budgets: Sequence[int],
    seeds: Sequence[int],
    on_step: Progress | None = None,
    lenient: bool = False,
) -> dict[str, Any]:
    """Every method at every budget and seed, plus the oracle (pass@N, pass@1) per budget. With
    `lenient`, a method skips the budgets it refuses (`result["skipped"]`), see `check_methods`."""
    if not problems:
        raise ConfigError("--problems: the task gave no test problems")
    if not seeds:
        raise ConfigError("--seeds: run at least one seed")
    budgets = sorted(set(budgets))
    for b in budgets:
        if not isinstance(b, int) or b < 1:
            raise ConfigError(f"--budgets: budgets are positive integers, got {b!r}")
    for name in methods:
        get_method(name)
    runs = check_methods(context, methods, budgets, problems, lenient)
    policy_params = parameter_count(context.policy)
    judge_params = parameter_count(context.judge)
    levels = sorted({p.difficulty for p in problems})
    total, done = (sum(map(len, runs.values())) + len(budgets)) * len(seeds), 0

    def tick(row: dict) -> None:
        nonlocal done
        done += 1
        if on_step is not None:
            on_step(done, total, row)

    oracle = {
        str(n): _oracle(context, problems, n, seeds, policy_params, levels, tick) for n in budgets
    }
    results: dict[str, dict[str, Any]] = {}
    for name in methods:
        method = get_method(name)
        results[name] = {}
        for n in runs[name]:
            per_seed: list[list[bool]] = []
            candidates: list[int] = []
            compute = Compute()
            for seed in seeds:
                t = time.perf_counter()
                outcomes = method(context, problems, n, seed)
                elapsed = time.perf_counter() - t
                if len(outcomes) != len(problems):
                    raise RuntimeError(
                        f"search method {name} returned {len(outcomes)} outcomes "
                        f"for {len(problems)} problems"
                    )
                spent = Compute()
                for o in outcomes:
                    spent.add(o.compute)
                if spent.wall_s <= 0:  # a method that does not time itself: the call's wall time
                    spent.wall_s = elapsed
                compute.add(spent)
                per_seed.append([bool(o.correct) for o in outcomes])
                candidates += [o.candidates for o in outcomes]
                tick({"method": name, "budget": n, "seed": seed, "accuracy": _mean(per_seed[-1])})
            results[name][str(n)] = {
                **_accuracy(per_seed, problems, levels),
                "candidates": _mean(candidates),
                "compute": _compute(
                    compute, policy_params, judge_params, len(problems) * len(seeds)
                ),
                "correct": [[int(c) for c in row] for row in per_seed],
            }
    return {
        "task": context.task.name,
        "knobs": dict(getattr(context.task, "knobs", {}) or {}),
        "policy_params": policy_params,
        "judge": getattr(context.judge, "name", None) if context.judge is not None else None,
        "judge_params": judge_params,
        "settings": asdict(context.settings),
        "n_problems": len(problems),
        "problems": [p.id for p in problems],
        "difficulties": levels,
        "budgets": list(budgets),
        "seeds": list(seeds),
        "method_names": list(methods),
        "methods": results,
        "skipped": {
            m: [n for n in budgets if n not in runs[m]] for m in methods if runs[m] != budgets
        },
        "oracle": oracle,
    }


def _oracle(
    context: SearchContext,
    problems: Sequence[Problem],
    n: int,
    seeds: Sequence[int],
    policy_params: int,
    levels: Sequence[int],
    tick: Callable[[dict], None],
) -> dict[str, Any]:
    """N verifier-judged samples per problem and seed: pass@N and pass@1 (Chen et al. estimator)."""
    best: list[list[float]] = []
    single: list[list[float]] = []
    compute = Compute()
    for seed in seeds:
        t = time.perf_counter()
        texts, generated = sample_all(context, problems, n, seed)  # best-of-N's own draw
        right = [
            sum(context.task.verify(p, x).correct for x in xs) for p, xs in zip(problems, texts)
        ]
        compute.add(Compute(sum(generated), 0, time.perf_counter() - t))
        best.append([pass_at_k(n, c, n) for c in right])
        single.append([pass_at_k(n, c, 1) for c in right])
        tick({"method": "oracle", "budget": n, "seed": seed, "accuracy": _mean(best[-1])})
    at_n, at_1 = _accuracy(best, problems, levels), _accuracy(single, problems, levels)
    return {
        "pass@n": at_n["accuracy"],
        "pass@n_per_seed": at_n["per_seed"],
        "pass@1": at_1["accuracy"],
        "pass@1_per_seed": at_1["per_seed"],
        "by_difficulty": {
            lv: {"pass@n": at_n["by_difficulty"][lv], "pass@1": at_1["by_difficulty"][lv]}
            for lv in at_n["by_difficulty"]
        },
        "compute": _compute(compute, policy_params, 0, len(problems) * len(seeds)),
    }


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _accuracy(
    per_seed: Sequence[Sequence[float]], problems: Sequence[Problem], levels: Sequence[int]
) -> dict[str, Any]:
    """Mean over problems and seeds, each seed's mean, and the mean per difficulty level."""
    by_level: dict[int, list[float]] = defaultdict(list)
    for row in per_seed:
        for p, value in zip(problems, row):
            by_level[p.difficulty].append(float(value))
    return {
        "accuracy": _mean([float(v) for row in per_seed for v in row]),
        "per_seed": [_mean([float(v) for v in row]) for row in per_seed],
        "by_difficulty": {str(lv): _mean(by_level[lv]) for lv in levels},
    }


def _compute(c: Compute, policy_params: int, judge_params: int, count: int) -> dict[str, float]:
    """Totals and per-problem means (per problem and seed) of what was spent."""
    totals = {
        "generated_tokens": c.generated_tokens,
        "judge_tokens": c.judge_tokens,
        "wall_s": c.wall_s,
        "flops": c.flops(policy_params, judge_params),
    }
    return {**totals, **{f"{k}_per_problem": v / max(count, 1) for k, v in totals.items()}}
