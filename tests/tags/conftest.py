"""Fixtures for the tag tests: one tiny brokerage with hand-computed tags, stored like a real load.

As of 2026-11-24 (a Tuesday). Trailing windows start on 2026-10-26 (30 days), 2026-08-27 (90 days)
and 2025-11-25 (365 days); the day before each start is the first day outside. Every table also
holds rows dated after as_of, which must change nothing (``clean`` drops them for the no-leakage test).

Customers: ``a`` (busy: boundary trades, logins, contacts), ``b`` (new, nothing), ``c`` (old,
sleeping, a contact without response), ``d`` (opens after as_of: not tagged), ``e`` (ties and a
response on the 10th trading day), ``f`` (huge exact balance, a contact answered on the 11th
trading day: not a response), ``g`` (no balance at all). Complaints (app_events 'complaint') for
``c`` (window edges) and ``a``; 'personalised' permissions (PIPL refusals) for ``a``, ``c``, ``e``, ``f``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from panhuo.config import Workspace
from panhuo.contract.schema import TABLES
from panhuo.warehouse import TableRecord, Warehouse
from tests.status.conftest import D, rmb, stored_schema

__all__ = ["AS_OF", "T", "clean", "prepare", "rows_by_id", "tiny_tables", "write_load"]

AS_OF = D("2026-11-24")
_OPTIONAL = ("contact_history",)


def T(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _cust(cid: str, open_date: str, **kw: Any) -> dict[str, Any]:
    return {"customer_id": cid, "open_date": D(open_date), **kw}


def _bal(cid: str, day: str, cash: str, sec: str = "0", prod: str = "0") -> dict[str, Any]:
    return {"customer_id": cid, "as_of": D(day), "cash_fen": rmb(cash), "securities_value_fen": rmb(sec),
            "product_value_fen": rmb(prod)}


def _trade(cid: str, day: str, amount: str, commission: str, cls: str = "stock", market: str = "SH") -> dict[str, Any]:
    return {"customer_id": cid, "trade_date": D(day), "market": market, "symbol": "600000", "asset_class": cls,
            "side": "buy", "quantity": 100.0, "amount_fen": rmb(amount), "commission_fen": rmb(commission)}


def _ev(cid: str, when: str, event: str) -> dict[str, Any]:
    return {"customer_id": cid, "event_time": T(when), "event": event, "channel": "app"}


def _perm(cid: str, channel: str, allowed: bool, when: str | None) -> dict[str, Any]:
    return {"customer_id": cid, "channel": channel, "allowed": allowed, "updated_at": T(when) if when else None}


def _contact(cid: str, when: str, group: str = "treated") -> dict[str, Any]:
    return {"customer_id": cid, "campaign_id": "camp-1", "sent_at": T(when), "channel": "sms",
            "benefit": "level2-trial-7d", "group": group, "propensity": 0.5}


def tiny_tables() -> dict[str, list[dict[str, Any]]]:
    """The tiny brokerage, stored column names (money in fen)."""
    return {
        "customers": [
            _cust("a", "2020-01-15", birth_year=1990, province="广东省", branch_id="B1", advisor_id="A1",
                  risk_level="C3", risk_assessed_on=D("2025-01-01"), phone="13800000000", app_user=True,
                  wechat_bound=False),
            _cust("b", "2026-11-10", phone="", app_user=None),
            _cust("c", "2015-06-01", birth_year=1950, province="北京市", branch_id="B2", risk_level="C1",
                  risk_assessed_on=D("2024-11-24"), phone="13900000000", app_user=False, wechat_bound=False),
            _cust("d", "2026-12-01", birth_year=1980),
            _cust("e", "2018-03-01", birth_year=2002, risk_assessed_on=D("2024-11-23"), wechat_bound=True),
            _cust("f", "2010-01-01", birth_year=2001, advisor_id="  ", risk_assessed_on=D("2026-11-25")),
            _cust("g", "2019-05-05", birth_year=1961),
        ],
        "balances": [
            _bal("a", "2025-11-24", "1000"),
            _bal("a", "2026-08-26", "5000", "4000", "1000"),
            _bal("a", "2026-10-26", "20000"),
            _bal("a", "2026-11-24", "3000.01", "8000", "0.99"),
            _bal("a", "2026-11-30", "999999"),
            _bal("c", "2026-08-26", "10000"),
            _bal("c", "2026-11-24", "8999.99"),
            _bal("e", "2026-08-01", "10000"),
            _bal("e", "2026-11-24", "11000"),
            _bal("f", "2026-11-01", "98765432109876.54"),
            _bal("d", "2026-12-01", "500"),
        ],
        "trades": [
            _trade("a", "2025-11-24", "999999.99", "100"),
            _trade("a", "2025-11-25", "1000", "0.50", "fund", "SZ"),
            _trade("a", "2026-08-26", "2000", "1"),
            _trade("a", "2026-08-27", "3000", "1.50"),
            _trade("a", "2026-10-25", "500", "0.25", "fund", "SZ"),
            _trade("a", "2026-10-26", "100.01", "0.05"),
            _trade("a", "2026-11-24", "0.01", "0.01", "bond"),
            _trade("a", "2026-11-25", "1000000", "10"),
            _trade("c", "2026-06-01", "300", "0.30"),
            _trade("e", "2026-11-20", "100", "0.10", "fund", "SZ"),
            _trade("e", "2026-11-20", "100", "0.20", "stock", "SH"),
            _trade("f", "2026-11-20", "50", "0.05", "option", "SH"),
        ],
        "app_events": [
            _ev("a", "2026-10-26 00:00:00", "login"),
            _ev("a", "2026-10-25 23:59:59", "login"),
            _ev("a", "2026-11-24 23:59:59", "content_view"),
            _ev("a", "2026-11-01 10:00:00", "push_open"),
            _ev("a", "2026-11-01 11:00:00", "push_open"),
            _ev("a", "2026-08-27 08:00:00", "login"),
            _ev("a", "2026-08-26 08:00:00", "login"),
            _ev("a", "2026-11-25 00:00:00", "quote"),
            _ev("a", "2026-11-25 09:00:00", "login"),
            _ev("b", "2026-01-01 09:00:00", "login"),
            _ev("c", "2026-08-27 00:00:00", "complaint"),  # first day of the 90-day window
            _ev("c", "2026-11-24 18:00:00", "complaint"),
            _ev("c", "2026-08-26 23:59:59", "complaint"),  # one second before it
            _ev("c", "2026-11-25 09:00:00", "complaint"),  # after as_of
            _ev("a", "2026-11-01 12:00:00", "complaint"),  # on a day with push opens: one active day
        ],
        "contact_permissions": [
            _perm("a", "app_push", True, "2026-01-01 09:00:00"),
            _perm("a", "app_push", False, "2026-06-01 09:00:00"),
            _perm("a", "app_push", True, "2026-11-25 09:00:00"),
            _perm("a", "sms", True, None),
            _perm("a", "wechat", True, "2026-05-01 10:00:00"),
            _perm("a", "wechat", False, "2026-05-01 10:00:00"),
            _perm("a", "call", True, "2026-11-24 23:00:00"),
            _perm("b", "sms", True, "2026-11-12 09:00:00"),
            _perm("b", "app_push", True, "2026-11-12 09:00:00"),
            _perm("c", "wechat", True, "2025-01-01 09:00:00"),
            _perm("c", "app_push", True, "2025-01-01 09:00:00"),
            _perm("e", "wechat", True, None),
            _perm("e", "call", True, "2026-11-25 00:00:00"),
            _perm("a", "personalised", True, "2026-01-01 09:00:00"),
            _perm("a", "personalised", False, "2026-11-24 20:00:00"),  # refused on as_of evening
            _perm("c", "personalised", False, "2026-11-25 09:00:00"),  # refused after as_of
            _perm("e", "personalised", False, None),
            _perm("e", "personalised", True, "2026-02-01 09:00:00"),  # refused, then allowed again
            _perm("f", "personalised", True, "2026-03-01 09:00:00"),
            _perm("f", "personalised", False, "2026-03-01 09:00:00"),  # same second: the refusal wins
        ],
        "contact_history": [
            _contact("a", "2026-11-20 10:00:00"),
            _contact("a", "2025-11-25 09:00:00"),
            _contact("a", "2025-11-24 09:00:00"),
            _contact("a", "2026-11-01 10:00:00", "holdout"),
            _contact("a", "2026-11-25 10:00:00"),
            _contact("c", "2026-08-27 10:00:00"),
            _contact("e", "2026-11-06 15:00:00"),
            _contact("f", "2026-11-05 15:00:00"),
        ],
    }


def clean(tables: dict[str, list[dict[str, Any]]], as_of: dt.date = AS_OF) -> dict[str, list[dict[str, Any]]]:
    """The same brokerage without any row dated after ``as_of`` (customers opened later included)."""
    when = {"customers": "open_date", "balances": "as_of", "trades": "trade_date", "app_events": "event_time",
            "contact_permissions": "updated_at", "contact_history": "sent_at"}

    def keep(table: str, row: dict[str, Any]) -> bool:
        v = row[when[table]]
        if v is None:
            return True
        day = v.date() if isinstance(v, dt.datetime) else v
        return day <= as_of

    return {t: [r for r in rows if keep(t, r)] for t, rows in tables.items()}


def _arrow(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    schema = stored_schema(name)
    return pa.table({f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema}, schema=schema)


def write_load(ws: Workspace, tables: dict[str, list[dict[str, Any]]]) -> Warehouse:
    """Store ``tables`` as the load in force (required tables always, optional ones when given)."""
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    tx = wh.begin_load("tests", "duckdb")
    names = [t for t in TABLES if TABLES[t].required or (t in _OPTIONAL and t in tables)]
    for name in names:
        rows = tables.get(name, [])
        pq.write_table(_arrow(name, rows), tx.path_for(name))
        tx.record(TableRecord(name=name, rows=len(rows), file=f"{name}.parquet", source=f"{name}.parquet",
                              source_format="parquet"))
    tx.commit()
    return wh


def prepare(ws: Workspace, con: Any, tables: dict[str, list[dict[str, Any]]], as_of: dt.date = AS_OF) -> None:
    """Store ``tables`` and compute the account status at 2026-08-31 (baseline) and ``as_of``."""
    from panhuo.status.history import compute_status

    write_load(ws, tables)
    compute_status(ws, con, D("2026-08-31"), backfill=False)
    compute_status(ws, con, as_of, backfill=False)


def rows_by_id(table: Any) -> dict[str, dict[str, Any]]:
    return {r["customer_id"]: r for r in table.to_pyarrow().to_pylist()}


def _duck(path: Path) -> Any:
    from panhuo.config import DuckDBSettings
    from panhuo.engines.duckdb import connect

    return connect(DuckDBSettings(memory_limit="1GB"), path)


@pytest.fixture
def duck(tmp_path: Path) -> Any:
    return _duck(tmp_path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Any, dict[str, dict[str, Any]]]:
    """The tiny brokerage with status and tags computed on DuckDB: (workspace, connection, tags by id)."""
    from panhuo.tags import compute_tags

    root = tmp_path_factory.mktemp("tiny")
    ws = Workspace.open(root / "ws")
    con = _duck(root)
    prepare(ws, con, tiny_tables())
    res = compute_tags(ws, con, AS_OF)
    return ws, con, rows_by_id(res.table)


@pytest.fixture
def tags(tiny: tuple[Workspace, Any, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    return tiny[2]


@pytest.fixture
def fresh(workspace: Workspace) -> Callable[..., Workspace]:
    """Store given tables in a fresh workspace and compute the status (returns the workspace)."""

    def _make(con: Any, tables: dict[str, list[dict[str, Any]]], as_of: dt.date = AS_OF) -> Workspace:
        prepare(workspace, con, tables, as_of)
        return workspace

    return _make
