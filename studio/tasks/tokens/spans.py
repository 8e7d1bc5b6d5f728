"""Raw text and character offsets: the words of a text, the text of a word list, entity spans.

Annotation tools export raw ``text`` with character-offset entity spans ``[{"start", "end",
"label"}]`` (or ``[start, end, label]`` triples). The text is split into words at spaces and
punctuation (each CJK character is a word) and the spans become the IOB2 tags of those words; a
span that starts or ends inside a word is extended to the whole word. The way back, ``join_words``,
gives a tokenized sentence a display text and each word's offsets, so that every prediction shows
its entities as spans of its text.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Iterable

from studio.data.text import is_cjk, is_missing
from studio.tasks.tokens.cells import as_list, is_number, short

def _char_class(ch: str) -> str:
    if ch.isspace():
        return "space"
    if is_cjk(ch):  # Han characters and kana: one word per character (no spaces between words)
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


def parse_spans(value: Any) -> tuple[list[tuple[Any, Any, str]], str | None]:
    """Entity spans from a cell: a list (or JSON text) of {"start", "end", "label"} objects or
    [start, end, label] triples. Returns (spans, None) or ([], what is wrong)."""
    if isinstance(value, str) and value.strip() and not value.strip().startswith("["):
        return [], f"expected a list of spans, found {short(value)}"
    items = as_list(value)
    if items is None:
        return [], f"expected a list of spans, found {short(value)}"
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
            return [], f"span {k} is {short(item)}, not {{\"start\", \"end\", \"label\"}} or [start, end, label]"
        if start is None or end is None or is_missing(label):
            return [], f"span {k} {short(item)} lacks a start, an end or a label"
        if not (is_number(start) and is_number(end)):
            return [], f"span {k} {short(item)} has offsets that are not whole numbers"
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
