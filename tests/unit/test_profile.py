"""profile / format_profile / choose_max_length."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from studio.data.profile import choose_max_length, format_profile, profile


def _splits():
    return {
        "train": pd.DataFrame({"text": list("abcdef"), "label": ["pos", "pos", "neg", "pos", "", None]}),
        "validation": pd.DataFrame({"text": list("gh"), "label": ["neg", "meh"]}),
    }


def test_rows_labels_and_missing():
    result = profile(_splits(), label_column="label")
    assert result["rows"] == {"train": 6, "validation": 2}
    assert result["total_rows"] == 8
    labels = result["labels"]
    assert labels["kind"] == "single"
    assert labels["counts"] == {"train": {"pos": 3, "neg": 1}, "validation": {"meh": 1, "neg": 1}}
    assert list(labels["counts"]["train"]) == ["pos", "neg"]  # most frequent first
    assert labels["missing"] == {"train": 2}
    assert result["warnings"] == ["validation has label(s) never seen in train: 'meh'"]
    json.dumps(result)  # JSON-able


def test_list_labels_counted_per_element():
    splits = {"train": pd.DataFrame({"labels": [["a", "b"], ["a"], [], ["c", "a"]]})}
    labels = profile(splits, label_column="labels")["labels"]
    assert labels["kind"] == "multi"
    assert labels["counts"]["train"] == {"a": 3, "b": 1, "c": 1}


def test_numeric_targets_are_summarised():
    splits = {"train": pd.DataFrame({"score": [i / 10 for i in range(100)]})}
    labels = profile(splits, label_column="score")["labels"]
    assert labels["kind"] == "numeric" and "counts" not in labels
    assert labels["stats"]["train"] == {"min": 0.0, "mean": 4.95, "max": 9.9, "count": 100}


def test_length_stats_and_truncation():
    lengths = {"train": list(range(1, 101)), "validation": [10, 20]}
    result = profile(_splits(), lengths=lengths, max_length=90)
    train = result["lengths"]["train"]
    assert train == {"count": 100, "min": 1, "mean": 50.5, "p50": 50.5, "p95": 95.0, "p99": 99.0, "max": 100}
    assert result["truncated"] == {"train": {"count": 10, "share": 0.1}, "validation": {"count": 0, "share": 0.0}}
    assert any("10.0% of train examples are longer than max_length 90" in w for w in result["warnings"])
    json.dumps(result)


def test_format_profile_summary():
    text = format_profile(profile(_splits(), label_column="label", lengths={"train": [5, 7, 9]}, max_length=8))
    lines = text.splitlines()
    assert lines[0] == "rows: train 6, validation 2 (total 8)"
    assert "label (train): pos 3 (75%), neg 1 (25%)" in lines
    assert "label (train): 2 row(s) without a value" in lines
    assert "tokens (train): min 5, mean 7, p50 7, p95 8.8, p99 9, max 9" in lines
    assert any(line.startswith("max_length 8:") and "train 33.3%" in line for line in lines)
    assert any(line.startswith("warning: ") for line in lines)
    text.encode("ascii")  # safe for any terminal


@pytest.mark.parametrize(
    "lengths, cap, expected",
    [
        (list(range(1, 101)), 512, 104),  # p99 = 99.01 -> next multiple of 8
        ([3, 4, 5], 512, 16),  # never below 16
        ([1000] * 10, 512, 512),  # never above the model's limit
        ([64] * 50, 512, 64),  # already a multiple of 8
        ([], 256, 256),  # nothing measured: the cap
        ([100] * 5, 12, 12),  # a cap below 16 wins
    ],
)
def test_choose_max_length(lengths, cap, expected):
    assert choose_max_length(lengths, cap) == expected


def test_choose_max_length_other_multiple():
    assert choose_max_length([33] * 10, 512, multiple=32) == 64
