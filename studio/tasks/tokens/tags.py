"""BIO tags: one tag read, a file's tag scheme detected and converted to IOB2, and repaired.

Tags are read as IOB2 (BIO); IOB1, BIOES and BILOU files are converted to IOB2. An ``I-X`` that
does not continue an ``X`` entity is read as the start of a new one (``B-X``), as the evaluation
(seqeval's default mode) would read it anyway, and counted in a warning. The training data, the
predictions and the scores all read tags through these functions, so they agree on what an
entity is.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from studio.data.text import is_missing
from studio.errors import DataError
from studio.tasks.base import Problem
from studio.tasks.tokens.cells import is_number, listing

_TAG = re.compile(r"^([BIESLU])[-_](\S.*)$", re.IGNORECASE)


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


def standardize_tags(tag_lists: list[list[Any]], source: str, locate: Callable[[int, int], str]) -> tuple[list[list[str]], list[Problem], str]:
    """Check one file's tags and convert them to IOB2. Raises ``DataError`` for tags that are not
    BIO-family tags; returns (tags, problems, the scheme the file was read as)."""
    problems: list[Problem] = []
    flat = [t for tags in tag_lists for t in tags]
    if flat and all(is_number(t) for t in flat):
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
            f"{source}: {len(bad_starts)} I- tag(s) do not continue an entity of the same type ({listing(examples)}); "
            "each was read as the beginning of a new entity (B-), as the evaluation reads it",
        ))
    return fixed, problems, scheme
