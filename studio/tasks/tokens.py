"""Token classification: named entities and other BIO tagging (chunking, slot filling).

Three input shapes, all normalized to one row per sentence with ``tokens`` (words), ``tags``
(one IOB2 tag per word), ``text`` and ``offsets`` (each word's character span in ``text``):

* CoNLL-style text: ``token<TAB or space>tag`` per line (extra middle columns ignored: the first
  column is the token, the last the tag), a blank line between sentences, ``-DOCSTART-`` skipped;
* a table (JSONL, CSV...) with a ``tokens`` list and a ``tags`` list per row;
* a table with raw ``text`` and character-offset entity spans ``[{"start", "end", "label"}]``
  (or ``[start, end, label]`` triples), the shape annotation tools export. The text is split into
  words at spaces and punctuation (each CJK character is a word) and the spans become BIO tags.

Tags are read as IOB2 (BIO); IOB1, BIOES and BILOU files are converted to IOB2. An ``I-X`` that
does not continue an ``X`` entity is read as the start of a new one (``B-X``), as the evaluation
(seqeval's default mode) would read it anyway, and counted in a warning.

Words are split into the backbone's sub-tokens; only the first sub-token of a word carries the
label, the others and the special tokens get -100 (ignored by the loss). A sentence longer than
``max_length`` sub-tokens is cut into overlapping windows, never truncated: each word is labeled
(and predicted) in exactly one window, the one where it has the most context on both sides.
"""

from __future__ import annotations

import ast
import json
import logging
import math
import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from studio.data.columns import is_missing
from studio.errors import DataError
from studio.tasks.base import Problem, Task, TaskMeta, register

log = logging.getLogger(__name__)

IGNORE = -100
"""Label of positions the loss and the metrics skip: special tokens and non-first sub-tokens."""

CONLL_SUFFIXES = {".conll", ".conllx", ".conll03", ".txt", ".text", ".bio", ".iob", ".iob1", ".iob2", ".bioes", ".bilou", ".tsv", ".tab", ""}
"""Extensions whose files are read as CoNLL text when their lines look like ``token tag``."""
_ALWAYS_CONLL = {".conll", ".conllx", ".conll03", ".bio", ".iob", ".iob1", ".iob2", ".bioes", ".bilou"}

TOKEN_NAMES = ("tokens", "words", "token", "word", "sentence_tokens")
TAG_NAMES = ("tags", "ner_tags", "ner", "labels", "label", "tag", "bio", "iob")
ENTITY_NAMES = ("entities", "spans", "entity", "ents", "annotations", "label", "labels", "ner")

_HEADER_WORDS = {"token", "tokens", "word", "words", "form", "text"}
_HEADER_TAGS = {"tag", "tags", "label", "labels", "ner", "ner_tag", "ner_tags", "bio", "iob", "entity", "entities", "class"}
_TAG = re.compile(r"^([BIESLU])[-_](\S.*)$", re.IGNORECASE)
_SHOWN = 5  # examples listed per kind of problem

# CJK ideographs and kana: one word per character (these scripts do not separate words by spaces).
_CJK_RANGES = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F))


# ---- words and tags ----------------------------------------------------------------------------
def _char_class(ch: str) -> str:
    if ch.isspace():
        return "space"
    code = ord(ch)
    if any(lo <= code <= hi for lo, hi in _CJK_RANGES):
        return "cjk"
    category = unicodedata.category(ch)
    if category[0] in "LNM" or ch == "_":
        return "word"
    return "other"


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Split raw text into (word, start, end): runs of letters/digits/marks, and every other
    non-space character (punctuation, symbols, each CJK character) on its own."""
    words: list[tuple[str, int, int]] = []
    start = None
    for i, ch in enumerate(text):
        kind = _char_class(ch)
        if kind == "word":
            if start is None:
                start = i
            continue
        if start is not None:
            words.append((text[start:i], start, i))
            start = None
        if kind != "space":
            words.append((ch, i, i + 1))
    if start is not None:
        words.append((text[start:], start, len(text)))
    return words


def join_words(tokens: list[str]) -> tuple[str, list[list[int]]]:
    """The display text of a tokenized sentence (words joined by spaces) and each word's offsets."""
    offsets = []
    position = 0
    for token in tokens:
        offsets.append([position, position + len(token)])
        position += len(token) + 1
    return " ".join(tokens), offsets


