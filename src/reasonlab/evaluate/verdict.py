"""The sufficiency verdict: which metrics of evaluate/sufficiency.py say RL will pay off, which say
improve the base first, as an ordered list of small named rules.

Verdict rules (`RULES`, evaluated in order by `verdict`, one statement each; `rules_table()` prints them; the
main level is the task's own level, n the sample count; the first case that holds speaks):

    coverage            pass@n < 0.1 -> base; else -> neutral
    headroom            headroom >= 0.2 -> rl; else -> neutral
    learnable           learnable >= 0.2 -> rl; never >= always -> base; else -> neutral
    edge_of_competence  edge found -> rl; some level has pass@1 < 0.2 -> base; else -> neutral
    check_rate          check_rate < 0.01 -> base; else -> rl
    backtrack_rate      backtrack_rate < 0.01 -> base; else -> rl
    gap                 with a judge at the main level: gap is None -> neutral; gap > 0.2 -> rl; else -> neutral
    process_valid_rate  when pass@1 > 0: process_valid_rate < 0.9 -> neutral; else -> rl
    random_control      with a control run: true_gain < 0.02 -> neutral; random_gain >= 0.5 * true_gain ->
                        neutral; else -> rl
    malformed_rate      malformed_rate > 0.5 -> base; else -> neutral
    diversity           always -> neutral

base means improve the base first: coverage (RL cannot find rewards), learnable (most groups teach nothing),
check/backtrack (pretrain or fine-tune on traces with them), malformed (teach the format first). Process
validity's neutral is a warning (outcome rewards will reinforce wrong reasoning); the control's first neutral is
"inconclusive", its second "amplifying" (the random reward gains at least half as much). Each case's message
(`Case.text`) says it in full; tests/test_sufficiency.py checks this table against `rules_table()`.

Usage:

    statements = verdict({"levels": {5: level_metrics(ev["problems"], 256)}, "n": 256, "main_level": 5})
    print(headline(statements))
    reasonlab sufficiency --model runs/default            # measures and writes the verdict (experiments/sufficiency.py)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reasonlab.evaluate.sufficiency import EDGE_PASS1, edge_of_competence, pass_n

COVERAGE_MIN = 0.1
HEADROOM_MIN = 0.2
LEARNABLE_MIN = 0.2
BEHAVIOUR_MIN = 0.01
GAP_MIN = 0.2
PROCESS_MIN = 0.9
AMPLIFY_SHARE = 0.5
CONTROL_MIN_GAIN = 0.02
MALFORMED_MAX = 0.5

# ------------------------------------------------------------------------------------------------
# Verdict: RULES, evaluated in order; each rule makes one statement or, without its input, none


@dataclass(frozen=True)
class Condition:
    """A case's condition on a rule's fields; `text` is how rules_table() and the module docstring print it."""

    text: str
    holds: Callable[[Mapping[str, Any]], bool]


def _bound(fields: Mapping[str, Any], bound: float | str) -> Any:
    """A threshold, or the value of another field when `bound` names one."""
    return fields[bound] if isinstance(bound, str) else bound


def below(key: str, bound: float | str) -> Condition:
    return Condition(f"{key} < {bound}", lambda f: f[key] < _bound(f, bound))


def above(key: str, bound: float | str) -> Condition:
    return Condition(f"{key} > {bound}", lambda f: f[key] > _bound(f, bound))


def at_least(key: str, bound: float | str, times: float | None = None) -> Condition:
    if times is None:
        return Condition(f"{key} >= {bound}", lambda f: f[key] >= _bound(f, bound))
    return Condition(f"{key} >= {times} * {bound}", lambda f: f[key] >= times * f[bound])


def is_none(key: str) -> Condition:
    return Condition(f"{key} is None", lambda f: f[key] is None)


def found(key: str) -> Condition:
    return Condition(f"{key} found", lambda f: f[key] is not None)


OTHERWISE = Condition("else", lambda f: True)
ALWAYS = Condition("always", lambda f: True)


@dataclass(frozen=True)
class Case:
    """What a rule says when `when` holds: `says` (rl | base | neutral) and `text`, a str.format
    template over the rule's fields (plus n, at, pass@1, pass@n of the main level and threshold)."""

    when: Condition
    says: str
    text: str


class _Later:
    """A field computed on first read, so a rule reads a metric only where its case needs it."""

    def __init__(self, compute: Callable[[], Any]) -> None:
        self.compute = compute


class _Fields(dict):
    """A rule's fields by name (for its conditions and str.format_map); a _Later one is computed on first read."""

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        if isinstance(value, _Later):
            value = self[key] = value.compute()
        return value


