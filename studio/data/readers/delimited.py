"""Delimited text (CSV, TSV, ';' and '|' separated): the separator sniffed, every value kept as
the exact string in the file, and ragged rows, oversized fields and unclosed quotes reported with
the line they start on."""

from __future__ import annotations

import csv
import io
import threading
from contextlib import contextmanager
from typing import Iterator

import pandas as pd

from studio.data.readers.files import SUPPORTED
from studio.data.readers.frames import clean_columns, note_blank_names, short_list
from studio.data.readers.limits import OBJECT_BYTES, ReadBudget
from studio.errors import DataError

_DELIMITERS = (",", "\t", ";", "|")
_DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
_SNIFF_CHARS = 64 * 1024
_SNIFF_ROWS = 200

_FIELD_LIMIT_LOCK = threading.Lock()


@contextmanager
def _field_limit(limit: int) -> Iterator[None]:
    # csv.field_size_limit is process-wide state: set it only while we parse, one parse at a time.
    with _FIELD_LIMIT_LOCK:
        old = csv.field_size_limit(limit)
        try:
            yield
        finally:
            csv.field_size_limit(old)


class _Lines:
    """Iterates the text's lines for ``csv.reader`` while counting characters consumed, so the
    raw text of the record being parsed can be found again."""

    def __init__(self, text: str):
        self._lines = io.StringIO(text, newline="")
        self.pos = 0

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.pos += len(line)
        return line


def read_delimited(text: str, name: str, fmt: str | None, max_field_chars: int,
                   budget: ReadBudget | None = None) -> tuple[pd.DataFrame, str | None, list[str]]:
    """Parse delimited text; returns the frame, the separator (None: a single column) and notes."""
    budget = budget or ReadBudget(name, len(text))
    max_rows = budget.max_rows if budget.max_rows is not None else float("inf")
    notes: list[str] = []
    skipped_lines = 0
    first_line, _, rest = text.partition("\n")
    declared = None
    if first_line.strip().lower().startswith("sep=") and len(first_line.strip()) == 5:
        # Excel writes "sep=;" on the first line to declare the separator.
        declared = first_line.strip()[4]
        text, skipped_lines = rest, 1

    expected = {"csv": ",", "tsv": "\t"}.get(fmt)
    delimiter = declared or _sniff_delimiter(text, expected)
    if delimiter and expected and delimiter != expected and not declared:
        notes.append(f"{name} is separated by {_delimiter_name(delimiter)}s, not {_delimiter_name(expected)}s; read it that way")
    elif delimiter and not expected and delimiter != ",":
        notes.append(f"{name}: read as {_delimiter_name(delimiter)}-separated text")
    quoting = csv.QUOTE_MINIMAL
    if delimiter == "\t" and _tsv_without_quoting(text):
        quoting = csv.QUOTE_NONE  # many TSV files carry bare quotes in text ('"Great" movie')

    # No separator found in the header: one column per line. The unit-separator control character
    # stands in as the separator because text files do not contain it.
    lines = _Lines(text)
    reader = csv.reader(lines, delimiter=delimiter or "\x1f", quotechar='"', doublequote=True, quoting=quoting, strict=False)
    header: list[str] | None = None
    header_line = width = 0
    records: list[list[str]] = []
    short: list[int] = []
    long: list[tuple[int, int]] = []
    trimmed = 0
    end_line = skipped_lines  # physical line on which the previous record ended
    end_pos = 0  # character offset at which the previous record ended
    last_line = last_pos = 0  # where the last record started (line, character offset)
    with _field_limit(max_field_chars):
        try:
            for row in reader:
                last_line, end_line = end_line + 1, reader.line_num + skipped_lines
                last_pos, end_pos = end_pos, lines.pos
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # blank line
                if header is None:
                    header, header_line, width = row, last_line, len(row)
                    continue
                found = len(row)
                if found > width:
                    if any(cell.strip() for cell in row[width:]):
                        long.append((last_line, found))
                        continue
                    del row[width:]  # trailing separators with nothing after them
                    trimmed += 1
                elif found < width:
                    row.extend([""] * (width - found))
                    short.append(last_line)
                records.append(row)
                if len(records) > max_rows or not len(records) & 1023:
                    # The cells' text is about the file's; each cell is one more Python object.
                    budget.count(len(records), budget.size + len(records) * width * OBJECT_BYTES)
        except csv.Error as err:
            line = end_line + 1  # the record being read when the parser gave up started here
            if "field larger than field limit" in str(err):
                raise DataError(
                    f"file {name}, line {line}: a field is longer than {max_field_chars:,} characters",
                    hint=f"if a quote (\") on line {line} opens a field that is never closed, the rest of the file runs into "
                    "one cell: fix the quotes there; otherwise shorten the text",
                ) from None
            raise DataError(
                f"file {name}, line {line}: cannot be read as {_delimiter_name(delimiter)}-separated text ({err})",
                hint="check the quotes and separators on that line",
            ) from None

    if header is None:
        raise DataError(f"file {name} is empty", hint=f"upload {SUPPORTED} with a header row and data rows")
    if quoting != csv.QUOTE_NONE and (records or long):
        _check_unclosed_quote(text[last_pos:], name, delimiter, last_line, end_line)
    if long:
        first, found = long[0]
        others = [str(n) for n, _ in long[1:4]] + (["..."] if len(long) > 4 else [])
        more = f" (and {len(long) - 1} more such line(s): {', '.join(others)})" if len(long) > 1 else ""
        raise DataError(
            f"file {name}, line {first}: expected {width} fields (like the header on line {header_line}) but found {found}{more}",
            hint=f"a value probably contains the separator ({_delimiter_name(delimiter)} '{_show(delimiter)}') without quotes "
            "around it; put such values in double quotes, or remove the extra separators",
        )
    if short:
        # Missing trailing cells are common (an optional last column left out) and harmless: they
        # become empty cells, which the task treats as missing values and reports per role.
        notes.append(
            f"{name}: {len(short)} row(s) have fewer than {width} fields and were padded with empty cells (first at line {short[0]})"
        )
    if trimmed:
        notes.append(f"{name}: ignored empty trailing fields on {trimmed} row(s)")

    columns = clean_columns(header, name)
    if not records:
        raise DataError(f"file {name} has a header ({short_list(columns)}) but no data rows", hint="add rows below the header")
    budget.count(len(records), budget.size + len(records) * width * OBJECT_BYTES)
    df = pd.DataFrame(records, columns=columns)
    # A blank header over an all-empty column is a stray separator at the end of every line: drop it.
    blank = [c for raw, c in zip(header, columns) if not raw.strip()]
    empty = [c for c in blank if not df[c].str.strip().astype(bool).any()]
    if empty:
        df = df.drop(columns=empty)
        notes.append(f"{name}: dropped {len(empty)} empty column(s) without a header")
    note_blank_names([c for c in blank if c not in empty], name, notes)
    return df, delimiter, notes


