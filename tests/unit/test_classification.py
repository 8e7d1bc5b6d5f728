import numpy as np
import pandas as pd
import pytest

from studio.config import RunConfig
from studio.data.loading import load_task_data
from studio.errors import DataError
from studio.tasks import get_task
from studio.tasks.classification import multilabel_metrics, regression_metrics, single_label_metrics
from tests.conftest import toy_sentiment_rows, write_csv

task = get_task("classification")


def config(**data):
    return RunConfig.from_dict({"data": data})


def normalize(df, cfg=None, labeled=True):
    return task.normalize(df, cfg or config(), "reviews.csv", labeled=labeled)


def test_columns_are_detected_and_mapped():
    df = pd.DataFrame({"id": ["1", "2"], "review": ["a long review text here", "another long review"], "sentiment": ["pos", "neg"]})
    out, problems = normalize(df)
    assert out["text"].tolist() == ["a long review text here", "another long review"]
    assert out["label"].tolist() == ["pos", "neg"]
    assert out.attrs["columns"] == {"text": "review", "label": "sentiment"}
    assert problems == []


def test_missing_mapped_column_lists_the_columns_found():
    df = pd.DataFrame({"review": ["x"], "stars": ["1"]})
    with pytest.raises(DataError) as info:
        normalize(df, config(columns={"text": "review", "label": "label"}))
    message = str(info.value)
    assert "reviews.csv" in message and "'label'" in message and "review, stars" in message


def test_empty_and_nan_rows_are_dropped_and_counted():
    df = pd.DataFrame({"text": ["good", "", None, "bad", "fine"], "label": ["p", "n", "p", float("nan"), "NA"]})
    out, problems = normalize(df)
    # "NA" stays a label (it can be one, e.g. a region); only truly empty cells are dropped.
    assert out["text"].tolist() == ["good", "fine"]
    assert len(problems) == 1 and "dropped 3 row(s)" in problems[0].message and "rows 2, 3, 4" in problems[0].message


def test_prediction_input_needs_no_label():
    out, _ = normalize(pd.DataFrame({"text": ["a", "b"]}), labeled=False)
    assert "label" not in out and len(out) == 2


@pytest.mark.parametrize("labels, expected", [
    (["pos", "neg", "pos"], "single_label"),
    (["1", "2", "5"], "single_label"),  # star ratings are classes
    (["1.5", "2.25", "4.0"], "regression"),
    (['["a", "b"]', '["a"]', "[]"], "multi_label"),
])
def test_problem_type_detection(labels, expected):
    df = pd.DataFrame({"_row": range(len(labels)), "text": ["t"] * len(labels), "label": labels})
    assert task.fit({"train": df}, config()).info["problem_type"] == expected


def test_multi_label_from_delimiter_and_lists():
    df = pd.DataFrame({"text": ["a", "b", "c"], "label": ["bug|docs", "docs", ["bug", "perf"]]})
    cfg = RunConfig.from_dict({"task": {"label_delimiter": "|"}})
    out, _ = task.normalize(df, cfg, "x.csv")
    meta = task.fit({"train": out}, cfg)
    assert meta.info["problem_type"] == "multi_label"
    assert meta.info["labels"] == ["bug", "docs", "perf"]
    assert task._label_vector("bug|docs", meta) == [1.0, 1.0, 0.0]


def _load(tmp_path, rows, **extra):
    write_csv(tmp_path / "train.csv", rows)
    cfg = RunConfig.from_dict({"data": {"train": str(tmp_path / "train.csv"), **extra}})
    return load_task_data(cfg, task)


def test_single_class_is_refused(tmp_path):
    with pytest.raises(DataError, match="single class \\('positive'\\)"):
        _load(tmp_path, [{"text": f"t{i}", "label": "positive"} for i in range(20)])


def test_class_with_one_example_is_a_warning(tmp_path):
    rows = toy_sentiment_rows(40) + [{"text": "a lonely one", "label": "neutral"}]
    data = _load(tmp_path, rows, split={"validation": 0.1, "test": 0.1})
    assert any("single training example" in p.message and "'neutral'" in p.message for p in data.problems)
    assert "neutral" in data.splits["train"]["label"].tolist()
    assert any("neutral" in note for note in data.notes)


def test_unseen_test_labels_are_refused(tmp_path):
    write_csv(tmp_path / "test.csv", [{"text": "meh", "label": "neutral"}, {"text": "great", "label": "positive"}])
    with pytest.raises(DataError, match="test split has label\\(s\\) absent from the training data: 'neutral'"):
        _load(tmp_path, toy_sentiment_rows(40), test=str(tmp_path / "test.csv"))


def test_non_numeric_regression_labels_name_the_row(tmp_path):
    rows = [{"text": f"t{i}", "label": str(1.5 + i / 10)} for i in range(30)] + [{"text": "x", "label": "great"}]
    cfg = RunConfig.from_dict({
        "task": {"problem_type": "regression"},
        "data": {"train": str(write_csv(tmp_path / "r.csv", rows)), "split": {"validation": 0.0, "test": 0.0}},
    })
    with pytest.raises(DataError, match="row 31: 'great'"):
        load_task_data(cfg, task)


def test_free_text_label_column_is_refused(tmp_path):
    rows = [{"text": f"text number {i}", "label": f"some unique sentence {i}"} for i in range(60)]
    with pytest.raises(DataError, match="looks like free text"):
        _load(tmp_path, rows)


def test_splits_are_seeded_and_stratified(tmp_path):
    a = _load(tmp_path, toy_sentiment_rows(100))
    b = _load(tmp_path, toy_sentiment_rows(100))
    assert a.splits["test"]["text"].tolist() == b.splits["test"]["text"].tolist()
    assert a.splits["test"]["label"].value_counts().tolist() == [5, 5]
    assert sum(len(df) for df in a.splits.values()) == 100


def test_single_label_metrics_by_hand():
    y_true = np.array([0, 0, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 0])
    m = single_label_metrics(y_true, y_pred)
    assert m["accuracy"] == pytest.approx(3 / 5)
    # per class F1: c0 p=1/2 r=1/2 -> .5; c1 p=2/3 r=1 -> .8; c2 -> 0
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0) / 3)
    assert m["micro_f1"] == pytest.approx(0.6)


def test_multilabel_and_regression_metrics_by_hand():
    m = multilabel_metrics(np.array([[1, 0], [1, 1]]), np.array([[1, 0], [0, 1]]))
    assert m["subset_accuracy"] == 0.5 and m["hamming_loss"] == 0.25
    assert m["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 0 + 1))
    r = regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert r["mse"] == pytest.approx(1 / 3) and r["mae"] == pytest.approx(1 / 3) and r["spearman"] == pytest.approx(1.0)
    assert r["r2"] == pytest.approx(1 - 1 / 2)


def test_full_metrics_confusion_matrix_and_per_class():
    meta = task.fit({"train": pd.DataFrame({"text": ["a", "b"], "label": ["neg", "pos"]})}, config())
    preds = [{"gold": "neg", "predicted": "neg"}, {"gold": "neg", "predicted": "pos"}, {"gold": "pos", "predicted": "pos"}]
    full = task.full_metrics(preds, meta)
    assert full["confusion_matrix"] == {"labels": ["neg", "pos"], "matrix": [[1, 1], [0, 1]]}
    assert full["per_class"]["pos"]["precision"] == pytest.approx(0.5)
    assert full["per_class"]["neg"]["recall"] == pytest.approx(0.5)
    assert full["accuracy"] == pytest.approx(2 / 3)
