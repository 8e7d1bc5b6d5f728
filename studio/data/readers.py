"""Read one user data file (CSV, TSV, JSONL, JSON, Parquet) into a DataFrame.

Users bring files from Excel, scrapers, notebooks and other people's laptops, so this module
works out the format, the text encoding and the delimiter by itself, and every refusal is a
``DataError`` that names the file, the line (1-based, as a text editor shows it) and what to do.

Delimited text is parsed with the ``csv`` module rather than ``pandas.read_csv`` because we need
exact line numbers for ragged rows, a readable message for oversized fields, and every value
kept as the exact string in the file ("001", "NA", "1e5" must not become numbers or missing
values); turning values into numbers is the task's job. Empty cells stay empty strings, and the
tasks treat them as missing. JSON keeps its own types, and nested values (multi-label lists,
entity spans) stay Python lists/dicts.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from studio.errors import DataError
from studio.settings import Settings

MIB = 1024**2
DEFAULT_MAX_BYTES = 2 * 1024**3
"""Biggest file read_table accepts: the whole file is held in memory while it is parsed."""
DEFAULT_MAX_FIELD_CHARS = 1_000_000
"""Longest single cell; longer ones are nearly always an unclosed quote that swallowed the file."""
DEFAULT_MAX_ROWS: int | None = Settings.max_rows
"""Most rows of one file when no workspace settings are at hand (the ``max_rows`` setting's default)."""
DEFAULT_MAX_DECODED_BYTES: int | None = None if Settings.max_decoded_mb is None else Settings.max_decoded_mb * MIB
"""Most bytes one file may take once decoded, by default (the ``max_decoded_mb`` setting's default)."""

# A compressed file (Parquet) that decodes to more than BOMB_RATIO times its size on disk is a
# decompression bomb rather than data: text data compresses 3-10x, tables of repeated labels and
# numbers rarely past 30x, while a few kilobytes of zstd hold gigabytes of one repeated row. The
# rule starts only past BOMB_FLOOR decoded, so small files (a 100 KiB file may decode to 64 MiB,
# whatever its shape) are never refused by it; past it, a bomb is stopped at 64 MiB instead of at
# the (much larger) decoded-size limit, which matters when several requests arrive at once. It is
# part of the decoded-size limit: ``max_decoded_mb: none`` turns both off.
BOMB_RATIO = 100
BOMB_FLOOR = 64 * MIB

# What pandas holds per value beyond its characters, for the decoded-size estimate: a Python
# object header (a str is 49+ bytes, an int 28, a float 24) and the 8-byte pointer in the frame;
# a dict (a JSON record) is about 230 bytes before its keys and values. Conservative: values that
# pandas shares (repeated strings) are counted each time, as the tasks' cleaning makes copies.
_OBJECT_BYTES = 56
_DICT_BYTES = 232
# Parquet is decoded this many bytes at a time (by its metadata's estimate), so a refusal comes
# before more than one such batch beyond the limit is held.
_PARQUET_BATCH_BYTES = 8 * MIB
_PARQUET_BATCH_ROWS = 65_536

FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_DELIMITERS = (",", "\t", ";", "|")
_DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
_SUPPORTED = "a CSV, TSV, JSONL, JSON or Parquet file"
_SNIFF_CHARS = 64 * 1024
_SNIFF_ROWS = 200

# Well-known binary files people upload by mistake, so the message can say what to do instead.
_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one)", "export the sheet as CSV (Excel: File > Save As > 'CSV UTF-8'), or unzip it"),
    (b"\xd0\xcf\x11\xe0", "an old Office file (Excel .xls?)", "export the sheet as CSV (Excel: File > Save As > 'CSV UTF-8')"),
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it first"),
    (b"%PDF", "a PDF document", "export the table as CSV"),
    (b"SQLite format 3\x00", "an SQLite database", "export the table as CSV"),
)

_ENCODING_NAMES = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "utf-16-le": "UTF-16",
    "utf-16-be": "UTF-16",
    "utf-32-le": "UTF-32",
    "utf-32-be": "UTF-32",
    "gb18030": "GB18030 (Chinese)",
    "cp1252": "Windows-1252 / Latin-1 (Western European)",
    "latin-1": "Latin-1 / ISO-8859-1",
}


