"""Describe prepared data before training: rows, label balance, token lengths, truncation.

The profile is plain JSON (saved with the run and shown in the UI); ``format_profile`` renders
the same facts for the terminal. ``choose_max_length`` picks the sequence length when the user
left it unset: long enough for 99% of examples, so a few very long ones don't make every batch
slow.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from studio.data.text import is_missing

MAX_LABELS = 200
"""Distinct labels kept per split; the rest are summed under 'other' (free-text labels)."""
NUMERIC_DISTINCT = 50
"""A numeric label column with more distinct values than this is a regression target: summarise it."""
TRUNCATION_WARNING = 0.05


def profile(
    splits: Mapping[str, pd.DataFrame],
    label_column: str | None = None,
    lengths: Mapping[str, list[int]] | None = None,
    max_length: int | None = None,
) -> dict[str, Any]:
    """JSON-able facts about the splits; ``lengths`` are untruncated token counts per split."""
    result: dict[str, Any] = {
        "rows": {name: int(len(df)) for name, df in splits.items()},
        "total_rows": int(sum(len(df) for df in splits.values())),
    }
    warnings: list[str] = []
    if label_column is not None:
        result["labels"] = _labels(splits, label_column, warnings)
    if lengths:
        result["lengths"] = {name: _length_stats(values) for name, values in lengths.items() if len(values)}
        if max_length is not None:
            result["max_length"] = int(max_length)
            truncated = {}
            for name, values in lengths.items():
                if not len(values):
                    continue
                count = int(np.count_nonzero(np.asarray(values) > max_length))
                truncated[name] = {"count": count, "share": round(count / len(values), 4)}
                if count / len(values) > TRUNCATION_WARNING:
                    warnings.append(
                        f"{count / len(values):.1%} of {name} examples are longer than max_length {max_length} tokens "
                        "and would be truncated; raise training.max_length if their ends matter"
                    )
            result["truncated"] = truncated
    result["warnings"] = warnings
    return result


AUTO_MAX_LENGTH_CAP = 512
"""Longest max_length chosen automatically; longer needs an explicit training.max_length."""


def model_limit(model_max_length: int | None) -> int:
    """The tokenizer's declared limit, or the automatic cap when it declares none (or a huge
    placeholder such as 1e30)."""
    model_max = model_max_length or AUTO_MAX_LENGTH_CAP
    return model_max if model_max < 1e6 else AUTO_MAX_LENGTH_CAP


def auto_max_length(lengths: list[int] | None, model_max_length: int | None) -> int:
    """The max_length a run gets when none is set: the 99th percentile of the training rows'
    tokens (``choose_max_length``), within the model's limit and the automatic cap."""
    cap = min(AUTO_MAX_LENGTH_CAP, model_limit(model_max_length))
    return choose_max_length(lengths, cap) if lengths else cap


def choose_max_length(lengths: Iterable[int], cap: int, multiple: int = 8) -> int:
    """The 99th percentile of ``lengths`` rounded up to a multiple of ``multiple`` (tensor cores
    like multiples of 8), at least 16 and at most ``cap`` (the model's limit). No lengths: cap."""
    values = np.asarray(list(lengths), dtype=float)
    if values.size == 0:
        return int(cap)
    multiple = max(1, int(multiple))
    p99 = float(np.percentile(values, 99))
    chosen = max(16, int(math.ceil(p99 / multiple)) * multiple)
    return int(min(cap, chosen))


