"""Judges that need no training: the trivial all-correct judge and an exact arithmetic checker.

`AlwaysCorrect` scores every step 1.0, so it predicts "no wrong step" everywhere: the floor any
ProcessBench F1 should beat (its F1 is 0 because it never finds an error).

`SymbolicArithmetic` rejects a step that states false arithmetic. It reads claims `<expr> = <number>`
in plain text and common LaTeX (`$...$`, `\\(...\\)`, `\\times`, `\\cdot`, `\\div`, `\\frac{a}{b}` with
numeric a and b, `×`, `÷`, `·`, thousands commas such as `1,000`, decimals, signs, parentheses,
chains `a = b = c` where each bare number is checked against the expression before it), evaluates
the left side exactly with `fractions.Fraction` (* and / before + and -), and scores the step 0.0
if any claim is false, else 1.0. A right side written with fewer decimals than the exact value
needs (`10/3 = 3.33`, `10/3 = 3`) counts as true when it is that value rounded or truncated to the
digits written. It stays quiet whenever a claim is unclear: division by zero, a percent sign,
powers, roots, functions (`\\sin 30`, `17 mod 5`), a variable or unit glued to a number (`2x`,
`5cm`), a scale word after the result (`5 million`), over-long numbers (more than 30 digits) or
expressions (more than 64 tokens). It cannot catch anything that is not arithmetic: a wrong
equation set up from true sums, a misread problem, a wrong method, a logical gap. Steps are judged
independently, so it is not a process judge in the PRM sense; outcome = the weakest step.

Usage:
    scores = SymbolicArithmetic().score(records)    # or BASELINES["symbolic-arithmetic"]()
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import NamedTuple

from reasonlab.judges.base import Judge, aggregate
from reasonlab.types import JudgeScores, StepRecord

MAX_DIGITS = 30
MAX_TOKENS = 64
MAX_DEPTH = 16

_NUM = r"[0-9]{1,3}(?:,[0-9]{3}){1,10}+(?![0-9]|,[0-9])(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?|\.[0-9]+"
_TOKEN = re.compile(
    rf"(?P<frac>\\[dt]?frac\s*\{{\s*(?P<top>{_NUM})\s*\}}\s*\{{\s*(?P<bottom>{_NUM})\s*\}})"
    rf"|(?P<num>{_NUM})"
    r"|(?P<op>[-+*/])|(?P<lp>\()|(?P<rp>\))"
    r"|(?P<noteq>==+|=>|[<>!:]=)|(?P<eq>=)"
    r"|(?P<nl>\n)|(?P<ws>[ \t\r\f\v]+)"
    r"|(?P<word>[A-Za-z]+)|(?P<cmd>\\[A-Za-z]+)"
    r"|(?P<other>.)",
    re.DOTALL,
)
_REWRITES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (
            r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}",
            r" \1 ",
        ),
        (r"\\\\", " "),
        (r"\\\$|\$|\\\(|\\\)|\\\[|\\\]|&|~|\*\*", " "),
        (r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|bigg|Bigg)(?![A-Za-z])", ""),
        (r"\\(?:times|cdot)(?![A-Za-z])|[×·⋅∙]", " * "),
        (r"\\div(?![A-Za-z])|÷", " / "),
        (r"[−–]", "-"),
        (r"\\(?:q?quad|[,;:! ])", " "),
        (r"\{,\}", ","),
        (r"\\%", "%"),
        # linear: a match can start only right after a digit, which the space run cannot match
        (r"(?<=[0-9])\s+[xX]\s+(?=[0-9])", " * "),
    )
)
_EXPR_KINDS = frozenset({"num", "frac", "op", "lp", "rp", "ws"})
_SAFE_ADJACENT = frozenset("([{\"'")
_SAFE_BEFORE_SIGN = _SAFE_ADJACENT | frozenset(":;,")
_DANGER_AFTER = frozenset("%^_!'{[|:")
_OPERATOR_WORDS = frozenset(
    "mod modulo pmod bmod sin cos tan cot sec csc log ln lg exp sqrt choose of times by plus minus "
    "over divided multiplied percent".split()
)
_SCALE_WORDS = frozenset(
    "hundred hundreds thousand thousands million millions billion billions "
    "trillion trillions dozen dozens percent times".split()
)
_HARMLESS_COMMANDS = frozenset(
    "implies Rightarrow rightarrow Longrightarrow to end newline".split()
)


class _Tok(NamedTuple):
    kind: str
    text: str
    value: Fraction | None = None
    decimals: int | None = None


def _number(text: str) -> tuple[Fraction | None, int | None]:
    """The exact value of a numeral and its written decimals (None when too long)."""
    plain = text.replace(",", "")
    if sum(c.isdigit() for c in plain) > MAX_DIGITS:
        return None, None
    return Fraction(plain), len(plain.partition(".")[2])


def _frac(top: str, bottom: str) -> Fraction | None:
    a, _ = _number(top)
    b, _ = _number(bottom)
    return None if a is None or b is None or b == 0 else a / b


def normalize(text: str) -> str:
    """Plain-text arithmetic from LaTeX-ish text: operators to ASCII, math delimiters to spaces."""
    for pattern, replacement in _REWRITES:
        text = pattern.sub(replacement, text)
    return text


def tokenize(text: str) -> list[_Tok]:
    """Tokens of normalized text; numerals and numeric \\frac carry their exact values."""
    tokens = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "other"
        if m.group("frac") is not None:
            tokens.append(_Tok("frac", m.group(0), _frac(m.group("top"), m.group("bottom"))))
        elif kind == "num":
            tokens.append(_Tok("num", m.group(0), *_number(m.group(0))))
        else:
            tokens.append(_Tok(kind, m.group(0)))
    return tokens


class _Parser:
    """Recursive descent over + - (low), * / (high), unary signs, parentheses; None on any failure."""

    def __init__(self, tokens: Sequence[_Tok]) -> None:
        self.tokens = tokens
        self.pos = 0

    def _peek(self) -> str:
        return self.tokens[self.pos].text if self.pos < len(self.tokens) else ""

    def parse(self) -> Fraction | None:
        value = self._expr(0)
        return value if self.pos == len(self.tokens) else None

    def _expr(self, depth: int) -> Fraction | None:
        value = self._term(depth)
        while value is not None and self._peek() in ("+", "-"):
            op = self._peek()
            self.pos += 1
            right = self._term(depth)
            value = None if right is None else value + right if op == "+" else value - right
        return value

    def _term(self, depth: int) -> Fraction | None:
        value = self._factor(depth)
        while value is not None and self._peek() in ("*", "/"):
            op = self._peek()
            self.pos += 1
            right = self._factor(depth)
            if right is None or (op == "/" and right == 0):
                return None
            value = value * right if op == "*" else value / right
        return value

    def _factor(self, depth: int) -> Fraction | None:
        if depth > MAX_DEPTH or self.pos >= len(self.tokens):
            return None
        tok = self.tokens[self.pos]
        self.pos += 1
        if tok.text in ("+", "-"):
            inner = self._factor(depth + 1)
            return None if inner is None else inner if tok.text == "+" else -inner
        if tok.kind in ("num", "frac"):
            return tok.value
        if tok.kind == "lp":
            inner = self._expr(depth + 1)
            if inner is None or self._peek() != ")":
                return None
            self.pos += 1
            return inner
        return None


def evaluate(tokens: Sequence[_Tok]) -> Fraction | None:
    """The exact value of an expression's tokens (no whitespace), or None if it does not parse."""
    if not tokens or len(tokens) > MAX_TOKENS:
        return None
    return _Parser(tokens).parse()