@dataclass
class Table:
    """A file read into a DataFrame, with what was detected and what the user should know."""

    df: pd.DataFrame
    path: Path
    format: str
    """One of 'csv', 'tsv', 'jsonl', 'json', 'parquet' ('csv' covers ';' and '|' separated text)."""
    encoding: str | None = None
    """Python codec the text was decoded with; None for Parquet."""
    delimiter: str | None = None
    """Field separator of delimited text; None for JSON and Parquet."""
    notes: list[str] = field(default_factory=list)
    """Human-readable warnings (odd encoding, padded rows...) to show beside the preview."""


def read_limits(settings: Settings | None) -> dict[str, int | None]:
    """``read_table``'s limits (``max_rows``, ``max_decoded_bytes``) from a workspace's settings;
    the defaults without settings. Every reader of user files takes them as keyword arguments."""
    settings = settings or Settings()
    mb = settings.max_decoded_mb
    return {"max_rows": settings.max_rows, "max_decoded_bytes": None if mb is None else mb * MIB}


def read_table(
    path: str | Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    max_decoded_bytes: int | None = DEFAULT_MAX_DECODED_BYTES,
) -> Table:
    """Read a CSV/TSV/JSONL/JSON/Parquet file; raise ``DataError`` with a fix-it message if it can't be.

    ``max_rows`` and ``max_decoded_bytes`` (None: no limit) bound what the file may become in
    memory; they are checked while the file is read (Parquet: its metadata first, then batch by
    batch), so a refusal comes before the file is decoded in full."""
    path = Path(path)
    name = path.name or str(path)
    size = check_file(path, name, max_bytes)
    fmt = _EXTENSIONS.get(path.suffix.lower())

    head = read_bytes(path, name, 4)
    if fmt == "parquet" or head == b"PAR1":
        # A Parquet file is recognised by its bytes too, so 'data.bin' or 'export' still work.
        budget = ReadBudget(name, size, max_rows=max_rows, max_decoded_bytes=max_decoded_bytes, compressed=True)
        return _read_parquet(path, name, head, budget)
    if size == 0:
        raise DataError(f"file {name} is empty", hint=f"upload {_SUPPORTED} with a header row and data rows")

    # Text is not compressed here (gzip is refused below), so its size on disk is its decoded text.
    budget = ReadBudget(name, size, max_rows=max_rows, max_decoded_bytes=max_decoded_bytes)
    budget.check_text()
    raw = read_bytes(path, name)
    _refuse_known_binary(raw, name)
    text, encoding, notes = decode_text(raw, name)
    del raw  # the bytes can be as big as the file; only the text is needed from here on
    if not text.strip():
        raise DataError(f"file {name} is empty (it holds only blank lines)", hint=f"upload {_SUPPORTED} with a header row and data rows")

    sniffed = fmt is None
    if fmt is None:
        fmt = _sniff_format(text)
        if path.suffix.lower() not in ("", ".txt", ".text", ".dat"):
            notes.append(f"{name}: unknown extension '{path.suffix}', read as {fmt.upper()} from its content")

    delimiter = None
    if fmt == "jsonl":
        if text.lstrip()[:1] == "[":  # a JSON array saved as .jsonl: read it rather than fail on line 1
            df = _read_json(text, name, notes, budget)
            notes.append(f"{name} holds one JSON array, not one object per line; read it as JSON")
        else:
            df = _read_jsonl(text, name, notes, budget)
    elif fmt == "json":
        df = _read_json(text, name, notes, budget)
    else:
        df, delimiter, delimited_notes = _read_delimited(text, name, None if sniffed else fmt, max_field_chars, budget)
        notes.extend(delimited_notes)
        fmt = "tsv" if delimiter == "\t" or (delimiter is None and fmt == "tsv") else "csv"

    _check_frame(df, name)
    return Table(df=df, path=path, format=fmt, encoding=encoding, delimiter=delimiter, notes=notes)