def _check_unclosed_quote(tail: str, name: str, delimiter: str | None, line: int, end_line: int) -> None:
    """The lenient parser silently ends an unclosed quoted field at the end of the file; a strict
    re-parse of the last record alone tells whether that happened."""
    if '"' not in tail:
        return
    try:
        for _ in csv.reader(io.StringIO(tail, newline=""), delimiter=delimiter or "\x1f", quotechar='"', strict=True):
            pass
    except csv.Error as err:
        if "unexpected end of data" in str(err):
            raise DataError(
                f"file {name}, line {line}: a quoted field (starting with \") is never closed, so the rest of the file "
                f"(to line {end_line}) would be one cell",
                hint=f"add the missing closing quote on or after line {line}",
            ) from None


def _tsv_without_quoting(text: str) -> bool:
    """True when quotes in tab-separated text are part of the text rather than field quoting."""
    sample = _sample(text)
    if '"' not in sample:
        return False
    try:  # text after a closing quote ('"Great" movie') is not CSV-style quoting
        for _ in csv.reader(io.StringIO(sample, newline=""), delimiter="\t", quotechar='"', strict=True):
            pass
    except csv.Error as err:
        if "expected after" in str(err):
            return True
    quoted = _row_widths(sample, "\t", csv.QUOTE_MINIMAL)
    bare = _row_widths(sample, "\t", csv.QUOTE_NONE)
    return _consistency(bare) > _consistency(quoted)


def _sniff_delimiter(text: str, expected: str | None) -> str | None:
    """Pick the separator: the extension's one if it fits, else csv.Sniffer's guess if it fits,
    else the candidate whose rows most consistently match the header's field count. None when no
    candidate splits the header: the file is one column."""
    sample = _sample(text)
    scores: dict[str, tuple[float, int]] = {}
    for delimiter in _DELIMITERS:
        widths = _row_widths(sample, delimiter, csv.QUOTE_MINIMAL)
        if widths and widths[0] > 1:
            scores[delimiter] = (_consistency(widths), widths[0])
    if not scores:
        return None
    good = [d for d, (consistency, _) in scores.items() if consistency >= 0.9]
    if expected in good:
        return expected
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(_DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    if sniffed in good:
        return sniffed
    if good:
        return max(good, key=lambda d: scores[d])
    if expected in scores:
        return expected  # no candidate fits well: keep the extension's one so errors name real lines
    return max(scores, key=lambda d: scores[d])


def _sample(text: str) -> str:
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n") + 1]  # whole lines only
    return sample


def _row_widths(sample: str, delimiter: str, quoting: int) -> list[int]:
    """Field counts of the sample's first rows (a quoted field may hold line breaks)."""
    widths: list[int] = []
    try:
        for row in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter, quotechar='"', quoting=quoting):
            if row and not (len(row) == 1 and not row[0].strip()):
                widths.append(len(row))
            if len(widths) > _SNIFF_ROWS:
                break
    except csv.Error:
        return widths
    if len(widths) > 2 and len(sample) >= _SNIFF_CHARS // 2:
        widths.pop()  # the sample may cut the last record short
    return widths


def _consistency(widths: list[int]) -> float:
    if not widths:
        return 0.0
    return sum(1 for w in widths if w == widths[0]) / len(widths)


def _delimiter_name(delimiter: str | None) -> str:
    if delimiter is None:
        return "line"
    return _DELIMITER_NAMES.get(delimiter, f"'{delimiter}'")


def _show(delimiter: str | None) -> str:
    return "\\t" if delimiter == "\t" else (delimiter or "")
