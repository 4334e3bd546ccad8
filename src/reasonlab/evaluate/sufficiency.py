"""Is this base sufficient for RL to pay off? Per difficulty level, the metrics that say so, and a verdict.

Pure functions of evaluate_policy's per-problem records (n samples per problem at each level of the
task's difficulty knob); sampling, judging and the control runs that produce them live in
evaluate/sufficiency_run.py.

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
  evaluate/sufficiency_run.py; its docstring says how the run departs from the paper).
- diversity: distinct correct solutions (whitespace-normalised texts) and the entropy of the
  extracted answers (malformed ones counted as one answer, "none").

Verdict thresholds (`verdict`; the main level is the task's own level; n is the sample count):

    coverage            pass@n < 0.1                  -> base (RL cannot find rewards)
    headroom            pass@n - pass@1 >= 0.2        -> rl
    learnable           learnable >= 0.2              -> rl; else never >= always -> base, else neutral
    edge_of_competence  a level found                 -> rl (train there); none while some level has
                                                         pass@1 < 0.2 -> base; else neutral
    check_rate          < 0.01                        -> base (traces with checks), else rl
    backtrack_rate      < 0.01                        -> base (traces with backtracking), else rl
    gap                 > 0.2                         -> rl (with that judge); else neutral
    process_valid_rate  < 0.9                         -> neutral, a warning: outcome rewards will
                                                         reinforce wrong reasoning; else rl
    random_control      true gain < 0.02              -> neutral (inconclusive); random gain >= half
                                                         the true gain -> neutral ("amplifying");
                                                         else rl (the reward teaches)
    malformed_rate      > 0.5                         -> base (teach the format first), else neutral
    diversity           always neutral (distinct correct solutions, answer entropy)

Usage:

    statements = verdict({"levels": {5: level_metrics(ev["problems"], 256)}, "n": 256, "main_level": 5})
    print(headline(statements))
    reasonlab sufficiency --model runs/default            # measures and writes the verdict (sufficiency_run.py)
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Mapping, Sequence

from reasonlab.evaluate.passk import headline_ks, majority_at_k, pass_at_k
from reasonlab.evaluate.processbench import auroc, best_of_n

COVERAGE_MIN = 0.1
HEADROOM_MIN = 0.2
LEARNABLE_MIN = 0.2
EDGE_PASS1 = 0.2
BEHAVIOUR_MIN = 0.01
GAP_MIN = 0.2
PROCESS_MIN = 0.9
AMPLIFY_SHARE = 0.5
CONTROL_MIN_GAIN = 0.02
MALFORMED_MAX = 0.5


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
    out["process_valid_rate"] = sum(r["n_correct_all_steps_valid"] for r in records) / correct if correct else 0.0
    solved = [r for r in records if r["n_correct"] > 0]
    out["distinct_correct"] = sum(r.get("n_distinct_correct", 0) for r in solved) / len(solved) if solved else 0.0
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
        if m["pass@1"] < EDGE_PASS1 and _pass_n(m, n) > 0:
            return level
    return None


def generation_verification_gap(best_of_n: float, pass_1: float, pass_n: float) -> float | None:
    """(best-of-N - pass@1) / (pass@N - pass@1): 0 = the judge picks like a random sample, 1 = like an
    oracle; None when pass@N == pass@1 (nothing to pick between)."""
    if abs(pass_n - pass_1) < 1e-12:
        return None
    return (best_of_n - pass_1) / (pass_n - pass_1)


def selection_metrics(scores: Sequence[Sequence[float]], correct: Sequence[Sequence[bool]],
                      answers: Sequence[Sequence[str | None]] | None = None, seed: int = 0) -> dict[str, Any]:
    """Best-of-N by a judge's scores against pass@1 and pass@N of the same samples, the gap, the
    judge's outcome AUROC over all samples and, with `answers`, majority vote of the same N.

    scores, correct, answers: (P, N) per problem, the same N samples each."""
    problems = max(len(scores), 1)
    n = len(scores[0]) if scores else 0
    pass_1 = sum(sum(c) / len(c) for c in correct) / problems
    pass_n = sum(any(c) for c in correct) / problems
    best = sum(best_of_n(s, c, len(s), seed) for s, c in zip(scores, correct)) / problems
    out: dict[str, Any] = {
        "n": n, "best_of_n": best, "pass@1": pass_1, "pass@n": pass_n,
        "gap": generation_verification_gap(best, pass_1, pass_n),
        "auroc": auroc([x for s in scores for x in s], [x for c in correct for x in c]),
    }
    if answers is not None:
        out["majority"] = sum(majority_at_k(a, c, len(a), seed) for a, c in zip(answers, correct)) / problems
    return out


def _pass_n(m: Mapping[str, float], n: int) -> float:
    """pass@n of a level_metrics dict (the largest k present when pass@n itself is missing)."""
    if f"pass@{n}" in m:
        return m[f"pass@{n}"]
    return m[f"pass@{max(int(k[5:]) for k in m if k.startswith('pass@'))}"]


# ------------------------------------------------------------------------------------------------
# Verdict


def verdict(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Plain-language statements {metric, value, says: rl | base | neutral, text} from a result.

    `result` needs "levels" ({difficulty: level_metrics}, keys int or str), "n" and "main_level";
    optional: "judge" ({"name", "levels": {difficulty: selection_metrics}}) and "control" (with
    "outcome_gain", "random_gain", "steps"). Missing sections give no statement. Thresholds: module
    docstring."""
    levels = {int(k): v for k, v in result["levels"].items()}
    n, main = int(result["n"]), int(result["main_level"])
    m = levels[main]
    at = f" at level {main}" if len(levels) > 1 else ""
    out: list[dict[str, Any]] = []

    def say(metric: str, value: Any, says: str, text: str) -> None:
        out.append({"metric": metric, "value": value, "says": says, "text": text})

    p1, pn = m["pass@1"], _pass_n(m, n)
    if pn < COVERAGE_MIN:
        say("coverage", pn, "base", f"Even with {n} samples the base solves only {pn:.0%} of problems{at}: RL can "
            "only sharpen what sampling already finds. Improve the base first (more pretraining).")
    else:
        say("coverage", pn, "neutral", f"With {n} samples the base solves {pn:.0%} of problems{at}: that is the "
            "ceiling RL's pass@1 is expected to approach, not pass.")
    if m["headroom"] >= HEADROOM_MIN:
        say("headroom", m["headroom"], "rl", f"pass@1 {p1:.2f} against pass@{n} {pn:.2f}{at}: {m['headroom']:.2f} "
            "of headroom for RL to turn sampled answers into first answers.")
    else:
        say("headroom", m["headroom"], "neutral", f"pass@1 {p1:.2f} is already close to pass@{n} {pn:.2f}{at}: "
            "little for RL to sharpen here.")
    if m["learnable"] >= LEARNABLE_MIN:
        say("learnable", m["learnable"], "rl", f"{m['learnable']:.0%} of problems{at} are solved sometimes but not "
            "always: their GRPO groups carry a learning signal.")
    elif m["never"] >= m["always"]:
        say("learnable", m["learnable"], "base", f"Only {m['learnable']:.0%} of problems{at} are learnable and "
            f"{m['never']:.0%} are never solved: most GRPO groups get equal rewards and teach nothing. "
            "Improve the base first.")
    else:
        say("learnable", m["learnable"], "neutral", f"Only {m['learnable']:.0%} of problems{at} are learnable and "
            f"{m['always']:.0%} are always solved: this level is saturated; train RL on harder problems.")
    edge = edge_of_competence(levels, n)
    if edge is not None:
        say("edge_of_competence", edge, "rl", f"Level {edge} is the edge of competence (pass@1 "
            f"{levels[edge]['pass@1']:.2f} < {EDGE_PASS1}, pass@{n} {_pass_n(levels[edge], n):.2f} > 0): "
            "RL gains are expected to be largest when training there.")
    elif any(v["pass@1"] < EDGE_PASS1 for v in levels.values()):
        say("edge_of_competence", None, "base", f"Where pass@1 < {EDGE_PASS1} nothing is ever solved, even in "
            f"{n} samples: no level sits at the edge of competence. Improve the base first.")
    else:
        say("edge_of_competence", None, "neutral", f"Every measured level has pass@1 >= {EDGE_PASS1}: measure "
            "harder levels to find the edge of competence.")
    for key, what, trace in (("check_rate", "check their work", "checks"),
                             ("backtrack_rate", "backtrack", "backtracking")):
        if m[key] < BEHAVIOUR_MIN:
            say(key, m[key], "base", f"Only {m[key]:.1%} of samples{at} {what}: RL rarely discovers a behaviour the "
                f"base never shows. Improve the base first (pretrain or fine-tune on traces with {trace}).")
        else:
            say(key, m[key], "rl", f"{m[key]:.1%} of samples{at} {what}: a behaviour RL can amplify.")
    judge = result.get("judge")
    if judge and main in {int(k) for k in judge.get("levels", {})}:
        g = {int(k): v for k, v in judge["levels"].items()}[main]
        name, auc = judge.get("name", "the judge"), g.get("auroc")
        auc_text = f"outcome AUROC {auc:.2f}" if auc is not None else "outcome AUROC undefined"
        if g.get("majority") is not None:
            auc_text += f"; majority vote of the same samples {g['majority']:.2f}"
        if g["gap"] is None:
            say("gap", None, "neutral", f"pass@{g['n']} equals pass@1{at}: there is nothing for {name} to choose "
                f"between ({auc_text}).")
        elif g["gap"] > GAP_MIN:
            say("gap", g["gap"], "rl", f"Best-of-{g['n']} by {name} reaches {g['best_of_n']:.2f} against pass@1 "
                f"{g['pass@1']:.2f} and pass@{g['n']} {g['pass@n']:.2f}: it closes {g['gap']:.0%} of the gap "
                f"({auc_text}); it can serve as a reward or a selector.")
        else:
            say("gap", g["gap"], "neutral", f"Best-of-{g['n']} by {name} reaches {g['best_of_n']:.2f} against pass@1 "
                f"{g['pass@1']:.2f} and pass@{g['n']} {g['pass@n']:.2f}: it closes only {g['gap']:.0%} of the gap "
                f"({auc_text}); the knowledge may be there, but not as a reward model.")
    if p1 > 0:
        v = m["process_valid_rate"]
        if v < PROCESS_MIN:
            say("process_valid_rate", v, "neutral", f"Warning: only {v:.0%} of correct answers{at} come by valid "
                "steps; an outcome reward will also reinforce right answers reached by wrong reasoning "
                "(consider process rewards).")
        else:
            say("process_valid_rate", v, "rl", f"{v:.0%} of correct answers{at} come by valid steps: an outcome "
                "reward rewards sound reasoning.")
    control = result.get("control")
    if control:
        true, rand, steps = control["outcome_gain"], control["random_gain"], control["steps"]
        gains = f"true reward {true:+.3f}, random reward {rand:+.3f} pass@1 after {steps} GRPO steps"
        if true < CONTROL_MIN_GAIN:
            say("random_control", rand, "neutral", f"Inconclusive: {gains}; the short run did not pay off.")
        elif rand >= AMPLIFY_SHARE * true:
            say("random_control", rand, "neutral", f"Amplifying: {gains}. Most of RL's gain comes without any "
                "information in the reward: it amplifies what the base already does.")
        else:
            say("random_control", rand, "rl", f"The reward teaches: {gains}; random rewards give less than half "
                "of the gain.")
    if m["malformed_rate"] > MALFORMED_MAX:
        say("malformed_rate", m["malformed_rate"], "base", f"{m['malformed_rate']:.0%} of samples{at} have no "
            "parsable answer: teach the format first (fine-tune on formatted traces).")
    else:
        say("malformed_rate", m["malformed_rate"], "neutral", f"{m['malformed_rate']:.1%} of samples{at} have no "
            "parsable answer.")
    say("diversity", m["distinct_correct"], "neutral", f"Problems solved{at} have {m['distinct_correct']:.1f} "
        f"distinct correct solutions on average; the answers' entropy is {m['answer_entropy']:.2f} nats.")
    return out


def headline(statements: Sequence[Mapping[str, Any]]) -> str:
    """One plain sentence: which metrics say RL will pay off, and which say improve the base first."""
    rl = [s["metric"] for s in statements if s["says"] == "rl"]
    base = [s["metric"] for s in statements if s["says"] == "base"]
    parts = []
    if rl:
        parts.append(f"RL will pay off here, say {', '.join(rl)}")
    if base:
        parts.append(f"improve the base first (more pretraining, or traces with checks and backtracking), "
                     f"say {', '.join(base)}")
    if not parts:
        return "No metric takes a side."
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."
