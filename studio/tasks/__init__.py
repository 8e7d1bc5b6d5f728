"""Task plug-ins. Importing this package registers every task with the registry in ``base``."""

from studio.tasks import classification  # noqa: F401
from studio.tasks import generation  # noqa: F401
from studio.tasks import preference  # noqa: F401
from studio.tasks import tokens  # noqa: F401
from studio.tasks.base import NoOptions, Problem, Task, TaskMeta, get_task, list_tasks, register
from studio.tasks.defaults import with_defaults

__all__ = ["NoOptions", "Problem", "Task", "TaskMeta", "get_task", "list_tasks", "register", "with_defaults"]
