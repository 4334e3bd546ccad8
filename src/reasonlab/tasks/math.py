"""`math` and the named benchmarks `aime24`, `aime25`, `amc23`, `math500`, `gsm8k`: problems from a
JSONL file, answers judged by math-verify.

Files are read by tasks/mathdata.py: the problem in `problem` or `question`, the reference answer in
`answer` (GSM8K's "#### <number>", AMC's floats and AIME's leading zeros normalised), the id, MATH's
`level` as the difficulty, `subject` and `solution` kept in Problem.meta. A bad row is skipped and
listed in `task.skipped` as "<file>:<line>: <field>: <reason>"; a missing file, or one without a
usable row, is an error naming the file. Parsed files are cached per (path, mtime, size). A named
benchmark reads its file from the data folder: the `data_dir` knob (--data-dir), else
$REASONLAB_DATA_DIR, else the public copies shipped with the package (reasonlab/data/).

The prompt is the problem put into `template`: "boxed" (default) appends the Qwen2.5-Math CoT
instruction "Please reason step by step, and put your final answer within \\boxed{}.", "plain" is the
problem alone, any other string must contain `{problem}` (replaced literally, so LaTeX braces in a
custom template need no escaping). `verify` extracts the last `\\boxed{}` (else an anchored or plain
final expression) with math-verify and compares it with the gold, gold first, within `timeout`
seconds, in a worker process (tasks/mathcheck.py) so it also works off the main thread.

Where this departs from what users of lm-evaluation-harness or the Qwen2.5-Math evaluation expect:
- One grader for every benchmark: math-verify, also on GSM8K (lm-eval's gsm8k reads "#### n" or the
  last number; Qwen2.5-Math uses its own `math_equal` on `strip_string`-normalised answers), so
  scores are not directly comparable with either harness's. As in both, the last `\\boxed{}` is the
  answer when a completion holds several (plain math-verify reads them all as one answer set; see
  tasks/mathcheck.py).
- Zero-shot, and the prompt is the user message only: Qwen2.5-Math's "qwen25-math-cot" puts the
  instruction in a system message; here the Hugging Face policy applies the model's own chat template
  (`hf.chat_template`) to this prompt. lm-eval's defaults are few-shot (gsm8k 5, minerva_math 4).
- A check that times out, or an answer that does not parse, is MALFORMED, not WRONG; both count as
  not correct in pass@k.
- `test_fraction` defaults to 1.0 (a benchmark file is a test set); below 1 the split hashes the
  problem text, not the prompt, so changing the template does not move problems between splits.
- `sample(split, n, seed)` returns problems in file order: all of them when n covers the split (no
  error), else a seeded subset of n kept in file order.
- `reference_steps` are the lines of the file's solution (GSM8K's `<<calculator>>` annotations
  removed); the answer line is "The final answer is $\\boxed{<answer>}$.". Wrong steps cannot be
  injected (`wrong_step` raises ReasonlabError).

Usage:
    task = get_task("math500")                   # the shipped file; or data_dir="DIR", REASONLAB_DATA_DIR
    task = get_task("math", file="my_problems.jsonl", template="plain", timeout=10)
    problems = task.sample("test", n=100, seed=0)
    task.verify(problems[0], "... so the answer is \\\\boxed{" + problems[0].answer + "}.")
"""

from __future__ import annotations

import importlib.util
import math
import random
import re
from pathlib import Path
from typing import Any, ClassVar

from reasonlab.errors import ConfigError, ReasonlabError
from reasonlab.tasks.base import (
    SPLITS,
    Split,
    Task,
    register_task,
    short_repr,
    split_of_prompt,
)
from reasonlab.tasks.mathcheck import CheckerUnavailable, MathChecker, shared_checker
from reasonlab.tasks.mathdata import (
    DATA_DIR_ENV,
    Row,
    benchmark_file,
    data_dir_knob,
    file_knob,
    read_math_file,
)
from reasonlab.types import Outcome, Problem, Verdict

BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
TEMPLATES: dict[str, str] = {"boxed": "{problem}\n" + BOXED_INSTRUCTION, "plain": "{problem}"}
MAX_TIMEOUT_S = 3600.0
OUTCOMES: dict[str, Outcome] = {"correct": Outcome.CORRECT, "wrong": Outcome.WRONG}
CALCULATOR = re.compile(r"<<[^<>]*>>")


# ---------------------------------------------------------------------------------------------
# Knobs


def template_knob(task: str, template: Any) -> str:
    if isinstance(template, str) and template in TEMPLATES:
        return TEMPLATES[template]
    if isinstance(template, str) and "{problem}" in template:
        return template
    raise ConfigError(
        f"invalid knob template={short_repr(template)} for task '{task}': must be 'boxed', "
        "'plain' or a string containing {problem}"
    )


def timeout_knob(task: str, timeout: Any) -> float:
    ok = isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
    if not ok or not math.isfinite(timeout) or not 0.0 < timeout <= MAX_TIMEOUT_S:
        raise ConfigError(
            f"invalid knob timeout={short_repr(timeout)} for task '{task}': must be a number of "
            f"seconds above 0 and at most {MAX_TIMEOUT_S:g}"
        )
    return float(timeout)


def require_math_verify(task: str) -> None:
    if importlib.util.find_spec("math_verify") is None:
        raise ConfigError(
            f"task '{task}' needs math-verify: pip install 'math-verify[antlr4_13_2]'"
        )


# ---------------------------------------------------------------------------------------------
# The tasks


