"""Every regular expression in src/ runs in linear time, or says why it does in a comment.

A backtracking engine (Python's `re`) takes super-linear time on a failed match when a pattern has
(1) an unbounded repeat inside another unbounded repeat, `(a+)+`; (2) two unbounded repeats that can
match the same character with only optional items between them, `0*[0-9]+` (the split between
them is tried at every position); or (3) a leading unbounded repeat followed by more pattern, which
`search`, `sub` and `finditer` retry from every start, `\\s+x` on a run of spaces. `risks(pattern)`
finds these shapes from the parse tree of `re._parser` (the standard library's own parser;
possessive repeats and atomic groups never backtrack and are exempt). A pattern of src/ that shows a
risk must carry a comment containing "linear" on its line or the lines just above it, saying why it
is linear after all (e.g. "the repeat stops at a character it cannot match"). The patterns are
found by reading every module of src/ (calls of `re.*` with a literal pattern) and by importing it
(module-level compiled patterns, also inside tuples, lists and dicts).
"""

from __future__ import annotations

import ast
import importlib
import re
import re._constants as C  # noqa: N812
import re._parser as P  # noqa: N812
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
RE_FUNCTIONS = {"compile", "match", "fullmatch", "search", "sub", "subn", "findall", "finditer"}
RE_FUNCTIONS |= {"split"}
UNBOUNDED = C.MAXREPEAT
PROBES = [chr(i) for i in range(256)] + list("\u0660\u0663\u2028\u3000\u017f\u212a\ud800\uff10")
CATEGORY_REGEX = {
    C.CATEGORY_DIGIT: r"\d",
    C.CATEGORY_NOT_DIGIT: r"\D",
    C.CATEGORY_SPACE: r"\s",
    C.CATEGORY_NOT_SPACE: r"\S",
    C.CATEGORY_WORD: r"\w",
    C.CATEGORY_NOT_WORD: r"\W",
}


# ---------------------------------------------------------------------------------------------
# The analysis, on re._parser's tree: a sequence of (op, argument) items


def char_set(items: list, flags: int) -> frozenset[str]:
    """The probe characters that some single-character item of `items` (at any depth) matches."""
    found: set[str] = set()
    for op, av in items:
        if op in (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN):
            found |= {c for c in PROBES if item_matches(op, av, c, flags)}
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
            found |= char_set(list(av[2]), flags)
        elif op == C.SUBPATTERN:
            found |= char_set(list(av[3]), flags)
        elif op == C.ATOMIC_GROUP:
            found |= char_set(list(av), flags)
        elif op == C.BRANCH:
            for alternative in av[1]:
                found |= char_set(list(alternative), flags)
        elif op in (C.GROUPREF, C.GROUPREF_EXISTS):
            found |= set(PROBES)  # unknown text: assume anything
    return frozenset(found)


def item_matches(op: object, av: object, c: str, flags: int) -> bool:
    variants = {c, c.lower(), c.upper()} if flags & re.IGNORECASE else {c}
    return any(single_matches(op, av, v, flags) for v in variants)


def single_matches(op: object, av: object, c: str, flags: int) -> bool:
    if op == C.LITERAL:
        return ord(c) == av
    if op == C.NOT_LITERAL:
        return ord(c) != av
    if op == C.ANY:
        return c != "\n" or bool(flags & re.DOTALL)
    negate, hit = False, False
    for kind, value in av:
        if kind == C.NEGATE:
            negate = True
        elif kind == C.LITERAL:
            hit |= ord(c) == value
        elif kind == C.RANGE:
            hit |= value[0] <= ord(c) <= value[1]
        elif kind == C.CATEGORY:
            ascii_only = re.ASCII if flags & re.ASCII else 0
            hit |= re.fullmatch(CATEGORY_REGEX[value], c, ascii_only) is not None
    return hit != negate


def nullable(item: tuple, flags: int) -> bool:
    """Can the item match the empty string?"""
    op, av = item
    if op in (C.AT, C.ASSERT, C.ASSERT_NOT):
        return True
    if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
        return av[0] == 0 or all(nullable(i, flags) for i in av[2])
    if op == C.SUBPATTERN:
        return all(nullable(i, flags) for i in av[3])
    if op == C.ATOMIC_GROUP:
        return all(nullable(i, flags) for i in av)
    if op == C.BRANCH:
        return any(all(nullable(i, flags) for i in alt) for alt in av[1])
    return False


