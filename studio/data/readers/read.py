"""``read_table``: one user data file to a ``Table``, sent to the reader its format needs
(worked out from the extension, the first bytes or the text)."""

from __future__ import annotations

from pathlib import Path

from studio.data.readers.delimited import read_delimited
from studio.data.readers.encoding import decode_text
from studio.data.readers.files import EXTENSIONS, SUPPORTED, check_file, read_bytes, refuse_known_binary, sniff_format
from studio.data.readers.frames import Table, check_frame
from studio.data.readers.jsonfiles import read_json, read_jsonl
from studio.data.readers.limits import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DECODED_BYTES,
    DEFAULT_MAX_FIELD_CHARS,
    DEFAULT_MAX_ROWS,
    ReadBudget,
)
from studio.data.readers.parquet import read_parquet
from studio.errors import DataError


def read_table(
    path: str | Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    max_decoded_bytes: int | None = DEFAULT_MAX_DECODED_BYTES,
    encoding: str | None = None,
) -> Table:
    """Read a CSV/TSV/JSONL/JSON/Parquet file; raise ``DataError`` with a fix-it message if it can't be.

    ``max_rows`` and ``max_decoded_bytes`` (None: no limit) bound what the file may become in
    memory; they are checked while the file is read (Parquet: its metadata first, then batch by
    batch), so a refusal comes before the file is decoded in full. ``encoding``: the text's
    encoding as the user chose it (``data.encoding``); None or 'auto' detects it."""
    path = Path(path)
    name = path.name or str(path)
    size = check_file(path, name, max_bytes)
    fmt = EXTENSIONS.get(path.suffix.lower())

    head = read_bytes(path, name, 4)
    if fmt == "parquet" or head == b"PAR1":
        # A Parquet file is recognised by its bytes too, so 'data.bin' or 'export' still work.
        budget = ReadBudget(name, size, max_rows=max_rows, max_decoded_bytes=max_decoded_bytes, compressed=True)
        return read_parquet(path, name, head, budget)
    if size == 0:
        raise DataError(f"file {name} is empty", hint=f"upload {SUPPORTED} with a header row and data rows")

    # Text is not compressed here (gzip is refused below), so its size on disk is its decoded text.
    budget = ReadBudget(name, size, max_rows=max_rows, max_decoded_bytes=max_decoded_bytes)
    budget.check_text()
    raw = read_bytes(path, name)
    refuse_known_binary(raw, name)
    text, encoding, notes = decode_text(raw, name, encoding)
    del raw  # the bytes can be as big as the file; only the text is needed from here on
    if not text.strip():
        raise DataError(f"file {name} is empty (it holds only blank lines)", hint=f"upload {SUPPORTED} with a header row and data rows")

    sniffed = fmt is None
    if fmt is None:
        fmt = sniff_format(text)
        if path.suffix.lower() not in ("", ".txt", ".text", ".dat"):
            notes.append(f"{name}: unknown extension '{path.suffix}', read as {fmt.upper()} from its content")

    delimiter = None
    if fmt == "jsonl":
        if text.lstrip()[:1] == "[":  # a JSON array saved as .jsonl: read it rather than fail on line 1
            df = read_json(text, name, notes, budget)
            notes.append(f"{name} holds one JSON array, not one object per line; read it as JSON")
        else:
            df = read_jsonl(text, name, notes, budget)
    elif fmt == "json":
        df = read_json(text, name, notes, budget)
    else:
        df, delimiter, delimited_notes = read_delimited(text, name, None if sniffed else fmt, max_field_chars, budget)
        notes.extend(delimited_notes)
        fmt = "tsv" if delimiter == "\t" or (delimiter is None and fmt == "tsv") else "csv"

    check_frame(df, name)
    return Table(df=df, path=path, format=fmt, encoding=encoding, delimiter=delimiter, notes=notes)
