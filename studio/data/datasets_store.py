"""Named datasets saved in the workspace: ``<root>/<name>/<split>.parquet`` plus ``meta.json``.

A saved dataset is prepared once (read, normalised, split) and reused by later runs by name,
so the splits stay identical across runs. A save is atomic: everything is written to a hidden
temporary folder that is renamed into place, so a crash never leaves half a dataset behind.

Each dataset records who saved it (``owner``, the signed-in user; None for datasets saved before
accounts existed or by a studio without them) and when; replacing a dataset keeps its owner, so an
admin fixing a member's dataset leaves it the member's. Who may replace or delete whose dataset is
the web app's rule (``Services.check_may_change_dataset``); the store only records and reports.

Parquet needs one type per column, but JSON data holds nested values (multi-label lists, entity
spans as lists of dicts) and sometimes mixed types; such columns are stored as JSON strings and
listed in ``meta.json`` so they load back as the same Python objects.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from studio.data.text import is_missing
from studio.errors import DataError

META_FILE = "meta.json"
_STORE_KEY = "_store"
"""Key in meta.json for the store's own bookkeeping (splits, JSON-encoded columns)."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_NAME_RULE = "use 1-100 letters, digits, '-', '_' or '.', starting with a letter or digit"


@dataclass(frozen=True)
class DatasetInfo:
    """What the Data tab lists about a saved dataset, read from its meta.json alone."""

    name: str
    task: str | None
    rows: dict[str, int]
    owner: str | None
    saved: float | None