@dataclass(frozen=True)
class _Ctx:
    """What every rule may read: the result, its levels (int keys), n, the main level and its metrics."""

    result: Mapping[str, Any]
    levels: dict[int, Mapping[str, float]]
    n: int
    main: int
    m: Mapping[str, float]
    at: str  # " at level 5" when several levels were measured, else ""
    p1: float
    pn: float

    @classmethod
    def of(cls, result: Mapping[str, Any]) -> _Ctx:
        levels = {int(k): v for k, v in result["levels"].items()}
        n, main = int(result["n"]), int(result["main_level"])
        m = levels[main]
        at = f" at level {main}" if len(levels) > 1 else ""
        return cls(result, levels, n, main, m, at, m["pass@1"], pass_n(m, n))


@dataclass(frozen=True)
class Rule:
    """One verdict statement: `name` is its "metric", `fields(ctx)` the inputs its cases read, `value` the
    field it reports; the first case whose condition holds speaks. No statement when `fields` gives None (a
    missing section, described by `needs`) or when `gate` does not hold."""

    name: str
    metric: str  # what the value measures, for the table
    threshold: float | None
    value: str
    fields: Callable[[_Ctx], Mapping[str, Any] | None]
    cases: tuple[Case, ...]
    needs: str = ""
    gate: Condition | None = None

    def check(self, ctx: _Ctx) -> dict[str, Any] | None:
        fields = self.fields(ctx)
        if fields is None:
            return None
        f = _Fields(
            {
                "n": ctx.n,
                "at": ctx.at,
                "pass@1": ctx.p1,
                "pass@n": ctx.pn,
                "threshold": self.threshold,
                **fields,
            }
        )
        if self.gate is not None and not self.gate.holds(f):
            return None
        case = next(c for c in self.cases if c.when.holds(f))
        value = f[self.value]
        return {
            "metric": self.name,
            "value": value,
            "says": case.says,
            "text": case.text.format_map(f),
        }

    def conditions(self) -> str:
        """The cases as text, e.g. "pass@n < 0.1 -> base; else -> neutral"."""
        text = "; ".join(f"{c.when.text} -> {c.says}" for c in self.cases)
        needs = self.needs or (f"when {self.gate.text}" if self.gate else "")
        return f"{needs}: {text}" if needs else text


def _main(*keys: str) -> Callable[[_Ctx], dict[str, Any]]:
    """Fields read from the main level's metrics, each on first use."""
    return lambda c: {k: _Later(lambda k=k: c.m[k]) for k in keys}


def _behaviour(key: str, what: str, trace: str) -> Rule:
    def fields(c: _Ctx) -> dict[str, Any]:
        rate = c.m[key]
        return {key: rate, "rate": rate, "what": what, "trace": trace}

    return Rule(
        key,
        f"share of samples that {what}",
        BEHAVIOUR_MIN,
        key,
        fields,
        (
            Case(
                below(key, BEHAVIOUR_MIN),
                "base",
                "Only {rate:.1%} of samples{at} {what}: RL rarely discovers a "
                "behaviour the base never shows. Improve the base first (pretrain or fine-tune on "
                "traces with {trace}).",
            ),
            Case(OTHERWISE, "rl", "{rate:.1%} of samples{at} {what}: a behaviour RL can amplify."),
        ),
    )


_SOME_LEVEL_HARD = f"some level has pass@1 < {EDGE_PASS1}"


def _edge_fields(c: _Ctx) -> dict[str, Any]:
    edge = edge_of_competence(c.levels, c.n)
    return {
        "edge": edge,
        "edge_pass@1": _Later(lambda: c.levels[edge]["pass@1"]),
        "edge_pass@n": _Later(lambda: pass_n(c.levels[edge], c.n)),
        _SOME_LEVEL_HARD: _Later(lambda: any(v["pass@1"] < EDGE_PASS1 for v in c.levels.values())),
    }


def _judge_fields(c: _Ctx) -> dict[str, Any] | None:
    """The judge's selection metrics at the main level: N, best_of_N, pass@1_N, pass@N, gap, name, auc_text."""
    judge = c.result.get("judge")
    if not (judge and c.main in {int(k) for k in judge.get("levels", {})}):
        return None
    g = {int(k): v for k, v in judge["levels"].items()}[c.main]
    name, auc = judge.get("name", "the judge"), g.get("auroc")
    auc_text = f"outcome AUROC {auc:.2f}" if auc is not None else "outcome AUROC undefined"
    if g.get("majority") is not None:
        auc_text += f"; majority vote of the same samples {g['majority']:.2f}"
    keys = {
        "gap": "gap",
        "N": "n",
        "best_of_N": "best_of_n",
        "pass@1_N": "pass@1",
        "pass@N": "pass@n",
    }
    return {
        "name": name,
        "auc_text": auc_text,
        **{f: _Later(lambda k=k: g[k]) for f, k in keys.items()},
    }


