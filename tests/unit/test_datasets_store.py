"""save_dataset / load_dataset / list_datasets."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from studio.data.datasets_store import list_datasets, load_dataset, save_dataset
from studio.errors import DataError


def _splits():
    train = pd.DataFrame(
        {
            "text": ["a", "b", ""],
            "labels": [["x", "y"], [], ["z"]],
            "spans": [[{"start": 0, "end": 1, "label": "PER"}], None, []],
            "mixed": [1, "1", None],
            "gappy": pd.Series([1, None, 3], dtype=object),  # as read from JSON with a missing key
            "n": [1, 2, 3],
            "score": [0.5, float("nan"), 2.0],
        }
    )
    return {"train": train, "validation": train.iloc[:1].reset_index(drop=True)}


def test_round_trip_keeps_nested_and_mixed_values(tmp_path):
    folder = save_dataset(tmp_path, "reviews-v1.2", _splits(), {"task": "classification", "labels": ["x", "y", "z"]})
    assert folder == tmp_path / "reviews-v1.2"
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "train.parquet", "validation.parquet"]
    splits, meta = load_dataset(tmp_path, "reviews-v1.2")
    assert meta == {"task": "classification", "labels": ["x", "y", "z"]}
    assert list(splits) == ["train", "validation"]
    train = splits["train"]
    assert train["text"].tolist() == ["a", "b", ""]
    assert train["labels"].tolist() == [["x", "y"], [], ["z"]]
    assert train["spans"].tolist() == [[{"start": 0, "end": 1, "label": "PER"}], None, []]
    assert train["mixed"].tolist() == [1, "1", None]
    assert train["gappy"].tolist() == [1, None, 3]
    assert train["n"].tolist() == [1, 2, 3]
    assert train["score"].isna().tolist() == [False, True, False]
    assert len(splits["validation"]) == 1
    on_disk = json.loads((folder / "meta.json").read_text())
    assert on_disk["task"] == "classification"  # readable by people, store details kept apart


@pytest.mark.parametrize("name", ["", "../escape", "a/b", "a\\b", ".hidden", "..", "with space", "x" * 101, None])
def test_bad_names_refused(tmp_path, name):
    with pytest.raises(DataError, match="bad dataset name"):
        save_dataset(tmp_path / "root", name, _splits(), {})
    assert not (tmp_path / "escape").exists()
    assert list_datasets(tmp_path / "root") == []


def test_bad_split_name_refused(tmp_path):
    with pytest.raises(DataError, match="bad split name"):
        save_dataset(tmp_path, "ok", {"../train": _splits()["train"]}, {})


def test_existing_dataset_needs_overwrite(tmp_path):
    save_dataset(tmp_path, "ds", _splits(), {"version": 1})
    with pytest.raises(DataError, match="already exists"):
        save_dataset(tmp_path, "ds", _splits(), {"version": 2})
    save_dataset(tmp_path, "ds", {"train": pd.DataFrame({"text": ["new"]})}, {"version": 2}, overwrite=True)
    splits, meta = load_dataset(tmp_path, "ds")
    assert meta == {"version": 2} and list(splits) == ["train"] and splits["train"]["text"].tolist() == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no leftovers from the swap


def test_failed_save_leaves_nothing_behind(tmp_path):
    bad = {"train": pd.DataFrame({"text": ["a"]}), "test": pd.DataFrame({"odd": [object()]})}
    with pytest.raises(DataError, match="cannot be saved"):
        save_dataset(tmp_path, "broken", bad, {})
    assert list(tmp_path.iterdir()) == []


def test_meta_must_be_json(tmp_path):
    with pytest.raises(DataError, match="cannot be saved as JSON"):
        save_dataset(tmp_path, "m", _splits(), {"when": object()})
    assert list(tmp_path.iterdir()) == []


def test_list_and_missing(tmp_path):
    assert list_datasets(tmp_path / "nothing-here") == []
    save_dataset(tmp_path, "b", _splits(), {})
    save_dataset(tmp_path, "a", _splits(), {})
    (tmp_path / ".tmp-c-123").mkdir()
    (tmp_path / "not-a-dataset").mkdir()
    assert list_datasets(tmp_path) == ["a", "b"]
    with pytest.raises(DataError) as caught:
        load_dataset(tmp_path, "c")
    assert "no dataset named 'c'" in str(caught.value) and "saved datasets: a, b" in str(caught.value)


def test_damaged_meta(tmp_path):
    folder = save_dataset(tmp_path, "d", _splits(), {})
    (folder / "meta.json").write_text("{not json")
    with pytest.raises(DataError, match="dataset 'd' is damaged"):
        load_dataset(tmp_path, "d")


def test_owner_is_recorded_kept_on_replace_and_old_datasets_stay_readable(tmp_path):
    from studio.data.datasets_store import dataset_info, delete_dataset, list_dataset_infos

    save_dataset(tmp_path, "reviews", _splits(), {"task": "classification"}, owner="ann")
    info = dataset_info(tmp_path, "reviews")
    assert info.owner == "ann" and info.task == "classification" and info.rows == {"train": 3, "validation": 1}
    assert info.saved is not None
    _, meta = load_dataset(tmp_path, "reviews")
    assert meta == {"task": "classification"}  # the owner is the store's bookkeeping, not the dataset's meta
    # An admin replacing it leaves it Ann's.
    save_dataset(tmp_path, "reviews", {"train": _splits()["train"]}, {"task": "classification"}, overwrite=True, owner="root")
    assert dataset_info(tmp_path, "reviews").owner == "ann" and dataset_info(tmp_path, "reviews").rows == {"train": 3}
    # A dataset saved before owners were recorded: no owner, still listed and loadable.
    folder = save_dataset(tmp_path, "old", _splits(), {"task": "ner"})
    meta = json.loads((folder / "meta.json").read_text())
    for key in ("owner", "saved"):
        meta["_store"].pop(key)
    (folder / "meta.json").write_text(json.dumps(meta))
    assert [(i.name, i.owner) for i in list_dataset_infos(tmp_path)] == [("old", None), ("reviews", "ann")]
    assert list(load_dataset(tmp_path, "old")[0]) == ["train", "validation"]
    delete_dataset(tmp_path, "old")
    assert list_datasets(tmp_path) == ["reviews"] and sorted(p.name for p in tmp_path.iterdir()) == ["reviews"]
    with pytest.raises(DataError, match="no dataset named 'old'"):
        delete_dataset(tmp_path, "old")
    with pytest.raises(DataError, match="bad dataset name"):
        delete_dataset(tmp_path, "../reviews")
