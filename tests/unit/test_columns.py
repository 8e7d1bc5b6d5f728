"""Column guessing and the missing-column message."""

from __future__ import annotations

import pandas as pd

from studio.data.columns import guess_label_column, guess_text_column, missing_columns_message


def test_text_column_prefers_conventional_names():
    df = pd.DataFrame({"notes": ["a much longer free text here"] * 3, "review": ["short", "ok", "fine"], "y": ["a", "b", "a"]})
    assert guess_text_column(df) == "review"
    assert guess_text_column(df, exclude=["review"]) == "notes"


def test_text_column_is_the_longest_string_column_not_numbers():
    df = pd.DataFrame(
        {
            "id": ["000123456789012345"] * 4,
            "body_of_it": ["the quick brown fox", "jumps over", "the lazy dog", "again"],
            "cls": ["a", "b", "a", "b"],
            "count": [1, 2, 3, 4],
        }
    )
    assert guess_text_column(df) == "body_of_it"
    assert guess_text_column(pd.DataFrame({"n": [1, 2], "m": ["1.5", "2"]})) is None


def test_label_column_by_name_then_cardinality():
    df = pd.DataFrame({"text": [f"t{i}" for i in range(10)], "Sentiment": ["p", "n"] * 5})
    assert guess_label_column(df, exclude=["text"]) == "Sentiment"
    df = pd.DataFrame(
        {
            "uid": [str(i) for i in range(12)],
            "body": [f"text number {i}" for i in range(12)],
            "kind": ["a", "b", "c"] * 4,
            "const": ["z"] * 12,
        }
    )
    assert guess_label_column(df, exclude=["body"]) == "kind"
    assert guess_label_column(df[["uid", "const"]]) is None


def test_label_column_with_list_values():
    df = pd.DataFrame({"text": ["a", "b", "c", "d"], "genres": [["x"], ["x", "y"], ["x"], ["y"]]})
    assert guess_label_column(df, exclude=["text"]) == "genres"


def test_missing_columns_message():
    df = pd.DataFrame({"review": ["a"], "Label": ["x"], "source": ["s"]})
    message = missing_columns_message("train.csv", ["text", "label"], df)
    assert message.startswith("file train.csv has no columns 'text', 'label'; columns found: review, Label, source;")
    assert "map the text role to one of them (data.columns.text)" in message
    assert "map the label role to one of them (data.columns.label) (did you mean 'Label'?)" in message
    assert missing_columns_message("train.csv", {"text": "review"}, df) == ""
    single = missing_columns_message("t.csv", {"label": "sentiment"}, df)
    assert single.startswith("file t.csv has no column 'sentiment';") and "data.columns.label" in single
