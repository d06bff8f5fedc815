"""Writing the generated tables: Arrow types from the data contract, Parquet or CSV, atomically.

* Parquet: money ``decimal128(18,2)``, dates ``date32``, timestamps ``timestamp[us]`` (naive,
  Asia/Shanghai wall time), numbers ``float64``, ints ``int64``, booleans ``bool``, the rest
  ``string``; one row group per block of customers (``pyarrow.parquet.ParquetWriter``).
* CSV: header row with the contract's column names; money as plain text with two decimals,
  dates ISO ``2026-01-31``, timestamps ``2026-01-31 10:15:00``, booleans ``true``/``false``;
  UTF-8 or GBK.
* Atomic: every file is written into a hidden temporary folder next to the output folder and
  renamed into ``<out>/<table>.<ext>`` only when all tables are complete; a killed run leaves
  at most the hidden folder, never a half file under a final name.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from panhuo._io import fsync_dir
from panhuo.contract.schema import TABLES, input_arrow_type

__all__ = ["arrow_schema", "money", "TableSink", "OutputFolder", "TABLE_ORDER"]

TABLE_ORDER = (
    "customers",
    "balances",
    "trades",
    "app_events",
    "contact_permissions",
    "holdings",
    "market_events",
    "contact_history",
)



def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a generated file: the contract's columns, in order, typed by kind."""
    return pa.schema([pa.field(c.name, input_arrow_type(c.kind), nullable=c.nullable) for c in TABLES[table].columns])


def money(fen: np.ndarray) -> pa.Array:
    """int64 fen -> decimal128(18,2), built straight from the 16-byte little-endian buffer."""
    fen = np.ascontiguousarray(fen, dtype=np.int64)
    words = np.empty((fen.size, 2), np.int64)
    words[:, 0] = fen
    words[:, 1] = fen >> 63  # sign extension
    return pa.Array.from_buffers(pa.decimal128(18, 2), fen.size, [None, pa.py_buffer(words.tobytes())])


class TableSink:
    """Appends blocks of one table to one file (Parquet row groups or CSV chunks)."""

    def __init__(self, path: Path, table: str, fmt: str, encoding: str) -> None:
        self.path = path
        self.table = table
        self.schema = arrow_schema(table)
        self.fmt = fmt
        self.encoding = encoding
        self.rows = 0
        self._pq: pq.ParquetWriter | None = None
        self._fh = None
        if fmt == "parquet":
            self._pq = pq.ParquetWriter(path, self.schema, compression="zstd", write_statistics=True)
        else:
            self._fh = open(path, "wb")
            self._header = True

    def write(self, batch: pa.Table) -> None:
        batch = batch.select(self.schema.names).cast(self.schema)
        for i, f in enumerate(self.schema):  # whole seconds, as a counter system records them
            if pa.types.is_timestamp(f.type):
                batch = batch.set_column(i, f, pc.floor_temporal(batch.column(i), unit="second"))
        self.rows += batch.num_rows
        if self._pq is not None:
            self._pq.write_table(batch, row_group_size=max(batch.num_rows, 1))
            return
        assert self._fh is not None
        cols = []
        for f, col in zip(self.schema, batch.columns):
            if pa.types.is_timestamp(f.type):
                col = pc.strftime(col.cast(pa.timestamp("s")), format="%Y-%m-%d %H:%M:%S")
            cols.append(col)
        text = pa.table(cols, names=self.schema.names)
        buf = pa.BufferOutputStream()
        pacsv.write_csv(text, buf, pacsv.WriteOptions(include_header=self._header, quoting_style="needed"))
        self._header = False
        data = buf.getvalue().to_pybytes()
        if self.encoding != "utf-8":
            data = data.decode("utf-8").encode(self.encoding)
        self._fh.write(data)

    def close(self) -> None:
        if self._pq is not None:
            self._pq.close()
        elif self._fh is not None:
            if self._header:  # no block at all: still write the header
                self.write(self.schema.empty_table())
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()


class OutputFolder:
    """A hidden temporary folder beside ``out``; on success each file is renamed into ``out``."""

    def __init__(self, out: Path, fmt: str, encoding: str) -> None:
        self.out = Path(out)
        self.fmt = fmt
        self.encoding = encoding
        self.ext = "parquet" if fmt == "parquet" else "csv"
        self.tmp = self.out.parent / f".{self.out.name}.generate-{os.getpid()}.tmp"
        self.sinks: dict[str, TableSink] = {}

    def __enter__(self) -> OutputFolder:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir()
        for name in TABLE_ORDER:
            self.sinks[name] = TableSink(self.tmp / f"{name}.{self.ext}", name, self.fmt, self.encoding)
        return self

    def write(self, table: str, batch: pa.Table) -> None:
        self.sinks[table].write(batch)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            for sink in self.sinks.values():
                sink.close()
            if exc_type is None:
                self.out.mkdir(parents=True, exist_ok=True)
                for name in TABLE_ORDER:
                    fd = os.open(self.tmp / f"{name}.{self.ext}", os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                for name in TABLE_ORDER:
                    os.replace(self.tmp / f"{name}.{self.ext}", self.out / f"{name}.{self.ext}")
                fsync_dir(self.out)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def rows(self) -> dict[str, int]:
        return {name: sink.rows for name, sink in self.sinks.items()}
