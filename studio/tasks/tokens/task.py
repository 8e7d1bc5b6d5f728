"""The ``TokenClassification`` task (``ner``), registered on import.

It reads a file (CoNLL text or a table), decides which columns hold the words and tags (or the
text and entity spans), builds the label set, encodes sentences with their labels for training,
scores predictions, and turns the model's outputs back into one tag per word and entities with
character offsets and confidence scores for the evaluation table and the playground.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from studio.data.text import is_missing
from studio.errors import DataError
from studio.models.padding import ensure_pad_token
from studio.tasks.base import IGNORE, Problem, Task, TaskMeta, register
from studio.tasks.tokens.conll import ALWAYS_CONLL, CONLL_SUFFIXES, looks_like_conll, read_conll
from studio.tasks.tokens.metrics import sequence_metrics
from studio.tasks.tokens.normalize import from_spans, from_tokens
from studio.tasks.tokens.spans import join_words, split_words
from studio.tasks.tokens.tags import repair_bio, tags_to_spans
from studio.tasks.tokens.windows import encode_sentences, features, special_layout, word_pieces

log = logging.getLogger(__name__)

TOKEN_NAMES = ("tokens", "words", "token", "word", "sentence_tokens")
TAG_NAMES = ("tags", "ner_tags", "ner", "labels", "label", "tag", "bio", "iob")
ENTITY_NAMES = ("entities", "spans", "entity", "ents", "annotations", "label", "labels", "ner")


@register
class TokenClassification(Task):
    name = "ner"
    title = "Named entities / tagging"
    description = "Find names of people, organizations, places… (or any BIO-tagged spans) in text, word by word."
    roles = {
        "tokens": "the words of a sentence: a list, or the first column of a CoNLL file",
        "tags": "one tag per word: B-TYPE starts an entity, I-TYPE continues it, O is outside (a list, or a CoNLL file's last column)",
        "text": "instead of tokens: the raw text (also all that prediction needs)",
        "entities": 'instead of tags: character spans in the text, [{"start": 0, "end": 5, "label": "PER"}]',
    }
    required_roles = ("tokens", "tags")
    example = {"tokens": ["Ada", "Lovelace", "worked", "in", "London", "."], "tags": ["B-PER", "I-PER", "O", "O", "B-LOC", "O"]}
    model_kind = "encoder"
    peft_task_type = "TOKEN_CLS"
    hf_auto_class = "AutoModelForTokenClassification"
    predicts_tokenized_rows = True  # the same sentence windows as ``tokenize``, in order

    # ---- data --------------------------------------------------------------------------------
    def read_file(self, path, **limits):
        from studio.data.readers import read_table

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix in ALWAYS_CONLL:
            return read_conll(path, **limits)
        if suffix in CONLL_SUFFIXES and path.is_file():
            from studio.data.readers import DEFAULT_MAX_BYTES, check_file, read_bytes

            if 0 < check_file(path, path.name, DEFAULT_MAX_BYTES):
                head = read_bytes(path, path.name, 256 * 1024)
                text = head.decode("utf-8", errors="ignore") if b"\x00" not in head else ""
                if text and looks_like_conll(text):
                    return read_conll(path, **limits)
        return read_table(path, **limits)

    def _mapping(self, df: pd.DataFrame, config, source: str, labeled: bool) -> tuple[str, dict[str, str]]:
        """('tokens' or 'spans', role -> column) from the config, else from the column names."""
        from studio.data.columns import by_name, guess_text_column, missing_columns_message

        given = {role: column for role, column in dict(config.data.columns).items()}
        unknown = set(given) - set(self.roles)
        if unknown:
            raise DataError(
                f"data.columns names role(s) {', '.join(sorted(unknown))} that token classification does not use; "
                f"its roles are: {', '.join(self.roles)}"
            )
        if not labeled:  # prediction input may come in another shape than the training data
            given = {role: column for role, column in given.items() if column in df.columns}
        if "_line" in df.columns:  # read from a CoNLL file: the columns are known
            if labeled and "tags" not in df.columns:
                raise DataError(f"file {source} holds words but no tags (one column per line)",
                                hint="training data needs 'token<TAB>tag' on every line, e.g. 'London<TAB>B-LOC'")
            return "tokens", {"tokens": "tokens", **({"tags": "tags"} if "tags" in df.columns else {})}
        columns = [c for c in df.columns if not str(c).startswith("_")]
        explicit_spans = ("text" in given or "entities" in given) and "tokens" not in given
        tokens = given.get("tokens") or (None if explicit_spans else by_name(columns, TOKEN_NAMES))
        if tokens is not None and (tokens in df.columns or "tokens" in given):
            mapping = {"tokens": tokens}
            tags = given.get("tags") or by_name([c for c in columns if c != tokens], TAG_NAMES)
            if tags is not None:
                mapping["tags"] = tags
            needed = ["tokens", "tags"] if labeled else ["tokens"]
            if not labeled and mapping.get("tags") not in df.columns:
                mapping.pop("tags", None)
            wanted = {role: mapping.get(role, role) for role in needed}
            message = missing_columns_message(source, wanted, df)
            if message:
                raise DataError(message, hint="token classification needs a tokens column and a tags column (lists of equal length), "
                                              "or a text column with an entities column of character spans")
            return "tokens", mapping
        entities = given.get("entities") or by_name([c for c in columns if c != given.get("text")], ENTITY_NAMES)
        # The spans column (JSON text in a CSV) is long text too: keep it out of the text guess.
        text = given.get("text") or guess_text_column(df[columns], exclude=[entities])
        mapping = {"text": text} if text else {}
        if entities is not None:
            mapping["entities"] = entities
        if not labeled and mapping.get("entities") not in df.columns:
            mapping.pop("entities", None)
        needed = ["text", "entities"] if labeled else ["text"]
        if not text and labeled and "entities" not in mapping:
            raise DataError(
                f"file {source} has neither tokens and tags nor text and entities columns; columns found: "
                f"{', '.join(map(str, df.columns))}",
                hint="give a tokens column and a tags column (lists of equal length), a text column with an entities column "
                     "of character spans, or a CoNLL file; map them with data.columns (tokens/tags or text/entities)",
            )
        message = missing_columns_message(source, {role: mapping.get(role, role) for role in needed}, df)
        if message:
            raise DataError(message, hint="for raw text give a text column and an entities column of character spans "
                                          "([{\"start\": 0, \"end\": 5, \"label\": \"PER\"}]), or use tokens/tags columns")
        return "spans", mapping

    def normalize(self, df, config, source, labeled=True):
        mode, mapping = self._mapping(df, config, source, labeled)
        lines = df["_line"].tolist() if "_line" in df.columns else None
        where = (lambda i: f"line {lines[i]}") if lines else (lambda i: f"row {i + 1}")
        if mode == "tokens":
            out, problems = from_tokens(df, mapping, source, where, lines)
        else:
            out, problems = from_spans(df, mapping, source, where)
        if out.empty:
            errors = [p.message for p in problems if p.level == "error"]
            detail = ("\n  - " + "\n  - ".join(errors)) if errors else ""
            raise DataError(f"{source}: no usable sentences{detail}")
        scheme = out.attrs.get("scheme")
        out.attrs["columns"] = mapping
        out.attrs["input"] = mode
        out.attrs["scheme"] = scheme
        return out.reset_index(drop=True), problems

    def fit(self, splits, config):
        train = splits["train"]
        if "tags" not in train.columns:
            raise DataError("the training data has no tags or entities")
        types = sorted({t[2:] for tags in train["tags"] for t in tags if t != "O"})
        labels = ["O"] + [f"{prefix}-{kind}" for kind in types for prefix in ("B", "I")]
        info = {
            "labels": labels,
            "entity_types": types,
            "scheme": "IOB2",
            "source_format": train.attrs.get("scheme"),
            "input": train.attrs.get("input"),
            "columns": train.attrs.get("columns", {}),
        }
        return TaskMeta(self.name, info)

    def validate(self, splits, meta, config):
        problems: list[Problem] = []
        known = set(meta.info["entity_types"])
        counts = {split: Counter(kind for tags in df["tags"] for _, _, kind in tags_to_spans(tags))
                  for split, df in splits.items() if "tags" in df.columns}
        train = counts.get("train", Counter())
        if not train:
            problems.append(Problem("error", "the training data has no entities (every tag is O): the model would learn to tag "
                                             "nothing; check the tags column (or the entities column and its offsets)"))
        rare = sorted(kind for kind, n in train.items() if n < 3)
        if rare:
            problems.append(Problem("warning", "entity type(s) with fewer than 3 training examples: "
                                               + ", ".join(f"{kind!r} ({train[kind]})" for kind in rare)
                                               + "; the model will barely learn them — add examples"))
        for split, counter in counts.items():
            unseen = {kind: n for kind, n in counter.items() if kind not in known}
            if split != "train" and unseen:
                listed = ", ".join(f"{kind!r} ({n})" for kind, n in sorted(unseen.items()))
                problems.append(Problem(
                    "warning",
                    f"the {split} split has entity type(s) absent from the training data: {listed}; the model cannot predict them, "
                    "so they count as misses in the scores — add training examples, or rename the tags to match the training data",
                ))
        summary = "; ".join(f"{split}: " + (", ".join(f"{kind} {n}" for kind, n in counter.most_common()) or "none")
                            for split, counter in counts.items())
        source = meta.info.get("source_format")
        read_as = f", read as {source}" if source and source not in ("IOB2", "spans") else ""
        problems.append(Problem("info", f"tag set (IOB2{read_as}): {', '.join(meta.info['labels'])}; entities per split — {summary}"))
        return problems

    # ---- model -------------------------------------------------------------------------------
    def load_model(self, path, meta, config, **kwargs):
        from transformers import AutoModelForTokenClassification

        labels = meta.info["labels"]
        return AutoModelForTokenClassification.from_pretrained(
            path,
            trust_remote_code=config.model.trust_remote_code,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            **kwargs,
        )

    def tokenize(self, df, tokenizer, meta, max_length):
        from datasets import Dataset

        index = {label: i for i, label in enumerate(meta.info["labels"])}
        windows = encode_sentences(tokenizer, df["tokens"].tolist(), max_length)
        all_tags = df["tags"].tolist() if "tags" in df.columns else None
        columns: dict[str, list] = {}
        split_rows = set()
        for window in windows:
            for key, value in features(tokenizer, window).items():
                columns.setdefault(key, []).append(value)
            labels = [IGNORE] * len(window["input_ids"])
            if all_tags is not None:
                tags = all_tags[window["row"]]
                start = window["words"][0]
                for offset, position in enumerate(window["positions"]):
                    if position >= 0:
                        labels[position] = index.get(tags[start + offset], IGNORE)
            columns.setdefault("labels", []).append(labels)
            if window["words"] != (0, len(df["tokens"].iat[window["row"]])):
                split_rows.add(window["row"])
        if split_rows:
            log.info("%d sentence(s) longer than max_length %d split into overlapping windows", len(split_rows), max_length)
        return Dataset.from_dict(columns)

    def prepare_tokenizer(self, tokenizer, meta):
        ensure_pad_token(tokenizer)  # a decoder-only backbone has none; an encoder's is kept

    def text_lengths(self, df, tokenizer):
        prefix, suffix = special_layout(tokenizer)
        extra = len(prefix) + len(suffix)
        return [extra + sum(len(p) for p in words) for words in word_pieces(tokenizer, df["tokens"].tolist())]

    def collator(self, tokenizer, meta):
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=8, label_pad_token_id=IGNORE)

    def metric_names(self, meta):
        return "f1", True

    def compute_metrics(self, meta) -> Callable[[Any], dict[str, Any]]:
        labels = meta.info["labels"]

        def compute(eval_pred) -> dict[str, Any]:
            logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
            predicted = np.asarray(logits).argmax(-1)
            gold_ids = np.asarray(eval_pred.label_ids)
            gold, pred = [], []
            for p_row, g_row in zip(predicted, gold_ids):
                mask = g_row != IGNORE
                if mask.any():
                    gold.append([labels[i] for i in g_row[mask]])
                    pred.append([labels[i] for i in p_row[mask]])
            return sequence_metrics(gold, pred)

        return compute

    def full_metrics(self, predictions, meta):
        scored = [p for p in predictions if p.get("gold_tags") is not None]
        if not scored:
            return {}
        return sequence_metrics([p["gold_tags"] for p in scored], [p["pred_tags"] for p in scored], per_type=True)

    # ---- predictions -------------------------------------------------------------------------
    def predict(self, model, tokenizer, df, meta, max_length, batch_size=32):
        import torch

        labels = meta.info["labels"]
        max_length = max_length or min(512, int(getattr(tokenizer, "model_max_length", 512) or 512))
        if "tokens" not in df.columns:  # raw text that did not go through normalize (a playground box)
            words = [split_words("" if is_missing(t) else str(t)) for t in df["text"]]
            df = pd.DataFrame({"text": ["" if is_missing(t) else str(t) for t in df["text"]],
                               "tokens": [[w for w, _, _ in ws] for ws in words],
                               "offsets": [[[s, e] for _, s, e in ws] for ws in words]})
        token_lists = df["tokens"].tolist()
        windows = encode_sentences(tokenizer, token_lists, max_length)
        chosen = [[0] * len(t) for t in token_lists]
        confidence = [[0.0] * len(t) for t in token_lists]
        model.eval()
        device = next(model.parameters()).device
        for start in range(0, len(windows), batch_size):
            chunk = windows[start : start + batch_size]
            batch = tokenizer.pad([features(tokenizer, w) for w in chunk], return_tensors="pt")
            batch = {k: v.to(device) for k, v in batch.items()}
            with torch.inference_mode():
                probs = torch.softmax(model(**batch).logits.float(), -1).cpu().numpy()
            for window, p in zip(chunk, probs):
                first = window["words"][0]
                for offset, position in enumerate(window["positions"]):
                    if position >= 0:
                        best = int(p[position].argmax())
                        chosen[window["row"]][first + offset] = best
                        confidence[window["row"]][first + offset] = float(p[position, best])

        results = []
        has_gold = "tags" in df.columns
        for i in range(len(df)):
            tokens = token_lists[i]
            text = df["text"].iat[i] if "text" in df.columns else None
            offsets = df["offsets"].iat[i] if "offsets" in df.columns else None
            if text is None or offsets is None or len(offsets) != len(tokens):
                text, offsets = join_words(tokens)
            pred_tags, _ = repair_bio([labels[k] for k in chosen[i]])
            item: dict[str, Any] = {
                "tokens": list(tokens),
                "text": text,
                "pred_tags": pred_tags,
                "entities": _entities(pred_tags, offsets, text, confidence[i]),
            }
            gold = df["tags"].iat[i] if has_gold else None
            if isinstance(gold, (list, tuple, np.ndarray)):
                item["gold_tags"] = list(gold)
                item["gold_entities"] = _entities(list(gold), offsets, text)
                item["correct"] = item["gold_tags"] == pred_tags
            results.append(item)
        return results

    def render(self, prediction):
        row: dict[str, Any] = {"text": prediction["text"], "entities": _show_entities(prediction["entities"])}
        if "gold_entities" in prediction:
            row["gold_entities"] = _show_entities(prediction["gold_entities"])
            row["correct"] = prediction.get("correct")
        row["tokens"] = " ".join(prediction["tokens"])
        row["tags"] = " ".join(prediction["pred_tags"])
        if "gold_tags" in prediction:
            row["gold_tags"] = " ".join(prediction["gold_tags"])
        return row


def _entities(tags: list[str], offsets, text: str, scores: list[float] | None = None) -> list[dict[str, Any]]:
    out = []
    for first, last, kind in tags_to_spans(tags):
        start, end = int(offsets[first][0]), int(offsets[last - 1][1])
        entity: dict[str, Any] = {"start": start, "end": end, "label": kind, "text": text[start:end]}
        if scores is not None:
            entity["score"] = round(float(np.mean(scores[first:last])), 4)
        out.append(entity)
    return out


def _show_entities(entities: list[dict[str, Any]]) -> str:
    return "; ".join(f"{e['text']} [{e['label']}]" for e in entities)
