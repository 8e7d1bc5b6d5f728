"""Task plug-ins. Importing this package registers every task with the registry in ``base``."""

from studio.tasks import classification  # noqa: F401
from studio.tasks import generation  # noqa: F401
from studio.tasks import tokens  # noqa: F401
from studio.tasks.base import Problem, Task, TaskMeta, get_task, list_tasks, register

__all__ = ["Problem", "Task", "TaskMeta", "get_task", "list_tasks", "register"]
