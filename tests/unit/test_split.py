"""split_frame: shares, stratification and its fallback, determinism, too-small data."""

from __future__ import annotations

import pandas as pd
import pytest

from studio.data.split import split_frame
from studio.errors import DataError


def _frame(counts: dict[str, int]) -> pd.DataFrame:
    labels = [label for label, count in counts.items() for _ in range(count)]
    return pd.DataFrame({"text": [f"row {i}" for i in range(len(labels))], "label": labels})


def test_sizes_partition_and_reset_index():
    df = _frame({"a": 50, "b": 50})
    splits, notes = split_frame(df, 0.1, 0.2, seed=1, stratify=None)
    assert list(splits) == ["train", "validation", "test"]
    assert [len(s) for s in splits.values()] == [70, 10, 20]
    texts = [t for s in splits.values() for t in s["text"]]
    assert sorted(texts) == sorted(df["text"])  # every row once, no overlap
    for part in splits.values():
        assert list(part.index) == list(range(len(part)))
    assert any("train 70, validation 10, test 20" in n and "random" in n for n in notes)


def test_zero_share_split_is_omitted():
    splits, _ = split_frame(_frame({"a": 10, "b": 10}), 0.2, 0.0, seed=0, stratify="label")
    assert list(splits) == ["train", "validation"]
    splits, notes = split_frame(_frame({"a": 3}), 0.0, 0.0, seed=0, stratify="label")
    assert list(splits) == ["train"] and len(splits["train"]) == 3 and notes == []


def test_deterministic_for_a_seed():
    df = _frame({"a": 40, "b": 40})
    first, _ = split_frame(df, 0.1, 0.1, seed=7, stratify="label")
    again, _ = split_frame(df, 0.1, 0.1, seed=7, stratify="label")
    other, _ = split_frame(df, 0.1, 0.1, seed=8, stratify="label")
    for name in first:
        pd.testing.assert_frame_equal(first[name], again[name])
    assert first["validation"]["text"].tolist() != other["validation"]["text"].tolist()


def test_stratified_keeps_class_proportions():
    df = _frame({"a": 160, "b": 40})
    splits, notes = split_frame(df, 0.1, 0.1, seed=3, stratify="label")
    for name in ("validation", "test"):
        assert splits[name]["label"].value_counts().to_dict() == {"a": 16, "b": 4}
    assert any("stratified on 'label'" in n for n in notes)


def test_rare_class_stays_in_train_and_the_rest_is_stratified():
    df = _frame({"a": 60, "b": 40, "x": 2})
    for seed in range(5):  # wherever the shuffle falls, the rare rows are never held out
        splits, notes = split_frame(df, 0.1, 0.1, seed=seed, stratify="label")
        assert (splits["train"]["label"] == "x").sum() == 2
        assert [len(s) for s in splits.values()] == [82, 10, 10]
        assert splits["validation"]["label"].value_counts().to_dict() == {"a": 6, "b": 4}
    assert "class 'x' has only 2 examples: kept in train only, as there are too few to stratify" in notes
    assert any("stratified on 'label'" in n for n in notes)


def test_labels_too_sparse_fall_back_to_random_with_reason():
    df = pd.DataFrame({"text": [f"t{i}" for i in range(10)], "label": ["a", "a", "a"] + [f"u{i}" for i in range(7)]})
    splits, notes = split_frame(df, 0.2, 0.2, seed=0, stratify="label")
    assert [len(s) for s in splits.values()] == [6, 2, 2]
    assert any(n.startswith("class 'u0' has only 1 example") and n.endswith("split is not stratified") for n in notes)
    assert any("(random, seed 0)" in n for n in notes)


def test_list_labels_are_not_stratified():
    df = pd.DataFrame({"text": list("abcdefghij"), "labels": [["x"], ["y"]] * 5})
    _, notes = split_frame(df, 0.2, 0.0, seed=0, stratify="labels")
    assert any("lists" in n and "not stratified" in n for n in notes)


def test_split_smaller_than_number_of_classes():
    df = _frame({k: 3 for k in "abcdefgh"})  # 24 rows, 8 classes, validation gets 2 rows
    _, notes = split_frame(df, 0.1, 0.0, seed=0, stratify="label")
    assert any("validation split (2 rows) is smaller than the number of classes (8)" in n for n in notes)


def test_each_split_gets_a_row_on_tiny_data():
    splits, _ = split_frame(_frame({"a": 3}), 0.1, 0.1, seed=0, stratify=None)
    assert [len(s) for s in splits.values()] == [1, 1, 1]
    # rounding 4 * 0.45 up twice would leave training empty: a held-out split gives a row back
    splits, _ = split_frame(_frame({"a": 4}), 0.45, 0.45, seed=0, stratify=None)
    assert sorted(len(s) for s in splits.values()) == [1, 1, 2]


def test_too_small_to_split():
    with pytest.raises(DataError) as caught:
        split_frame(_frame({"a": 2}), 0.1, 0.1, seed=0, stratify=None)
    assert "2 row(s)" in str(caught.value) and "at least 3 rows" in str(caught.value)
    with pytest.raises(DataError, match="no rows"):
        split_frame(_frame({}), 0.1, 0.1, seed=0, stratify=None)


@pytest.mark.parametrize("validation, test", [(-0.1, 0.1), (1.0, 0.0), (0.6, 0.5), (float("nan"), 0.1), ("0.1", 0.1)])
def test_bad_shares(validation, test):
    with pytest.raises(DataError, match="share"):
        split_frame(_frame({"a": 10}), validation, test, seed=0, stratify=None)


def test_unknown_stratify_column():
    with pytest.raises(DataError, match="no such column"):
        split_frame(_frame({"a": 10}), 0.1, 0.1, seed=0, stratify="sentiment")
