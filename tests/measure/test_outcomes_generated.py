"""Outcomes on a small generated brokerage, checked against an independent pandas reading of the same load."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from panhuo.calendar.service import calendar_for
from panhuo.config import Workspace
from panhuo.contract.ingest import ingest
from panhuo.engines import connect
from panhuo.generate import generate_brokerage
from panhuo.measure.outcomes import measure_rows, window_for
from panhuo.warehouse import Warehouse

__all__: list[str] = []

DATA_END = dt.date(2026, 11, 24)
RUN_DAY = dt.date(2026, 9, 30)  # the National Day holiday follows: 1-7 October 2026 are closed


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    folder = tmp_path_factory.mktemp("brokerage")
    generate_brokerage(folder, customers=400, seed=5, as_of=DATA_END)
    ws = Workspace.open(tmp_path_factory.mktemp("ws") / "ws")
    ingest(ws, folder, con=connect(ws.settings.engine, ws.tmp_dir))
    return ws


def test_outcomes_match_an_independent_reading(generated: Workspace) -> None:
    ws = generated
    wh = Warehouse(ws.warehouse_dir)
    trades = pd.read_parquet(wh.table_path("trades"))
    events = pd.read_parquet(wh.table_path("app_events"))
    customers = pd.read_parquet(wh.table_path("customers"))["customer_id"].tolist()
    rows = [{"run_id": 1, "customer_id": c, "grp": "treated" if i % 3 else "holdout", "arm": None,
             "propensity": 2 / 3 if i % 3 else 1 / 3, "as_of": RUN_DAY} for i, c in enumerate(customers)]
    con = connect(ws.settings.engine, ws.tmp_dir)
    table, windows, end = measure_rows(ws, con, rows, 10)
    assert end == DATA_END
    got = table.to_pandas().set_index("customer_id")
    assert len(got) == len(customers) and got["closed"].all()

    cal = calendar_for(ws)
    w = window_for(cal, RUN_DAY, 10)
    days = set(cal.sessions(w.start, w.end))
    assert len(days) == 10 and w.start == dt.date(2026, 10, 8)  # trading days, not calendar days
    td = pd.to_datetime(trades["trade_date"]).dt.date
    inside = trades[(td >= w.start) & (td <= w.end)]
    before = trades[(td >= w.pre_start) & (td <= w.pre_end)]
    stockfund = inside["asset_class"].isin(["stock", "fund"])
    want_comm = inside[stockfund].groupby("customer_id")["commission_fen"].sum()
    want_pre_comm = before[before["asset_class"].isin(["stock", "fund"])].groupby("customer_id")["commission_fen"].sum()
    ed = pd.to_datetime(events["event_time"]).dt.date
    # the window is the span from its first to its last trading day: a weekend login inside it counts
    logins = set(events[(events["event"] == "login") & (ed >= w.start) & (ed <= w.end)]["customer_id"])
    assert any(d not in days for d in ed[events["customer_id"].isin(logins) & (ed >= w.start) & (ed <= w.end)])

    assert set(got.index[got["trade"]]) == set(inside["customer_id"])
    assert got["trade"].sum() > 0 and len(logins) > 0  # the generated brokerage has activity in the window
    assert set(got.index[got["login"]]) == logins
    for cid in got.index:
        assert got.at[cid, "commission_fen"] == int(want_comm.get(cid, 0)), cid
        assert got.at[cid, "pre_commission_fen"] == int(want_pre_comm.get(cid, 0)), cid
    assert set(got.index[got["pre_trade"]]) == set(before["customer_id"])