def _control_fields(c: _Ctx) -> dict[str, Any] | None:
    control = c.result.get("control")
    if not control:
        return None
    true, rand, steps = control["outcome_gain"], control["random_gain"], control["steps"]
    return {
        "true_gain": true,
        "random_gain": rand,
        "steps": steps,
        "gains": f"true reward {true:+.3f}, random reward {rand:+.3f} pass@1 after {steps} GRPO steps",
    }


_BEST_OF = "Best-of-{N} by {name} reaches {best_of_N:.2f} against pass@1 {pass@1_N:.2f} and pass@{N} {pass@N:.2f}"

RULES: tuple[Rule, ...] = (
    Rule(
        "coverage",
        "pass@n: the share of problems solved in n samples",
        COVERAGE_MIN,
        "pass@n",
        lambda c: {},
        (
            Case(
                below("pass@n", COVERAGE_MIN),
                "base",
                "Even with {n} samples the base solves only {pass@n:.0%} of "
                "problems{at}: RL can only sharpen what sampling already finds. Improve the base first "
                "(more pretraining).",
            ),
            Case(
                OTHERWISE,
                "neutral",
                "With {n} samples the base solves {pass@n:.0%} of problems{at}: that is the "
                "ceiling RL's pass@1 is expected to approach, not pass.",
            ),
        ),
    ),
    Rule(
        "headroom",
        "pass@n - pass@1",
        HEADROOM_MIN,
        "headroom",
        _main("headroom"),
        (
            Case(
                at_least("headroom", HEADROOM_MIN),
                "rl",
                "pass@1 {pass@1:.2f} against pass@{n} {pass@n:.2f}{at}: "
                "{headroom:.2f} of headroom for RL to turn sampled answers into first answers.",
            ),
            Case(
                OTHERWISE,
                "neutral",
                "pass@1 {pass@1:.2f} is already close to pass@{n} {pass@n:.2f}{at}: little for RL "
                "to sharpen here.",
            ),
        ),
    ),
    Rule(
        "learnable",
        "share of problems solved sometimes but not always (never, always: the others)",
        LEARNABLE_MIN,
        "learnable",
        _main("learnable", "never", "always"),
        (
            Case(
                at_least("learnable", LEARNABLE_MIN),
                "rl",
                "{learnable:.0%} of problems{at} are solved sometimes but "
                "not always: their GRPO groups carry a learning signal.",
            ),
            Case(
                at_least("never", "always"),
                "base",
                "Only {learnable:.0%} of problems{at} are learnable and {never:.0%} "
                "are never solved: most GRPO groups get equal rewards and teach nothing. Improve the base first.",
            ),
            Case(
                OTHERWISE,
                "neutral",
                "Only {learnable:.0%} of problems{at} are learnable and {always:.0%} are always "
                "solved: this level is saturated; train RL on harder problems.",
            ),
        ),
    ),
    Rule(
        "edge_of_competence",
        f"the easiest level with pass@1 < {EDGE_PASS1} and pass@n > 0",
        EDGE_PASS1,
        "edge",
        _edge_fields,
        (
            Case(
                found("edge"),
                "rl",
                "Level {edge} is the edge of competence (pass@1 {edge_pass@1:.2f} < {threshold}, "
                "pass@{n} {edge_pass@n:.2f} > 0): RL gains are expected to be largest when training there.",
            ),
            Case(
                Condition(_SOME_LEVEL_HARD, lambda f: f[_SOME_LEVEL_HARD]),
                "base",
                "Where pass@1 < {threshold} nothing "
                "is ever solved, even in {n} samples: no level sits at the edge of competence. Improve the base first.",
            ),
            Case(
                OTHERWISE,
                "neutral",
                "Every measured level has pass@1 >= {threshold}: measure harder levels to find the "
                "edge of competence.",
            ),
        ),
    ),
    _behaviour("check_rate", "check their work", "checks"),
    _behaviour("backtrack_rate", "backtrack", "backtracking"),
    Rule(
        "gap",
        "(best-of-N - pass@1) / (pass@N - pass@1), best-of-N picked by the judge",
        GAP_MIN,
        "gap",
        _judge_fields,
        (
            Case(
                is_none("gap"),
                "neutral",
                "pass@{N} equals pass@1{at}: there is nothing for {name} to choose between "
                "({auc_text}).",
            ),
            Case(
                above("gap", GAP_MIN),
                "rl",
                _BEST_OF + ": it closes {gap:.0%} of the gap ({auc_text}); it can serve as "
                "a reward or a selector.",
            ),
            Case(
                OTHERWISE,
                "neutral",
                _BEST_OF + ": it closes only {gap:.0%} of the gap ({auc_text}); the knowledge may "
                "be there, but not as a reward model.",
            ),
        ),
        needs="with a judge at the main level",
    ),
    Rule(
        "process_valid_rate",
        "share of correct answers whose every step is valid",
        PROCESS_MIN,
        "process_valid_rate",
        _main("process_valid_rate"),
        (
            Case(
                below("process_valid_rate", PROCESS_MIN),
                "neutral",
                "Warning: only {process_valid_rate:.0%} of correct "
                "answers{at} come by valid steps; an outcome reward will also reinforce right answers reached by wrong "
                "reasoning (consider process rewards).",
            ),
            Case(
                OTHERWISE,
                "rl",
                "{process_valid_rate:.0%} of correct answers{at} come by valid steps: an outcome reward "
                "rewards sound reasoning.",
            ),
        ),
        gate=above("pass@1", 0),
    ),
    Rule(
        "random_control",
        "pass@1 gains of short GRPO runs with the true reward and a random one",
        CONTROL_MIN_GAIN,
        "random_gain",
        _control_fields,
        (
            Case(
                below("true_gain", CONTROL_MIN_GAIN),
                "neutral",
                "Inconclusive: {gains}; the short run did not pay off.",
            ),
            Case(
                at_least("random_gain", "true_gain", times=AMPLIFY_SHARE),
                "neutral",
                "Amplifying: {gains}. Most of RL's "
                "gain comes without any information in the reward: it amplifies what the base already does.",
            ),
            Case(
                OTHERWISE,
                "rl",
                "The reward teaches: {gains}; random rewards give less than half of the gain.",
            ),
        ),
        needs="with a control run",
    ),
    Rule(
        "malformed_rate",
        "share of samples with no parsable answer",
        MALFORMED_MAX,
        "malformed_rate",
        _main("malformed_rate"),
        (
            Case(
                above("malformed_rate", MALFORMED_MAX),
                "base",
                "{malformed_rate:.0%} of samples{at} have no parsable "
                "answer: teach the format first (fine-tune on formatted traces).",
            ),
            Case(
                OTHERWISE, "neutral", "{malformed_rate:.1%} of samples{at} have no parsable answer."
            ),
        ),
    ),
    Rule(
        "diversity",
        "distinct correct solutions per solved problem (and the answers' entropy)",
        None,
        "distinct_correct",
        _main("distinct_correct", "answer_entropy"),
        (
            Case(
                ALWAYS,
                "neutral",
                "Problems solved{at} have {distinct_correct:.1f} distinct correct solutions on "
                "average; the answers' entropy is {answer_entropy:.2f} nats.",
            ),
        ),
    ),
)


