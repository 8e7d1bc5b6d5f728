"""What one file may become in memory: the size limits, the decoded-size estimate, and
``ReadBudget``, which counts a file's rows and decoded bytes while it is read."""

from __future__ import annotations

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
OBJECT_BYTES = 56
DICT_BYTES = 232


def read_limits(settings: Settings | None) -> dict[str, int | None]:
    """``read_table``'s limits (``max_rows``, ``max_decoded_bytes``) from a workspace's settings;
    the defaults without settings. Every reader of user files takes them as keyword arguments."""
    settings = settings or Settings()
    mb = settings.max_decoded_mb
    return {"max_rows": settings.max_rows, "max_decoded_bytes": None if mb is None else mb * MIB}


class ReadBudget:
    """The rows and decoded bytes one file may take, counted while it is read.

    Readers report their running totals (``count``) and a total from a file's own metadata
    (``declared_rows``); the first total past a limit ends the read with a ``DataError`` naming
    the file, what was measured, the limit and what to do. Decoded bytes are an estimate of what
    the file takes in memory once read: its values plus a Python object per value (see
    ``OBJECT_BYTES``), the way the DataFrame holds it."""

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


def human_bytes(n: float) -> str:
    """A size as people read it: '812 bytes', '3.4 MiB'."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{int(n):,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover
