"""What a browser has prepared in the Data tab (its file, task, columns, split), kept in its
``gr.State`` and read by the Train tab too: the state's shape and the run configuration it makes.
"""

from __future__ import annotations

from typing import Any

from studio.config import RunConfig, TaskConfig

TASK_OPTIONS = [f.name for f in TaskConfig.__dataclass_fields__.values() if f.name != "name"]


def empty_state() -> dict[str, Any]:
    return {"path": None, "name": None, "validation_path": None, "test_path": None, "task": None,
            "columns": {}, "options": {}, "split": {"validation": 0.1, "test": 0.1, "stratify": True, "seed": 42},
            "ok": False, "rows": None, "page": 0, "dataset": None}



def make_config(state: dict[str, Any], task: str | None = None, columns: dict[str, str] | None = None) -> RunConfig:
    options = {k: v for k, v in (state.get("options") or {}).items() if k in TASK_OPTIONS and v not in (None, "")}
    return RunConfig.from_dict({
        "task": {"name": task or state["task"], **options},
        "data": {
            "train": state.get("path"), "validation": state.get("validation_path"), "test": state.get("test_path"),
            "columns": dict(columns if columns is not None else state.get("columns") or {}),
            "split": {k: state["split"][k] for k in ("validation", "test", "stratify")},
            "seed": int(state["split"].get("seed", 42)),
        },
    })
