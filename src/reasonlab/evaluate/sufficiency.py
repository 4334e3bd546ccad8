"""Is this base sufficient for RL to pay off? Per difficulty level, the metrics that say so.

Pure functions of evaluate_policy's per-problem records (n samples per problem at each level of the
task's difficulty knob); sampling, judging and the control runs that produce them live in
experiments/sufficiency.py.

- coverage: unbiased pass@k for k = 1..n and the headroom pass@n - pass@1. RL with verifiable
  rewards mostly sharpens what sampling already finds: the RL model's pass@1 stays under the
  base's pass@k for large k (Yue et al. 2025, arXiv 2504.13837).
- learnable fraction: the share of problems solved sometimes but not always (0 < c < n), and the
  shares never and always solved. A GRPO group with equal rewards has zero advantage, so only the
  learnable problems teach anything.
- edge of competence: the easiest level with pass@1 < 0.2 but pass@n > 0, where RL gains are
  largest (Zhang et al. 2025, arXiv 2512.07783).
- behaviours: the share of samples that check their work or backtrack, counted structurally by
  the built-in tasks' verifiers (check lines, retracted steps), not by an LLM classifier as in
  Gandhi et al. 2025 (arXiv 2503.01307); a task without such lines reports 0.
- the generation-verification gap: best-of-N picked by a judge against pass@1, normalised by
  pass@N, (best - pass@1) / (pass@N - pass@1), and the judge's outcome AUROC. All three rates use
  the same first N samples of each problem, so best-of-N never exceeds pass@N.
- process validity: among correct answers, the share whose every step is valid.
- the random-reward control (Shao et al. 2025, arXiv 2506.10947): the pass@1 gains of two short
  GRPO runs from the same base, one rewarded by the verifier and one by a fair coin (run by
  experiments/sufficiency.py; its docstring says how the run departs from the paper).
- diversity: distinct correct solutions (whitespace-normalised texts) and the entropy of the
  extracted answers (malformed ones counted as one answer, "none").

The verdict on these metrics, as named rules, is evaluate/verdict.py.

Usage:

    level = level_metrics(ev["problems"], 256)   # ev = evaluate_policy(...) at one level
    edge_of_competence({3: level3, 5: level5}, n=256)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from reasonlab.evaluate.passk import headline_ks, majority_at_k, pass_at_k
from reasonlab.evaluate.processbench import auroc, best_of_n

EDGE_PASS1 = 0.2


# ------------------------------------------------------------------------------------------------
# Pure metrics


def level_metrics(records: Sequence[Mapping[str, Any]], n: int) -> dict[str, float]:
    """The sufficiency metrics of one level from evaluate_policy's per-problem records (n samples each).

    Counts a record lacks (an eval file written before they were recorded) count as 0. Rates over
    samples (check, backtrack, malformed) pool every sample; process validity pools every correct
    sample (0.0 when none); the others are means over problems."""
    counts = [(int(r["n"]), int(r["n_correct"])) for r in records]  # (P,) of (n_i, c_i)
    problems = max(len(records), 1)
    samples = max(sum(n_i for n_i, _ in counts), 1)
    out: dict[str, float] = {}
    for k in headline_ks(n):
        out[f"pass@{k}"] = sum(pass_at_k(n_i, c, min(k, n_i)) for n_i, c in counts) / problems
    out["headroom"] = out[f"pass@{n}"] - out["pass@1"]
    out["learnable"] = sum(0 < c < n_i for n_i, c in counts) / problems
    out["never"] = sum(c == 0 for _, c in counts) / problems
    out["always"] = sum(c == n_i for n_i, c in counts) / problems
    out["check_rate"] = sum(r.get("n_checking", 0) for r in records) / samples
    out["backtrack_rate"] = sum(r.get("n_backtracking", 0) for r in records) / samples
    correct = sum(c for _, c in counts)
    out["process_valid_rate"] = (
        sum(r["n_correct_all_steps_valid"] for r in records) / correct if correct else 0.0
    )
    solved = [r for r in records if r["n_correct"] > 0]
    out["distinct_correct"] = (
        sum(r.get("n_distinct_correct", 0) for r in solved) / len(solved) if solved else 0.0
    )
    out["answer_entropy"] = sum(answer_entropy(r.get("answers", [])) for r in records) / problems
    out["malformed_rate"] = sum(r["n_malformed"] for r in records) / samples
    return out


def answer_entropy(answers: Sequence[str | None]) -> float:
    """Entropy in nats of the empirical distribution of answers; None (malformed) is one answer, "none"."""
    freq = Counter("none" if a is None else f"={a}" for a in answers)
    total = sum(freq.values())
    return -sum(c / total * math.log(c / total) for c in freq.values()) if total else 0.0


def edge_of_competence(levels: Mapping[int, Mapping[str, float]], n: int) -> int | None:
    """The easiest (smallest) difficulty whose pass@1 < 0.2 while pass@n > 0; None when there is none."""
    for level in sorted(levels):
        m = levels[level]
        if m["pass@1"] < EDGE_PASS1 and pass_n(m, n) > 0:
            return level
    return None


def generation_verification_gap(best_of_n: float, pass_1: float, pass_n: float) -> float | None:
    """(best-of-N - pass@1) / (pass@N - pass@1): 0 = the judge picks like a random sample, 1 = like an
    oracle; None when pass@N == pass@1 (nothing to pick between)."""
    if abs(pass_n - pass_1) < 1e-12:
        return None
    return (best_of_n - pass_1) / (pass_n - pass_1)


def selection_metrics(
    scores: Sequence[Sequence[float]],
    correct: Sequence[Sequence[bool]],
    answers: Sequence[Sequence[str | None]] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Best-of-N by a judge's scores against pass@1 and pass@N of the same samples, the gap, the
    judge's outcome AUROC over all samples and, with `answers`, majority vote of the same N.

    scores, correct, answers: (P, N) per problem, the same N samples each."""
    problems = max(len(scores), 1)
    n = len(scores[0]) if scores else 0
    pass_1 = sum(sum(c) / len(c) for c in correct) / problems
    pass_n = sum(any(c) for c in correct) / problems
    best = sum(best_of_n(s, c, len(s), seed) for s, c in zip(scores, correct)) / problems
    out: dict[str, Any] = {
        "n": n,
        "best_of_n": best,
        "pass@1": pass_1,
        "pass@n": pass_n,
        "gap": generation_verification_gap(best, pass_1, pass_n),
        "auroc": auroc([x for s in scores for x in s], [x for c in correct for x in c]),
    }
    if answers is not None:
        out["majority"] = (
            sum(majority_at_k(a, c, len(a), seed) for a, c in zip(answers, correct)) / problems
        )
    return out


def pass_n(m: Mapping[str, float], n: int) -> float:
    """pass@n of a level_metrics dict (the largest k present when pass@n itself is missing)."""
    if f"pass@{n}" in m:
        return m[f"pass@{n}"]
    return m[f"pass@{max(int(k[5:]) for k in m if k.startswith('pass@'))}"]
