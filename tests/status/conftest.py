"""Fixtures for the status tests: tiny stored loads written straight into a workspace's warehouse.

The ingest command is not used here: ``make_load`` writes typed Parquet files (every contract column,
null when the test does not give it) through ``Warehouse.begin_load`` / ``TableRecord`` / ``commit``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from panhuo.config import Workspace
from panhuo.contract.schema import TABLES
from panhuo.warehouse import TableRecord, Warehouse

__all__ = ["make_load", "D", "rmb"]

_ARROW = {
    "id": pa.string(),
    "text": pa.string(),
    "enum": pa.string(),
    "money": pa.int64(),
    "number": pa.float64(),
    "int": pa.int64(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "bool": pa.bool_(),
    "json": pa.string(),
}


def D(text: str) -> dt.date:  # noqa: N802 - reads like a literal
    return dt.date.fromisoformat(text)


def rmb(text: str) -> int:
    """'10000.00' -> 1000000 fen, exactly."""
    return int(Decimal(text) * 100)


def stored_schema(table: str) -> pa.Schema:
    return pa.schema([(c.stored, _ARROW[c.kind]) for c in TABLES[table].columns])


def _table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    schema = stored_schema(name)
    cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
    return pa.table({k: pa.array(v, type=schema.field(k).type) for k, v in cols.items()}, schema=schema)


def make_load(ws: Workspace, **tables: list[dict[str, Any]]) -> Warehouse:
    """Write a load with the given rows (stored names, e.g. ``cash_fen``); missing required tables are
    empty, optional ones (``market_events``, ...) are written when given."""
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    tx = wh.begin_load("tests", "duckdb")
    required = ("customers", "balances", "trades", "app_events", "contact_permissions")
    for name in (*required, *(t for t in tables if t not in required)):
        rows = tables.get(name, [])
        pq.write_table(_table(name, rows), tx.path_for(name))
        tx.record(TableRecord(name=name, rows=len(rows), file=f"{name}.parquet", source=f"{name}.parquet",
                              source_format="parquet"))
    tx.commit()
    return wh


@pytest.fixture
def load(workspace: Workspace) -> Callable[..., Warehouse]:
    def _load(**tables: list[dict[str, Any]]) -> Warehouse:
        return make_load(workspace, **tables)

    return _load


@pytest.fixture
def ws_path(workspace: Workspace) -> Path:
    return workspace.root


@pytest.fixture
def duck(tmp_path: Path):
    """DuckDB only: for bookkeeping tests whose engine-specific parts are already run on every engine."""
    from panhuo.config import DuckDBSettings
    from panhuo.engines.duckdb import connect

    return connect(DuckDBSettings(memory_limit="1GB"), tmp_path)
