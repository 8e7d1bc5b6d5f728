"""The rows of each input shape as one row per sentence: ``tokens``, ``tags`` (IOB2), ``text``
and ``offsets`` (each word's character span in ``text``).

``from_tokens`` reads token and tag lists (a table, or a CoNLL file already read into that
shape); ``from_spans`` reads raw text with character-offset entity spans. Both drop what holds
nothing to tag (with a warning), report each row they cannot use as a problem, and record the tag
scheme they read in ``attrs["scheme"]``. Which columns hold what is the task's decision.
"""

from __future__ import annotations

import pandas as pd

from studio.data.text import is_missing
from studio.tasks.base import Problem
from studio.tasks.tokens.cells import as_list, listing, short
from studio.tasks.tokens.spans import join_words, parse_spans, split_words, spans_to_tags
from studio.tasks.tokens.tags import standardize_tags


def from_tokens(df, mapping, source, where, lines):
    """Sentences from the ``tokens`` (and ``tags``) columns ``mapping`` names; ``where(i)`` locates row
    ``i`` in messages, ``lines`` holds the first line of each sentence of a CoNLL file (else None)."""
    problems: list[Problem] = []
    bad_cells: list[str] = []
    mismatched: list[str] = []
    empty: list[str] = []
    blank_words = 0
    keep_rows, token_lists, tag_lists = [], [], []
    has_tags = "tags" in mapping
    for i, raw_tokens in enumerate(df[mapping["tokens"]].tolist()):
        tokens = as_list(raw_tokens)
        tags = as_list(df[mapping["tags"]].iat[i]) if has_tags else None
        if tokens is None or (has_tags and tags is None):
            which = "tokens" if tokens is None else "tags"
            bad_cells.append(f"{where(i)}: {which} {short(raw_tokens if tokens is None else df[mapping['tags']].iat[i])}")
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
                                         f"({listing(bad_cells)}); give JSON lists like [\"Ada\", \"Lovelace\"] or words separated by spaces"))
    if mismatched:
        problems.append(Problem("error", f"{source}: {len(mismatched)} row(s) have a different number of tokens and tags "
                                         f"({listing(mismatched)}); each word needs exactly one tag"))
    if empty:
        problems.append(Problem("warning", f"{source}: dropped {len(empty)} empty sentence(s) with no words ({listing(empty)})"))
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


def from_spans(df, mapping, source, where):
    """Sentences from the ``text`` (and ``entities``) columns ``mapping`` names; ``where(i)`` locates
    row ``i`` in messages."""
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
            problems.append(Problem("error", f"{source}: {len(found)} " + messages[kind].format(listing(found))))
    if empty:
        problems.append(Problem("warning", f"{source}: dropped {len(empty)} row(s) with an empty text ({listing(empty)})"))
    if misaligned:
        problems.append(Problem(
            "warning",
            f"{source}: {len(misaligned)} entity span(s) start or end inside a word and were extended to whole words "
            f"({listing(misaligned)}); check the offsets if that is not what you meant",
        ))
    out = pd.DataFrame({"_row": [k + 1 for k in keep_rows]})
    out["tokens"] = token_lists
    out["text"] = texts
    out["offsets"] = offset_lists
    if has_spans:
        out["tags"] = tag_lists
        out.attrs["scheme"] = "spans"
    return out, problems
