"""The file itself: that it is there and within the size limit, its bytes, and what kind of
file it is (by its extension, by its first bytes, by its text)."""

from __future__ import annotations

import json
from pathlib import Path

from studio.data.readers.limits import human_bytes
from studio.errors import DataError

FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
SUPPORTED = "a CSV, TSV, JSONL, JSON or Parquet file"

# Well-known binary files people upload by mistake, so the message can say what to do instead.
_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one)", "export the sheet as CSV (Excel: File > Save As > 'CSV UTF-8'), or unzip it"),
    (b"\xd0\xcf\x11\xe0", "an old Office file (Excel .xls?)", "export the sheet as CSV (Excel: File > Save As > 'CSV UTF-8')"),
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it first"),
    (b"%PDF", "a PDF document", "export the table as CSV"),
    (b"SQLite format 3\x00", "an SQLite database", "export the table as CSV"),
)


def check_file(path: Path, name: str, max_bytes: int) -> int:
    if not path.exists():
        raise DataError(f"file {name} not found (looked for {path})", hint="check the path and the file name; relative paths start from the config file's folder")
    if path.is_dir():
        raise DataError(f"{name} is a folder, not a file", hint=f"point to {SUPPORTED} inside it")
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


def refuse_known_binary(raw: bytes, name: str) -> None:
    for magic, what, todo in _MAGIC:
        if raw.startswith(magic):
            raise DataError(f"file {name} is {what}, not a data table", hint=f"{todo}, then upload {SUPPORTED}")


def sniff_format(text: str) -> str:
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
