"""Guess which columns hold the text and the label, and explain a missing column.

Guesses only pre-fill the column mapping a user confirms in the UI (or fill roles the config
left out); they never override a mapping the user gave.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable, Mapping

import pandas as pd

from studio.data.text import is_missing

# Column names people give their text and label columns, best first.
TEXT_NAMES = (
    "text", "sentence", "review", "content", "document", "input", "body", "message", "comment",
    "question", "prompt", "passage", "tweet", "utterance", "description", "abstract", "title",
)
LABEL_NAMES = (
    "label", "labels", "category", "categories", "class", "target", "sentiment", "tag", "tags",
    "y", "intent", "topic", "emotion", "rating", "score",
)
_SAMPLE = 2000  # rows looked at per column: guessing must stay instant on big files
_MAX_CLASSES = 100


def guess_text_column(df: pd.DataFrame, exclude: Iterable[str] = ()) -> str | None:
    """The column most likely to hold the input text, or None if no column holds text.

    A column with a conventional name wins; otherwise the string column with the longest
    average value (text is longer than labels, ids and categories).
    """
    excluded = set(exclude)
    candidates = [c for c in df.columns if c not in excluded and _is_textual(df[c])]
    if not candidates:
        return None
    named = by_name(candidates, TEXT_NAMES)
    if named:
        return named
    return max(candidates, key=lambda c: (_mean_length(df[c]), -list(df.columns).index(c)))


def guess_label_column(df: pd.DataFrame, exclude: Iterable[str] = ()) -> str | None:
    """The column most likely to hold the label, or None.

    A conventional name wins; otherwise the column with the fewest distinct values relative to
    its rows (at least two, at most 100 and at most half the rows), so ids and free text are
    never picked.
    """
    excluded = set(exclude)
    candidates = [c for c in df.columns if c not in excluded]
    named = by_name(candidates, LABEL_NAMES)
    if named:
        return named
    best: tuple[float, int] | None = None
    choice = None
    for position, column in enumerate(candidates):
        present = _present(df[column])
        if len(present) < 2:
            continue
        if all(isinstance(v, (list, tuple)) for v in present):
            # Multi-label lists: the classes are the elements, not the combinations.
            distinct = len({_hashable(item) for v in present for item in v})
        else:
            distinct = len({_hashable(v) for v in present})
        if distinct < 2 or distinct > min(_MAX_CLASSES, max(2, len(present) // 2)):
            continue
        rank = (distinct / len(present), position)
        if best is None or rank < best:
            best, choice = rank, column
    return choice


def missing_columns_message(file_name: str, wanted: list[str] | Mapping[str, str], df: pd.DataFrame) -> str:
    """Explain which wanted columns the file lacks, or return '' when none is missing.

    ``wanted`` is a list of column names that double as role names (the defaults), or a mapping
    of role -> column name (what the user configured), so the message can name the setting.
    """
    pairs = list(wanted.items()) if isinstance(wanted, Mapping) else [(c, c) for c in wanted]
    found = [str(c) for c in df.columns]
    missing = [(role, column) for role, column in pairs if column not in found]
    if not missing:
        return ""
    names = ", ".join(f"'{column}'" for _, column in missing)
    shown = ", ".join(found[:30]) + (f", ... ({len(found) - 30} more)" if len(found) > 30 else "")
    fixes = []
    for role, column in missing:
        close = difflib.get_close_matches(column, found, n=1, cutoff=0.6) or [f for f in found if f.lower() == column.lower()]
        guess = f" (did you mean '{close[0]}'?)" if close else ""
        fixes.append(f"map the {role} role to one of them (data.columns.{role}){guess}")
    noun = "column" if len(missing) == 1 else "columns"
    return f"file {file_name} has no {noun} {names}; columns found: {shown or '(none)'}; " + "; ".join(fixes)


# ---- helpers -----------------------------------------------------------------------------------
def by_name(candidates: list[Any], preferred: tuple[str, ...]) -> str | None:
    lowered = {str(c).strip().lower().replace(" ", "_"): c for c in candidates}
    for name in preferred:
        if name in lowered:
            return lowered[name]
    for name in preferred:  # 'review_text', 'sentiment_label'
        for key, column in lowered.items():
            if len(name) > 2 and (key.startswith(name + "_") or key.endswith("_" + name)):
                return column
    return None


def _present(series: pd.Series) -> list[Any]:
    """A sample of the column's non-missing values (empty strings count as missing)."""
    out = []
    for value in series.head(_SAMPLE).tolist():
        if is_missing(value):
            continue
        out.append(value)
    return out


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    return value


def _is_textual(series: pd.Series) -> bool:
    """Mostly strings that are not numbers written as text ('001', '3.5')."""
    values = _present(series)
    if not values:
        return False
    strings = [v for v in values if isinstance(v, str)]
    if len(strings) < 0.9 * len(values):
        return False
    numeric = sum(1 for v in strings if _is_number(v))
    return numeric < 0.9 * len(strings)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _mean_length(series: pd.Series) -> float:
    values = [v for v in _present(series) if isinstance(v, str)]
    return sum(len(v) for v in values) / len(values) if values else 0.0
