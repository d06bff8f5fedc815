"""Fixtures for the segment tests: a small hand-built tags table (no tag library needed)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

__all__ = ["tags_arrow", "tags_rows", "write_tags"]

AS_OF = dt.date(2026, 1, 30)

_SCHEMA = pa.schema([
    ("customer_id", pa.string()), ("status", pa.string()), ("total_assets_fen", pa.int64()),
    ("total_assets_90d_ago_fen", pa.int64()), ("total_assets_365d_ago_fen", pa.int64()),
    ("commission_365d_fen", pa.int64()), ("logins_30d", pa.int64()), ("logins_90d", pa.int64()),
    ("active_days_30d", pa.int64()), ("age", pa.int64()), ("app_user", pa.bool_()),
    ("last_trade_date", pa.date32()), ("trading_days_since_last_trade", pa.int64()),
    ("asset_trend_90d", pa.string()), ("province", pa.string()), ("last_login", pa.date32()),
    ("cash_share", pa.float64()), ("phone", pa.string()),
])


def tags_rows(n: int = 60) -> list[dict]:
    """Deterministic rows covering every tier, with nulls sprinkled in."""
    statuses = ["effective", "sleeping", "dormant", "new_empty", None]
    rows = []
    for i in range(n):
        rows.append({
            "customer_id": f"c{i:04d}",
            "status": statuses[i % 5] if i % 11 else "sleeping",
            "total_assets_fen": (i * 37_123) % 3_000_000 if i % 13 else None,
            "total_assets_90d_ago_fen": (i * 91_331) % 9_000_000,
            "total_assets_365d_ago_fen": None if i % 4 == 0 else (i * 171_717) % 20_000_000,
            "commission_365d_fen": (i * 977) % 80_000,
            "logins_30d": None if i % 7 == 0 else i % 3,
            "logins_90d": i % 2,
            "active_days_30d": i % 6,
            "age": 20 + (i * 7) % 60,
            "app_user": None if i % 9 == 0 else bool(i % 2),
            "last_trade_date": None if i % 3 == 0 else AS_OF - dt.timedelta(days=i * 17),
            "trading_days_since_last_trade": None if i % 3 == 0 else i * 11,
            "asset_trend_90d": ["up", "flat", "down"][i % 3],
            "province": ["广东", "北京", "Shanghai", None][i % 4],
            "last_login": None if i % 5 == 0 else AS_OF - dt.timedelta(days=i),
            "cash_share": (i % 10) / 10,
            "phone": f"138{i:08d}",
        })
    return rows


def tags_arrow(rows: list[dict] | None = None, as_of: dt.date | None = AS_OF) -> pa.Table:
    t = pa.Table.from_pylist(rows if rows is not None else tags_rows(), schema=_SCHEMA)
    if as_of is not None:
        t = t.append_column("as_of", pa.array([as_of] * t.num_rows, pa.date32()))
    return t


def write_tags(path: Path, table: pa.Table | None = None) -> Path:
    pq.write_table(table if table is not None else tags_arrow(), path)
    return path


@pytest.fixture
def tags_table() -> ibis.Table:
    """The hand-built tags as an in-memory Ibis table (DuckDB)."""
    return ibis.memtable(tags_arrow(as_of=None))


@pytest.fixture(scope="module")
def duck_con():
    return ibis.duckdb.connect()