@register_task("math")
class MathTask(Task):
    """Problems of a JSONL file; answers judged by math-verify with a timeout."""

    max_new_tokens: ClassVar[int] = 2048

    def __init__(
        self,
        *,
        file: str | None = None,
        data_dir: str | None = None,
        template: str = "boxed",
        timeout: float = 5.0,
        test_fraction: float = 1.0,
    ) -> None:
        super().__init__(test_fraction=test_fraction)
        folder = data_dir_knob(self.name, data_dir)
        self.path = self.resolve_path(file, folder)
        self.template = template_knob(self.name, template)
        self.timeout = timeout_knob(self.name, timeout)
        require_math_verify(self.name)
        parsed = read_math_file(self.path)
        self.skipped: list[str] = list(parsed.skipped)
        self.problems: list[Problem] = [self.problem_of(row) for row in parsed.rows]
        self.checker: MathChecker = shared_checker()
        self.knobs = {
            "file": str(self.path),
            "data_dir": str(folder),
            "template": template,
            "timeout": self.timeout,
            "test_fraction": self.test_fraction,
        }

    def resolve_path(self, file: Any, folder: Path | None) -> Path:
        return file_knob(self.name, file, folder)

    def problem_of(self, row: Row) -> Problem:
        prompt = self.template.replace("{problem}", row.problem)
        return Problem(row.id, self.name, prompt, row.answer, row.difficulty, dict(row.meta))

    def split_of(self, problem: Problem) -> str:
        return split_of_prompt(problem.meta.get("problem", problem.prompt), self.test_fraction)

    def sample(self, split: Split, n: int, seed: int, distinct: bool = True) -> list[Problem]:
        """The problems of `split` in file order: all when n covers them, else a seeded subset of n
        (still in file order). `distinct` drops repeated prompts."""
        if split not in SPLITS:
            raise ConfigError(f"invalid split {short_repr(split)}: must be 'train' or 'test'")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"invalid number of problems n={short_repr(n)}: must be an int >= 0")
        pool = [p for p in self.problems if self.split_of(p) == split]
        if distinct:
            pool = first_of_each_prompt(pool)
        if n >= len(pool):
            return pool
        return [pool[i] for i in sorted(random.Random(seed).sample(range(len(pool)), n))]

    def generate(self, rng: random.Random) -> Problem:
        return rng.choice(self.problems)

    def verify(self, problem: Problem, text: str) -> Verdict:
        """CORRECT / WRONG by math-verify; MALFORMED when no answer parses or the check times out.
        Verdict.answer is the extracted answer. Raises ReasonlabError only when the checker process
        cannot start at all (a broken installation, not a property of the text)."""
        try:
            check = self.checker.check(
                problem.answer, text if isinstance(text, str) else "", self.timeout
            )
        except CheckerUnavailable as e:
            raise ReasonlabError(str(e)) from None
        return Verdict(OUTCOMES.get(check.status, Outcome.MALFORMED), answer=check.answer)

    def reference_steps(self, problem: Problem) -> list[str]:
        solution = CALCULATOR.sub("", problem.meta.get("solution", ""))
        return [line.strip() for line in solution.splitlines() if line.strip()]

    def wrong_step(self, problem: Problem, index: int, rng: random.Random) -> str:
        raise ReasonlabError(
            f"task '{self.name}' cannot inject wrong steps (its verifier judges answers only)"
        )

    @staticmethod
    def answer_line(answer: str) -> str:
        return f"The final answer is $\\boxed{{{answer}}}$."


def first_of_each_prompt(problems: list[Problem]) -> list[Problem]:
    seen: set[str] = set()
    kept = []
    for problem in problems:
        if problem.prompt not in seen:
            seen.add(problem.prompt)
            kept.append(problem)
    return kept


class BenchmarkTask(MathTask):
    """A named benchmark: the file `file_name` in the data folder (knob data_dir, else
    $REASONLAB_DATA_DIR, else the files shipped with the package)."""

    file_name: ClassVar[str] = ""

    def __init__(
        self,
        *,
        data_dir: str | None = None,
        template: str = "boxed",
        timeout: float = 5.0,
        test_fraction: float = 1.0,
    ) -> None:
        super().__init__(
            file=self.file_name,
            data_dir=data_dir,
            template=template,
            timeout=timeout,
            test_fraction=test_fraction,
        )
        del self.knobs["file"]

    def resolve_path(self, file: Any, folder: Path | None) -> Path:
        return benchmark_file(self.name, self.file_name, folder)


@register_task("aime24")
class Aime24Task(BenchmarkTask):
    """AIME 2024 I and II: 30 problems, integer answers 0-999."""

    file_name = "aime24_test.jsonl"


@register_task("aime25")
class Aime25Task(BenchmarkTask):
    """AIME 2025 I and II: 30 problems, integer answers 0-999."""

    file_name = "aime25_test.jsonl"


@register_task("amc23")
class Amc23Task(BenchmarkTask):
    """AMC 2023: 40 problems, numeric answers."""

    file_name = "amc23_test.jsonl"


@register_task("math500")
class Math500Task(BenchmarkTask):
    """MATH-500, the PRM800K held-out split of MATH: 500 problems with level and subject."""

    file_name = "math500_test.jsonl"


@register_task("gsm8k")
class Gsm8kTask(BenchmarkTask):
    """GSM8K test: 1319 grade-school word problems, numeric answers after '#### '."""

    file_name = "gsm8k_test.jsonl"


__all__ = [
    "BOXED_INSTRUCTION",
    "DATA_DIR_ENV",  # re-exported from tasks/mathdata.py, with read_math_file
    "TEMPLATES",
    "Aime24Task",
    "Aime25Task",
    "Amc23Task",
    "BenchmarkTask",
    "Gsm8kTask",
    "Math500Task",
    "MathTask",
    "read_math_file",
]