# ---- what a file may become in memory ------------------------------------------------------------
class ReadBudget:
    """The rows and decoded bytes one file may take, counted while it is read.

    Readers report their running totals (``count``) and a total from a file's own metadata
    (``declared_rows``); the first total past a limit ends the read with a ``DataError`` naming
    the file, what was measured, the limit and what to do. Decoded bytes are an estimate of what
    the file takes in memory once read: its values plus a Python object per value (see
    ``_OBJECT_BYTES``), the way the DataFrame holds it."""

    def __init__(self, name: str, size: int, *, max_rows: int | None = DEFAULT_MAX_ROWS,
                 max_decoded_bytes: int | None = DEFAULT_MAX_DECODED_BYTES, compressed: bool = False):
        self.name = name
        self.size = size
        self.max_rows = max_rows
        self.max_decoded_bytes = max_decoded_bytes
        self.compressed = compressed
        self.rows = 0
        self.decoded = 0

    def declared_rows(self, rows: int, where: str) -> None:
        """Rows a file says it holds (e.g. Parquet metadata), before any is decoded."""
        if self.max_rows is not None and rows > self.max_rows:
            raise DataError(
                f"file {self.name} has {rows:,} rows ({where}), more than the {self.max_rows:,} rows allowed for one data file",
                hint=self._rows_hint())

    def declared_bytes(self, nbytes: int, where: str) -> None:
        """Bytes a file says its values take uncompressed (they only grow when decoded)."""
        if self.max_decoded_bytes is not None and nbytes > self.max_decoded_bytes:
            raise DataError(
                f"file {self.name} holds {human_bytes(nbytes)} of values ({where}), more than the "
                f"{human_bytes(self.max_decoded_bytes)} one data file may take once decoded",
                hint=self._bytes_hint())

    def check_text(self) -> None:
        """Text files: the text alone is as big as the file."""
        if self.max_decoded_bytes is not None and self.size > self.max_decoded_bytes:
            raise DataError(
                f"file {self.name} is {human_bytes(self.size)}: its text alone is more than the "
                f"{human_bytes(self.max_decoded_bytes)} one data file may take once decoded",
                hint=self._bytes_hint())

    def count(self, rows: int, decoded: int) -> None:
        """The running totals so far; raises as soon as one passes its limit."""
        self.rows, self.decoded = rows, decoded
        if self.max_rows is not None and rows > self.max_rows:
            raise DataError(
                f"file {self.name} has more than {self.max_rows:,} rows, the most allowed for one data file "
                "(reading stopped there)",
                hint=self._rows_hint())
        limit = self.max_decoded_bytes
        if limit is None:
            return
        if decoded > limit:
            raise DataError(
                f"file {self.name} takes more than {human_bytes(limit)} once decoded, the most one data file may take "
                f"(reading stopped after {rows:,} rows, at about {human_bytes(decoded)})",
                hint=self._bytes_hint())
        if self.compressed and decoded > BOMB_FLOOR and decoded > BOMB_RATIO * self.size:
            raise DataError(
                f"file {self.name} is {human_bytes(self.size)} on disk but decodes to more than {human_bytes(decoded)} "
                f"(over {BOMB_RATIO} times its size; reading stopped after {rows:,} rows); real data rarely compresses "
                "that much, so the file is refused as a likely decompression bomb",
                hint="if the data is real, remove the repeated rows, or save it as CSV or JSON lines; an admin can turn "
                     "this check off together with the decoded-size limit ('studio settings set max_decoded_mb none')")

    def _rows_hint(self) -> str:
        return (f"split it into files of at most {self.max_rows:,} rows, or sample the rows you need; an admin can "
                "raise the limit with 'studio settings set max_rows <number>'")

    def _bytes_hint(self) -> str:
        return ("split it into smaller files, or drop the columns you do not need; an admin can raise the limit "
                "with 'studio settings set max_decoded_mb <megabytes>'")


# ---- the file itself ---------------------------------------------------------------------------
def check_file(path: Path, name: str, max_bytes: int) -> int:
    if not path.exists():
        raise DataError(f"file {name} not found (looked for {path})", hint="check the path and the file name; relative paths start from the config file's folder")
    if path.is_dir():
        raise DataError(f"{name} is a folder, not a file", hint=f"point to {_SUPPORTED} inside it")
    size = path.stat().st_size
    if size > max_bytes:
        raise DataError(
            f"file {name} is {human_bytes(size)}, over the {human_bytes(max_bytes)} limit for one data file",
            hint="split it into smaller files, or sample the rows you need",
        )
    return size


