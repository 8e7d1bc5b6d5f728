"""Two questions the data layer asks of cells and characters, answered one way everywhere:
is this value missing, and is this character Chinese/Japanese script (CJK)."""

from __future__ import annotations

import math
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