def split_tag(tag: Any) -> tuple[str, str] | None:
    """('O', '') or (prefix, type) with the prefix upper-cased; None when not a BIO-family tag."""
    text = str(tag).strip()
    if text in ("O", "o"):
        return "O", ""
    match = _TAG.match(text)
    if not match:
        return None
    return match.group(1).upper(), match.group(2).strip()


def repair_bio(tags: list[str]) -> tuple[list[str], list[int]]:
    """IOB2 where every entity starts with B-: an I-X that does not continue an X entity becomes
    B-X. Returns the tags and the positions changed."""
    fixed: list[str] = []
    changed: list[int] = []
    previous = "O"
    for i, tag in enumerate(tags):
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
            changed.append(i)
        fixed.append(tag)
        previous = tag
    return fixed, changed


def tags_to_spans(tags: list[str]) -> list[tuple[int, int, str]]:
    """Entities of an IOB2 sequence as (first word, last word + 1, type). An I-X that does not
    continue an X entity starts a new one (seqeval's default reading)."""
    spans: list[tuple[int, int, str]] = []
    start, kind = None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, label = tag.partition("-")
        continues = prefix == "I" and kind == label and start is not None
        if start is not None and not continues:
            spans.append((start, i, kind))
            start, kind = None, None
        if prefix in ("B", "I") and start is None:
            start, kind = i, label
    return spans


def _to_iob2(parsed: list[list[tuple[str, str]]]) -> list[list[str]]:
    """(prefix, type) pairs of any supported scheme to IOB2 strings, before the I- repair."""
    out = []
    for sentence in parsed:
        tags = []
        for prefix, kind in sentence:
            if prefix == "O":
                tags.append("O")
            elif prefix in ("B", "S", "U"):
                tags.append(f"B-{kind}")
            else:  # I, E, L: inside an entity
                tags.append(f"I-{kind}")
        out.append(tags)
    return out


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    if isinstance(value, (float, np.floating)):
        return math.isfinite(value) and float(value).is_integer()
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()