def read_bytes(path: Path, name: str, count: int = -1) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(count)
    except OSError as err:
        raise DataError(f"file {name} could not be opened ({err.strerror or err})", hint="check that it exists and that you may read it") from None


def _refuse_known_binary(raw: bytes, name: str) -> None:
    for magic, what, todo in _MAGIC:
        if raw.startswith(magic):
            raise DataError(f"file {name} is {what}, not a data table", hint=f"{todo}, then upload {_SUPPORTED}")


def human_bytes(n: float) -> str:
    """A size as people read it: '812 bytes', '3.4 MiB'."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{int(n):,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


# ---- text encoding -----------------------------------------------------------------------------
def decode_text(raw: bytes, name: str) -> tuple[str, str, list[str]]:
    """Decode the bytes, trying UTF-8 first, then the encodings that real uploads turn out to be.

    Byte-order marks are trusted. Without one, UTF-8 is tried strictly; if it fails, GB18030
    (Chinese Excel's default) and Windows-1252 (Western Excel's default) are tried, and kept only
    if the decoded text looks like real language, because both accept most byte sequences.
    """
    if raw.startswith(b"\xef\xbb\xbf"):  # Excel's "CSV UTF-8": the BOM is not part of the data
        return _decode_as(raw[3:], "utf-8-sig", name, offset=3), "utf-8-sig", []
    for bom, codec in (
        (b"\xff\xfe\x00\x00", "utf-32-le"),
        (b"\x00\x00\xfe\xff", "utf-32-be"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if raw.startswith(bom):
            text = _decode_as(raw[len(bom):], codec, name, offset=len(bom))
            return text, codec, [f"{name}: decoded as {_ENCODING_NAMES[codec]} (it starts with a byte-order mark), not UTF-8"]
    codec = _bomless_utf16(raw)
    if codec:
        text = _decode_as(raw, codec, name, offset=0)
        return text, codec, [f"{name}: decoded as {_ENCODING_NAMES[codec]} (no byte-order mark), not UTF-8; check the characters in the preview"]

    nul = raw.find(b"\x00")
    if nul >= 0:  # text files never hold NUL bytes; binary files nearly always do
        raise DataError(f"file {name} looks binary (NUL byte at offset {nul})", hint=f"upload {_SUPPORTED}")

    try:
        return raw.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError as err:
        bad = err.start
    line = raw.count(b"\n", 0, bad) + 1
    for codec in ("gb18030", "cp1252", "latin-1"):
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError:
            continue
        if _plausible(codec, text, bad):
            note = (
                f"{name}: decoded as {_ENCODING_NAMES[codec]}, not UTF-8 (first non-UTF-8 byte at offset {bad}, line {line}); "
                "check the accents/characters in the preview, and save the file as UTF-8 to be sure"
            )
            return text, codec, [note]
    raise DataError(
        f"file {name} is not UTF-8 text: the byte at offset {bad} (line {line}) is not valid UTF-8, "
        "and the file does not read as GB18030 (Chinese) or Windows-1252 (Western European) text either",
        hint="save it as UTF-8 (Excel: Save As > 'CSV UTF-8'; other editors: Encoding > UTF-8) and upload it again",
    )


def _decode_as(raw: bytes, codec: str, name: str, offset: int) -> str:
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as err:
        at = offset + err.start
        line = raw.count(b"\n", 0, err.start) + 1
        label = _ENCODING_NAMES[codec]
        raise DataError(
            f"file {name} is marked as {label} but the bytes at offset {at} (line {line}) are not valid {label}",
            hint="the file may be truncated or damaged; save it again as UTF-8",
        ) from None


def _bomless_utf16(raw: bytes) -> str | None:
    """UTF-16 without a byte-order mark: mostly-ASCII text has a NUL in every other byte."""
    sample = raw[:4096]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def _plausible(codec: str, text: str, bad_offset: int) -> bool:
    """Does text decoded with a legacy codec look like language rather than byte soup?"""
    # Look at the start and around the first non-UTF-8 byte (byte and char offsets are close
    # enough for this), so a huge file is not scanned char by char.
    sample = text[:262_144]
    if bad_offset > 200_000:
        sample += text[max(0, bad_offset - 131_072): bad_offset + 131_072]
    controls = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\t\n\r\f\v") or 0x7F <= ord(ch) < 0xA0)
    if controls > max(2, len(sample) // 1000):
        return False
    if codec == "gb18030":
        return _looks_chinese(sample)
    # Western text is mostly ASCII letters with some accented ones; Cyrillic, Greek or Chinese
    # bytes read as Windows-1252 give words made almost entirely of accented letters.
    letters = [ch for ch in sample if ch.isalpha()]
    accented = sum(1 for ch in letters if ord(ch) > 127)
    return bool(letters) and accented <= 0.4 * len(letters)


def _looks_chinese(text: str) -> bool:
    """GB18030 accepts many Latin-1 byte pairs too ('\u00e7\u00e3' becomes one CJK character), so
    decoding alone proves little. Real Chinese text is made of common (GB2312) characters standing
    in runs; misread Latin-1 gives single characters glued to Latin letters ('Fran\u00e7ois')."""
    wide = [i for i, ch in enumerate(text) if ord(ch) > 127]
    if not wide:
        return True
    common = ideographs = glued = 0
    for i in wide:
        ch = text[i]
        try:
            ch.encode("gb2312")
            common += 1
        except UnicodeEncodeError:
            pass
        if not (0x4E00 <= ord(ch) <= 0x9FFF or 0x3400 <= ord(ch) <= 0x4DBF):
            continue
        ideographs += 1
        before = text[i - 1] if i > 0 else " "
        after = text[i + 1] if i + 1 < len(text) else " "
        if (before.isascii() and before.isalpha()) or (after.isascii() and after.isalpha()):
            glued += 1
    return ideographs > 0 and common >= 0.8 * len(wide) and glued < 0.5 * ideographs


# ---- format ------------------------------------------------------------------------------------
def _sniff_format(text: str) -> str:
    """For .txt and unknown extensions: JSON array, JSON lines, or delimited text."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        return "json"
    if stripped.startswith("{"):
        first = stripped.split("\n", 1)[0].strip()
        try:
            return "jsonl" if isinstance(json.loads(first), dict) else "json"
        except json.JSONDecodeError:
            return "json"  # a pretty-printed object over several lines, e.g. {"data": [...]}
    return "csv"


