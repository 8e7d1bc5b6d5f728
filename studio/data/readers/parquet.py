"""Parquet, read within the budget: rows and sizes from its metadata first, then batch by batch,
each batch's decoded size counted before it is kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from studio.data.readers.files import read_bytes
from studio.data.readers.frames import Table, check_frame, clean_columns, note_blank_names
from studio.data.readers.limits import DICT_BYTES, MIB, OBJECT_BYTES, ReadBudget
from studio.errors import DataError

# Parquet is decoded this many bytes at a time (by its metadata's estimate), so a refusal comes
# before more than one such batch beyond the limit is held.
_PARQUET_BATCH_BYTES = 8 * MIB
_PARQUET_BATCH_ROWS = 65_536


def read_parquet(path: Path, name: str, head: bytes, budget: ReadBudget | None = None) -> Table:
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
    columns = clean_columns(list(schema.names), name)
    note_blank_names([c for k, c in zip(schema.names, columns) if not k.strip()], name, notes)

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
    check_frame(df, name)
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
    out, without writing it out) and the Python objects pandas makes for them (``OBJECT_BYTES``
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
            return int(written) + n * (8 + OBJECT_BYTES)
        return n * (8 + (0 if top else OBJECT_BYTES))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return n * (8 + OBJECT_BYTES) + _decoded_bytes(pa, array.flatten())
    if pa.types.is_struct(kind):
        return n * DICT_BYTES + sum(_decoded_bytes(pa, child) for child in array.flatten())
    if pa.types.is_map(kind):
        return n * (8 + DICT_BYTES) + _decoded_bytes(pa, array.keys) + _decoded_bytes(pa, array.items)
    if _is_text(pa, kind) or not top or (array.null_count and pa.types.is_integer(kind)):  # ints with gaps: objects
        return array.nbytes + n * OBJECT_BYTES
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
