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


def _tiered(rows: list[dict]) -> list[dict]:
    """Tier t1 for even-numbered customers, t2 for odd ones."""
    return [{**r, "tier": "t1" if int(r["customer_id"][1:]) % 2 == 0 else "t2"} for r in rows]


def test_breakdown_per_tier_and_arm() -> None:
    rows = _tiered(_world())
    out = _outcomes(rows)
    out.tier_names.update({"t1": "休眠高净值", "t2": "其他"})
    item = build_report(out)
    keys = [(g["arm"], g["tier"]) for g in item["groups"]]
    assert keys == [("all", "all"), ("a", "all"), ("b", "all"), ("all", "t1"), ("all", "t2"),
                    ("a", "t1"), ("a", "t2"), ("b", "t1"), ("b", "t2")]
    g = {(x["arm"], x["tier"]): x for x in item["groups"]}
    # tier t1: even customers; arm a's first 30 (converters) split 15/15, holdout converters c0200..c0204: 3 even
    t1 = g[("a", "t1")]
    assert t1["n_treated"] == 50 and t1["n_holdout"] == 50 and t1["conversions"] == {"treated": 15, "holdout": 3}
    assert t1["incremental_conversions"]["estimate"] == pytest.approx((15 / 50 - 3 / 50) * 50)
    for x in item["groups"]:
        for key in ("incremental_conversions", "incremental_commission_rmb"):
            assert set(x[key]) == {"estimate", "ci_low", "ci_high"}
    assert item["tier_names"] == {"t1": "休眠高净值", "t2": "其他"}


def test_costs_by_channel_roi_and_cost_per_reactivation() -> None:
    from panhuo.measure.report import _cost_frame

    rows = _world()
    costs = _cost_frame({(1, r["customer_id"]): {"benefit_fen": 500, "msg_sms": 2, "msg_app_push": 1}
                         for r in rows if r["grp"] == "treated" and r["arm"] == "a"})
    item = build_report(_outcomes(rows), costs=costs,
                        message_cost={"sms": Decimal("0.05"), "app_push": Decimal("0.00"), "call": Decimal("3.00")})
    g = {x["arm"]: x for x in item["groups"]}
    a = g["a"]
    # 100 customers: benefits 5.00 each, 2 SMS at 0.05 and 1 free push each: 510.00 RMB
    assert a["cost"] == {"benefit_rmb": 500.0, "message_rmb": 10.0, "messages": {"app_push": 100, "sms": 200,
                                                                                 "wechat": 0, "call": 0},
                         "message_rmb_by_channel": {"app_push": 0.0, "sms": 10.0, "wechat": 0.0, "call": 0.0},
                         "total_rmb": 510.0}
    assert a["cost_rmb"] == 510.0 and a["reach"] == {"contacted": 100, "share": 1.0}
    # incremental commission 250 RMB, significant: ROI = 250 / 510 with the CI divided by the same cost
    assert a["roi"]["estimate"] == pytest.approx(250 / 510, abs=1e-4)
    lo, hi = a["incremental_commission_rmb_cuped"]["ci_low"], a["incremental_commission_rmb_cuped"]["ci_high"]
    assert a["roi"]["ci_low"] == pytest.approx(lo / 510, abs=1e-3) and a["roi"]["ci_high"] == pytest.approx(hi / 510,
                                                                                                           abs=1e-3)
    assert a["cost_per_incremental_reactivation_rmb"] == pytest.approx(510 / 25, abs=0.01)
    low, high = a["cost_per_incremental_reactivation_range_rmb"]
    assert low < 510 / 25 < high
    # arm b costs nothing recorded: no ROI, and it says why
    assert g["b"]["cost_rmb"] == 0.0 and g["b"]["roi"] is None and "no cost" in g["b"]["roi_note"]


def test_not_significant_gives_no_roi_and_says_so() -> None:
    from panhuo.measure.report import _cost_frame
    from panhuo.report.measure import render_report

    rows = [r for r in _world() if r["arm"] != "a"]  # arm b converts like the holdout
    costs = _cost_frame({(1, r["customer_id"]): {"benefit_fen": 100} for r in rows if r["grp"] == "treated"})
    item = build_report(_outcomes(rows), costs=costs)
    g = item["groups"][0]
    assert not g["significant"]["conversions"] and g["roi"] is None
    assert g["cost_per_incremental_reactivation_rmb"] is None
    assert "not significant" in g["roi_note"]
    report = {"generated_at": "now", "acquisition_cost_rmb": 1000.0, "items": [item], "programme": None}
    assert "no ROI: incremental commission not significant" in to_markdown(report)
    html = render_report(report)
    assert "增量转化不显著（95%置信区间包含0）" in html and "不给出ROI" in html


