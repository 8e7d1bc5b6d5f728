import pandas as pd

from studio.data.export import escape_formulas


def test_formula_like_cells_are_escaped():
    df = pd.DataFrame({"text": ["=cmd|' /C calc'!A0", "+1", "-2 stars", "@SUM(A1)", "plain"], "n": [1, 2, 3, 4, 5]})
    out = escape_formulas(df)
    assert out["text"].tolist() == ["'=cmd|' /C calc'!A0", "'+1", "'-2 stars", "'@SUM(A1)", "plain"]
    assert out["n"].tolist() == [1, 2, 3, 4, 5]
    assert df["text"][0].startswith("=")  # the input is untouched
