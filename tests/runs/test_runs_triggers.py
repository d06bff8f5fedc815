"""Triggers (时点) on a small stored brokerage: schedule on the trading calendar, market events (a weekend
event caught on Monday, index moves by threshold, direction and index), lifecycle transitions from the
status history, new accounts still empty on day N, and behaviour (logins without a trade, push opened
without a trade)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from panhuo.config import Workspace
from panhuo.playbooks.schema import PlaybookSpec
from panhuo.runs.triggers import evaluate
from tests.status.conftest import D, make_load, rmb

MON, TUE, FRI = D("2026-11-23"), D("2026-11-24"), D("2026-11-20")


def _spec(timing: dict[str, Any]) -> PlaybookSpec:
    return PlaybookSpec.model_validate({
        "id": "t-trigger", "name": "触发测试",
        "timing": {"send_window": ["09:00", "20:00"], "reentry": "every_time", **timing},
        "user": {"segment": "sleeping"}, "benefit": {"items": ["news-daily"]}, "channel": {"order": ["app_push"]},
        "method": {"mode": "automated", "holdout": 0.1, "success": {"event": "trade", "within_trading_days": 10}},
    })


def _cust(cid: str, opened: str) -> dict[str, Any]:
    return {"customer_id": cid, "open_date": D(opened), "app_user": True, "phone": "13800000000"}


def _bal(cid: str, day: str, cash: str) -> dict[str, Any]:
    return {"customer_id": cid, "as_of": D(day), "cash_fen": rmb(cash), "securities_value_fen": 0,
            "product_value_fen": 0}


def _ev(cid: str, when: str, event: str) -> dict[str, Any]:
    return {"customer_id": cid, "event_time": dt.datetime.fromisoformat(when), "event": event, "channel": "app"}


def _trade(cid: str, day: str) -> dict[str, Any]:
    return {"customer_id": cid, "trade_date": D(day), "market": "SH", "symbol": "600000", "asset_class": "stock",
            "side": "buy", "quantity": 100.0, "amount_fen": rmb("1000"), "commission_fen": rmb("1")}


def _event(day: str, kind: str, **attrs: Any) -> dict[str, Any]:
    return {"date": D(day), "kind": kind, "attributes": json.dumps(attrs, ensure_ascii=False)}


@pytest.fixture(scope="module")
def brokerage(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Any]:
    from panhuo.config import DuckDBSettings
    from panhuo.engines.duckdb import connect
    from panhuo.status.history import compute_status

    root = tmp_path_factory.mktemp("triggers")
    ws = Workspace.open(root / "ws")
    con = connect(DuckDBSettings(memory_limit="1GB"), root)
    make_load(
        ws,
        customers=[_cust("drop", "2020-01-01"), _cust("stay", "2020-01-01"), _cust("new3", "2026-11-20"),
                   _cust("new4", "2026-11-19"), _cust("new3funded", "2026-11-20"), _cust("login2", "2019-01-01"),
                   _cust("login2trade", "2019-01-01"), _cust("login1", "2019-01-01"), _cust("push", "2019-01-01"),
                   _cust("pushtrade", "2019-01-01"), _cust("back", "2018-01-01")],
        balances=[_bal("drop", "2026-11-20", "50000"), _bal("drop", "2026-11-23", "5000"),
                  _bal("stay", "2026-11-20", "50000"), _bal("stay", "2026-11-23", "50000"),
                  _bal("new3funded", "2026-11-23", "20000"),
                  _bal("back", "2026-11-20", "500"), _bal("back", "2026-11-23", "30000")],
        trades=[_trade("login2trade", "2026-11-22"), _trade("pushtrade", "2026-11-23"), _trade("back", "2026-11-23"),
                _trade("push", "2026-11-10")],
        app_events=[_ev("login2", "2026-11-18 09:00:00", "login"), _ev("login2", "2026-11-23 20:00:00", "login"),
                    _ev("login2", "2026-11-10 09:00:00", "login"),
                    _ev("login2trade", "2026-11-18 09:00:00", "login"), _ev("login2trade", "2026-11-19 09:00", "login"),
                    _ev("login1", "2026-11-20 09:00:00", "login"), _ev("login1", "2026-11-10 09:00:00", "login"),
                    _ev("push", "2026-11-21 12:00:00", "push_open"),
                    _ev("pushtrade", "2026-11-22 12:00:00", "push_open")],
        market_events=[_event("2026-11-22", "ipo_subscription", symbol="688999"),
                       _event("2026-11-23", "index_move", index="000001", change_pct=-2.5),
                       _event("2026-11-24", "index_move", index="000001", change_pct=1.5),
                       _event("2026-11-25", "new_fund", fund_code="000001"),
                       _event("2026-12-01", "dividend", symbol="600000")],
    )
    compute_status(ws, con, FRI, backfill=False)
    compute_status(ws, con, MON, backfill=False)
    return ws, con


def _ids(firing: Any) -> set[str]:
    assert firing.audience is not None
    return set(firing.audience.to_pyarrow().column("customer_id").to_pylist())


def test_runs_only_on_trading_days(brokerage) -> None:
    ws, con = brokerage
    f = evaluate(ws, con, _spec({"trigger": "schedule", "schedule": "every_trading_day", "at": "09:00"}), D("2026-11-22"))
    assert not f.fires and "not a trading day" in f.why
    assert evaluate(ws, con, _spec({"trigger": "schedule", "schedule": "every_trading_day", "at": "09:00"}), MON).fires


def test_schedule_first_trading_day_and_n_days_before(brokerage) -> None:
    ws, con = brokerage
    first = _spec({"trigger": "schedule", "schedule": "first_trading_day_of_month"})
    assert evaluate(ws, con, first, D("2026-12-01")).fires  # Tuesday 1 December
    assert not evaluate(ws, con, first, D("2026-12-02")).fires
    assert evaluate(ws, con, first, D("2026-11-02")).fires  # Monday 2 November (1 November is a Sunday)
    before = _spec({"trigger": "schedule", "schedule": "n_trading_days_before", "n": 2, "event": "new_fund"})
    f = evaluate(ws, con, before, MON)  # 23 Nov + 2 trading days = 25 Nov, the fund launch
    assert f.fires and f.events and f.events[0]["attributes"] == {"fund_code": "000001"}
    assert not evaluate(ws, con, before, TUE).fires


def test_a_weekend_market_event_fires_on_the_next_trading_day_only(brokerage) -> None:
    ws, con = brokerage
    ipo = _spec({"trigger": "market_event", "event": "ipo_subscription"})
    assert evaluate(ws, con, ipo, MON).fires  # the Sunday event, caught on Monday
    assert not evaluate(ws, con, ipo, TUE).fires
    assert not evaluate(ws, con, ipo, FRI).fires


@pytest.mark.parametrize(("threshold", "direction", "index", "day", "fires"), [
    (2.0, "either", None, MON, True), (2.0, "down", None, MON, True), (2.0, "up", None, MON, False),
    (3.0, "either", None, MON, False), (2.0, "either", "000001.SH", MON, True), (2.0, "either", "000300.SH", MON, False),
    (1.0, "up", None, TUE, True), (2.0, "either", None, TUE, False),
])
def test_index_move_threshold_direction_and_index(brokerage, threshold, direction, index, day, fires) -> None:
    ws, con = brokerage
    spec = _spec({"trigger": "market_event", "event": "index_move", "threshold": threshold, "direction": direction,
                  **({"index": index} if index else {})})
    assert evaluate(ws, con, spec, day).fires is fires


def test_lifecycle_transitions_from_the_status_history(brokerage) -> None:
    ws, con = brokerage
    drop = evaluate(ws, con, _spec({"trigger": "lifecycle", "transition": "effective_to_sleeping"}), MON)
    assert drop.fires and _ids(drop) == {"drop"}
    back = evaluate(ws, con, _spec({"trigger": "lifecycle", "transition": "reactivated"}), MON)
    assert _ids(back) == {"back"}


def test_new_accounts_still_empty_on_day_n(brokerage) -> None:
    ws, con = brokerage
    def ids(days: list[int]) -> set[str]:
        return _ids(evaluate(ws, con, _spec({"trigger": "lifecycle", "transition": "new_empty", "days": days}), MON))

    # Monday's run covers Saturday 21 to Monday 23. Opened Friday 20th: day 3 is Monday; opened the 19th:
    # day 3 was Sunday, caught on Monday. The funded account opened the 20th is not empty.
    assert ids([3]) == {"new3", "new4"}
    assert ids([4]) == {"new4"}
    assert ids([7]) == set()
    assert ids([1, 7]) == {"new3"}


def test_behaviour_logins_without_a_trade_and_push_opened_without_a_trade(brokerage) -> None:
    ws, con = brokerage
    login = _spec({"trigger": "behaviour", "behaviour": "logged_in_no_trade", "min_logins": 2, "days": 7})
    assert _ids(evaluate(ws, con, login, MON)) == {"login2"}
    push = _spec({"trigger": "behaviour", "behaviour": "push_opened_no_trade", "days": 7})
    assert _ids(evaluate(ws, con, push, MON)) == {"push"}


def test_outside_the_calendar_is_an_error(brokerage) -> None:
    from panhuo.errors import CalendarError

    ws, con = brokerage
    with pytest.raises(CalendarError, match="outside the trading calendar"):
        evaluate(ws, con, _spec({"trigger": "schedule", "schedule": "every_trading_day", "at": "09:00"}),
                 D("2031-01-06"))