def _as_list(value: Any) -> list | None:
    """A list cell as a list: a real list, a JSON/Python list literal (CSV), or space-separated text."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    if is_missing(value):
        return []
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.startswith("["):
        for parse in (json.loads, ast.literal_eval):
            try:
                parsed = parse(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                continue
            if isinstance(parsed, (list, tuple)):
                return list(parsed)
        return None
    return text.split()


def _listing(items: list[str], total: int | None = None) -> str:
    total = len(items) if total is None else total
    shown = "; ".join(items[:_SHOWN])
    return shown + (f"; … and {total - _SHOWN} more" if total > _SHOWN else "")


# ---- CoNLL files ---------------------------------------------------------------------------------
def _fields(line: str) -> list[str]:
    if "\t" in line:
        return [f.strip() for f in line.split("\t")]
    return line.split()


def looks_like_conll(text: str, sample_lines: int = 400) -> bool:
    """True when most non-blank lines end with a BIO-family tag (or hold one word each, for
    prediction input) and the file has sentence breaks or tag columns."""
    lines = [l for l in text.splitlines()[: sample_lines * 2] if l.strip() and not l.strip().startswith("-DOCSTART-")][:sample_lines]
    if not lines:
        return False
    tagged = sum(1 for l in lines if len(_fields(l)) >= 2 and split_tag(_fields(l)[-1]) is not None)
    return tagged >= max(1.0, 0.9 * len(lines) - 1)  # one line of slack for a header such as 'token<TAB>tag'


def read_conll(path: str | Path, **limits):
    """Read a CoNLL-style file into one row per sentence: tokens, tags (when the file has a tag
    column), _line (the line of the sentence's first word). ``limits``: ``max_rows`` (sentences)
    and ``max_decoded_bytes``, as ``read_table`` takes them."""
    from studio.data.readers import DEFAULT_MAX_BYTES, ReadBudget, Table, check_file, decode_text, read_bytes

    path = Path(path)
    name = path.name
    size = check_file(path, name, DEFAULT_MAX_BYTES)
    if size == 0:
        raise DataError(f"file {name} is empty", hint="give one 'token<TAB>tag' line per word and a blank line between sentences")
    budget = ReadBudget(name, size, **limits)
    budget.check_text()
    text, encoding, notes = decode_text(read_bytes(path, name), name)
    return Table(df=parse_conll(text, name, notes, budget), path=path, format="conll", encoding=encoding, notes=notes)


# Each word line becomes two strings (word, tag) and their two places in the sentence's lists.
_WORD_BYTES = 2 * 56 + 16


def parse_conll(text: str, name: str = "data.conll", notes: list[str] | None = None, budget=None) -> pd.DataFrame:
    """``budget``: a ``readers.ReadBudget`` counting sentences (rows) and decoded bytes as the text is read."""
    notes = notes if notes is not None else []
    sentences: list[tuple[int, list[str], list[str | None]]] = []
    tokens: list[str] = []
    tags: list[str | None] = []
    first_line = 0
    widths: Counter = Counter()
    header_skipped = False
    docstarts = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if budget is not None and not number & 4095:
            budget.count(len(sentences), len(text) + number * _WORD_BYTES)
        line = raw.strip()
        if not line or line.startswith("-DOCSTART-"):
            docstarts += line.startswith("-DOCSTART-")
            if tokens:
                sentences.append((first_line, tokens, tags))
                tokens, tags = [], []
            continue
        fields = _fields(line)
        if not sentences and not tokens and not header_skipped and len(fields) >= 2 and split_tag(fields[-1]) is None \
                and (fields[0].lower() in _HEADER_WORDS or fields[-1].lower() in _HEADER_TAGS):
            header_skipped = True  # a header line such as 'token<TAB>tag'
            notes.append(f"{name}: skipped the header line 1 ({line!r})")
            continue
        if not tokens:
            first_line = number
        widths[min(len(fields), 2)] += 1
        tokens.append(fields[0])
        tags.append(fields[-1] if len(fields) >= 2 else None)
    if tokens:
        sentences.append((first_line, tokens, tags))
    if not sentences:
        raise DataError(f"file {name} holds no sentences", hint="give one 'token<TAB>tag' line per word and a blank line between sentences")
    if budget is not None:
        budget.count(len(sentences), len(text) + sum(len(s[1]) for s in sentences) * _WORD_BYTES)

    has_tags = widths[2] >= widths[1]
    if has_tags:
        missing = [f"line {line + i}: {tok!r}" for line, toks, tgs in sentences for i, (tok, tag) in enumerate(zip(toks, tgs)) if tag is None]
        if missing:
            raise DataError(
                f"file {name}: {len(missing)} line(s) hold a word but no tag ({_listing(missing)})",
                hint="every line needs 'token<TAB>tag' (or 'token tag'); put a blank line between sentences",
            )
    rows = {
        "_line": [s[0] for s in sentences],
        "tokens": [s[1] for s in sentences],
    }
    if has_tags:
        rows["tags"] = [s[2] for s in sentences]
    if docstarts:
        notes.append(f"{name}: skipped {docstarts} -DOCSTART- line(s)")
    return pd.DataFrame(rows)


# ---- sub-tokens and windows ----------------------------------------------------------------------
def _special_layout(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after one sequence ([CLS] … [SEP])."""
    full = list(tokenizer("a")["input_ids"])
    bare = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    for i in range(len(full) - len(bare) + 1):
        if full[i : i + len(bare)] == bare:
            return full[:i], full[i + len(bare) :]
    return [], []


def word_pieces(tokenizer, sentences: list[list[str]], chunk: int = 20_000) -> list[list[list[int]]]:
    """Sub-token ids of every word, encoded one word at a time after a space (as it appears in
    running text); a word the tokenizer drops entirely becomes the unknown token."""
    flat = [" " + str(w) for words in sentences for w in words]
    ids: list[list[int]] = []
    for start in range(0, len(flat), chunk):
        part = flat[start : start + chunk]
        if part:
            ids.extend(tokenizer(part, add_special_tokens=False)["input_ids"])
    fallback = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else (tokenizer.pad_token_id or 0)
    out: list[list[list[int]]] = []
    position = 0
    for words in sentences:
        out.append([list(ids[position + i]) or [fallback] for i in range(len(words))])
        position += len(words)
    return out


def make_windows(lengths: list[int], budget: int, context: int | None = None) -> list[tuple[int, int]]:
    """Cut a sentence (sub-token counts per word, each <= budget) into windows of whole words of
    at most ``budget`` sub-tokens; consecutive windows share up to ``context`` sub-tokens."""
    n = len(lengths)
    if n == 0:
        return [(0, 0)]
    context = budget // 4 if context is None else context
    windows = []
    start = 0
    while True:
        end, used = start, 0
        while end < n and used + lengths[end] <= budget:
            used += lengths[end]
            end += 1
        windows.append((start, end))
        if end >= n:
            return windows
        nxt, back = end, 0
        while nxt - 1 > start and back + lengths[nxt - 1] <= context:
            nxt -= 1
            back += lengths[nxt]
        start = nxt


def owners(windows: list[tuple[int, int]], n: int) -> list[int]:
    """For each word, the window where it is farthest from an edge (most context both sides)."""
    best = [-1] * n
    margin = [-1] * n
    for index, (start, end) in enumerate(windows):
        for i in range(start, end):
            m = min(i - start, end - 1 - i)
            if m > margin[i]:
                best[i], margin[i] = index, m
    return best


def encode_sentences(tokenizer, sentences: list[list[str]], max_length: int) -> list[dict[str, Any]]:
    """Model inputs for sentences of words: one entry per window with ``input_ids``, the sentence
    index ``row``, the word range ``words`` and ``positions``: for each word of the window, the
    position of its first sub-token, or -1 when another window owns the word."""
    prefix, suffix = _special_layout(tokenizer)
    budget = max_length - len(prefix) - len(suffix)
    if budget < 1:
        raise DataError(f"training.max_length {max_length} leaves no room for words after the model's special tokens")
    pieces = word_pieces(tokenizer, sentences)
    encoded: list[dict[str, Any]] = []
    for row, words in enumerate(pieces):
        words = [p[:budget] for p in words]  # one absurdly long "word" (a URL) keeps its first pieces
        windows = make_windows([len(p) for p in words], budget)
        owner = owners(windows, len(words))
        for index, (start, end) in enumerate(windows):
            ids = list(prefix)
            positions = []
            for i in range(start, end):
                positions.append(len(ids) if owner[i] == index else -1)
                ids.extend(words[i])
            ids.extend(suffix)
            encoded.append({"row": row, "words": (start, end), "positions": positions, "input_ids": ids})
    return encoded


def _features(tokenizer, window: dict[str, Any]) -> dict[str, list[int]]:
    ids = window["input_ids"]
    features = {"input_ids": ids, "attention_mask": [1] * len(ids)}
    if "token_type_ids" in getattr(tokenizer, "model_input_names", ()):
        features["token_type_ids"] = [0] * len(ids)
    return features


# ---- metrics (seqeval) ---------------------------------------------------------------------------
def sequence_metrics(gold: list[list[str]], predicted: list[list[str]], per_type: bool = False) -> dict[str, Any]:
    """Entity-level precision/recall/F1 (micro over entities, exact span and type, seqeval's
    default mode), macro F1 over entity types, and token accuracy."""
    from seqeval.metrics import classification_report

    predicted = [repair_bio(list(p))[0] for p in predicted]
    words = sum(len(g) for g in gold)
    correct = sum(a == b for g, p in zip(gold, predicted) for a, b in zip(g, p))
    out: dict[str, Any] = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "macro_f1": 0.0,
                           "accuracy": correct / words if words else 0.0}
    has_entities = any(t != "O" for seq in list(gold) + predicted for t in seq)
    table: dict[str, dict[str, float]] = {}
    if has_entities:
        report = classification_report(gold, predicted, output_dict=True, zero_division=0)
        micro = report.pop("micro avg")
        macro = report.pop("macro avg")
        report.pop("weighted avg", None)
        out.update(precision=float(micro["precision"]), recall=float(micro["recall"]), f1=float(micro["f1-score"]),
                   macro_f1=float(macro["f1-score"]))
        table = {kind: {"precision": float(v["precision"]), "recall": float(v["recall"]), "f1": float(v["f1-score"]),
                        "support": int(v["support"])} for kind, v in sorted(report.items())}
    if per_type:
        out["per_type"] = table
        out["gold_entities"] = sum(len(tags_to_spans(g)) for g in gold)
        out["predicted_entities"] = sum(len(tags_to_spans(p)) for p in predicted)
    return out


