"""A classical baseline beside every classification run: TF-IDF features and a linear model
(the classification task's ``Task.baseline``).

Fitted on the run's own train split in seconds and scored on its validation and test splits with
the task's own metrics (``task.full_metrics``), so "fine-tuned 0.85 vs baseline 0.76" compares
like with like. A fine-tuned model that does not beat it is flagged: the backbone may not read
the data (see ``studio.models.coverage``) or the run was too short. The majority-class rate
(the mean, for regression) is scored the same way: the floor any model must clear.

Word uni- and bigrams for text with spaces; character 1-3-grams for scripts written without
spaces between words (Chinese, Japanese, Thai...), where words cannot be split off a line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
import warnings
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from studio.data.text import sample_texts, script_shares

# Scripts written without spaces between words: character n-grams instead of words.
UNSPACED_SCRIPTS = {"Han", "Kana", "Thai", "Lao", "Khmer", "Myanmar", "Tibetan"}
MAX_TRAIN_ROWS = 200_000
"""More rows add little to a baseline and only cost time: the rest are left out."""


def texts_of(df: pd.DataFrame) -> list[str]:
    if "text_pair" in df.columns:
        return [f"{a} \n {b}" for a, b in zip(df["text"].astype(str), df["text_pair"].astype(str))]
    return df["text"].astype(str).tolist()


def vectorizer_for(train: pd.DataFrame):
    from sklearn.feature_extraction.text import TfidfVectorizer

    scripts = script_shares(sample_texts(train, 500, skip=("label",)))
    unspaced = sum(share for script, share in scripts.items() if script in UNSPACED_SCRIPTS) > 0.3
    if unspaced:
        return TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2, max_features=300_000), \
            "TF-IDF character 1-3-grams"
    return TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_features=300_000), \
        "TF-IDF word 1-2-grams"


def baseline(task, meta, splits: dict[str, pd.DataFrame]) -> dict[str, Any] | None:
    """{"method", "seconds", "<split>": metrics, "majority": {"<split>": metrics}} for the
    validation and test splits there are; None when the train split cannot fit one (a single
    label, or no rows)."""
    train = splits.get("train")
    if train is None or train.empty or "text" not in train.columns:
        return None
    started = time.time()
    train = train.iloc[:MAX_TRAIN_ROWS]
    kind = meta.info["problem_type"]
    gold_train = [task.encode_label(v, meta) for v in train["label"]]
    vectorizer, features = vectorizer_for(train)
    try:
        x_train = vectorizer.fit_transform(texts_of(train))
    except ValueError:  # an empty vocabulary: nothing a bag of words can learn from
        return None
    model, name, encode, decode = _model(kind, meta, gold_train)
    if model is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "label present in all training examples" and the like
        model.fit(x_train, encode(gold_train))
    majority = _majority(kind, gold_train)
    out: dict[str, Any] = {"method": f"{features} + {name}", "train_rows": len(train)}
    for split in ("validation", "test"):
        df = splits.get(split)
        if df is None or df.empty:
            continue
        gold = [task.encode_label(v, meta) for v in df["label"]]
        predicted = decode(model.predict(vectorizer.transform(texts_of(df))))
        out[split] = numbers(task.full_metrics([{"gold": g, "predicted": p} for g, p in zip(gold, predicted)], meta))
        out.setdefault("majority", {})[split] = numbers(
            task.full_metrics([{"gold": g, "predicted": majority} for g in gold], meta))
    out["seconds"] = round(time.time() - started, 2)
    return out


def _model(kind: str, meta, gold: list[Any]):
    """(estimator, its name, labels -> targets, predictions -> labels), or Nones when the labels
    give a linear model nothing to learn."""
    if kind == "regression":
        from sklearn.linear_model import Ridge

        return Ridge(alpha=1.0), "ridge regression", lambda y: np.asarray(y, float), lambda p: [float(v) for v in p]
    from sklearn.linear_model import LogisticRegression

    if kind == "multi_label":
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.preprocessing import MultiLabelBinarizer

        binarizer = MultiLabelBinarizer(classes=meta.info["labels"])
        binarizer.fit([])
        # A label in every row (or in none) is predicted as a constant by OneVsRestClassifier itself.
        return OneVsRestClassifier(LogisticRegression(max_iter=1000)), "logistic regression (one per label)", \
            binarizer.transform, lambda p: [list(r) for r in binarizer.inverse_transform(p)]
    if len(set(gold)) < 2:
        return None, "", None, None
    return LogisticRegression(max_iter=1000), "logistic regression", list, list


def _majority(kind: str, gold: list[Any]) -> Any:
    """What a model that ignores the text predicts: the most common label (label set), the mean."""
    if kind == "regression":
        return float(np.mean(gold))
    if kind == "multi_label":
        return list(Counter(tuple(sorted(g)) for g in gold).most_common(1)[0][0])
    return Counter(gold).most_common(1)[0][0]


def numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


@dataclass(frozen=True)
class Comparison:
    """The fine-tuned model's headline beside the baseline's, on one split."""

    split: str
    metric: str
    fine_tuned: float
    baseline: float
    majority: float | None
    method: str
    beaten: bool

    def english(self) -> str:
        floor = f", majority class {self.majority:.3f}" if self.majority is not None else ""
        line = (f"{self.split} {self.metric}: fine-tuned {self.fine_tuned:.3f} vs baseline {self.baseline:.3f} "
                f"({self.method}{floor})")
        return line if self.beaten else line + " -- the fine-tuned model does not beat the baseline: the backbone may not fit this data"


def compare(metrics: dict[str, Any]) -> Comparison | None:
    """The headline of the fine-tuned model against the baseline's on the last split both have
    (test, else validation); None when there is nothing to compare."""
    base = metrics.get("baseline") or {}
    headline = metrics.get("headline") or {}
    name, greater = headline.get("name"), headline.get("greater_is_better", True)
    for split in ("test", "validation"):
        mine, theirs = (metrics.get(split) or {}).get(name), (base.get(split) or {}).get(name)
        if isinstance(mine, (int, float)) and isinstance(theirs, (int, float)):
            floor = ((base.get("majority") or {}).get(split) or {}).get(name)
            return Comparison(split, name, mine, theirs, floor, base.get("method", "baseline"),
                              mine > theirs if greater else mine < theirs)
    return None