def _strip_parens(core: list[_Tok], lead: bool, trail: bool) -> tuple[list[_Tok], bool]:
    """Drop unmatched '(' at the start (if `lead`) or ')' at the end (if `trail`); say if any went."""
    opened = sum(t.kind == "lp" for t in core) - sum(t.kind == "rp" for t in core)
    start, end = 0, len(core)
    while lead and opened > 0 and start < end and core[start].kind == "lp":
        start, opened = start + 1, opened - 1
    while trail and opened < 0 and end > start and core[end - 1].kind == "rp":
        end, opened = end - 1, opened + 1
    return core[start:end], start > 0 or end < len(core)


def _has_operation(core: Sequence[_Tok]) -> bool:
    """A \\frac, or an operator with an operand before it (not just a sign)."""
    return any(
        t.kind == "frac" or (t.kind == "op" and i > 0 and core[i - 1].kind in ("num", "frac", "rp"))
        for i, t in enumerate(core)
    )


def _left_ok(prev: _Tok | None, gap: bool, first: _Tok) -> bool:
    """Whether an expression starting with `first` really starts there (not mid-formula)."""
    if prev is None or prev.kind == "nl":
        return True
    if prev.kind == "cmd" or (prev.kind == "word" and prev.text.lower() in _OPERATOR_WORDS):
        return False
    if first.kind == "op":
        return prev.kind == "other" and prev.text in _SAFE_BEFORE_SIGN
    return gap or (prev.kind == "other" and prev.text in _SAFE_ADJACENT)


def _right_ok(nxt: _Tok | None, gap: bool) -> bool:
    """Whether a number ending just before `nxt` is the whole right side (no unit, power, percent)."""
    if nxt is None or nxt.kind in ("nl", "eq", "noteq"):
        return True
    if nxt.kind == "cmd":
        return nxt.text[1:] in _HARMLESS_COMMANDS and gap
    if nxt.kind == "word":
        return gap and nxt.text.lower() not in _SCALE_WORDS
    return nxt.text not in _DANGER_AFTER


def _bare_number(core: Sequence[_Tok]) -> tuple[Fraction, int | None] | None:
    """(value, written decimals) when the tokens are one signed numeral or \\frac."""
    sign, body = (core[0].text, core[1:]) if core and core[0].text in ("+", "-") else ("+", core)
    if len(body) != 1 or body[0].kind not in ("num", "frac") or body[0].value is None:
        return None
    value = body[0].value
    return (-value if sign == "-" else value), body[0].decimals


