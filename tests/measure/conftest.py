"""Measure fixtures: a workspace with one finished run of a live playbook, and a hand-built warehouse load.

The run comes from the run engine on the runs tests' hand-built tags (``tests.runs.conftest``); the load
is written with the status tests' ``make_load``, so each outcome is known by construction.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from panhuo.config import Workspace
from panhuo.runs.engine import run_playbook
from tests.runs.conftest import AS_OF, NOW, make_live, sqlite_ws  # noqa: F401  (fixture)
from tests.status.conftest import make_load

__all__ = ["AS_OF", "assigned", "balance", "customers", "login", "make_load", "ran_ws", "trade"]


def trade(cid: str, day: str, commission_fen: int, cls: str = "stock") -> dict[str, Any]:
    return {"customer_id": cid, "trade_date": dt.date.fromisoformat(day), "market": "SH", "symbol": "600000",
            "asset_class": cls, "side": "buy", "quantity": 100.0, "amount_fen": commission_fen * 4000,
            "commission_fen": commission_fen}


def login(cid: str, when: str, event: str = "login") -> dict[str, Any]:
    return {"customer_id": cid, "event_time": dt.datetime.fromisoformat(when), "event": event, "channel": "app"}


def balance(cid: str, day: str, cash_fen: int) -> dict[str, Any]:
    return {"customer_id": cid, "as_of": dt.date.fromisoformat(day), "cash_fen": cash_fen,
            "securities_value_fen": 0, "product_value_fen": 0}


def customers(ids: list[str]) -> list[dict[str, Any]]:
    return [{"customer_id": c, "open_date": dt.date(2020, 1, 6)} for c in ids]


def assigned(ws: Workspace, grp: str | None = None) -> list[str]:
    from sqlalchemy import select

    from panhuo.runs.models import Assignment
    from panhuo.store import open_store

    store = open_store(ws)
    try:
        with store.session() as s:
            q = select(Assignment.customer_id).order_by(Assignment.customer_id)
            if grp:
                q = q.where(Assignment.grp == grp)
            return list(s.execute(q).scalars())
    finally:
        store.dispose()


@pytest.fixture
def ran_ws(sqlite_ws: Workspace, tmp_path: Path) -> Workspace:  # noqa: F811
    """One finished run of ``test-wake`` at AS_OF (2026-01-30): success = trade within 10 trading days."""
    make_live(sqlite_ws, tmp_path, holdout=0.3)
    run_playbook(sqlite_ws, "test-wake", AS_OF, now=NOW)
    return sqlite_ws


