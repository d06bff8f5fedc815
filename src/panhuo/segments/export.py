"""Export a segment's members: ``customer_id`` plus chosen tags, money in RMB, phones masked.

Money tags leave as ``decimal(18, 2)`` (Parquet) or text with two decimals (CSV), exactly, from the
int64 fen columns. A phone column (``phone``, ``mobile``) is never exported in clear: it is masked as
``138****1234``. The file is written to a temporary sibling and renamed into place.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from panhuo._io import atomic_path
from panhuo.errors import ConfigError
from panhuo.segments.errors import SegmentError
from panhuo.status.export import fen_array_to_decimal

if TYPE_CHECKING:
    from panhuo.segments.audience import Audience

__all__ = ["PHONE_COLUMNS", "export_segment", "mask_phone"]

PHONE_COLUMNS = ("phone", "mobile", "phone_number", "mobile_phone")
_DIGITS = re.compile(r"\d")


def mask_phone(value: str | None) -> str | None:
    """``13812341234`` -> ``138****1234``; shorter numbers keep at most their last two digits."""
    if value is None:
        return None
    s = str(value).strip()
    if len(s) >= 11:
        return s[:3] + "*" * (len(s) - 7) + s[-4:]
    return _DIGITS.sub("*", s[:-2]) + s[-2:] if len(s) > 2 else "*" * len(s)


def _columns(aud: Audience, columns: list[str]) -> list[tuple[str, str, str]]:
    """(output name, stored column, kind) for each chosen column."""
    out = []
    for name in columns:
        if name == "customer_id":
            continue
        if name in PHONE_COLUMNS and name in aud.table.columns:
            out.append((name, name, "phone"))
            continue
        sym = aud.symbols.get(name)
        if sym is None or sym.column not in aud.table.columns:
            import difflib

            close = difflib.get_close_matches(name, [s for s in aud.symbols if aud.symbols[s].column in
                                                     aud.table.columns], n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise SegmentError(f"--columns: unknown tag '{name}'{hint}")
        out.append((name, sym.column, sym.kind))
    return out


def _convert(batch: pa.RecordBatch, cols: list[tuple[str, str, str]]) -> pa.Table:
    t = pa.Table.from_batches([batch])
    data: dict[str, pa.Array] = {"customer_id": t["customer_id"].combine_chunks().cast(pa.string())}
    for name, col, kind in cols:
        arr = t[col].combine_chunks()
        if kind == "money":
            arr = fen_array_to_decimal(arr.cast(pa.int64()))
        elif kind == "phone":
            arr = pa.array([mask_phone(v) for v in arr.cast(pa.string()).to_pylist()], pa.string())
        data[name] = arr
    return pa.table(data)


def export_segment(aud: Audience, segment: str, out: Path, columns: list[str] | None = None) -> int:
    """Write segment members (ordered by customer id) to ``out`` (.parquet or .csv); returns rows."""
    out = Path(out)
    kind = out.suffix.lower()
    if kind not in (".parquet", ".csv"):
        raise ConfigError(f"--out {out}: the file must end in .parquet or .csv")
    cols = _columns(aud, columns or [])
    members = aud.members(segment)
    rel = members.select("customer_id", *dict.fromkeys(c for _, c, _ in cols)).order_by("customer_id")
    rows = 0
    writer = None
    with atomic_path(out) as tmp:
        try:
            for batch in rel.to_pyarrow_batches():
                table = _convert(batch, cols)
                if writer is None:
                    writer = (pq.ParquetWriter(tmp, table.schema) if kind == ".parquet"
                              else pcsv.CSVWriter(str(tmp), table.schema))
                writer.write_table(table)
                rows += table.num_rows
            if writer is None:  # no members: header / schema only
                empty = _convert(pa.RecordBatch.from_pylist([], schema=rel.schema().to_pyarrow()), cols)
                if kind == ".parquet":
                    pq.write_table(empty, tmp)
                else:
                    pcsv.write_csv(empty, str(tmp))
        finally:
            if writer is not None:
                writer.close()
    return rows