# ---- the task ------------------------------------------------------------------------------------
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

    # ---- data --------------------------------------------------------------------------------
    def read_file(self, path, **limits):
        from studio.data.readers import read_table

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix in _ALWAYS_CONLL:
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
            out, problems = self._from_tokens(df, mapping, source, where, lines)
        else:
            out, problems = self._from_spans(df, mapping, source, where)
        if out.empty:
            errors = [p.message for p in problems if p.level == "error"]
            detail = ("\n  - " + "\n  - ".join(errors)) if errors else ""
            raise DataError(f"{source}: no usable sentences{detail}")
        scheme = out.attrs.get("scheme")
        out.attrs["columns"] = mapping
        out.attrs["input"] = mode
        out.attrs["scheme"] = scheme
        return out.reset_index(drop=True), problems

    def _from_tokens(self, df, mapping, source, where, lines):
        problems: list[Problem] = []
        bad_cells: list[str] = []
        mismatched: list[str] = []
        empty: list[str] = []
        blank_words = 0
        keep_rows, token_lists, tag_lists = [], [], []
        has_tags = "tags" in mapping
        for i, raw_tokens in enumerate(df[mapping["tokens"]].tolist()):
            tokens = _as_list(raw_tokens)
            tags = _as_list(df[mapping["tags"]].iat[i]) if has_tags else None
            if tokens is None or (has_tags and tags is None):
                which = "tokens" if tokens is None else "tags"
                bad_cells.append(f"{where(i)}: {which} {_short(raw_tokens if tokens is None else df[mapping['tags']].iat[i])}")
                continue
            if has_tags and len(tokens) != len(tags):
                mismatched.append(f"{where(i)}: {len(tokens)} tokens but {len(tags)} tags")
                continue
            words = [("" if is_missing(t) else str(t).strip()) for t in tokens]
            if any(not w for w in words):  # empty words carry nothing to tag; drop them with their tags
                blank_words += sum(1 for w in words if not w)
                kept = [k for k, w in enumerate(words) if w]
                words = [words[k] for k in kept]
                tags = [tags[k] for k in kept] if has_tags else None
            if not words:
                empty.append(where(i))
                continue
            keep_rows.append(i)
            token_lists.append(words)
            tag_lists.append(tags)
        if bad_cells:
            problems.append(Problem("error", f"{source}: {len(bad_cells)} row(s) whose tokens/tags are not lists "
                                             f"({_listing(bad_cells)}); give JSON lists like [\"Ada\", \"Lovelace\"] or words separated by spaces"))
        if mismatched:
            problems.append(Problem("error", f"{source}: {len(mismatched)} row(s) have a different number of tokens and tags "
                                             f"({_listing(mismatched)}); each word needs exactly one tag"))
        if empty:
            problems.append(Problem("warning", f"{source}: dropped {len(empty)} empty sentence(s) with no words ({_listing(empty)})"))
        if blank_words:
            problems.append(Problem("warning", f"{source}: dropped {blank_words} empty word(s) (and their tags)"))

        out = pd.DataFrame({"_row": [k + 1 for k in keep_rows]})
        if lines:
            out["_line"] = [lines[k] for k in keep_rows]
        out["tokens"] = token_lists
        joined = [join_words(t) for t in token_lists]
        out["text"] = [j[0] for j in joined]
        out["offsets"] = [j[1] for j in joined]
        if has_tags:
            line_of = (lambda r, w: f"line {lines[keep_rows[r]] + w}") if lines else (lambda r, w: f"row {keep_rows[r] + 1}, word {w + 1}")
            tags, found, scheme = standardize_tags(tag_lists, source, line_of)
            out["tags"] = tags
            problems.extend(found)
            out.attrs["scheme"] = scheme
        return out, problems

    def _from_spans(self, df, mapping, source, where):
        problems: list[Problem] = []
        kinds: dict[str, list[str]] = {"unreadable": [], "outside": [], "overlap": []}
        empty: list[str] = []
        misaligned: list[str] = []
        keep_rows, texts, token_lists, offset_lists, tag_lists = [], [], [], [], []
        has_spans = "entities" in mapping
        for i, raw_text in enumerate(df[mapping["text"]].tolist()):
            text = "" if is_missing(raw_text) else str(raw_text)
            words = split_words(text)
            if not words:
                empty.append(where(i))
                continue
            tags = None
            if has_spans:
                spans, error = parse_spans(df[mapping["entities"]].iat[i])
                if error:
                    kinds["unreadable"].append(f"{where(i)}: {error}")
                    continue
                tags, kind, detail, cut = spans_to_tags(text, words, spans)
                if kind:
                    kinds[kind].append(f"{where(i)}: {detail}")
                    continue
                misaligned.extend(f"{where(i)}: {c}" for c in cut)
            keep_rows.append(i)
            texts.append(text)
            token_lists.append([w for w, _, _ in words])
            offset_lists.append([[s, e] for _, s, e in words])
            tag_lists.append(tags)
        messages = {
            "unreadable": "row(s) whose entities cannot be read ({}); give a list like "
                          '[{{"start": 0, "end": 5, "label": "PER"}}] or [[0, 5, "PER"]] with offsets counted in characters',
            "outside": "row(s) with entity spans outside the text or empty ({}); offsets are character positions, "
                       "start counted from 0 and end exclusive",
            "overlap": "row(s) with overlapping entity spans ({}); BIO tags cannot represent nested or overlapping "
                       "entities: keep one of them",
        }
        for kind, found in kinds.items():
            if found:
                problems.append(Problem("error", f"{source}: {len(found)} " + messages[kind].format(_listing(found))))
        if empty:
            problems.append(Problem("warning", f"{source}: dropped {len(empty)} row(s) with an empty text ({_listing(empty)})"))
        if misaligned:
            problems.append(Problem(
                "warning",
                f"{source}: {len(misaligned)} entity span(s) start or end inside a word and were extended to whole words "
                f"({_listing(misaligned)}); check the offsets if that is not what you meant",
            ))
        out = pd.DataFrame({"_row": [k + 1 for k in keep_rows]})
        out["tokens"] = token_lists
        out["text"] = texts
        out["offsets"] = offset_lists
        if has_spans:
            out["tags"] = tag_lists
            out.attrs["scheme"] = "spans"
        return out, problems

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
            for key, value in _features(tokenizer, window).items():
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

    def text_lengths(self, df, tokenizer):
        prefix, suffix = _special_layout(tokenizer)
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
            batch = tokenizer.pad([_features(tokenizer, w) for w in chunk], return_tensors="pt")
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


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---- tag checking and conversion -----------------------------------------------------------------
def standardize_tags(tag_lists: list[list[Any]], source: str, locate: Callable[[int, int], str]) -> tuple[list[list[str]], list[Problem], str]:
    """Check one file's tags and convert them to IOB2. Raises ``DataError`` for tags that are not
    BIO-family tags; returns (tags, problems, the scheme the file was read as)."""
    problems: list[Problem] = []
    flat = [t for tags in tag_lists for t in tags]
    if flat and all(_is_number(t) for t in flat):
        shown = ", ".join(map(str, sorted({int(float(t)) for t in flat})[:8]))
        raise DataError(
            f"{source}: the tags are numbers ({shown}), not tag names",
            hint="write the tag names (B-PER, I-PER, O …) instead of their ids; for a Hugging Face dataset, map "
                 "ner_tags through the dataset's ClassLabel names first",
        )
    parsed: list[list[tuple[str, str]]] = []
    invalid: dict[str, tuple[str, int]] = {}
    for r, tags in enumerate(tag_lists):
        sentence = []
        for w, tag in enumerate(tags):
            result = None if is_missing(tag) else split_tag(tag)
            if result is None:
                key = "(empty)" if is_missing(tag) else str(tag).strip()
                first, count = invalid.get(key, (locate(r, w), 0))
                invalid[key] = (first, count + 1)
                result = ("O", "")
            sentence.append(result)
        parsed.append(sentence)
    if invalid:
        listed = ", ".join(f"{tag!r} ({count}×, first at {first})" for tag, (first, count) in list(invalid.items())[:8])
        more = f" and {len(invalid) - 8} more" if len(invalid) > 8 else ""
        raise DataError(
            f"{source}: unknown tag format: {listed}{more}",
            hint="tags must be O (outside any entity) or PREFIX-TYPE with the prefix B (begin) or I (inside), e.g. B-PER, I-PER "
                 "(IOB1, BIOES and BILOU prefixes E, S, L, U are converted); plain per-word tags such as part-of-speech "
                 "labels are not supported",
        )
    prefixes = {p for sentence in parsed for p, _ in sentence}
    scheme = "IOB2"
    if prefixes & {"E", "S"}:
        scheme = "BIOES"
    elif prefixes & {"L", "U"}:
        scheme = "BILOU"
    tags = _to_iob2(parsed)

    bad_starts: list[tuple[int, int, str, str]] = []
    b_starts = 0
    for r, sentence in enumerate(tags):
        previous = "O"
        for w, tag in enumerate(sentence):
            if tag.startswith("I-") and previous[2:] != tag[2:]:
                bad_starts.append((r, w, tag, previous if w else "sentence start"))
            elif tag.startswith("B-") and previous[2:] != tag[2:]:
                b_starts += 1
            previous = tag
    if bad_starts and scheme == "IOB2" and b_starts == 0:
        scheme = "IOB1"  # I- begins entities; B- only separates two adjacent entities of one type
    fixed = [repair_bio(sentence)[0] for sentence in tags]
    if scheme != "IOB2":
        problems.append(Problem("info", f"{source}: tags read as {scheme} and converted to IOB2 (B- begins every entity)"))
    elif bad_starts:
        examples = [f"{locate(r, w)}: {tag!r} after {prev!r}" for r, w, tag, prev in bad_starts]
        problems.append(Problem(
            "warning",
            f"{source}: {len(bad_starts)} I- tag(s) do not continue an entity of the same type ({_listing(examples)}); "
            "each was read as the beginning of a new entity (B-), as the evaluation reads it",
        ))
    return fixed, problems, scheme


