"""Built-in rule-based tasks: each owns a problem generator and an exact verifier.

Importing this package registers `arith` and `countdown`.

Usage:
    from reasonlab.tasks import get_task, list_tasks
    task = get_task("countdown", n_numbers=4)
"""

from reasonlab.tasks.base import Task, get_task, list_tasks, register_task
from reasonlab.tasks.arithmetic import ArithmeticTask
from reasonlab.tasks.countdown import CountdownTask

__all__ = ["ArithmeticTask", "CountdownTask", "Task", "get_task", "list_tasks", "register_task"]
