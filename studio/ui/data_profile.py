"""The Data tab's profile text, in the page's language.

``studio.data.profile.profile`` computes the facts (plain JSON); ``format_profile`` next to it
writes them for the terminal in English. The page writes the same facts with ``t``. The warnings
in the facts are the data layer's own English sentences: they are shown framed, not rewritten.
"""

from __future__ import annotations

from typing import Any, Mapping

from studio.ui import words
from studio.ui.i18n import t

LABELS_SHOWN = 8


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _splits(counts: Mapping[str, int]) -> str:
    return words.splits({name: f"{count:,}" for name, count in counts.items()})


def profile_text(stats: Mapping[str, Any], unit: str) -> str:
    """Rows per split, the label balance, text lengths in ``unit`` (tokens or words), truncation."""
    lines = []
    rows = stats.get("rows") or {}
    if rows:
        lines.append(t("profile.rows", splits=_splits(rows), total=f"{stats.get('total_rows', sum(rows.values())):,}"))
    labels = stats.get("labels")
    if labels:
        lines += _label_lines(labels)
    for name, length in (stats.get("lengths") or {}).items():
        lines.append(t("profile.lengths", unit=unit, split=words.split(name), min=length["min"], mean=_num(length["mean"]),
                       p50=_num(length["p50"]), p95=_num(length["p95"]), p99=_num(length["p99"]), max=length["max"]))
    if "max_length" in stats:
        truncated = stats.get("truncated") or {}
        shares = words.splits({name: f"{share['share']:.1%}" for name, share in truncated.items()})
        lines.append(t("profile.truncated", limit=stats["max_length"], shares=shares or t("profile.none_measured")))
    for warning in stats.get("warnings") or []:
        lines.append(t("profile.warning", message=warning))
    return "\n".join(lines)


def _label_lines(labels: Mapping[str, Any]) -> list[str]:
    column = labels.get("column")
    lines = []
    if labels.get("kind") == "numeric":
        for name, stats in (labels.get("stats") or {}).items():
            lines.append(t("profile.numeric", column=column, split=words.split(name), min=_num(stats["min"]),
                           mean=_num(stats["mean"]), max=_num(stats["max"])))
    else:
        several = labels.get("kind") == "multi"
        for name, counts in (labels.get("counts") or {}).items():
            total = sum(counts.values()) + (labels.get("other") or {}).get(name, 0)
            shown = ", ".join(f"{label} {count:,} ({count / total:.0%})" for label, count in list(counts.items())[:LABELS_SHOWN])
            hidden = len(counts) - LABELS_SHOWN + (1 if (labels.get("other") or {}).get(name) else 0)
            text = (shown or t("profile.none")) if total else t("profile.none")
            if hidden > 0:
                text += t("profile.more", count=hidden)
            key_args = {"column": column, "split": words.split(name), "counts": text}
            lines.append(t("profile.labels_multi", **key_args) if several else t("profile.labels", **key_args))
    for name, count in (labels.get("missing") or {}).items():
        lines.append(t("profile.missing", column=column, split=words.split(name), count=f"{count:,}"))
    return lines
