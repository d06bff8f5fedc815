"""``panhuo report`` end to end (subprocess) and the report builder on a known run."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from panhuo.config import Workspace
from tests.conftest import PANHUO
from tests.measure.conftest import assigned, balance, customers, make_load, trade

__all__: list[str] = []

_GROUP_KEYS = {"arm", "tier", "n_treated", "n_holdout", "conversions", "incremental_conversions",
               "incremental_commission_rmb", "cost_rmb", "cost_per_incremental_reactivation_rmb"}


def _panhuo(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([PANHUO, "-w", str(ws.root), "report", *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


def test_report_json_and_markdown(ran_ws: Workspace, tmp_path: Path) -> None:
    treated = assigned(ran_ws, "treated")
    holdout = assigned(ran_ws, "holdout")
    assert treated and holdout
    # every other treated customer trades in the window (commission 12.34 RMB), one holdout customer does
    trades = [trade(c, "2026-02-05", 1234) for c in treated[::2]] + [trade(holdout[0], "2026-02-05", 1000)]
    make_load(ran_ws, customers=customers(assigned(ran_ws)), trades=trades,
              balances=[balance(treated[0], "2026-03-02", 0)])
    done = _panhuo(ran_ws, "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["format"] == "panhuo.report/1" and data["acquisition_cost_rmb"] == 1000.0
    (item,) = data["items"]
    assert item["kind"] == "playbook" and item["id"] == "test-wake" and item["final"] is True
    assert item["missing_customers"] == 0
    assert item["windows"][0]["window_end"] == "2026-02-13"
    g = item["groups"][0]
    assert _GROUP_KEYS <= set(g)
    assert g["arm"] == "all" and g["n_treated"] == len(treated) and g["n_holdout"] == len(holdout)
    assert g["conversions"] == {"treated": len(treated[::2]), "holdout": 1}
    for key in ("incremental_conversions", "incremental_commission_rmb"):
        est = g[key]
        assert set(est) == {"estimate", "ci_low", "ci_high"}
        assert est["ci_low"] <= est["estimate"] <= est["ci_high"]
    rate_t, rate_h = len(treated[::2]) / len(treated), 1 / len(holdout)
    assert abs(g["incremental_conversions"]["estimate"] - (rate_t - rate_h) * len(treated)) < 0.01
    expected_rmb = (len(treated[::2]) * 12.34 / len(treated) - 10.0 / len(holdout)) * len(treated)
    assert abs(g["incremental_commission_rmb"]["estimate"] - expected_rmb) < 0.01

    assert data["programme"]["kind"] == "programme" and data["programme"]["playbooks"] == ["test-wake"]
    assert data["message_cost_rmb"] == {"app_push": 0.0, "sms": 0.05, "wechat": 0.0, "call": 3.0}

    out = tmp_path / "report.html"
    html = _panhuo(ran_ws, "--playbook", "test-wake", "--format", "html", "--out", str(out))
    assert html.returncode == 0, html.stderr
    assert html.stdout == "" and "wrote the report to" in html.stderr  # stdout stays clean for pipes
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and "策略 test-wake" in text and "最终结果" in text
    assert "<script" not in text and "http" not in text


def test_report_open_window_and_errors(ran_ws: Workspace, tmp_path: Path) -> None:
    make_load(ran_ws, customers=customers(assigned(ran_ws)), trades=[trade(assigned(ran_ws)[0], "2026-02-10", 100)])
    done = _panhuo(ran_ws, "--format", "json")
    assert done.returncode == 0, done.stderr
    (item,) = json.loads(done.stdout)["items"]
    assert item["final"] is False and item["pending"]["max_trading_days_remaining"] == 3
    g = item["groups"][0]
    assert g["incremental_conversions"]["estimate"] is None and "3 trading day(s) remain" in g["not_estimable"]
    md = _panhuo(ran_ws)
    assert "## playbook test-wake" in md.stdout and "## programme" in md.stdout
    assert "Not final" in md.stdout and "not estimable" in md.stdout

    refused = _panhuo(ran_ws, "--playbook", "no-such")
    assert refused.returncode == 2 and "no playbook 'no-such'" in refused.stderr
    empty = Workspace.open(tmp_path / "empty")
    make_load(empty)
    none = _panhuo(empty)
    assert none.returncode == 2 and "no playbook has a finished run" in none.stderr
    unknown = _panhuo(ran_ws, "--campaign", "nope")
    assert unknown.returncode == 2 and "contact_history" in unknown.stderr


def test_cost_table_reads_ledger_and_sent_messages(ran_ws: Workspace) -> None:
    """Benefits from the ledger, messages that went out (sent, or call tasks) by channel; pending ones cost nothing."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from sqlalchemy import insert, select, update

    from panhuo.benefits.models import IssuedBenefit
    from panhuo.measure.report import benefit_costs, cost_table
    from panhuo.runs.models import OutboxMessage
    from panhuo.store import open_store

    store = open_store(ran_ws)
    try:
        with store.session() as s:
            msgs = s.execute(select(OutboxMessage.id, OutboxMessage.run_id, OutboxMessage.customer_id,
                                    OutboxMessage.channel).order_by(OutboxMessage.id)).all()
            assert len(msgs) >= 3
            s.execute(update(OutboxMessage).where(OutboxMessage.id.in_([m.id for m in msgs[:2]])).values(status="sent"))
            at = dt.datetime(2026, 1, 30, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
            s.execute(insert(IssuedBenefit), [{"run_id": msgs[0].run_id, "customer_id": msgs[0].customer_id,
                                               "benefit_id": "b1", "unit_cost_fen": 800, "issued_at": at},
                                              {"run_id": msgs[0].run_id, "customer_id": msgs[0].customer_id,
                                               "benefit_id": "b2", "unit_cost_fen": 150, "issued_at": at}])
    finally:
        store.dispose()
    t = cost_table(ran_ws, [msgs[0].run_id])
    got = {r["customer_id"]: r for r in t.to_pylist()}
    assert set(got) == {msgs[0].customer_id, msgs[1].customer_id}  # the pending third message costs nothing
    assert got[msgs[0].customer_id]["benefit_fen"] == 950
    assert got[msgs[0].customer_id][f"msg_{msgs[0].channel}"] == 1 and got[msgs[1].customer_id]["benefit_fen"] == 0
    assert benefit_costs(ran_ws, [msgs[0].run_id]) == {(msgs[0].run_id, msgs[0].customer_id): 950}
    assert cost_table(ran_ws, []).num_rows == 0
