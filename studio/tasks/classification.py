"""Text classification: single-label, multi-label and regression on one or two texts."""

from __future__ import annotations

import ast
import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional

import numpy as np
import pandas as pd

from studio.errors import DataError
from studio.models.padding import ensure_pad_token
from studio.tasks.base import Problem, Task, TaskMeta, register

# Cells that mean "no value" in hand-made spreadsheets.
_EMPTY = {"", "nan", "none", "null", "n/a"}


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, (list, tuple, np.ndarray)):
        return len(value) == 0
    return str(value).strip().lower() in _EMPTY


def _as_list(value: Any, delimiter: str | None) -> list[str] | None:
    """A multi-label cell as a list: a real list, a JSON/Python list literal, or delimited text."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        for parse in (json.loads, ast.literal_eval):
            try:
                parsed = parse(text)
            except (ValueError, SyntaxError):
                continue
            if isinstance(parsed, list):
                return [str(v).strip() for v in parsed if str(v).strip()]
    if delimiter:
        return [part.strip() for part in text.split(delimiter) if part.strip()]
    return None


def _as_float(value: Any) -> float | None:
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


@dataclass
class ClassificationOptions:
    """The keys of ``task:`` for classification."""

    problem_type: Literal["auto", "single_label", "multi_label", "regression"] = "auto"
    """auto detects lists/delimited labels (multi) and numeric targets."""
    label_delimiter: Optional[str] = None
    """Split string labels on this to get multi-label sets (e.g. '|')."""


@register
class TextClassification(Task):
    name = "classification"
    title = "Text classification"
    description = "Sort texts into classes (sentiment, topic, intent), several tags per text, or predict a score."
    roles = {
        "text": "the text to classify",
        "label": "the class (or a list of classes, or a number for regression)",
        "text_pair": "optional second text (e.g. question/answer pairs, sentence pairs)",
    }
    required_roles = ("text", "label")
    example = {"text": "A warm, funny film with a great cast.", "label": "positive"}
    model_kind = "encoder"
    options = ClassificationOptions
    predicts_tokenized_rows = True

    # ---- data --------------------------------------------------------------------------------
    def normalize(self, df, config, source, labeled=True):
        from studio.data.columns import guess_label_column, guess_text_column, missing_columns_message

        mapping = dict(config.data.columns)
        unknown_roles = set(mapping) - set(self.roles)
        if unknown_roles:
            raise DataError(
                f"data.columns names role(s) {', '.join(sorted(unknown_roles))} that text classification "
                f"does not use; its roles are: {', '.join(self.roles)}"
            )
        if "text" not in mapping:
            guess = guess_text_column(df, exclude=[mapping.get("label")])
            if guess:
                mapping["text"] = guess
        if "label" not in mapping and labeled:
            guess = guess_label_column(df, exclude=[mapping.get("text"), mapping.get("text_pair")])
            if guess:
                mapping["label"] = guess
        if not labeled and mapping.get("label") not in df.columns:
            mapping.pop("label", None)
        for role in self.required_roles if labeled else ("text",):
            if role not in mapping or mapping[role] not in df.columns:
                wanted = mapping.get(role, role)
                raise DataError(missing_columns_message(source, [wanted], df))
        if "text_pair" in mapping and mapping["text_pair"] not in df.columns:
            raise DataError(missing_columns_message(source, [mapping["text_pair"]], df))

        out = pd.DataFrame({"_row": np.arange(1, len(df) + 1)})
        for role, column in mapping.items():
            out[role] = df[column].to_numpy()
        problems: list[Problem] = []
        used = [r for r in ("text", "text_pair", "label") if r in out and (labeled or r != "label")]
        empty = out[used].apply(lambda row: any(_is_empty(v) for v in row), axis=1)
        if empty.any():
            rows = out.loc[empty, "_row"].tolist()
            shown = ", ".join(map(str, rows[:10])) + (" …" if len(rows) > 10 else "")
            what = "an empty text or label" if "label" in used else "an empty text"
            problems.append(Problem("warning", f"{source}: dropped {len(rows)} row(s) with {what} (rows {shown})"))
            out = out.loc[~empty].reset_index(drop=True)
        if out.empty:
            raise DataError(f"{source}: no rows left after dropping rows with an empty text or label")
        out["text"] = out["text"].map(lambda v: str(v).strip())
        if "text_pair" in out:
            out["text_pair"] = out["text_pair"].map(lambda v: str(v).strip())
        out.attrs["columns"] = mapping
        return out, problems

    def stratify_key(self, df):
        values = df["label"]
        if values.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
            return None
        numbers = values.map(_as_float)
        if numbers.notna().all() and not numbers.map(lambda x: float(x).is_integer()).all():
            return None  # a continuous score (regression) has no classes to stratify on
        return "label" if values.astype(str).nunique() <= max(2, len(values) // 2) else None

    @staticmethod
    def _problem_type(labels: pd.Series, options: ClassificationOptions) -> str:
        chosen = options.problem_type
        if chosen != "auto":
            return chosen
        if options.label_delimiter or labels.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
            return "multi_label"
        text = labels.astype(str).str.strip()
        if (text.str.startswith("[") & text.str.endswith("]")).mean() > 0.9:
            return "multi_label"
        numbers = labels.map(_as_float)
        if numbers.notna().all():
            integral = numbers.map(lambda x: float(x).is_integer()).all()
            # Few whole numbers (star ratings 1-5, 0/1 flags) are classes; anything else is a score.
            if not integral or numbers.nunique() > 20:
                return "regression"
        return "single_label"

    def fit(self, splits, config):
        train = splits["train"]
        options = self.options_of(config)
        problem_type = self._problem_type(train["label"], options)
        info: dict[str, Any] = {
            "problem_type": problem_type,
            "label_delimiter": options.label_delimiter,
            "has_pair": "text_pair" in train.columns,
            "columns": train.attrs.get("columns", {}),
        }
        if problem_type == "regression":
            info["labels"] = []
        elif problem_type == "multi_label":
            counts = Counter(l for v in train["label"] for l in (_as_list(v, options.label_delimiter) or [str(v).strip()]))
            info["labels"] = sorted(counts)
        else:
            info["labels"] = sorted({self._single(v) for v in train["label"]}, key=_natural_key)
        return TaskMeta(self.name, info)

    @staticmethod
    def _single(value: Any) -> str:
        text = str(value).strip()
        # "1.0" and "1" from different files are the same class.
        number = _as_float(text)
        if number is not None and number.is_integer() and "." in text:
            return str(int(number))
        return text

    def encode_label(self, value: Any, meta: TaskMeta):
        kind = meta.info["problem_type"]
        if kind == "regression":
            return _as_float(value)
        if kind == "multi_label":
            items = _as_list(value, meta.info.get("label_delimiter")) or [str(value).strip()]
            return items
        return self._single(value)

    def validate(self, splits, meta, config):
        problems: list[Problem] = []
        kind = meta.info["problem_type"]
        labels = meta.info["labels"]
        for split, df in splits.items():
            encoded = df["label"].map(lambda v: self.encode_label(v, meta))
            if kind == "regression":
                bad = df.loc[encoded.isna(), ["_row", "label"]].head(5)
                if len(bad):
                    rows = "; ".join(f"row {r}: {v!r}" for r, v in bad.itertuples(index=False))
                    problems.append(Problem("error", f"{split} split: regression needs numeric labels, found {rows}"))
                continue
            seen = set(l for v in encoded for l in (v if isinstance(v, list) else [v]))
            if split != "train":
                unseen = sorted(seen - set(labels))
                if unseen:
                    problems.append(Problem(
                        "error",
                        f"{split} split has label(s) absent from the training data: {', '.join(map(repr, unseen[:10]))}; "
                        "the model cannot learn them — add training examples or remove those rows",
                    ))
        if kind == "single_label":
            counts = Counter(splits["train"]["label"].map(self._single))
            if len(counts) < 2:
                only = next(iter(counts), "?")
                problems.append(Problem("error", f"the training data has a single class ({only!r}); classification needs at least two"))
            rare = sorted(label for label, n in counts.items() if n == 1)
            if rare:
                problems.append(Problem(
                    "warning",
                    f"class(es) with a single training example: {', '.join(map(repr, rare[:10]))}; "
                    "the model will barely learn them — add examples or merge classes",
                ))
            if len(counts) > 0.5 * len(splits["train"]) and len(counts) > 20:
                problems.append(Problem(
                    "error",
                    f"{len(counts)} different labels in {len(splits['train'])} training rows: the label column looks like free text; "
                    "check the column mapping (data.columns.label)",
                ))
        if kind == "multi_label" and len(labels) < 2:
            problems.append(Problem("error", "multi-label classification needs at least two different labels"))
        return problems

    # ---- model -------------------------------------------------------------------------------
    def _head(self, meta: TaskMeta) -> dict[str, Any]:
        kind = meta.info["problem_type"]
        if kind == "regression":
            return {"num_labels": 1, "problem_type": "regression"}
        labels = meta.info["labels"]
        return {
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)},
            "problem_type": "multi_label_classification" if kind == "multi_label" else "single_label_classification",
        }

    def load_model(self, path, meta, config, **kwargs):
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_pretrained(
            path, trust_remote_code=config.model.trust_remote_code, **self._head(meta), **kwargs
        )

    def _encode_inputs(self, df, tokenizer, max_length):
        pair = df["text_pair"].tolist() if "text_pair" in df.columns else None
        return tokenizer(df["text"].tolist(), pair, truncation=True, max_length=max_length)

    def prepare_tokenizer(self, tokenizer, meta):
        ensure_pad_token(tokenizer)  # a decoder-only backbone has none; an encoder's is kept

    def text_lengths(self, df, tokenizer):
        pair = df["text_pair"].tolist() if "text_pair" in df.columns else None
        enc = tokenizer(df["text"].tolist(), pair, truncation=False)
        return [len(ids) for ids in enc["input_ids"]]

    def _label_vector(self, value, meta):
        kind = meta.info["problem_type"]
        encoded = self.encode_label(value, meta)
        if kind == "regression":
            return float(encoded)
        index = {label: i for i, label in enumerate(meta.info["labels"])}
        if kind == "multi_label":
            vector = [0.0] * len(index)
            for label in encoded:
                vector[index[label]] = 1.0
            return vector
        return index[encoded]

    def tokenize(self, df, tokenizer, meta, max_length):
        from datasets import Dataset

        features = dict(self._encode_inputs(df, tokenizer, max_length))
        features["labels"] = [self._label_vector(v, meta) for v in df["label"]]
        return Dataset.from_dict(features)

    def collator(self, tokenizer, meta):
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8)

    def metric_names(self, meta):
        kind = meta.info["problem_type"]
        if kind == "regression":
            return "mse", False
        return ("micro_f1", True) if kind == "multi_label" else ("accuracy", True)

    def compute_metrics(self, meta) -> Callable[[Any], dict[str, Any]]:
        kind = meta.info["problem_type"]

        def compute(eval_pred) -> dict[str, Any]:
            logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
            gold = eval_pred.label_ids
            if kind == "regression":
                return regression_metrics(gold.reshape(-1), logits.reshape(-1))
            if kind == "multi_label":
                return multilabel_metrics(gold.astype(int), (logits > 0).astype(int))
            return single_label_metrics(gold, logits.argmax(-1))

        return compute

    def baseline(self, splits, meta):
        from studio.tasks.baseline import baseline

        return baseline(self, meta, splits)

    def full_metrics(self, predictions, meta):
        kind = meta.info["problem_type"]
        gold = [p["gold"] for p in predictions if p.get("gold") is not None]
        if not gold:
            return {}
        pred = [p["predicted"] for p in predictions if p.get("gold") is not None]
        if kind == "regression":
            return regression_metrics(np.array(gold, float), np.array(pred, float))
        labels = meta.info["labels"]
        if kind == "multi_label":
            from sklearn.preprocessing import MultiLabelBinarizer

            mlb = MultiLabelBinarizer(classes=labels)
            y_true, y_pred = mlb.fit_transform(gold), mlb.transform(pred)
            out = multilabel_metrics(y_true, y_pred)
            out["per_class"] = _per_class(y_true, y_pred, labels)
            return out
        index = {label: i for i, label in enumerate(labels)}
        y_true = np.array([index.get(g, -1) for g in gold])
        y_pred = np.array([index[p] for p in pred])
        out = single_label_metrics(y_true, y_pred)
        out["per_class"] = _per_class(y_true, y_pred, labels)
        from sklearn.metrics import confusion_matrix

        out["confusion_matrix"] = {
            "labels": labels,
            "matrix": confusion_matrix(y_true, y_pred, labels=list(range(len(labels)))).tolist(),
        }
        return out

    # ---- predictions -------------------------------------------------------------------------
    def predict(self, model, tokenizer, df, meta, max_length, batch_size=32):
        import torch

        kind = meta.info["problem_type"]
        labels = meta.info["labels"]
        model.eval()
        device = next(model.parameters()).device
        results: list[dict[str, Any]] = []
        for start in range(0, len(df), batch_size):
            chunk = df.iloc[start : start + batch_size]
            enc = self._encode_inputs(chunk, tokenizer, max_length)
            batch = tokenizer.pad(enc, return_tensors="pt")
            batch = {k: v.to(device) for k, v in batch.items()}
            with torch.inference_mode():
                logits = model(**batch).logits.float().cpu()
            for i, (_, row) in enumerate(chunk.iterrows()):
                item: dict[str, Any] = {"text": row["text"]}
                if "text_pair" in chunk.columns:
                    item["text_pair"] = row["text_pair"]
                gold = self.encode_label(row["label"], meta) if "label" in chunk.columns and not _is_empty(row["label"]) else None
                if kind == "regression":
                    value = float(logits[i, 0])
                    item.update(gold=gold, predicted=value, error=None if gold is None else value - gold)
                elif kind == "multi_label":
                    probs = torch.sigmoid(logits[i]).tolist()
                    chosen = [labels[j] for j, p in enumerate(probs) if p >= 0.5]
                    item.update(gold=gold, predicted=chosen, probabilities=dict(zip(labels, map(_round, probs))))
                    if gold is not None:
                        item["correct"] = sorted(chosen) == sorted(gold)
                else:
                    probs = torch.softmax(logits[i], -1).tolist()
                    best = int(np.argmax(probs))
                    item.update(
                        gold=gold, predicted=labels[best], confidence=_round(probs[best]),
                        probabilities=dict(zip(labels, map(_round, probs))),
                    )
                    if gold is not None:
                        item["correct"] = gold == labels[best]
                results.append(item)
        return results

    def render(self, prediction):
        row = {k: v for k, v in prediction.items() if k != "probabilities"}
        for key in ("gold", "predicted"):
            if isinstance(row.get(key), list):
                row[key] = ", ".join(row[key])
        return row


# ---- metrics (scikit-learn) -----------------------------------------------------------------

def _round(x: float) -> float:
    return round(float(x), 6)


def _natural_key(label: str):
    number = _as_float(label)
    return (0, number, label) if number is not None else (1, 0.0, label)


def single_label_metrics(y_true, y_pred) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
    }


def multilabel_metrics(y_true, y_pred) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, hamming_loss

    return {
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "subset_accuracy": float(accuracy_score(y_true, y_pred)),
        "hamming_loss": float(hamming_loss(y_true, y_pred)),
    }


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    from scipy.stats import spearmanr
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    spearman = spearmanr(y_true, y_pred).statistic if len(y_true) > 1 and np.std(y_pred) > 0 and np.std(y_true) > 0 else float("nan")
    return {
        "mse": float(mean_squared_error(y_true, y_pred)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan"),
        "spearman": float(spearman),
    }


def _per_class(y_true, y_pred, labels) -> dict[str, dict[str, float]]:
    from sklearn.metrics import precision_recall_fscore_support

    multi = np.asarray(y_true).ndim == 2
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=None if multi else list(range(len(labels))), zero_division=0
    )
    return {
        label: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, label in enumerate(labels)
    }