def format_profile(profile: Mapping[str, Any]) -> str:
    """A short multi-line summary of ``profile(...)`` for the terminal (ASCII only)."""
    lines = []
    rows = profile.get("rows", {})
    if rows:
        parts = ", ".join(f"{name} {count:,}" for name, count in rows.items())
        lines.append(f"rows: {parts} (total {profile.get('total_rows', sum(rows.values())):,})")
    labels = profile.get("labels")
    if labels:
        column = labels.get("column")
        if labels.get("kind") == "numeric":
            for name, stats in labels.get("stats", {}).items():
                lines.append(
                    f"{column} ({name}): min {_num(stats['min'])}, mean {_num(stats['mean'])}, max {_num(stats['max'])}"
                )
        else:
            kind = " (several per row)" if labels.get("kind") == "multi" else ""
            for name, counts in labels.get("counts", {}).items():
                total = sum(counts.values()) + labels.get("other", {}).get(name, 0)
                shown = ", ".join(f"{label} {count:,} ({count / total:.0%})" for label, count in list(counts.items())[:8]) if total else "none"
                hidden = len(counts) - 8 + (1 if labels.get("other", {}).get(name) else 0)
                more = f", ... {hidden} more" if hidden > 0 else ""
                lines.append(f"{column}{kind} ({name}): {shown}{more}")
        for name, count in labels.get("missing", {}).items():
            lines.append(f"{column} ({name}): {count:,} row(s) without a value")
    for name, stats in profile.get("lengths", {}).items():
        lines.append(
            f"tokens ({name}): min {stats['min']}, mean {_num(stats['mean'])}, p50 {_num(stats['p50'])}, "
            f"p95 {_num(stats['p95'])}, p99 {_num(stats['p99'])}, max {stats['max']}"
        )
    if "max_length" in profile:
        truncated = profile.get("truncated", {})
        parts = ", ".join(f"{name} {t['share']:.1%}" for name, t in truncated.items())
        lines.append(f"max_length {profile['max_length']}: longer examples would be truncated ({parts or 'none measured'})")
    for warning in profile.get("warnings", []):
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


# ---- helpers -----------------------------------------------------------------------------------
def _labels(splits: Mapping[str, pd.DataFrame], column: str, warnings: list[str]) -> dict[str, Any]:
    counters: dict[str, Counter] = {}
    missing: dict[str, int] = {}
    numbers: dict[str, list[float]] = {}
    multi = False
    numeric = True
    for name, df in splits.items():
        if column not in df.columns:
            continue
        counter: Counter = Counter()
        values: list[float] = []
        for value in df[column].tolist():
            if _is_list(value):
                multi = True
                numeric = False
                counter.update(_key(item) for item in value if not is_missing(item))
                continue
            if is_missing(value):
                missing[name] = missing.get(name, 0) + 1
                continue
            counter[_key(value)] += 1
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values.append(float(value))
            else:
                numeric = False
        counters[name] = counter
        numbers[name] = values
    result: dict[str, Any] = {"column": column}
    distinct = set().union(*counters.values()) if counters else set()
    if numeric and len(distinct) > NUMERIC_DISTINCT:
        result["kind"] = "numeric"
        result["stats"] = {
            name: {"min": min(v), "mean": round(sum(v) / len(v), 4), "max": max(v), "count": len(v)}
            for name, v in numbers.items()
            if v
        }
    else:
        result["kind"] = "multi" if multi else "single"
        result["counts"] = {}
        other = {}
        for name, counter in counters.items():
            ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
            result["counts"][name] = dict(ranked[:MAX_LABELS])
            if len(ranked) > MAX_LABELS:
                other[name] = sum(count for _, count in ranked[MAX_LABELS:])
        if other:
            result["other"] = other
        train = counters.get("train")
        if train is not None:
            for name, counter in counters.items():
                unseen = sorted(set(counter) - set(train))
                if name != "train" and unseen:
                    shown = ", ".join(f"'{label}'" for label in unseen[:5]) + (", ..." if len(unseen) > 5 else "")
                    warnings.append(f"{name} has label(s) never seen in train: {shown}")
    if missing:
        result["missing"] = missing
    return result


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple, set, np.ndarray))


def _key(value: Any) -> str:
    # JSON object keys must be strings; 1 and '1' read from different files mean the same label.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _length_stats(values: Iterable[int]) -> dict[str, Any]:
    array = np.asarray(list(values), dtype=float)
    p50, p95, p99 = np.percentile(array, [50, 95, 99])
    return {
        "count": int(array.size),
        "min": int(array.min()),
        "mean": round(float(array.mean()), 1),
        "p50": round(float(p50), 1),
        "p95": round(float(p95), 1),
        "p99": round(float(p99), 1),
        "max": int(array.max()),
    }


def _num(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