def backtracking_repeat(item: tuple) -> bool:
    op, av = item
    return op in (C.MAX_REPEAT, C.MIN_REPEAT) and av[1] == UNBOUNDED


def edge_repeats(items: list, flags: int, leading: bool) -> list[tuple]:
    """The unbounded backtracking repeats a match of `items` can start (leading) or end with."""
    found: list[tuple] = []
    for item in items if leading else reversed(items):
        op, av = item
        if backtracking_repeat(item):
            found.append(item)
        elif op == C.SUBPATTERN:
            found += edge_repeats(list(av[3]), flags, leading)
        elif op == C.BRANCH:
            for alternative in av[1]:
                found += edge_repeats(list(alternative), flags, leading)
        if not nullable(item, flags):
            break
    return found


def risks(pattern: str, flags: int = 0, anchored: bool = False) -> list[str]:
    """The shapes of `pattern` that can make a failed match super-linear (empty: linear).
    `anchored`: the pattern is only used with match / fullmatch, so rule (3) does not apply."""
    tree = P.parse(pattern, flags)
    flags = tree.state.flags
    found: list[str] = []
    walk(list(tree), flags, found, inside_repeat=False)
    items = flattened(list(tree))
    anchored = anchored or (bool(items) and items[0][0] == C.AT)
    for k, item in enumerate(items):
        rest_required = not all(nullable(i, flags) for i in items[k + 1 :])
        if not anchored and rest_required and edge_repeats([item], flags, leading=True):
            found.append("a leading unbounded repeat followed by more pattern (search retries it)")
        if not nullable(item, flags):
            break
    return found


def flattened(items: list) -> list:
    """The sequence with its groups opened (`(a)(b+)c` -> a, b+, c); branches stay items."""
    out: list = []
    for op, av in items:
        if op == C.SUBPATTERN:
            out += flattened(list(av[3]))
        else:
            out.append((op, av))
    return out


def walk(items: list, flags: int, found: list[str], inside_repeat: bool) -> None:
    """Rules (1) and (2) on a sequence and every sequence nested in it."""
    for i, item in enumerate(items):
        op, av = item
        if backtracking_repeat(item):
            if inside_repeat:
                found.append("an unbounded repeat inside an unbounded repeat")
            walk(list(av[2]), flags, found, inside_repeat=True)
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT):
            walk(list(av[2]), flags, found, inside_repeat)
        elif op == C.SUBPATTERN:
            walk(list(av[3]), flags, found, inside_repeat)
        elif op == C.BRANCH:
            for alternative in av[1]:
                walk(list(alternative), flags, found, inside_repeat)
        elif op in (C.ASSERT, C.ASSERT_NOT):
            walk(list(av[1]), flags, found, inside_repeat)
        # rule (2): this item's trailing repeats against the leading repeats of later items
        for left in edge_repeats([item], flags, leading=False):
            for later in items[i + 1 :]:
                for right in edge_repeats([later], flags, leading=True):
                    shared = char_set([left], flags) & char_set([right], flags)
                    if shared:
                        found.append(
                            f"two unbounded repeats that both match {sorted(shared)[0]!r} with "
                            "only optional items between them"
                        )
                if not nullable(later, flags):
                    break


# ---------------------------------------------------------------------------------------------
# The analysis can fail


@pytest.mark.parametrize(
    "pattern",
    [
        r"([-+]?)0*([0-9]+)",  # the old integer pattern of tasks/parsing.py
        r"[\s$]*(?:,|;|\band\b)?[\s$]*",  # the old join pattern of tasks/mathcheck.py
        r"(a+)+b",
        r"(?:x|y*)*z",
        r"\s+x",
        r"(\d+)(\d*)x",
        r"(-?[0-9]+)\s*([-+*/])\s*(-?[0-9]+)",  # searched, its leading run is retried
        r"a*(?:b?|c)a+",
    ],
)
def test_risky_shapes_are_found(pattern: str) -> None:
    assert risks(pattern), pattern


@pytest.mark.parametrize(
    "pattern",
    [
        r"([-+]?)([0-9]+)",
        r"check:\s*(ok|wrong)",
        r"^[^\S\n]*answer:([^\n]*)",
        r"[a-h][1-8][a-h][1-8][nbrq]?",
        r"<<[^<>]*>>",
        r"(?:a|b)++c",  # possessive: never backtracks
        r"\\boxed\s*\{",
    ],
)
def test_linear_shapes_pass(pattern: str) -> None:
    assert risks(pattern) == [], pattern


