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


def test_campaign_report_matches_a_hand_computed_ipw_estimate(generated: Workspace) -> None:
    """The generated past campaign (treated with probability 0.8 or 0.5 by tier) through make_report."""
    import numpy as np

    from panhuo.measure.report import make_report

    ws = generated
    wh = Warehouse(ws.warehouse_dir)
    hist = pd.read_parquet(wh.table_path("contact_history"))
    (campaign,) = hist["campaign_id"].unique()
    report = make_report(ws, campaign=campaign, window=20)
    (item,) = report["items"]
    assert item["kind"] == "campaign" and item["final"] and item["window_trading_days"] == 20
    assert any("counts its messages only" in n for n in item["notes"])  # no benefit cost is made up
    assert item["groups"][0]["cost"]["benefit_rmb"] == 0.0
    g = item["groups"][0]
    assert g["n_treated"] == int((hist["group"] == "treated").sum()) and g["n_holdout"] == int((hist["group"] == "holdout").sum())

    # oracle: trade within the 20 trading days after each row's send day, Hajek means with 1/P(own group)
    cal = calendar_for(ws)
    trades = pd.read_parquet(wh.table_path("trades"))
    trades["d"] = pd.to_datetime(trades["trade_date"]).dt.date
    ys, ws_ = [], []
    for r in hist.itertuples():
        sent = pd.Timestamp(r.sent_at).date()
        w = window_for(cal, sent, 20)
        mine = trades[(trades["customer_id"] == r.customer_id) & (trades["d"] >= w.start) & (trades["d"] <= w.end)]
        ys.append(1.0 if len(mine) else 0.0)
        ws_.append(1 / r.propensity if r.group == "treated" else 1 / (1 - r.propensity))
    y, wt = np.array(ys), np.array(ws_)
    t = (hist["group"] == "treated").to_numpy()
    diff = (wt[t] * y[t]).sum() / wt[t].sum() - (wt[~t] * y[~t]).sum() / wt[~t].sum()
    assert g["conversions"]["treated"] == int(y[t].sum())
    assert g["incremental_conversions"]["estimate"] == pytest.approx(diff * t.sum(), abs=0.01)
    est = g["incremental_conversions"]
    assert est["ci_low"] < est["estimate"] < est["ci_high"]
