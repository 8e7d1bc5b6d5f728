"""What a reader returns (``Table``), and the checks every reader applies to its columns:
header names cleaned, blank ones named, duplicates refused, a frame without columns or rows refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from studio.data.readers.files import SUPPORTED
from studio.errors import DataError


@dataclass
class Table:
    """A file read into a DataFrame, with what was detected and what the user should know."""

    df: pd.DataFrame
    path: Path
    format: str
    """One of 'csv', 'tsv', 'jsonl', 'json', 'parquet' ('csv' covers ';' and '|' separated text)."""
    encoding: str | None = None
    """Python codec the text was decoded with; None for Parquet."""
    delimiter: str | None = None
    """Field separator of delimited text; None for JSON and Parquet."""
    notes: list[str] = field(default_factory=list)
    """Human-readable warnings (odd encoding, padded rows...) to show beside the preview."""


def clean_columns(names: list[Any], name: str) -> list[str]:
    """Strip header names (users map columns by name), name blank ones, refuse duplicates."""
    columns = [str(raw).strip() or f"column_{position}" for position, raw in enumerate(names, start=1)]
    seen: dict[str, list[int]] = {}
    for position, column in enumerate(columns, start=1):
        seen.setdefault(column, []).append(position)
    duplicates = {c: p for c, p in seen.items() if len(p) > 1}
    if duplicates:
        listed = "; ".join(f"'{c}' (columns {', '.join(map(str, p))})" for c, p in duplicates.items())
        raise DataError(f"file {name} has duplicate column names: {listed}", hint="rename the columns so each name appears once")
    return columns


def note_blank_names(renamed: list[str], name: str, notes: list[str]) -> None:
    if renamed:
        notes.append(f"{name}: named {len(renamed)} column(s) that had a blank header: {short_list(renamed)}")


def check_frame(df: pd.DataFrame, name: str) -> None:
    if df.shape[1] == 0:
        raise DataError(f"file {name} has no columns", hint=f"upload {SUPPORTED} with a header row")
    if df.shape[0] == 0:
        raise DataError(f"file {name} has columns ({short_list(list(df.columns))}) but no rows", hint="add data rows")


def short_list(items: list[str], limit: int = 20) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
