"""Cells of a user's table read as values, and values quoted in problem messages.

Token lists, tag lists and entity spans arrive as real lists (JSONL, Parquet), as JSON or Python
list literals in a CSV cell, or as words separated by spaces; tags and offsets may be numbers or
digit strings. Every input shape of the package reads them here, the same way, and lists what is
wrong in the same short form: the first few examples and how many more there are.
"""

from __future__ import annotations

import ast
import json
import math
from typing import Any

import numpy as np

from studio.data.text import is_missing

_SHOWN = 5  # examples listed per kind of problem


def is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    if isinstance(value, (float, np.floating)):
        return math.isfinite(value) and float(value).is_integer()
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()


def as_list(value: Any) -> list | None:
    """A list cell as a list: a real list, a JSON/Python list literal (CSV), or space-separated text."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    if is_missing(value):
        return []
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.startswith("["):
        for parse in (json.loads, ast.literal_eval):
            try:
                parsed = parse(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                continue
            if isinstance(parsed, (list, tuple)):
                return list(parsed)
        return None
    return text.split()


def listing(items: list[str], total: int | None = None) -> str:
    total = len(items) if total is None else total
    shown = "; ".join(items[:_SHOWN])
    return shown + (f"; … and {total - _SHOWN} more" if total > _SHOWN else "")


def short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
