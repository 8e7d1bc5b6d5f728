"""JSON lines and JSON documents (an array of records, an object holding one, or columns as
lists), read into a frame that keeps JSON's own types and nested values."""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd

from studio.data.readers.frames import clean_columns, note_blank_names, short_list
from studio.data.readers.limits import DICT_BYTES, OBJECT_BYTES, ReadBudget
from studio.errors import DataError

_JSONL_HINT = 'each line of a JSONL file must be one complete JSON object, like {"text": "...", "label": "..."}'


def read_jsonl(text: str, name: str, notes: list[str], budget: ReadBudget | None = None) -> pd.DataFrame:
    budget = budget or ReadBudget(name, len(text))
    records = []
    decoded = 0
    for number, line in enumerate(io.StringIO(text, newline=""), start=1):
        stripped = line.strip(" \t\r\n")
        if not stripped:
            continue
        try:
            obj = json.loads(stripped)
        except RecursionError:
            raise DataError(f"file {name}, line {number}: the JSON is nested too deeply to read", hint=_JSONL_HINT) from None
        except json.JSONDecodeError as err:
            column = err.colno + len(line) - len(line.lstrip(" \t"))
            raise DataError(f"file {name}, line {number}: not valid JSON ({err.msg} at column {column})", hint=_JSONL_HINT) from None
        if not isinstance(obj, dict):
            raise DataError(f"file {name}, line {number}: expected a JSON object ({{...}}), found {_json_kind(obj)}", hint=_JSONL_HINT)
        records.append(obj)
        # Each line's keys are new strings (one json.loads a line), its values one object each.
        decoded += len(line) + DICT_BYTES + 2 * OBJECT_BYTES * len(obj)
        budget.count(len(records), decoded)
    if not records:
        raise DataError(f"file {name} has no records", hint=_JSONL_HINT)
    return _frame_from_records(records, name, notes)


def read_json(text: str, name: str, notes: list[str], budget: ReadBudget | None = None) -> pd.DataFrame:
    budget = budget or ReadBudget(name, len(text))
    objects = [0, len(text)]  # JSON objects decoded so far, bytes they take

    def counted(obj: dict) -> dict:
        # Called by the parser for every object it builds, so an array of millions of small
        # records is stopped at the decoded-size limit, not after it is all in memory. (Rows are
        # counted once the records are known: nested objects are not rows.)
        objects[0] += 1
        objects[1] += DICT_BYTES + OBJECT_BYTES * len(obj)
        if not objects[0] & 1023:
            budget.count(0, objects[1])
        return obj

    try:
        data = json.loads(text, object_hook=counted)
    except RecursionError:
        raise DataError(f"file {name}: the JSON is nested too deeply to read", hint="a JSON file must be one array of objects") from None
    except json.JSONDecodeError as err:
        if err.msg == "Extra data" and _first_line_is_object(text):
            # One object per line saved as .json: that is JSONL, read it as such.
            notes.append(f"{name} holds one JSON object per line (JSONL), not one JSON document; read it as JSONL")
            return read_jsonl(text, name, notes, budget)
        raise DataError(
            f"file {name}, line {err.lineno}: not valid JSON ({err.msg} at column {err.colno})",
            hint="fix the file or export it again; a JSON file must be one array of objects",
        ) from None

    records = data
    if isinstance(data, dict):
        lists = {k: v for k, v in data.items() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)}
        if len(lists) == 1:
            key, records = next(iter(lists.items()))
            notes.append(f"{name}: read the records under the key '{key}'")
        elif data and all(isinstance(v, list) for v in data.values()) and len({len(v) for v in data.values()}) == 1:
            # Column-oriented JSON ({"text": [...], "label": [...]}), as pandas' to_json writes it.
            notes.append(f"{name}: read as columns (one list per column)")
            length = len(next(iter(data.values())))
            budget.count(length, objects[1] + length * len(data) * OBJECT_BYTES)
            records = [{k: v[i] for k, v in data.items()} for i in range(length)]
        else:
            keys = short_list([str(k) for k in data])
            raise DataError(
                f"file {name} holds a JSON object with keys {keys}, not an array of records",
                hint='a JSON file must be an array of objects, [{"text": "...", "label": "..."}, ...], or an object holding one such array',
            )
    if not isinstance(records, list):
        raise DataError(
            f"file {name} holds {_json_kind(records)}, not an array of records",
            hint='a JSON file must be an array of objects, [{"text": "...", "label": "..."}, ...]',
        )
    if not records:
        raise DataError(f"file {name} holds an empty array: there are no rows", hint="add records to the array")
    budget.count(len(records), objects[1])
    for index, item in enumerate(records):
        if not isinstance(item, dict):
            raise DataError(
                f"file {name}: item {index + 1} of the JSON array is {_json_kind(item)}, not an object",
                hint='every item must be an object like {"text": "...", "label": "..."}',
            )
    return _frame_from_records(records, name, notes)


def _first_line_is_object(text: str) -> bool:
    first = text.lstrip().split("\n", 1)[0].strip()
    try:
        return isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        return False


def _frame_from_records(records: list[dict[str, Any]], name: str, notes: list[str]) -> pd.DataFrame:
    keys: dict[str, None] = {}
    for record in records:
        for key in record:
            keys.setdefault(key, None)
    columns = clean_columns(list(keys), name)
    note_blank_names([c for k, c in zip(keys, columns) if not str(k).strip()], name, notes)
    data = {}
    missing = object()
    for key, column in zip(keys, columns):
        values = [record.get(key, missing) for record in records]
        if any(v is missing or v is None for v in values):
            # Keep Python objects: letting pandas infer would turn [1, missing] into [1.0, NaN].
            data[column] = pd.Series([None if v is missing else v for v in values], dtype=object)
        else:
            # pd.Series keeps lists/dicts as objects and gives ints, floats and strings their dtype.
            data[column] = pd.Series(values)
    return pd.DataFrame(data)


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    return "a number"