def claim_holds(value: Fraction, stated: Fraction, decimals: int | None) -> bool:
    """Exact equality, or `stated` is `value` rounded or truncated to its written decimals."""
    if value == stated:
        return True
    if decimals is None:
        return False
    scale = 10**decimals
    scaled = value * scale
    if scaled.denominator == 1:
        return False  # exactly representable at the written precision, and different
    floor = scaled.numerator // scaled.denominator
    return floor <= stated * scale <= floor + 1


def _run_bounds(tokens: Sequence[_Tok], eq_at: int) -> tuple[int, list[int], int]:
    """(start, positions of '=', end) of the run of expression tokens and '=' around tokens[eq_at]."""
    start = eq_at
    while start > 0 and tokens[start - 1].kind in _EXPR_KINDS:
        start -= 1
    eqs, end = [eq_at], eq_at + 1
    while True:
        while end < len(tokens) and tokens[end].kind in _EXPR_KINDS:
            end += 1
        if end < len(tokens) and tokens[end].kind == "eq":
            eqs.append(end)
            end += 1
            continue
        return start, eqs, end


def _segments(tokens: Sequence[_Tok], start: int, eqs: Sequence[int], end: int) -> list[list[_Tok]]:
    cuts = [start - 1, *eqs, end]
    return [list(tokens[a + 1 : b]) for a, b in zip(cuts, cuts[1:])]


def _core(segment: Sequence[_Tok]) -> list[_Tok]:
    return [t for t in segment if t.kind != "ws"]


def _first_ok(tokens: Sequence[_Tok], start: int, segment: Sequence[_Tok]) -> bool:
    core, opened = _strip_parens(_core(segment), lead=True, trail=False)
    if not core:
        return False
    if core[0].kind == "op" and _is_bullet(segment):
        return False
    prev = tokens[start - 1] if start > 0 else None
    return opened or _left_ok(prev, segment[0].kind == "ws", core[0])


def _is_bullet(segment: Sequence[_Tok]) -> bool:
    """A leading sign followed by a space ("- 3 + 4") reads as a list bullet, not a minus."""
    first = next((i for i, t in enumerate(segment) if t.kind != "ws"), len(segment))
    return first + 1 < len(segment) and segment[first + 1].kind == "ws"


def _last_ok(tokens: Sequence[_Tok], end: int, segment: Sequence[_Tok]) -> bool:
    core, closed = _strip_parens(_core(segment), lead=False, trail=True)
    if not core:
        return False
    nxt = tokens[end] if end < len(tokens) else None
    return closed or _right_ok(nxt, segment[-1].kind == "ws")


def _false_claim_in_run(tokens: Sequence[_Tok], start: int, eqs: Sequence[int], end: int) -> bool:
    """Whether some `expression = number` pair of this run is checkable and false."""
    segments = _segments(tokens, start, eqs, end)
    last = len(segments) - 1
    for i in range(1, len(segments)):
        if i == 1 and not _first_ok(tokens, start, segments[0]):
            continue
        if i == last and not _last_ok(tokens, end, segments[i]):
            continue
        left_core, _ = _strip_parens(_core(segments[i - 1]), lead=i == 1, trail=False)
        right_core, _ = _strip_parens(_core(segments[i]), lead=False, trail=i == last)
        stated = _bare_number(right_core)
        if stated is None or not _has_operation(left_core):
            continue
        value = evaluate(left_core)
        if value is not None and not claim_holds(value, *stated):
            return True
    return False


def has_false_arithmetic(text: str) -> bool:
    """Whether the text states an arithmetic claim that exact arithmetic rejects."""
    tokens = tokenize(normalize(text))
    at = 0
    while at < len(tokens):
        if tokens[at].kind != "eq":
            at += 1
            continue
        start, eqs, end = _run_bounds(tokens, at)
        if _false_claim_in_run(tokens, start, eqs, end):
            return True
        at = end
    return False


class AlwaysCorrect:
    """Every step right, every solution right: predicts -1 on every ProcessBench record."""

    name = "always-correct"

    def score(self, records: Sequence[StepRecord]) -> list[JudgeScores]:
        return [JudgeScores(steps=tuple(1.0 for _ in r.steps), outcome=1.0) for r in records]


class SymbolicArithmetic:
    """Step score 0.0 where the step states false arithmetic, else 1.0; outcome = the weakest step."""

    name = "symbolic-arithmetic"

    def score(self, records: Sequence[StepRecord]) -> list[JudgeScores]:
        out = []
        for r in records:
            steps = tuple(0.0 if has_false_arithmetic(s) else 1.0 for s in r.steps)
            out.append(JudgeScores(steps=steps, outcome=aggregate(steps, "min")))
        return out


BASELINES: dict[str, Callable[[], Judge]] = {
    AlwaysCorrect.name: AlwaysCorrect,
    SymbolicArithmetic.name: SymbolicArithmetic,
}
