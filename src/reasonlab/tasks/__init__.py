"""Built-in rule-based tasks: each owns a problem generator and an exact verifier.

Importing this package registers `arith`, `countdown`, `chess`, `math` with the named benchmarks
(`aime24`, `aime25`, `amc23`, `math500`, `gsm8k`) and the `gym:<dataset>` family (reasoning-gym);
their libraries are imported when such a task is built.

Usage:
    from reasonlab.tasks import get_task, list_tasks
    task = get_task("countdown", n_numbers=4)
"""

from reasonlab.tasks import gym as _gym  # noqa: F401  (registers the gym:<dataset> family)
from reasonlab.tasks.arithmetic import ArithmeticTask
from reasonlab.tasks.base import Task, get_task, list_tasks, register_task
from reasonlab.tasks.chess import ChessTask
from reasonlab.tasks.countdown import CountdownTask
from reasonlab.tasks.math import MathTask

__all__ = [
    "ArithmeticTask",
    "ChessTask",
    "CountdownTask",
    "MathTask",
    "Task",
    "get_task",
    "list_tasks",
    "register_task",
]
