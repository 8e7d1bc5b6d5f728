"""CoNLL-style text files: ``token<TAB or space>tag`` per line, a blank line between sentences.

Extra middle columns are ignored (the first column is the token, the last the tag), ``-DOCSTART-``
lines are skipped, and so is a header line such as ``token<TAB>tag``; a file with one word per line
and no tag column is prediction input. Such files are known by their extension, or, for generic
ones (.txt, .tsv...), by their lines looking like ``token tag``. Sentences and decoded bytes are
counted against the workspace's limits while the text is parsed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from studio.errors import DataError
from studio.tasks.tokens.cells import listing
from studio.tasks.tokens.tags import split_tag

CONLL_SUFFIXES = {".conll", ".conllx", ".conll03", ".txt", ".text", ".bio", ".iob", ".iob1", ".iob2", ".bioes", ".bilou", ".tsv", ".tab", ""}
"""Extensions whose files are read as CoNLL text when their lines look like ``token tag``."""
ALWAYS_CONLL = {".conll", ".conllx", ".conll03", ".bio", ".iob", ".iob1", ".iob2", ".bioes", ".bilou"}

_HEADER_WORDS = {"token", "tokens", "word", "words", "form", "text"}
_HEADER_TAGS = {"tag", "tags", "label", "labels", "ner", "ner_tag", "ner_tags", "bio", "iob", "entity", "entities", "class"}


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


def read_conll(path: str | Path, encoding: str | None = None, **limits):
    """Read a CoNLL-style file into one row per sentence: tokens, tags (when the file has a tag
    column), _line (the line of the sentence's first word). ``encoding`` and ``limits``
    (``max_rows``: sentences, ``max_decoded_bytes``) as ``read_table`` takes them."""
    from studio.data.readers import DEFAULT_MAX_BYTES, ReadBudget, Table, check_file, decode_text, read_bytes

    path = Path(path)
    name = path.name
    size = check_file(path, name, DEFAULT_MAX_BYTES)
    if size == 0:
        raise DataError(f"file {name} is empty", hint="give one 'token<TAB>tag' line per word and a blank line between sentences")
    budget = ReadBudget(name, size, **limits)
    budget.check_text()
    text, used, notes = decode_text(read_bytes(path, name), name, encoding)
    return Table(df=parse_conll(text, name, notes, budget), path=path, format="conll", encoding=used, notes=notes)


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
                f"file {name}: {len(missing)} line(s) hold a word but no tag ({listing(missing)})",
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
