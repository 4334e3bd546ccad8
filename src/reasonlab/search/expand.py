"""One batched expansion: every open path of every problem grows by one step in ONE generate call.

A path is a partial solution of one problem. To extend it, the policy is prompted with the
problem's prompt followed by the partial text and generates up to `settings.step_stop` (the stop
string is kept in the text). KV sharing: within one expansion, the continuations of a path share
its prefix's cache (the tiny policy prefills each distinct prompt once and copies its cache rows,
models/tiny_policy.py; the vLLM backend runs with its prefix cache on); across expansions the
prefix is prefilled again, one batched forward per expansion, rather than kept per path. That
prefill is about a tenth of beam search's wall time on the default run (benchmarks/search_speed.py
times it apart), so a cache kept across expansions would save at most that; prefill is not counted
as compute (search/base.py). Re-encoding prompt + partial text is exact for the character
tokenizer; a BPE tokenizer may merge the seam differently, and a chat-template tokenizer would put
the partial text inside the user turn.

A path finishes when its step has an answer line, or the policy ends it (EOS), or it has used
`settings.max_new_tokens` completion tokens (a step that would run past them is cut there; the
cut tokens were generated and are counted), or on a `last` expansion, which generates to the end
of the solution (no step stop, as search-and-learn's final iteration does).
Expansion d samples with seed `expansion_seed(seed, d)`, so expansion 0 uses the search seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from reasonlab import sampling
from reasonlab.search.base import SearchContext
from reasonlab.tasks.parsing import split_lines
from reasonlab.types import Problem


@dataclass(frozen=True)
class Path:
    """A partial or finished solution: problem index, its text, completion tokens used, score."""

    problem: int
    text: str = ""
    tokens: int = 0
    finished: bool = False
    score: float = 0.0


def expansion_seed(seed: int, depth: int) -> int:
    return seed + 1_000_003 * depth


def answered(text: str) -> bool:
    """Does `text` hold an answer line (the line grammar of tasks/parsing.py)?"""
    return split_lines(text)[3] is not None


def continuation(problem: Problem, text: str) -> Problem:
    """The problem whose prompt is the original prompt followed by the partial solution."""
    return replace(problem, prompt=problem.prompt + text)


def expand(
    ctx: SearchContext,
    problems: Sequence[Problem],
    paths: Sequence[Path],
    counts: Sequence[int],
    seed: int,
    last: bool,
    generated: list[int],
) -> list[Path]:
    """`counts[i]` one-step continuations of `paths[i]` (unscored), path-major, from one generate
    call; adds every returned token to `generated[problem index]`."""
    s, tok = ctx.settings, ctx.policy.tokenizer
    rows = [p for p, k in zip(paths, counts) for _ in range(k)]
    if not rows:
        return []
    room = max(s.max_new_tokens - p.tokens for p in rows)
    rollouts = sampling.generate(
        ctx.policy,
        [continuation(problems[p.problem], p.text) for p in rows],
        1,
        seed,
        max_new_tokens=room,
        temperature=s.temperature,
        top_p=s.top_p,
        stop=() if last else (s.step_stop,),
    )
    out = []
    for p, r in zip(rows, rollouts):
        generated[p.problem] += len(r.token_ids)
        left = s.max_new_tokens - p.tokens
        text, used, reason = r.text, len(r.token_ids), r.finish_reason
        if used > left:  # ran past this path's own length limit: cut there
            text, used, reason = tok.decode(r.token_ids[:left]), left, "length"
        done = last or reason != "stop" or answered(text) or p.tokens + used >= s.max_new_tokens
        out.append(Path(p.problem, p.text + text, p.tokens + used, done))
    return out