def save_dataset(root: str | Path, name: str, splits: dict[str, pd.DataFrame], meta: dict[str, Any], *, overwrite: bool = False,
                 owner: str | None = None) -> Path:
    """Write the splits and ``meta`` (JSON-able) as dataset ``name``, saved by ``owner``; returns
    its folder. Replacing a dataset (``overwrite``) keeps the owner it had, if it had one."""
    root = Path(root)
    _check_name(name, "dataset")
    if not splits:
        raise DataError(f"dataset '{name}' has no splits to save")
    for split in splits:
        _check_name(split, "split")
    if _STORE_KEY in meta:
        raise DataError(f"dataset '{name}': the meta key '{_STORE_KEY}' is reserved")
    target = root / name
    if target.exists() and not overwrite:
        raise DataError(f"a dataset named '{name}' already exists in {root}", hint="choose another name, or delete the old dataset first")
    if target.exists():
        previous = _read_info(root, name)
        owner = previous.owner if previous is not None and previous.owner else owner

    try:
        root.mkdir(parents=True, exist_ok=True)
        temp = root / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
        temp.mkdir()
    except OSError as err:
        raise DataError(f"dataset '{name}' cannot be saved in {root} ({err.strerror or err})", hint="check that the folder is writable") from None
    try:
        store: dict[str, Any] = {"version": 1, "splits": {}, "owner": owner, "saved": time.time()}
        for split, df in splits.items():
            json_columns = _write_parquet(df, temp / f"{split}.parquet")
            store["splits"][split] = {"rows": int(len(df)), "json_columns": json_columns}
        try:
            text = json.dumps({**meta, _STORE_KEY: store}, indent=2, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise DataError(f"dataset '{name}': its description cannot be saved as JSON ({err})") from None
        (temp / META_FILE).write_text(text + "\n", encoding="utf-8")
        _move_into_place(temp, target, name, root, overwrite)
    except OSError as err:
        shutil.rmtree(temp, ignore_errors=True)
        raise DataError(f"dataset '{name}' cannot be saved in {root} ({err.strerror or err})", hint="check the free disk space and that the folder is writable") from None
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return target


def load_dataset(root: str | Path, name: str) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The splits (in their saved order) and the meta given to ``save_dataset``."""
    root = Path(root)
    _check_name(name, "dataset")
    folder = root / name
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        saved = list_datasets(root)
        listing = f"saved datasets: {', '.join(saved)}" if saved else "no datasets are saved there yet"
        raise DataError(f"no dataset named '{name}' in {root}; {listing}", hint="check the name (data.dataset)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        store = meta.pop(_STORE_KEY)
        entries = store["splits"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise DataError(f"dataset '{name}' is damaged: {META_FILE} cannot be read ({err})", hint="save the dataset again") from None

    import pyarrow as pa  # heavy: only when a dataset is loaded
    import pyarrow.parquet as pq

    splits = {}
    for split, entry in entries.items():
        path = folder / f"{split}.parquet"
        try:
            # integer_object_nulls: an int label column with gaps must not come back as floats.
            df = pq.read_table(path).to_pandas(integer_object_nulls=True)
        except (OSError, pa.ArrowException) as err:
            raise DataError(f"dataset '{name}' is damaged: {path.name} cannot be read ({err})", hint="save the dataset again") from None
        for column in entry.get("json_columns", []):
            df[column] = pd.Series([None if is_missing(v, blank=False) else json.loads(v) for v in df[column].tolist()], dtype=object)
        splits[split] = df
    return splits, meta


def dataset_info(root: str | Path, name: str) -> DatasetInfo:
    """Owner, task, rows per split and save time of a saved dataset."""
    _check_name(name, "dataset")
    info = _read_info(Path(root), name)
    if info is None:
        raise DataError(f"no dataset named '{name}' in {root}", hint="check the name; the Data tab lists the saved datasets")
    return info


def list_dataset_infos(root: str | Path) -> list[DatasetInfo]:
    """Every saved dataset's info, by name (a damaged one is listed with what could be read)."""
    return [info for name in list_datasets(root) if (info := _read_info(Path(root), name)) is not None]


def delete_dataset(root: str | Path, name: str) -> None:
    """Remove a saved dataset. It is first renamed aside, so a reader never sees half of it."""
    root = Path(root)
    _check_name(name, "dataset")
    target = root / name
    if not (target / META_FILE).is_file():
        raise DataError(f"no dataset named '{name}' in {root}", hint="it may have been deleted already")
    aside = root / f".deleted-{name}-{uuid.uuid4().hex[:8]}"
    try:
        os.replace(target, aside)
    except OSError as err:
        raise DataError(f"dataset '{name}' cannot be deleted ({err.strerror or err})", hint="check that the folder is writable") from None
    shutil.rmtree(aside, ignore_errors=True)


def list_datasets(root: str | Path) -> list[str]:
    """Names of the datasets saved under ``root``, sorted; temporary folders are skipped."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _NAME.match(p.name) and (p / META_FILE).is_file())


# ---- helpers -----------------------------------------------------------------------------------
def _read_info(root: Path, name: str) -> DatasetInfo | None:
    try:
        meta = json.loads((root / name / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    store = meta.get(_STORE_KEY) if isinstance(meta.get(_STORE_KEY), dict) else {}
    splits = store.get("splits") if isinstance(store.get("splits"), dict) else {}
    rows = {split: int(entry.get("rows", 0)) for split, entry in splits.items() if isinstance(entry, dict)}
    owner = store.get("owner") if isinstance(store.get("owner"), str) else None
    saved = store.get("saved") if isinstance(store.get("saved"), (int, float)) else None
    task = meta.get("task") if isinstance(meta.get("task"), str) else None
    return DatasetInfo(name=name, task=task, rows=rows, owner=owner, saved=saved)


def _check_name(name: Any, what: str) -> None:
    # Names become folder and file names: no separators, no '..', nothing hidden.
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise DataError(f"bad {what} name {name!r}", hint=_NAME_RULE)


def _write_parquet(df: pd.DataFrame, path: Path) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = df.reset_index(drop=True)
    json_columns = []
    for column in data.columns:
        # Blank strings are data here (saved as they are), hence blank=False below and in _needs_json.
        if data[column].dtype == object and _needs_json(data[column]):
            data[column] = pd.Series([None if is_missing(v, blank=False) else _to_json(v) for v in data[column].tolist()], dtype=object)
            json_columns.append(str(column))
    try:
        table = pa.Table.from_pandas(data, preserve_index=False)
        pq.write_table(table, path)
    except (pa.ArrowException, ValueError, TypeError) as err:
        raise DataError(f"split '{path.stem}' cannot be saved as Parquet ({err})") from None
    return json_columns


def _needs_json(series: pd.Series) -> bool:
    """Nested values, or more than one Python type in the column (Parquet wants one)."""
    types = set()
    for value in series.tolist():
        if is_missing(value, blank=False):
            continue
        if isinstance(value, (list, tuple, dict, set)) or hasattr(value, "tolist"):
            return True
        types.add(type(value))
    return len(types) > 1


def _to_json(value: Any) -> str:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        value = value.tolist()
    if isinstance(value, set):
        value = sorted(value, key=str)
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, set):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} values cannot be saved")


def _move_into_place(temp: Path, target: Path, name: str, root: Path, overwrite: bool) -> None:
    old = None
    if target.exists() and overwrite:
        old = root / f".old-{name}-{uuid.uuid4().hex[:8]}"
        os.replace(target, old)
    try:
        os.rename(temp, target)
    except OSError:
        if old is not None:
            os.replace(old, target)  # put the previous version back
        if target.exists():
            raise DataError(f"a dataset named '{name}' already exists in {root}", hint="choose another name") from None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
