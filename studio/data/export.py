"""Safe exports: spreadsheet programs run cells that start like formulas, so prefix them."""

from __future__ import annotations

import pandas as pd

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value):
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def escape_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells cannot be read as formulas by Excel or LibreOffice."""
    return df.apply(lambda column: column.map(escape_cell) if not pd.api.types.is_numeric_dtype(column) else column)