def parse_spans(value: Any) -> tuple[list[tuple[Any, Any, str]], str | None]:
    """Entity spans from a cell: a list (or JSON text) of {"start", "end", "label"} objects or
    [start, end, label] triples. Returns (spans, None) or ([], what is wrong)."""
    if isinstance(value, str) and value.strip() and not value.strip().startswith("["):
        return [], f"expected a list of spans, found {_short(value)}"
    items = _as_list(value)
    if items is None:
        return [], f"expected a list of spans, found {_short(value)}"
    spans = []
    for k, item in enumerate(items, start=1):
        if isinstance(item, dict):
            start = _first(item, ("start", "start_offset", "begin", "start_char"))
            end = _first(item, ("end", "end_offset", "end_char"))
            label = _first(item, ("label", "type", "entity", "tag"))
            if isinstance(label, list) and len(label) == 1:  # {"labels": ["PER"]}-style
                label = label[0]
        elif isinstance(item, (list, tuple)) and len(item) == 3:
            start, end, label = item
        else:
            return [], f"span {k} is {_short(item)}, not {{\"start\", \"end\", \"label\"}} or [start, end, label]"
        if start is None or end is None or is_missing(label):
            return [], f"span {k} {_short(item)} lacks a start, an end or a label"
        if not (_is_number(start) and _is_number(end)):
            return [], f"span {k} {_short(item)} has offsets that are not whole numbers"
        spans.append((int(float(start)), int(float(end)), str(label).strip()))
    return spans, None