# ---- delimited text ----------------------------------------------------------------------------
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


def _read_delimited(text: str, name: str, fmt: str | None, max_field_chars: int,
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
                    budget.count(len(records), budget.size + len(records) * width * _OBJECT_BYTES)
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
        raise DataError(f"file {name} is empty", hint=f"upload {_SUPPORTED} with a header row and data rows")
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

    columns = _clean_columns(header, name)
    if not records:
        raise DataError(f"file {name} has a header ({_list(columns)}) but no data rows", hint="add rows below the header")
    budget.count(len(records), budget.size + len(records) * width * _OBJECT_BYTES)
    df = pd.DataFrame(records, columns=columns)
    # A blank header over an all-empty column is a stray separator at the end of every line: drop it.
    blank = [c for raw, c in zip(header, columns) if not raw.strip()]
    empty = [c for c in blank if not df[c].str.strip().astype(bool).any()]
    if empty:
        df = df.drop(columns=empty)
        notes.append(f"{name}: dropped {len(empty)} empty column(s) without a header")
    _note_blank_names([c for c in blank if c not in empty], name, notes)
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


# ---- JSON --------------------------------------------------------------------------------------
_JSONL_HINT = 'each line of a JSONL file must be one complete JSON object, like {"text": "...", "label": "..."}'


def _read_jsonl(text: str, name: str, notes: list[str], budget: ReadBudget | None = None) -> pd.DataFrame:
    budget = budget or ReadBudget(name, len(text))
    records = []
    decoded = 0
    for number, line in enumerate(io.StringIO(text, newline=""), start=1):
        stripped = line.strip(" \t\r\n")
        if not stripped:
            continue
        try:
            obj = json.loads(stripped)
        except RecursionError:
            raise DataError(f"file {name}, line {number}: the JSON is nested too deeply to read", hint=_JSONL_HINT) from None
        except json.JSONDecodeError as err:
            column = err.colno + len(line) - len(line.lstrip(" \t"))
            raise DataError(f"file {name}, line {number}: not valid JSON ({err.msg} at column {column})", hint=_JSONL_HINT) from None
        if not isinstance(obj, dict):
            raise DataError(f"file {name}, line {number}: expected a JSON object ({{...}}), found {_json_kind(obj)}", hint=_JSONL_HINT)
        records.append(obj)
        # Each line's keys are new strings (one json.loads a line), its values one object each.
        decoded += len(line) + _DICT_BYTES + 2 * _OBJECT_BYTES * len(obj)
        budget.count(len(records), decoded)
    if not records:
        raise DataError(f"file {name} has no records", hint=_JSONL_HINT)
    return _frame_from_records(records, name, notes)


def _read_json(text: str, name: str, notes: list[str], budget: ReadBudget | None = None) -> pd.DataFrame:
    budget = budget or ReadBudget(name, len(text))
    objects = [0, len(text)]  # JSON objects decoded so far, bytes they take

    def counted(obj: dict) -> dict:
        # Called by the parser for every object it builds, so an array of millions of small
        # records is stopped at the decoded-size limit, not after it is all in memory. (Rows are
        # counted once the records are known: nested objects are not rows.)
        objects[0] += 1
        objects[1] += _DICT_BYTES + _OBJECT_BYTES * len(obj)
        if not objects[0] & 1023:
            budget.count(0, objects[1])
        return obj

    try:
        data = json.loads(text, object_hook=counted)
    except RecursionError:
        raise DataError(f"file {name}: the JSON is nested too deeply to read", hint="a JSON file must be one array of objects") from None
    except json.JSONDecodeError as err:
        if err.msg == "Extra data" and _first_line_is_object(text):
            # One object per line saved as .json: that is JSONL, read it as such.
            notes.append(f"{name} holds one JSON object per line (JSONL), not one JSON document; read it as JSONL")
            return _read_jsonl(text, name, notes, budget)
        raise DataError(
            f"file {name}, line {err.lineno}: not valid JSON ({err.msg} at column {err.colno})",
            hint="fix the file or export it again; a JSON file must be one array of objects",
        ) from None

    records = data
    if isinstance(data, dict):
        lists = {k: v for k, v in data.items() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)}
        if len(lists) == 1:
            key, records = next(iter(lists.items()))
            notes.append(f"{name}: read the records under the key '{key}'")
        elif data and all(isinstance(v, list) for v in data.values()) and len({len(v) for v in data.values()}) == 1:
            # Column-oriented JSON ({"text": [...], "label": [...]}), as pandas' to_json writes it.
            notes.append(f"{name}: read as columns (one list per column)")
            length = len(next(iter(data.values())))
            budget.count(length, objects[1] + length * len(data) * _OBJECT_BYTES)
            records = [{k: v[i] for k, v in data.items()} for i in range(length)]
        else:
            keys = _list([str(k) for k in data])
            raise DataError(
                f"file {name} holds a JSON object with keys {keys}, not an array of records",
                hint='a JSON file must be an array of objects, [{"text": "...", "label": "..."}, ...], or an object holding one such array',
            )
    if not isinstance(records, list):
        raise DataError(
            f"file {name} holds {_json_kind(records)}, not an array of records",
            hint='a JSON file must be an array of objects, [{"text": "...", "label": "..."}, ...]',
        )
    if not records:
        raise DataError(f"file {name} holds an empty array: there are no rows", hint="add records to the array")
    budget.count(len(records), objects[1])
    for index, item in enumerate(records):
        if not isinstance(item, dict):
            raise DataError(
                f"file {name}: item {index + 1} of the JSON array is {_json_kind(item)}, not an object",
                hint='every item must be an object like {"text": "...", "label": "..."}',
            )
    return _frame_from_records(records, name, notes)