@pytest.mark.parametrize("pattern", [r"([-+]?)0*([0-9]+)", r"[\s$]*(?:,)?[\s$]*"])
def test_a_found_shape_is_really_slow(pattern: str) -> None:
    """What the rules catch is real: these take over 20x longer on 8x the text (quadratic)."""
    import time

    compiled = re.compile(pattern)

    def seconds(n: int) -> float:
        text = ("0" if "0" in pattern else " ") * n + "x"
        start = time.perf_counter()
        compiled.fullmatch(text)
        return time.perf_counter() - start

    short, long = min(seconds(1000) for _ in range(3)), min(seconds(8000) for _ in range(3))
    assert long > 20 * short


# ---------------------------------------------------------------------------------------------
# Every pattern of src/


@dataclass(frozen=True)
class Site:
    path: Path
    lines: tuple[int, int]  # first and last line of the pattern's literal (or of its statement)
    pattern: str
    flags: int
    anchored: bool = False  # used only by re.match / re.fullmatch at this site

    def commented_linear(self) -> bool:
        source = self.path.read_text(encoding="utf-8").splitlines()
        first, last = self.lines
        window = source[max(first - 4, 0) : last]
        return any("#" in line and "linear" in line.split("#", 1)[1] for line in window)


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")


def compiled_in(value: object) -> list[re.Pattern]:
    """The compiled patterns in a module attribute (itself, or in a tuple, list or dict)."""
    if isinstance(value, re.Pattern):
        return [value]
    if isinstance(value, (tuple, list)):
        return [p for v in value for p in compiled_in(v)]
    if isinstance(value, dict):
        return [p for v in value.values() for p in compiled_in(v)]
    return []


def is_re_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "re"
        and node.func.attr in RE_FUNCTIONS
    )


def pattern_sites() -> tuple[list[Site], list[str]]:
    """Every regex of src/ with where it is written, and the calls whose pattern cannot be read."""
    sites: list[Site] = []
    unreadable: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = None
        covered: set[int] = set()  # ids of re calls inside module-level assignments
        for statement in tree.body:
            value = getattr(statement, "value", None)
            targets = [
                t for t in getattr(statement, "targets", [getattr(statement, "target", None)])
            ]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            calls = [n for n in ast.walk(value) if is_re_call(n)] if value is not None else []
            if not calls or not names:
                continue
            module = module or importlib.import_module(module_name(path))
            literals = {
                n.value: (n.lineno, n.end_lineno or n.lineno)
                for n in ast.walk(statement)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
            }
            whole = (statement.lineno, statement.end_lineno or statement.lineno)
            for name in names:
                for compiled in compiled_in(getattr(module, name)):
                    lines = literals.get(compiled.pattern, whole)
                    sites.append(Site(path, lines, compiled.pattern, compiled.flags))
            covered |= {id(c) for c in calls}
        for node in ast.walk(tree):
            if not is_re_call(node) or id(node) in covered:
                continue
            where = f"{path.relative_to(SRC)}:{node.lineno}"
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                flags = 0
                flag_arg = (
                    node.args[-1] if len(node.args) > 2 or node.func.attr == "compile" else None
                )
                if flag_arg is not None and node.func.attr in {"compile", "match", "fullmatch"}:
                    flags = eval(compile(ast.Expression(flag_arg), where, "eval"), {"re": re})
                lines = (node.lineno, node.end_lineno or node.lineno)
                anchored = node.func.attr in {"match", "fullmatch"}
                sites.append(Site(path, lines, first.value, flags, anchored))
            elif not (isinstance(first, ast.Name) and first.id.isupper()):
                unreadable.append(where)
    return sites, unreadable


def test_every_pattern_in_src_is_linear_or_says_why() -> None:
    sites, unreadable = pattern_sites()
    assert len(sites) >= 20  # the scan found the patterns
    assert unreadable == [], f"re calls whose pattern this test cannot read: {unreadable}"
    unexplained = [
        f"{site.path.relative_to(SRC)}:{site.lines[0]}: {site.pattern!r}: {'; '.join(found)}"
        for site in sites
        if (found := risks(site.pattern, site.flags, site.anchored)) and not site.commented_linear()
    ]
    assert unexplained == [], "\n".join(unexplained)
