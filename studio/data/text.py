"""Questions the data layer asks of cells and characters, answered one way everywhere: is this
value missing, is this character Chinese/Japanese script (CJK), and which scripts a text is in."""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pandas as pd


def is_missing(value: Any, *, blank: bool = True) -> bool:
    """Missing cell: None, NaN, pd.NA/NaT, or a blank string (delimited files keep empty cells as '').

    ``blank=False``: a blank string is a value, not a missing one (a saved dataset stores it as it is)."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if blank and isinstance(value, str) and not value.strip():
        return True
    return value is pd.NA or value is pd.NaT


# Unicode blocks (first, last code point) of the scripts written without spaces between words.
IDEOGRAPHS = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF))
"""The CJK unified ideographs of everyday text: the basic block and extension A."""
HAN = IDEOGRAPHS + ((0xF900, 0xFAFF), (0x20000, 0x2FA1F))
"""Every Han character: ``IDEOGRAPHS``, the compatibility ideographs and the rarer extensions (B and on)."""
KANA = ((0x3040, 0x30FF),)
"""Japanese hiragana and katakana."""
CJK = KANA + HAN
"""Han characters and kana: text in these scripts has no spaces between its words."""


def is_cjk(ch: str, blocks: tuple[tuple[int, int], ...] = CJK) -> bool:
    """Whether the character ``ch`` is in one of ``blocks`` (``CJK`` unless told: any Han character or kana)."""
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in blocks)


# First word of a letter's Unicode name -> the script's name, where the two differ.
SCRIPT_ALIASES = {"FULLWIDTH": "Latin", "HALFWIDTH": "Kana", "CJK": "Han", "HIRAGANA": "Kana", "KATAKANA": "Kana"}


def script_of(ch: str) -> str | None:
    """The script of a letter ('Latin', 'Han', 'Cyrillic', 'Arabic'...), by its Unicode name (no
    network, no model); None for anything that is not a letter (digits, punctuation, spaces)."""
    if not unicodedata.category(ch).startswith("L"):
        return None
    if is_cjk(ch, HAN):
        return "Han"
    if is_cjk(ch, KANA):
        return "Kana"
    first = unicodedata.name(ch, "").split(" ", 1)[0]
    if not first or first in ("MODIFIER", "LETTER"):
        return None
    return SCRIPT_ALIASES.get(first, first.title())


def script_shares(texts: Iterable[str], max_characters: int = 200_000) -> dict[str, float]:
    """Share of the letters of ``texts`` in each script, largest first (the first
    ``max_characters`` characters are enough to tell)."""
    counts: Counter[str] = Counter()
    seen = 0
    for text in texts:
        for ch in text[: max_characters - seen]:
            script = script_of(ch)
            if script:
                counts[script] += 1
        seen += len(text)
        if seen >= max_characters:
            break
    total = sum(counts.values())
    return {script: count / total for script, count in counts.most_common()} if total else {}


def cell_texts(value: Any) -> list[str]:
    """The text in one cell as the tasks store it: a string, a list of words (tagging), or a list
    of chat messages ({"role", "content"})."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        items = list(value.tolist() if hasattr(value, "tolist") else value)
        if items and all(isinstance(item, str) for item in items):
            return [" ".join(items)]
        return [item["content"] for item in items if isinstance(item, dict) and isinstance(item.get("content"), str)]
    return []


def sample_texts(df: pd.DataFrame, rows: int, skip: Iterable[str] = ("label", "tags"), seed: int = 0) -> list[str]:
    """The texts of up to ``rows`` rows picked at random (the same ones every time), every text
    column but ``skip`` (the targets)."""
    picked = df.sample(n=min(rows, len(df)), random_state=seed) if len(df) else df
    columns = [c for c in picked.columns if c not in set(skip)]
    return [text for column in columns for value in picked[column] for text in cell_texts(value)]