def _first_line_is_object(text: str) -> bool:
    first = text.lstrip().split("\n", 1)[0].strip()
    try:
        return isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        return False


def _frame_from_records(records: list[dict[str, Any]], name: str, notes: list[str]) -> pd.DataFrame:
    keys: dict[str, None] = {}
    for record in records:
        for key in record:
            keys.setdefault(key, None)
    columns = _clean_columns(list(keys), name)
    _note_blank_names([c for k, c in zip(keys, columns) if not str(k).strip()], name, notes)
    data = {}
    missing = object()
    for key, column in zip(keys, columns):
        values = [record.get(key, missing) for record in records]
        if any(v is missing or v is None for v in values):
            # Keep Python objects: letting pandas infer would turn [1, missing] into [1.0, NaN].
            data[column] = pd.Series([None if v is missing else v for v in values], dtype=object)
        else:
            # pd.Series keeps lists/dicts as objects and gives ints, floats and strings their dtype.
            data[column] = pd.Series(values)
    return pd.DataFrame(data)


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    return "a number"


# ---- Parquet -----------------------------------------------------------------------------------
def _read_parquet(path: Path, name: str, head: bytes, budget: ReadBudget | None = None) -> Table:
    """Read a Parquet file within the budget: rows and sizes from its metadata first (nothing
    decoded), then batch by batch, each batch's decoded size counted before it is kept.

    Text written with a dictionary (a value repeated a million times is stored once, with a few
    bits per row) is read as a dictionary, so a batch is measured from its dictionary and indices
    before its values are written out; only batches within the budget are decoded. Batches are
    sized from the metadata (bytes and values per row), so plain values come a few MiB at a time.
    What stays out of reach: a hand-made file whose metadata lies about its sizes can still make
    one batch of plain (not dictionary) values larger than planned before it is counted."""
    if head != b"PAR1":
        raise DataError(f"file {name} is not a Parquet file (it does not start with the Parquet marker 'PAR1'){_what_it_looks_like(path)}")
    import pyarrow as pa  # heavy: only when a Parquet file is read
    import pyarrow.parquet as pq

    budget = budget or ReadBudget(name, path.stat().st_size, compressed=True)
    try:
        parquet = pq.ParquetFile(path)
        metadata = parquet.metadata
        schema = parquet.schema_arrow
        groups = [metadata.row_group(i) for i in range(metadata.num_row_groups)]
        leaves = [metadata.schema.column(j) for j in range(metadata.num_columns)]
    except (pa.ArrowException, OSError, ValueError) as err:
        raise _unreadable_parquet(name, err) from None
    budget.declared_rows(metadata.num_rows, "as its Parquet metadata says")
    budget.declared_bytes(sum(g.total_byte_size for g in groups), "uncompressed, as its Parquet metadata says")
    notes: list[str] = []
    columns = _clean_columns(list(schema.names), name)
    _note_blank_names([c for k, c in zip(schema.names, columns) if not k.strip()], name, notes)

    dictionary_leaves = [j for j, leaf in enumerate(leaves)
                         if leaf.physical_type == "BYTE_ARRAY" and leaf.logical_type.type in ("STRING", "NONE", "ENUM", "JSON", "BSON")
                         and any(g.column(j).has_dictionary_page for g in groups)]
    batches = []
    rows = decoded = 0
    try:
        if dictionary_leaves:
            parquet = pq.ParquetFile(path, metadata=metadata, read_dictionary=dictionary_leaves)
        for batch in _parquet_batches(parquet, groups):
            rows += batch.num_rows
            decoded += sum(_decoded_bytes(pa, column, top=True) for column in batch.columns)
            budget.count(rows, decoded)
            # Within the budget: the values as the file's schema has them (dictionaries written out).
            arrays = [column if column.type == wanted.type else column.cast(wanted.type)
                      for column, wanted in zip(batch.columns, schema)]
            batches.append(pa.RecordBatch.from_arrays(arrays, names=columns))
        # The schema's metadata goes along: pandas' (index columns, dtypes) is read from it.
        table = (pa.Table.from_batches(batches).replace_schema_metadata(schema.metadata) if batches
                 else schema.empty_table().rename_columns(columns))
    except (pa.ArrowException, OSError, ValueError) as err:
        raise _unreadable_parquet(name, err) from None
    del batches
    df = table.to_pandas(integer_object_nulls=True)  # ints with gaps stay ints, not floats
    for index, arrow_field in enumerate(table.schema):
        if pa.types.is_nested(arrow_field.type):
            # pyarrow gives numpy arrays for lists; tasks expect plain lists/dicts, as from JSON.
            df[arrow_field.name] = pd.Series(table.column(index).to_pylist(), dtype=object)
    _check_frame(df, name)
    return Table(df=df, path=path, format="parquet", notes=notes)


