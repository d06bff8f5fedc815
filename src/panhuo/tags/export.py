"""Export a stored tag snapshot to Parquet or CSV with money as exact decimals.

Money columns leave as ``<name>`` (without ``_fen``) in ``decimal128(18, 2)`` (Parquet) or text with
two decimals (CSV), through the status export's exact fen conversion (never via float). The file is
written to a temporary sibling and renamed into place.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from panhuo._io import atomic_path
from panhuo.errors import ConfigError
from panhuo.status.export import MONEY_TYPE, fen_array_to_decimal
from panhuo.tags.catalogue import TAGS
from panhuo.tags.store import load_tags

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace

__all__ = ["EXPORT_SCHEMA", "export_tags"]

EXPORT_SCHEMA = pa.schema(
    [("customer_id", pa.string())]
    + [(s.name, MONEY_TYPE if s.kind == "money" else s.arrow_type) for s in TAGS]
    + [("as_of", pa.date32())]
)


def _convert(batch: pa.RecordBatch) -> pa.Table:
    t = pa.Table.from_batches([batch])
    cols: dict[str, pa.Array | pa.ChunkedArray] = {"customer_id": t["customer_id"].cast(pa.string())}
    for s in TAGS:
        col = t[s.stored]
        cols[s.name] = fen_array_to_decimal(col) if s.kind == "money" else col.cast(s.arrow_type)
    cols["as_of"] = t["as_of"].cast(pa.date32())
    return pa.table(cols, schema=EXPORT_SCHEMA)


def export_tags(ws: Workspace, con: BaseBackend, out: Path, as_of: dt.date | None = None) -> int:
    """Write the stored tags (latest snapshot on or before ``as_of``) to ``out`` (.parquet or .csv); returns rows.

    Raises
    ------
    ConfigError
        ``out`` is neither .parquet nor .csv.
    WarehouseError
        No tags stored on or before ``as_of``.
    """
    out = Path(out)
    kind = out.suffix.lower()
    if kind not in (".parquet", ".csv"):
        raise ConfigError(f"--out {out}: the file must end in .parquet or .csv")
    snap = load_tags(ws, con, as_of).order_by("customer_id")
    rows = 0
    with atomic_path(out) as tmp:
        writer: pq.ParquetWriter | pcsv.CSVWriter
        writer = pq.ParquetWriter(tmp, EXPORT_SCHEMA) if kind == ".parquet" else pcsv.CSVWriter(str(tmp), EXPORT_SCHEMA)
        with writer:
            for batch in snap.to_pyarrow_batches():
                table = _convert(batch)
                rows += table.num_rows
                writer.write_table(table)
    return rows
