"""The status rule and each of its boundaries, on every engine."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from panhuo.config import StatusRules
from panhuo.status.rules import status_expr, years_before
from tests.status.conftest import D, rmb

AS_OF = D("2025-06-30")
OLD = D("2015-01-05")


def cust(cid: str, open_date: dt.date = OLD, **kw: Any) -> dict[str, Any]:
    return {"customer_id": cid, "open_date": open_date, "branch_id": kw.pop("branch_id", "B1"), **kw}


def bal(cid: str, as_of: dt.date, cash: str = "0", sec: str = "0", prod: str = "0") -> dict[str, Any]:
    return {"customer_id": cid, "as_of": as_of, "cash_fen": rmb(cash), "securities_value_fen": rmb(sec),
            "product_value_fen": rmb(prod)}


def trade(cid: str, day: dt.date) -> dict[str, Any]:
    return {"customer_id": cid, "trade_date": day, "market": "SH", "asset_class": "stock", "side": "buy",
            "amount_fen": 100000, "commission_fen": 500}


def run(con, wh, as_of: dt.date = AS_OF, rules: StatusRules | None = None) -> dict[str, dict[str, Any]]:
    expr = status_expr(wh.table(con, "customers"), wh.table(con, "balances"), wh.table(con, "trades"), as_of,
                       rules or StatusRules())
    rows = expr.to_pyarrow().to_pylist()
    return {r["customer_id"]: r for r in rows}


def statuses(out: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {k: v["status"] for k, v in out.items()}


def test_effective_threshold_inclusive_by_default(con, load) -> None:
    wh = load(
        customers=[cust("at"), cust("below"), cust("mixed")],
        balances=[bal("at", D("2025-06-30"), cash="10000.00"), bal("below", D("2025-06-30"), cash="9999.99"),
                  bal("mixed", D("2025-06-30"), cash="0.01", sec="5000.00", prod="4999.99")],
        trades=[trade("at", D("2025-06-01")), trade("below", D("2025-06-01")), trade("mixed", D("2025-06-01"))],
    )
    assert statuses(run(con, wh)) == {"at": "effective", "below": "sleeping", "mixed": "effective"}
    strict = StatusRules(effective_comparison=">")
    assert statuses(run(con, wh, rules=strict))["at"] == "sleeping"


def test_dormant_cash_ceiling_operator(con, load) -> None:
    wh = load(
        customers=[cust("at"), cust("above"), cust("zero")],
        balances=[bal("at", D("2025-05-31"), cash="100.00"), bal("above", D("2025-05-31"), cash="100.01"),
                  bal("zero", D("2025-05-31"))],
    )
    assert statuses(run(con, wh)) == {"at": "dormant", "above": "sleeping", "zero": "dormant"}
    strict = StatusRules(dormant_cash_comparison="<")
    assert statuses(run(con, wh, rules=strict)) == {"at": "sleeping", "above": "sleeping", "zero": "dormant"}


def test_dormant_needs_zero_securities(con, load) -> None:
    wh = load(customers=[cust("a")], balances=[bal("a", D("2025-05-31"), cash="1.00", sec="0.01")])
    assert statuses(run(con, wh)) == {"a": "sleeping"}


def test_three_year_boundary_on_last_trade(con, load) -> None:
    cutoff = years_before(AS_OF, 3)
    assert cutoff == D("2022-06-30")
    wh = load(
        customers=[cust("on_cutoff"), cust("day_after"), cust("never")],
        trades=[trade("on_cutoff", cutoff), trade("day_after", cutoff + dt.timedelta(days=1))],
    )
    assert statuses(run(con, wh)) == {"on_cutoff": "dormant", "day_after": "sleeping", "never": "dormant"}


def test_three_year_boundary_on_open_date(con, load) -> None:
    cutoff = years_before(AS_OF, 3)
    wh = load(customers=[cust("old", cutoff), cust("young", cutoff + dt.timedelta(days=1))])
    assert statuses(run(con, wh)) == {"old": "dormant", "young": "sleeping"}


def test_leap_day_minus_years() -> None:
    assert years_before(D("2028-02-29"), 3) == D("2025-02-28")
    assert years_before(D("2024-02-29"), 4) == D("2020-02-29")


def test_dormant_flag_wins_both_ways(con, load) -> None:
    wh = load(
        customers=[cust("flag_yes", dormant_flag=True), cust("flag_no", dormant_flag=False),
                   cust("flag_null", dormant_flag=None)],
        balances=[bal("flag_yes", D("2025-06-30"), cash="50000.00"), bal("flag_no", D("2025-06-30"))],
        trades=[trade("flag_yes", D("2025-06-30"))],
    )
    assert statuses(run(con, wh)) == {"flag_yes": "dormant", "flag_no": "sleeping", "flag_null": "dormant"}
    ignore = StatusRules(use_dormant_flag=False)
    assert statuses(run(con, wh, rules=ignore)) == {
        "flag_yes": "effective", "flag_no": "dormant", "flag_null": "dormant"}


def test_new_empty_window_and_funding(con, load) -> None:
    wh = load(
        customers=[cust("day29", AS_OF - dt.timedelta(days=29)), cust("day30", AS_OF - dt.timedelta(days=30)),
                   cust("today", AS_OF), cust("funded_once", D("2025-06-10")), cust("traded", D("2025-06-10")),
                   cust("funded_later", D("2025-06-10")), cust("rich_new", D("2025-06-10"))],
        balances=[bal("funded_once", D("2025-06-15"), cash="5.00"), bal("funded_once", D("2025-06-20")),
                  bal("funded_later", D("2025-07-15"), cash="5.00"),
                  bal("rich_new", D("2025-06-29"), cash="20000.00")],
        trades=[trade("traded", D("2025-06-12")), trade("funded_later", D("2025-07-16"))],
    )
    assert statuses(run(con, wh)) == {
        "day29": "new_empty", "day30": "sleeping", "today": "new_empty", "funded_once": "sleeping",
        "traded": "sleeping", "funded_later": "new_empty", "rich_new": "effective",
    }


def test_opened_after_as_of_not_counted(con, load) -> None:
    wh = load(customers=[cust("a"), cust("later", D("2025-07-01"))])
    assert set(run(con, wh)) == {"a"}


def test_latest_snapshot_on_or_before_as_of(con, load) -> None:
    wh = load(
        customers=[cust("a"), cust("none")],
        balances=[bal("a", D("2025-05-31"), cash="1.00", sec="2.00", prod="3.00"),
                  bal("a", D("2025-06-30"), cash="10.00", sec="20.00", prod="30.00"),
                  bal("a", D("2025-07-31"), cash="99999.00")],
        trades=[trade("a", D("2025-06-01")), trade("a", D("2025-07-02"))],
    )
    out = run(con, wh)
    assert out["a"] == {"customer_id": "a", "status": "sleeping", "cash_fen": 1000, "securities_value_fen": 2000,
                        "product_value_fen": 3000, "total_assets_fen": 6000, "last_trade_date": D("2025-06-01")}
    assert out["none"]["total_assets_fen"] == 0 and out["none"]["cash_fen"] == 0
    assert out["none"]["last_trade_date"] is None


def test_precedence_dormant_over_new_empty(con, load) -> None:
    # the flag can make a brand new account dormant; dormant wins over new_empty
    wh = load(customers=[cust("n", AS_OF, dormant_flag=True)])
    assert statuses(run(con, wh)) == {"n": "dormant"}


@pytest.mark.parametrize("days", [1, 7])
def test_new_empty_days_setting(con, load, days: int) -> None:
    wh = load(customers=[cust("a", AS_OF - dt.timedelta(days=days - 1)), cust("b", AS_OF - dt.timedelta(days=days))])
    assert statuses(run(con, wh, rules=StatusRules(new_empty_days=days))) == {"a": "new_empty", "b": "sleeping"}