def verdict(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Plain-language statements {metric, value, says: rl | base | neutral, text} from a result, one per rule
    of RULES that has its input, in order.

    `result` needs "levels" ({difficulty: level_metrics}, keys int or str), "n" and "main_level";
    optional: "judge" ({"name", "levels": {difficulty: selection_metrics}}) and "control" (with
    "outcome_gain", "random_gain", "steps"). Missing sections give no statement. Thresholds: module
    docstring, rules_table()."""
    ctx = _Ctx.of(result)
    return [s for rule in RULES if (s := rule.check(ctx)) is not None]


def rules_table() -> list[tuple[str, str, str]]:
    """The verdict's rules for a report: (name, what its value measures, its cases as "condition -> says; ...")."""
    return [(rule.name, rule.metric, rule.conditions()) for rule in RULES]


def headline(statements: Sequence[Mapping[str, Any]]) -> str:
    """One plain sentence: which metrics say RL will pay off, and which say improve the base first."""
    rl = [s["metric"] for s in statements if s["says"] == "rl"]
    base = [s["metric"] for s in statements if s["says"] == "base"]
    parts = []
    if rl:
        parts.append(f"RL will pay off here, say {', '.join(rl)}")
    if base:
        parts.append(
            f"improve the base first (more pretraining, or traces with checks and backtracking), "
            f"say {', '.join(base)}"
        )
    if not parts:
        return "No metric takes a side."
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."
