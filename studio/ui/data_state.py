"""What a browser has prepared in the Data tab (its file, task, columns, split), kept in its
``gr.State`` and read by the Train tab too: the state's shape and the run configuration it makes.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from studio.config import RunConfig
from studio.tasks import get_task, list_tasks


def task_option_fields() -> list[tuple[type, str]]:
    """(options class, field) of every registered task's options, each name once: the Data tab's
    form holds them side by side and sends a run only the chosen task's own."""
    seen: dict[str, tuple[type, str]] = {}
    for task in list_tasks():
        for spec in dataclasses.fields(task.options):
            seen.setdefault(spec.name, (task.options, spec.name))
    return list(seen.values())


TASK_OPTIONS = [name for _, name in task_option_fields()]


ENCODINGS = ("auto", "utf-8", "gb18030", "big5", "shift_jis", "cp1251", "cp1252", "latin-1", "utf-16")
"""The encodings the Data tab offers (``data.encoding`` takes any Python codec name)."""


def _default_split() -> dict[str, Any]:
    return {"validation": 0.1, "test": 0.1, "stratify": True, "seed": 42}


@dataclass
class DataState:
    """One browser's data. Handlers change a copy and return it (``changed``), so Gradio sees a
    new value and the Train tab follows; ``gr.State`` deep-copies the first one for each page."""

    path: str | None = None
    """The training file as stored for this user (an upload, or a sample)."""
    name: str | None = None
    """The file's name as the user knows it."""
    validation_path: str | None = None
    test_path: str | None = None
    task: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    """Task role -> column of the file."""
    options: dict[str, Any] = field(default_factory=dict)
    """The task's options (``TASK_OPTIONS``) as the form holds them."""
    split: dict[str, Any] = field(default_factory=_default_split)
    ok: bool = False
    """The data passed every check of its task."""
    rows: int | None = None
    """Training rows after the split (None until checked)."""
    page: int = 0
    """The preview's page."""
    dataset: str | None = None
    """The saved dataset this data became, if it was saved."""
    limits: dict[str, int | None] | None = None
    """The workspace's limits on one file, as they were when it was read."""
    encoding: str = "auto"
    """The files' text encoding as the user chose it (``data.encoding``): auto detects it."""

    def changed(self, **values: Any) -> "DataState":
        """A copy with ``values`` set (the state a handler returns)."""
        return dataclasses.replace(copy.deepcopy(self), **values)  # an unknown field is a TypeError


def empty_state() -> DataState:
    return DataState()


def make_config(state: DataState, task: str | None = None, columns: dict[str, str] | None = None) -> RunConfig:
    task = task or state.task
    own = {spec.name for spec in dataclasses.fields(get_task(task).options)} if task else set()
    options = {k: v for k, v in (state.options or {}).items() if k in own and v not in (None, "")}
    return RunConfig.from_dict({
        "task": {"name": task, **options},
        "data": {
            "train": state.path, "validation": state.validation_path, "test": state.test_path,
            "columns": dict(columns if columns is not None else state.columns or {}),
            "split": {k: state.split[k] for k in ("validation", "test", "stratify")},
            "seed": int(state.split.get("seed", 42)),
            "encoding": state.encoding or "auto",
        },
    })