def _first(item: dict, keys: Iterable[str]) -> Any:
    for key in keys:
        if key in item:
            return item[key]
        if key + "s" in item:
            return item[key + "s"]
    return None


def spans_to_tags(text: str, words: list[tuple[str, int, int]], spans: list[tuple[int, int, str]]):
    """IOB2 tags of ``words`` from character spans. Returns (tags, problem kind, detail, cut):
    kind is 'outside' or 'overlap' for a span the row cannot keep; ``cut`` lists spans that
    start or end inside a word (extended to whole words)."""
    tags = ["O"] * len(words)
    cut: list[str] = []
    cleaned = []
    for start, end, label in sorted(set(spans)):
        shown = f"[{start}, {end}) {label!r}"
        if start < 0 or end > len(text) or start >= end:
            reason = f"ends at {end}, past the end of the text ({len(text)} characters)" if end > len(text) and start < end else (
                "starts before 0" if start < 0 else f"is empty or reversed (start {start} >= end {end})")
            return None, "outside", f"span {shown} {reason}", cut
        # Spaces at the edges of a selection are a common annotation slip, not part of the entity.
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start == end:
            return None, "outside", f"span {shown} covers only spaces", cut
        cleaned.append((start, end, label, shown))
    for (s1, e1, _, a), (s2, e2, _, b) in zip(cleaned, cleaned[1:]):
        if s2 < e1:
            return None, "overlap", f"spans {a} {text[s1:e1]!r} and {b} {text[s2:e2]!r} overlap", cut
    for start, end, label, shown in cleaned:
        inside = [i for i, (_, s, e) in enumerate(words) if s < end and e > start]
        if words[inside[0]][1] != start or words[inside[-1]][2] != end:
            cut.append(f"{shown} {text[start:end]!r} → {text[words[inside[0]][1]:words[inside[-1]][2]]!r}")
        if any(tags[i] != "O" for i in inside):
            return None, "overlap", f"span {shown} {text[start:end]!r} shares a word with another span once extended to whole words", cut
        for n, i in enumerate(inside):
            tags[i] = ("B-" if n == 0 else "I-") + label
    return tags, None, None, cut
