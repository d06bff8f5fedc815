"""Export the stored status to Parquet or CSV with money in RMB, exactly.

Money is stored as int64 fen and leaves as ``decimal128(18, 2)`` (Parquet) or text with two
decimals (CSV). The conversion never goes through float: a fen value *is* the unscaled integer of a
two-decimal decimal, so the Arrow array is built from the integers directly (two's complement
128-bit words), and CSV text is Arrow's exact decimal formatting. The file is written to a
temporary sibling and renamed into place.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from panhuo._io import atomic_path
from panhuo.contract.parse import fen_to_decimal
from panhuo.contract.parse import format_fen as fen_text
from panhuo.errors import ConfigError
from panhuo.status.history import load_status

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace

__all__ = [
    "MONEY_TYPE",
    "EXPORT_SCHEMA",
    "fen_to_decimal",
    "fen_text",
    "fen_array_to_decimal",
    "export_status",
]

MONEY_TYPE = pa.decimal128(18, 2)
_MAX_FEN = 10**18 - 1  # what decimal128(18, 2) holds
_MONEY = ("cash", "securities_value", "product_value", "total_assets")

EXPORT_SCHEMA = pa.schema(
    [("customer_id", pa.string()), ("status", pa.string())]
    + [(m, MONEY_TYPE) for m in _MONEY]
    + [("last_trade_date", pa.date32()), ("status_since", pa.date32())]
)


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


def _convert(batch: pa.RecordBatch) -> pa.Table:
    t = pa.Table.from_batches([batch])
    cols = {
        "customer_id": t["customer_id"].cast(pa.string()),
        "status": t["status"].cast(pa.string()),
        **{m: fen_array_to_decimal(t[f"{m}_fen"]) for m in _MONEY},
        "last_trade_date": t["last_trade_date"].cast(pa.date32()),
        "status_since": t["status_since"].cast(pa.date32()),
    }
    return pa.table(cols, schema=EXPORT_SCHEMA)


def export_status(ws: Workspace, con: BaseBackend, out: Path, as_of: dt.date | None = None) -> int:
    """Write the stored status (at ``as_of``, default latest) to ``out`` (.parquet or .csv); returns rows."""
    out = Path(out)
    kind = out.suffix.lower()
    if kind not in (".parquet", ".csv"):
        raise ConfigError(f"--out {out}: the file must end in .parquet or .csv")
    snap = load_status(ws, con, as_of).order_by("customer_id")
    rows = 0
    with atomic_path(out) as tmp:
        if kind == ".parquet":
            with pq.ParquetWriter(tmp, EXPORT_SCHEMA) as pw:
                for batch in snap.to_pyarrow_batches():
                    table = _convert(batch)
                    rows += table.num_rows
                    pw.write_table(table)
        else:
            with pcsv.CSVWriter(str(tmp), EXPORT_SCHEMA) as cw:
                for batch in snap.to_pyarrow_batches():
                    table = _convert(batch)
                    rows += table.num_rows
                    cw.write_table(table)
    return rows
