"""Read one user data file (CSV, TSV, JSONL, JSON, Parquet) into a DataFrame.

Users bring files from Excel, scrapers, notebooks and other people's laptops, so this package
works out the format, the text encoding and the delimiter by itself, and every refusal is a
``DataError`` that names the file, the line (1-based, as a text editor shows it) and what to do.

Delimited text is parsed with the ``csv`` module rather than ``pandas.read_csv`` because we need
exact line numbers for ragged rows, a readable message for oversized fields, and every value
kept as the exact string in the file ("001", "NA", "1e5" must not become numbers or missing
values); turning values into numbers is the task's job. Empty cells stay empty strings, and the
tasks treat them as missing. JSON keeps its own types, and nested values (multi-label lists,
entity spans) stay Python lists/dicts.

One module a job: ``read`` (``read_table``: which reader a file goes to), ``files`` (the file
itself: size, bytes, what kind of file), ``encoding`` (bytes to text), ``delimited`` (CSV/TSV),
``jsonfiles`` (JSON lines and JSON), ``parquet``, ``frames`` (``Table`` and the column checks
every reader applies) and ``limits`` (what one file may become in memory: ``ReadBudget``).
This package's names below are what the rest of the studio reads files with.
"""

from studio.data.readers.encoding import decode_text
from studio.data.readers.files import check_file, read_bytes
from studio.data.readers.frames import Table
from studio.data.readers.limits import DEFAULT_MAX_BYTES, ReadBudget, human_bytes, read_limits
from studio.data.readers.read import read_table

__all__ = [
    "DEFAULT_MAX_BYTES",
    "ReadBudget",
    "Table",
    "check_file",
    "decode_text",
    "human_bytes",
    "read_bytes",
    "read_limits",
    "read_table",
]
