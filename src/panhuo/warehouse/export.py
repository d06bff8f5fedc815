"""Exports a person opens (Parquet or CSV), with money in RMB exactly and written atomically.

Money is stored as int64 fen (``<name>_fen``) and leaves as ``<name>`` in ``decimal128(18, 2)``
(Parquet) or text with two decimals (CSV). The conversion never goes through float: a fen value *is*
the unscaled integer of a two-decimal decimal, so the Arrow array is built from the integers directly
(two's complement 128-bit words), and CSV text is Arrow's exact decimal formatting. The file is written
to a temporary sibling and renamed into place, batch by batch, so memory stays flat.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from panhuo._io import atomic_path
from panhuo.errors import ConfigError

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["MONEY_TYPE", "fen_array_to_decimal", "check_export_path", "write_export"]

MONEY_TYPE = pa.decimal128(18, 2)
_MAX_FEN = 10**18 - 1  # what decimal128(18, 2) holds


def fen_array_to_decimal(fen: pa.Array | pa.ChunkedArray) -> pa.Array:
    """An int64 fen array as ``decimal128(18, 2)``; nulls stay null.

    Raises
    ------
    ValueError
        A value does not fit 18 digits (more than 9,999,999,999,999,999.99 RMB).
    """
    if isinstance(fen, pa.ChunkedArray):
        fen = fen.combine_chunks()
    fen = fen.cast(pa.int64())
    n = len(fen)
    values = fen.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    if n and (values.max() > _MAX_FEN or values.min() < -_MAX_FEN):
        raise ValueError(f"a money value does not fit decimal(18,2): {int(np.abs(values).max())} fen")
    words = np.empty((n, 2), dtype="<i8")
    words[:, 0] = values
    words[:, 1] = values >> 63  # sign extension of the high word
    validity = pc.is_valid(fen).buffers()[1] if fen.null_count else None
    return pa.Array.from_buffers(MONEY_TYPE, n, [validity, pa.py_buffer(words.tobytes())], null_count=fen.null_count)


def check_export_path(out: Path) -> str:
    """The export kind (``.parquet`` or ``.csv``) of ``out``; ConfigError for anything else."""
    kind = Path(out).suffix.lower()
    if kind not in (".parquet", ".csv"):
        raise ConfigError(f"--out {out}: the file must end in .parquet or .csv")
    return kind


def _convert(batch: pa.RecordBatch, schema: pa.Schema) -> pa.Table:
    t = pa.Table.from_batches([batch])
    cols = []
    for field in schema:
        if field.type == MONEY_TYPE and f"{field.name}_fen" in t.column_names:
            cols.append(fen_array_to_decimal(t[f"{field.name}_fen"]))
        else:
            cols.append(t[field.name].cast(field.type))
    return pa.table(cols, schema=schema)


def write_export(expr: ir.Table, out: Path, schema: pa.Schema) -> int:
    """Write ``expr`` to ``out`` (.parquet or .csv) in ``schema`` (money from ``_fen`` columns); returns rows."""
    out = Path(out)
    kind = check_export_path(out)
    rows = 0
    with atomic_path(out) as tmp:
        writer: pq.ParquetWriter | pcsv.CSVWriter
        writer = pq.ParquetWriter(tmp, schema) if kind == ".parquet" else pcsv.CSVWriter(str(tmp), schema)
        with writer:
            for batch in expr.to_pyarrow_batches():
                table = _convert(batch, schema)
                rows += table.num_rows
                writer.write_table(table)
    return rows
