"""Outcomes of a run's assignments from a hand-built load: trading-day windows, stock+fund commission, open windows."""

from __future__ import annotations

import datetime as dt

import pytest

from panhuo.calendar.service import calendar_for
from panhuo.config import Workspace
from panhuo.engines import connect
from panhuo.measure.outcomes import MeasureError, campaign_outcomes, playbook_outcomes, window_for
from tests.measure.conftest import assigned, balance, customers, login, make_load, trade

__all__: list[str] = []


def _con(ws: Workspace):
    return connect(ws.settings.engine, ws.tmp_dir)


def test_window_counts_trading_days_over_the_spring_festival(ran_ws: Workspace) -> None:
    cal = calendar_for(ran_ws)
    w = window_for(cal, dt.date(2026, 1, 30), 10)
    assert w.start == dt.date(2026, 2, 2)
    assert len(cal.sessions(w.start, w.end)) == 10 and cal.is_trading_day(w.end)
    assert w.end == dt.date(2026, 2, 13)  # 10 calendar days would end on 9 February
    assert len(cal.sessions(w.pre_start, w.pre_end)) == 10 and w.pre_end == dt.date(2026, 1, 30)


def test_outcomes_of_a_run(ran_ws: Workspace) -> None:
    ids = assigned(ran_ws)
    assert len(ids) >= 7
    a, b, c, d, e, f, g = ids[:7]
    make_load(
        ran_ws,
        customers=customers(ids[:-1]),  # the last assigned customer is missing from the data
        trades=[trade(a, "2026-02-13", 500), trade(a, "2026-02-03", 250, "fund"), trade(a, "2026-02-04", 100, "bond"),
                trade(b, "2026-02-24", 900),  # the 11th trading day after the run: outside
                trade(f, "2026-01-20", 300)],  # pre-period
        app_events=[login(c, "2026-02-03T10:00:00"), login(d, "2026-02-03T10:00:00", "view_quote"),
                    login(e, "2026-01-30T09:00:00")],  # before the window, in the pre-period
        balances=[balance(d, "2026-01-30", 1000), balance(d, "2026-02-06", 5000),
                  balance(e, "2026-01-30", 5000), balance(e, "2026-02-06", 1000),
                  balance(g, "2026-01-30", 900_000), balance(g, "2026-02-09", 1_000_000),  # 10,000 RMB
                  balance(f, "2026-03-02", 0)],  # data run to 2 March: the window is closed
    )
    out = playbook_outcomes(ran_ws, _con(ran_ws), "test-wake")
    assert out.event == "trade" and out.window_days == 10 and out.data_end == dt.date(2026, 3, 2)
    rows = {r["customer_id"]: r for r in out.rows.to_pylist()}
    assert set(rows) == set(ids)
    assert rows[a]["trade"] and rows[a]["success"] and rows[a]["commission_fen"] == 750  # the bond trade excluded
    assert not rows[b]["trade"] and rows[b]["commission_fen"] == 0
    assert rows[c]["login"] and not rows[c]["trade"]
    assert not rows[d]["login"] and rows[d]["deposit"]
    assert not rows[e]["deposit"] and not rows[e]["login"] and rows[e]["pre_login"]
    assert rows[f]["pre_trade"] and rows[f]["pre_success"] and rows[f]["pre_commission_fen"] == 300
    assert not rows[f]["trade"]
    assert rows[g]["back_to_effective"] and rows[g]["deposit"] and not rows[g]["pre_back_to_effective"]
    assert not rows[d]["back_to_effective"]  # 50 RMB is not an effective account
    assert all(r["closed"] and r["days_remaining"] == 0 for r in rows.values())
    assert [c for c, r in rows.items() if not r["in_data"]] == [ids[-1]]
    assert {r["grp"] for r in rows.values()} <= {"treated", "holdout", "global_control"}
    assert len(out.runs) == 1 and out.runs[0]["closed"]


def test_open_window_says_how_many_days_remain(ran_ws: Workspace) -> None:
    ids = assigned(ran_ws)
    make_load(ran_ws, customers=customers(ids), trades=[trade(ids[0], "2026-02-10", 500)])
    out = playbook_outcomes(ran_ws, _con(ran_ws), "test-wake")
    assert out.data_end == dt.date(2026, 2, 10)
    assert out.open_windows and out.open_windows[0]["days_remaining"] == 3  # 11, 12 and 13 February
    assert not any(out.rows.column("closed").to_pylist())


def test_playbook_without_runs(sqlite_ws: Workspace, tmp_path) -> None:
    from tests.runs.conftest import make_live

    make_live(sqlite_ws, tmp_path, pid="never-run")
    make_load(sqlite_ws)
    with pytest.raises(MeasureError, match="no finished runs"):
        playbook_outcomes(sqlite_ws, _con(sqlite_ws), "never-run")
    with pytest.raises(MeasureError, match="no playbook 'nope'"):
        playbook_outcomes(sqlite_ws, _con(sqlite_ws), "nope")