def test_programme_against_the_global_control_group() -> None:
    from panhuo.measure.report import build_programme

    rows = _world()
    gc = [{**_row(1000 + k, "global_control", None, k < 5, 1000 if k < 5 else 0, 0.05)} for k in range(100)]
    first = _outcomes(rows + gc)
    second = Outcomes("playbook", "pb2", "login", 5, dt.date(2026, 3, 2), pa.Table.from_pylist(
        [{**r, "run_id": 2} for r in rows[:100]]), [])
    prog = build_programme([first, second])
    assert prog["kind"] == "programme" and prog["control"] == "global_control" and prog["playbooks"] == ["pb", "pb2"]
    g = {x["arm"]: x for x in prog["groups"]}
    # every treated row of both playbooks against the 100 global-control customers (5% convert)
    assert g["all"]["n_treated"] == 300 and g["all"]["n_holdout"] == 100
    assert set(g) == {"all", "pb", "pb2"}  # one comparison per playbook
    assert g["pb2"]["n_treated"] == 100
    assert any("global control is drawn before the guardrails" in n for n in prog["notes"])
    # no global control at all: a clear reason, no number
    none = build_programme([_outcomes(rows)])
    assert none["groups"][0]["incremental_conversions"]["estimate"] is None
    assert "no customer of the global control group" in none["groups"][0]["not_estimable"]


def test_html_is_self_contained_and_honest_about_open_windows() -> None:
    from panhuo.report.measure import render_report

    rows = _tiered(_world())
    rows[0] = {**rows[0], "in_data": False}  # (the first row: from_pylist takes the columns from it)
    rows[1] = {**rows[1], "closed": False, "days_remaining": 4}
    item = build_report(_outcomes(rows))
    html = render_report({"generated_at": "now", "acquisition_cost_rmb": 1000.0, "message_cost_rmb": {"sms": 0.05},
                          "items": [item], "programme": None})
    assert html.startswith("<!doctype html>") and 'lang="zh-CN"' in html
    for external in ("http://", "https://", "<script", "<link", "src="):
        assert external not in html
    assert "非最终结果" in html and "最多还需 4 个交易日" in html
    assert "1 个分配的客户不在数据中" in html
    assert html.count("<svg") == 2 and "<circle" in html  # the two forest plots, drawn inline
    assert "促活效果报告" in html and "增量转化" in html and "获客成本" in html


def test_nothing_closed_gives_no_number() -> None:
    from panhuo.report.measure import render_report

    rows = [{**r, "closed": False, "days_remaining": 7} for r in _world()]
    item = build_report(_outcomes(rows))
    assert not item["final"] and item["measured"] == 0
    for g in item["groups"]:
        assert g["incremental_conversions"]["estimate"] is None and "7 trading day(s) remain" in g["not_estimable"]
    html = render_report({"generated_at": "now", "acquisition_cost_rmb": 1000.0, "items": [item]})
    assert "尚无结果" in html and "还需 7 个交易日" in html


def test_runs_without_assignments_say_so() -> None:
    from panhuo.measure.outcomes import _empty_outcomes, _with_success

    out = Outcomes("playbook", "pb", "trade", 10, None, _with_success(_empty_outcomes(True), "trade"), [])
    item = build_report(out)
    g = item["groups"][0]
    assert item["assignments"] == 0 and not item["final"]
    assert g["incremental_conversions"]["estimate"] is None and "assigned no customer" in g["not_estimable"]


def test_a_handful_of_customers_gets_counts_not_a_confidence_interval() -> None:
    from panhuo.measure.report import MIN_GROUP

    rows = _world()
    few = [r for r in rows if r["grp"] == "treated"] + [r for r in rows if r["grp"] == "holdout"][:3]
    few = [{**r, "success": True} if r["grp"] == "holdout" else r for r in few]  # 3 holdout, all converted
    g = build_report(_outcomes(few))["groups"][0]
    assert g["n_holdout"] == 3 and g["conversions"]["holdout"] == 3
    assert g["incremental_conversions"]["estimate"] is None and g["incremental_commission_rmb"]["estimate"] is None
    assert f"at least {MIN_GROUP} each" in g["not_estimable"] and not g["significant"]["conversions"]


def test_no_variation_gives_no_zero_width_interval() -> None:
    rows = [{**r, "success": False, "trade": False, "commission_fen": 0} for r in _world()]  # nobody converts
    g = build_report(_outcomes(rows))["groups"][0]
    assert g["incremental_conversions"]["estimate"] is None and "no variation" in g["not_estimable"]


def test_no_holdout_in_a_small_tier_says_no_holdout() -> None:
    rows = _tiered(_world())
    small_t2 = [r for r in rows if r["tier"] == "t2" and r["grp"] == "treated"][:20]
    rows = [r for r in rows if r["tier"] == "t1"] + small_t2  # t2: 20 treated, no holdout at all
    g = {(x["arm"], x["tier"]): x for x in build_report(_outcomes(rows))["groups"]}
    assert g[("all", "t2")]["n_treated"] == 20 and g[("all", "t2")]["n_holdout"] == 0
    assert "no holdout customers" in g[("all", "t2")]["not_estimable"]  # not "too few": there is none
    assert g[("all", "t1")]["not_estimable"] is None
