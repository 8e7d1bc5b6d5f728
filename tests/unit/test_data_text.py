"""The data layer's one missing-value rule and one CJK script test."""

from __future__ import annotations

import pandas as pd

from studio.data.text import CJK, HAN, IDEOGRAPHS, is_cjk, is_missing


def test_is_missing():
    assert all(is_missing(v) for v in (None, float("nan"), "", "  ", pd.NA))
    assert not any(is_missing(v) for v in ("0", 0, "NA", [], False))


def test_blank_strings_can_be_values():
    assert is_missing(pd.NaT) and is_missing(None, blank=False) and is_missing(float("nan"), blank=False)
    assert not any(is_missing(v, blank=False) for v in ("", "  ", "0"))


def test_is_cjk_by_blocks():
    assert all(is_cjk(ch) for ch in "中文かなカナ\u3400\uf900\U00020000")
    assert not any(is_cjk(ch) for ch in "aé 1,Ж한")
    assert is_cjk("中", IDEOGRAPHS) and not is_cjk("\uf900", IDEOGRAPHS) and not is_cjk("か", HAN)
    assert set(HAN) < set(CJK) and set(IDEOGRAPHS) < set(HAN)