def _parquet_batches(parquet, groups) -> Iterator[Any]:
    """The file's record batches, row group by row group (a batch of lists read as dictionaries
    cannot span two), about ``_PARQUET_BATCH_BYTES`` each by the metadata: the group's encoded
    bytes per row, or 8 bytes per value if more (a row can hold a list of many values)."""
    for index, group in enumerate(groups):
        if not group.num_rows:
            continue
        values = sum(group.column(j).num_values for j in range(group.num_columns))
        per_row = max(group.total_byte_size, 8 * values) / group.num_rows
        batch_rows = int(min(_PARQUET_BATCH_ROWS, max(1, _PARQUET_BATCH_BYTES // max(per_row, 1.0))))
        yield from parquet.iter_batches(batch_size=batch_rows, row_groups=[index], use_pandas_metadata=False)


def _unreadable_parquet(name: str, err: BaseException) -> DataError:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return DataError(f"file {name} could not be read as Parquet ({reason})", hint="the file may be truncated or damaged; export it again")


def _is_text(pa, kind) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind)


def _decoded_bytes(pa, array, top: bool = False) -> int:
    """What an array takes once decoded: its values (text in dictionaries counted as written
    out, without writing it out) and the Python objects pandas makes for them (``_OBJECT_BYTES``
    each: text, lists, records, and numbers inside lists; numbers at the top level stay numpy).
    The dictionaries themselves are not counted: they go once a batch is decoded, and they are
    within the row group's declared size, checked before reading."""
    import pyarrow.compute as pc

    kind = array.type
    n = len(array)
    if pa.types.is_dictionary(kind):
        values = array.dictionary
        if _is_text(pa, values.type):
            written = pc.sum(pc.take(pc.binary_length(values), array.indices)).as_py() or 0
            return int(written) + n * (8 + _OBJECT_BYTES)
        return n * (8 + (0 if top else _OBJECT_BYTES))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return n * (8 + _OBJECT_BYTES) + _decoded_bytes(pa, array.flatten())
    if pa.types.is_struct(kind):
        return n * _DICT_BYTES + sum(_decoded_bytes(pa, child) for child in array.flatten())
    if pa.types.is_map(kind):
        return n * (8 + _DICT_BYTES) + _decoded_bytes(pa, array.keys) + _decoded_bytes(pa, array.items)
    if _is_text(pa, kind) or not top or (array.null_count and pa.types.is_integer(kind)):  # ints with gaps: objects
        return array.nbytes + n * _OBJECT_BYTES
    return array.nbytes


def _what_it_looks_like(path: Path) -> str:
    head = read_bytes(path, path.name, 512)
    if not head.strip():
        return "; it is empty"
    try:
        text = head.decode("utf-8").lstrip()
    except UnicodeDecodeError:
        return ""
    if text[:1] in "[{":
        return "; it looks like JSON text: give it a .json or .jsonl extension"
    return "; it looks like text: if it is CSV, give it a .csv extension"


# ---- shared checks -----------------------------------------------------------------------------
def _clean_columns(names: list[Any], name: str) -> list[str]:
    """Strip header names (users map columns by name), name blank ones, refuse duplicates."""
    columns = [str(raw).strip() or f"column_{position}" for position, raw in enumerate(names, start=1)]
    seen: dict[str, list[int]] = {}
    for position, column in enumerate(columns, start=1):
        seen.setdefault(column, []).append(position)
    duplicates = {c: p for c, p in seen.items() if len(p) > 1}
    if duplicates:
        listed = "; ".join(f"'{c}' (columns {', '.join(map(str, p))})" for c, p in duplicates.items())
        raise DataError(f"file {name} has duplicate column names: {listed}", hint="rename the columns so each name appears once")
    return columns


def _note_blank_names(renamed: list[str], name: str, notes: list[str]) -> None:
    if renamed:
        notes.append(f"{name}: named {len(renamed)} column(s) that had a blank header: {_list(renamed)}")


def _check_frame(df: pd.DataFrame, name: str) -> None:
    if df.shape[1] == 0:
        raise DataError(f"file {name} has no columns", hint=f"upload {_SUPPORTED} with a header row")
    if df.shape[0] == 0:
        raise DataError(f"file {name} has columns ({_list(list(df.columns))}) but no rows", hint="add data rows")


def _list(items: list[str], limit: int = 20) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
