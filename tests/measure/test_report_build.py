"""The report builder on hand-made outcomes: arms, weights, costs, zero holdout, plain words on significance."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from panhuo.measure.outcomes import Outcomes
from panhuo.measure.report import build_report, to_markdown

__all__: list[str] = []

D0 = dt.date(2026, 1, 30)


def _row(i: int, grp: str, arm: str | None, success: bool, comm: int, prop: float, closed: bool = True) -> dict:
    return {"run_id": 1, "customer_id": f"c{i:04d}", "grp": grp, "arm": arm, "propensity": prop, "as_of": D0,
            "window_end": dt.date(2026, 2, 13), "closed": closed, "days_remaining": 0 if closed else 4,
            "login": False, "trade": success, "deposit": False, "commission_fen": comm, "pre_login": False,
            "pre_trade": False, "pre_deposit": False, "pre_commission_fen": 0, "success": success,
            "pre_success": False}


def _outcomes(rows: list[dict]) -> Outcomes:
    runs = [{"run_id": 1, "as_of": D0, "window_start": dt.date(2026, 2, 2), "window_end": dt.date(2026, 2, 13),
             "closed": all(r["closed"] for r in rows), "days_remaining": 0, "assignments": len(rows)}]
    return Outcomes("playbook", "pb", "trade", 10, dt.date(2026, 3, 2), pa.Table.from_pylist(rows), runs)


def _world() -> list[dict]:
    rows = []
    i = 0
    for arm, p_arm, hits in (("a", 0.56, 30), ("b", 0.24, 5)):  # holdout 0.2: P(treated, a) = 0.8 * 0.7
        for k in range(100):
            rows.append(_row(i, "treated", arm, k < hits, 1000 if k < hits else 0, p_arm))
            i += 1
    for k in range(100):
        rows.append(_row(i, "holdout", None, k < 5, 1000 if k < 5 else 0, 0.2))
        i += 1
    return rows


def test_arms_costs_and_markdown() -> None:
    rows = _world()
    costs = {(1, r["customer_id"]): 500 for r in rows if r["grp"] == "treated"}  # 5 RMB each
    item = build_report(_outcomes(rows), acquisition_cost=Decimal("1000.00"), costs=costs)
    g = {x["arm"]: x for x in item["groups"]}
    assert set(g) == {"all", "a", "b"} and item["final"]
    # arm a: (0.30 - 0.05) * 100 treated
    assert g["a"]["incremental_conversions"]["estimate"] == pytest.approx(25.0)
    assert g["a"]["incremental_commission_rmb"]["estimate"] == pytest.approx(250.0)
    assert g["a"]["significant"]["conversions"]
    assert g["a"]["cost_rmb"] == 500.0 and g["a"]["cost_per_incremental_reactivation_rmb"] == 20.0
    # arm b: (0.05 - 0.05): no increment, CI around 0, no cost per reactivation
    assert g["b"]["incremental_conversions"]["estimate"] == pytest.approx(0.0)
    assert not g["b"]["significant"]["conversions"] and g["b"]["cost_per_incremental_reactivation_rmb"] is None
    # all: pooled arms weighted by P(treated) = 0.8 each: (35/200 - 0.05) * 200
    assert g["all"]["incremental_conversions"]["estimate"] == pytest.approx(25.0)
    report = {"generated_at": "now", "acquisition_cost_rmb": 1000.0, "items": [item]}
    md = to_markdown(report)
    assert "arm b: incremental conversions not significant (the 95% CI includes 0)" in md
    assert "arm a: incremental conversions significant at 95%" in md
    assert "20.00 RMB per incremental reactivation, below the acquisition cost" in md


def test_zero_holdout_not_estimable() -> None:
    rows = [r for r in _world() if r["grp"] == "treated"]
    item = build_report(_outcomes(rows))
    g = item["groups"][0]
    assert g["n_holdout"] == 0 and g["incremental_conversions"] == {"estimate": None, "ci_low": None, "ci_high": None}
    assert "no holdout" in g["not_estimable"]
    md = to_markdown({"generated_at": "now", "acquisition_cost_rmb": 1000.0, "items": [item]})
    assert "not estimable — no holdout customers" in md


def test_open_rows_left_out_and_reported() -> None:
    rows = _world()
    rows[0] = {**rows[0], "closed": False, "days_remaining": 4}
    item = build_report(_outcomes(rows))
    assert not item["final"] and item["pending"] == {"assignments": 1, "max_trading_days_remaining": 4}
    assert item["measured"] == len(rows) - 1 and item["groups"][0]["n_treated"] == 199


def test_customers_missing_from_the_data_are_left_out() -> None:
    rows = _world()
    rows[0] = {**rows[0], "in_data": False}  # a treated converter of arm a
    item = build_report(_outcomes(rows))
    g = item["groups"][0]
    assert item["missing_customers"] == 1 and g["n_treated"] == 199 and g["conversions"]["treated"] == 34
    md = to_markdown({"generated_at": "now", "acquisition_cost_rmb": 1000.0, "items": [item]})
    assert "1 assignment(s) name customers missing from the data" in md
