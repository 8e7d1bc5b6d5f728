"""From a run's data config to validated train/validation/test splits for one task.

Reading and splitting are task-agnostic (``readers``, ``split``); what the columns mean and
what makes the data unusable is the task's business (``Task.normalize/fit/validate``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from studio.errors import ConfigError, DataError

if TYPE_CHECKING:
    from studio.config import RunConfig
    from studio.tasks.base import Problem, Task, TaskMeta

SPLITS = ("train", "validation", "test")


@dataclass
class PreparedData:
    splits: dict[str, pd.DataFrame]
    meta: "TaskMeta"
    problems: list["Problem"] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_sources(config: "RunConfig", task: "Task", datasets_root: Path | None = None,
                 limits: dict[str, int | None] | None = None) -> tuple[dict[str, pd.DataFrame], dict[str, str], list[str]]:
    """The raw tables named by the config: {split: DataFrame}, {split: source name}, notes.
    ``limits``: what one file may hold (``readers.read_limits``; the defaults without them)."""
    data = config.data
    if data.dataset:
        if datasets_root is None:
            raise ConfigError("data.dataset names a saved dataset, but no workspace was given to load it from")
        from studio.data.datasets_store import load_dataset

        tables, _meta = load_dataset(datasets_root, data.dataset)
        return tables, {split: f"dataset {data.dataset} ({split})" for split in tables}, []
    if not data.train:
        raise ConfigError("data.train is not set: give a training file (or data.dataset for a saved dataset)")
    raw: dict[str, pd.DataFrame] = {}
    sources: dict[str, str] = {}
    notes: list[str] = []
    for split in SPLITS:
        path = getattr(data, split)
        if not path:
            continue
        table = task.read_file(path, **(limits or {}), encoding=data.encoding)
        raw[split] = table.df
        sources[split] = Path(path).name
        notes.extend(table.notes)
    return raw, sources, notes


def load_task_data(config: "RunConfig", task: "Task", datasets_root: Path | None = None, *,
                   limits: dict[str, int | None] | None = None) -> PreparedData:
    """Read, normalize, split and validate; raise ``DataError`` listing every blocking problem.
    ``limits``: the rows and decoded size one file may take (see ``readers.read_limits``)."""
    from studio.data.split import split_frame

    raw, sources, notes = read_sources(config, task, datasets_root, limits)
    problems: list[Problem] = []
    splits: dict[str, pd.DataFrame] = {}
    for split, df in raw.items():
        normalized, found = task.normalize(df, config, sources[split])
        splits[split] = normalized
        problems.extend(found)

    missing = {s: getattr(config.data.split, s) for s in ("validation", "test") if s not in splits}
    if any(share > 0 for share in missing.values()):
        train = splits["train"]
        parts, split_notes = split_frame(
            train,
            validation=missing.get("validation", 0.0),
            test=missing.get("test", 0.0),
            seed=config.data.seed,
            stratify=task.stratify_key(train) if config.data.split.stratify else None,
        )
        for name, part in parts.items():
            part.attrs.update(train.attrs)
            splits[name] = part
        notes.extend(split_notes)

    meta = task.fit(splits, config)
    problems.extend(task.validate(splits, meta, config))
    errors = [p for p in problems if p.level == "error"]
    if errors:
        raise DataError("the data cannot be used as it is:\n" + "\n".join(f"  - {p.message}" for p in errors))
    return PreparedData({s: splits[s] for s in SPLITS if s in splits}, meta, problems, notes)


def write_splits(splits: dict[str, pd.DataFrame], folder: Path) -> None:
    """Keep the exact splits a run trained on (JSON lines keep lists and text as they are)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in splits.items():
        df.to_json(folder / f"{name}.jsonl", orient="records", lines=True, force_ascii=False)


def read_splits(folder: Path) -> dict[str, pd.DataFrame]:
    splits = {}
    for name in SPLITS:
        path = folder / f"{name}.jsonl"
        if path.exists():
            # dtype=False: labels such as "001" or "1.0" must come back as written.
            splits[name] = pd.read_json(path, orient="records", lines=True, dtype=False)
    return splits