def _contact(cid: str, group: str, when: str = "2026-01-30T10:00:00", prop: float | None = 0.5) -> dict:
    return {"customer_id": cid, "campaign_id": "c-2025", "sent_at": dt.datetime.fromisoformat(when), "channel": "sms",
            "benefit": "level2-trial-7d", "group": group, "propensity": prop}


def test_campaign_outcomes(workspace: Workspace) -> None:
    make_load(workspace,
              contact_history=[_contact("x1", "treated"), _contact("x2", "treated"), _contact("x3", "holdout", prop=None)],
              trades=[trade("x1", "2026-02-13", 120), trade("x3", "2026-02-24", 50), trade("x2", "2026-03-02", 1)])
    out = campaign_outcomes(workspace, _con(workspace), "c-2025")
    rows = {r["customer_id"]: r for r in out.rows.to_pylist()}
    assert rows["x1"]["success"] and rows["x1"]["commission_fen"] == 120
    assert not rows["x3"]["success"] and rows["x3"]["propensity"] == pytest.approx(1 / 3)  # its group's share
    assert rows["x1"]["arm"] == "level2-trial-7d" and rows["x3"]["arm"] is None
    longer = campaign_outcomes(workspace, _con(workspace), "c-2025", window_days=20)
    assert {r["customer_id"]: r["success"] for r in longer.rows.to_pylist()}["x3"]
    with pytest.raises(MeasureError, match="unknown campaign 'nope'"):
        campaign_outcomes(workspace, _con(workspace), "nope")


def test_activated_from_the_status_history(ran_ws: Workspace) -> None:
    """A dormant account whose status history shows it leave ``dormant`` inside the window is activated."""
    from panhuo.status.history import compute_status

    ids = assigned(ran_ws)
    a, b = ids[:2]
    make_load(ran_ws, customers=customers(ids),
              balances=[balance(a, "2026-01-30", 0), balance(b, "2026-01-30", 0),
                        balance(a, "2026-02-10", 5_000_000),  # 50,000 RMB: effective again on 10 February
                        balance(b, "2026-03-02", 0)])  # data run to 2 March: the window is closed
    con = _con(ran_ws)
    out = playbook_outcomes(ran_ws, con, "test-wake")
    row = {r["customer_id"]: r for r in out.rows.to_pylist()}
    assert row[a]["activated"] is None  # no status history yet: unknown, not False
    assert any("activated" in n for n in out.notes)
    compute_status(ran_ws, con, dt.date(2026, 1, 30), backfill=False)
    compute_status(ran_ws, con, dt.date(2026, 2, 10), backfill=False)
    out = playbook_outcomes(ran_ws, _con(ran_ws), "test-wake")
    row = {r["customer_id"]: r for r in out.rows.to_pylist()}
    assert row[a]["activated"] is True and row[b]["activated"] is False
    assert row[a]["pre_activated"] is False
    assert not any("activated" in n for n in out.notes)


def test_tier_at_assignment_is_null_without_tags(ran_ws: Workspace) -> None:
    make_load(ran_ws, customers=customers(assigned(ran_ws)), balances=[balance(assigned(ran_ws)[0], "2026-03-02", 0)])
    out = playbook_outcomes(ran_ws, _con(ran_ws), "test-wake", tiers=True)
    assert "tier" in out.rows.column_names and out.rows.column("tier").null_count == out.rows.num_rows
    assert any(n.startswith("no tier for assignments of 2026-01-30") for n in out.notes)


def test_measure_rows_accepts_an_arrow_table(ran_ws: Workspace) -> None:
    import pyarrow as pa

    from panhuo.measure.outcomes import measure_rows

    ids = assigned(ran_ws)
    make_load(ran_ws, customers=customers(ids), trades=[trade(ids[0], "2026-02-03", 700)],
              balances=[balance(ids[0], "2026-03-02", 0)])
    rows = [{"run_id": 7, "customer_id": c, "grp": "treated", "arm": None, "propensity": 0.8,
             "as_of": dt.date(2026, 1, 30)} for c in ids[:3]]
    as_list, _, _ = measure_rows(ran_ws, _con(ran_ws), rows, 10)
    as_table, _, end = measure_rows(ran_ws, _con(ran_ws), pa.Table.from_pylist(rows), 10)
    assert as_list.equals(as_table) and end == dt.date(2026, 3, 2)
    got = as_table.to_pylist()
    assert [r["customer_id"] for r in got] == ids[:3]  # the input order is kept
    assert got[0]["trade"] and got[0]["commission_fen"] == 700 and not got[1]["trade"]
