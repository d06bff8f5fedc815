"""Benefit stock and budget reservation: exact fen arithmetic, refusal reasons, idempotent retries, audit once.

Everything runs against a real migrated store (SQLite file and PostgreSQL); the property tests drive
random stock/budget/unit-cost/request sequences through :func:`reserve` and compare with a plain model.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from panhuo.benefits.ledger import (
    EXHAUSTED_ACTION,
    REASON_BUDGET,
    REASON_NOT_VALID,
    REASON_STOCK,
    allowance,
    reconcile,
    reserve,
    reserve_all,
    usage,
)
from panhuo.benefits.models import BenefitStock, IssuedBenefit
from panhuo.store.audit import iter_audit, verify_audit
from panhuo.store.db import Store
from panhuo.store.models import SHANGHAI
from tests.benefits.conftest import AT, item

__all__: list[str] = []

_ids = itertools.count()


def _fresh(prefix: str = "b") -> str:
    return f"{prefix}-{next(_ids)}"


def _counter(store: Store, bid: str) -> tuple[int, int] | None:
    with store.session() as s:
        row = s.get(BenefitStock, bid)
        return None if row is None else (row.issued, row.spent_fen)


def _ledger(store: Store, bid: str) -> tuple[int, int]:
    with store.session() as s:
        n, fen = s.execute(select(func.count(), func.coalesce(func.sum(IssuedBenefit.unit_cost_fen), 0))
                           .where(IssuedBenefit.benefit_id == bid)).one()
        return int(n), int(fen)


def _exhausted_entries(store: Store, bid: str) -> list:
    with store.session() as s:
        return [e for e in iter_audit(s, entity="benefit", entity_id=bid) if e.action == EXHAUSTED_ACTION]


# --- the arithmetic ---------------------------------------------------------------------------------------

@given(issued=st.integers(0, 10**6), spent=st.integers(0, 10**9), stock=st.none() | st.integers(0, 10**6),
       budget=st.none() | st.integers(0, 10**9), cost=st.integers(0, 10**5))
def test_allowance_is_the_largest_issue_within_both_limits(issued, spent, stock, budget, cost) -> None:
    left, reason = allowance(issued, spent, stock=stock, budget_fen=budget, unit_cost_fen=cost)
    if left is None:
        assert reason is None and stock is None and (budget is None or cost == 0)
        return
    assert left >= 0 and reason in (REASON_STOCK, REASON_BUDGET)

    def fits(k: int) -> bool:  # k more units overdraw neither what is left of the stock nor of the budget
        return ((stock is None or k <= max(0, stock - issued)) and (budget is None or k * cost <= max(0, budget - spent)))

    assert fits(left)
    assert not fits(left + 1)
    if reason == REASON_STOCK:
        assert stock is not None and left == max(0, stock - issued)
    else:
        assert budget is not None and cost > 0 and left == max(0, budget - spent) // cost


def test_allowance_refuses_a_negative_cost() -> None:
    with pytest.raises(ValueError, match="negative"):
        allowance(0, 0, stock=None, budget_fen=100, unit_cost_fen=-1)


# --- reserve against a model, for any limits and request sequence ------------------------------------------

_batches = st.lists(st.lists(st.integers(0, 40), unique=True, max_size=15), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stock=st.none() | st.integers(0, 30), budget_fen=st.none() | st.integers(0, 5000),
       cost_fen=st.integers(0, 400), batches=_batches)
def test_reserve_never_overdraws_and_partitions_every_request(
    sqlite_ledger: tuple[Store, list[int]], stock, budget_fen, cost_fen, batches
) -> None:
    store, runs = sqlite_ledger
    bid = _fresh("prop")
    budget = None if budget_fen is None else f"{budget_fen // 100}.{budget_fen % 100:02d}"
    it = item(bid, cost=f"{cost_fen // 100}.{cost_fen % 100:02d}", stock=stock, budget=budget)
    assert it.unit_cost_fen == cost_fen and it.budget_fen == budget_fen
    holders: set[str] = set()
    logged = 0
    for batch in batches:
        ids = [f"c{i:03d}" for i in batch]
        with store.session() as s:
            r = reserve(s, it, runs[0], ids, at=AT)
        # granted + refused = requested, disjoint, in request order
        assert r.requested == len(ids) and set(r.granted) | set(r.refused) == set(ids)
        assert not set(r.granted) & set(r.refused)
        assert r.granted == [c for c in ids if c in set(r.granted)]
        # the model: holders keep it; the new ones are granted greedily while both limits allow
        new = [c for c in ids if c not in holders]
        left, reason = allowance(len(holders), len(holders) * cost_fen, stock=stock, budget_fen=budget_fen,
                                 unit_cost_fen=cost_fen)
        k = len(new) if left is None else min(left, len(new))
        assert r.new == k and r.granted == [c for c in ids if c in holders or c in set(new[:k])]
        assert set(r.refused.values()) <= {reason}
        assert r.held == [c for c in ids if c in holders]
        holders |= set(new[:k])
        logged += r.logged
        # a retry (same call, new transaction) grants nothing new and gives the same answer
        with store.session() as s:
            again = reserve(s, it, runs[0], ids, at=AT)
        assert again.new == 0 and again.granted == r.granted and again.refused == r.refused and not again.logged
        # never overdrawn; the counter is the ledger's sums
        issued, spent = _ledger(store, bid)
        assert issued == len(holders) and spent == issued * cost_fen
        assert stock is None or issued <= stock
        assert budget_fen is None or spent <= budget_fen
        assert _counter(store, bid) in (None, (issued, spent))
        assert r.remaining_stock == (None if stock is None else stock - issued)
        assert r.remaining_budget_fen == (None if budget_fen is None else budget_fen - spent)
    left, _ = allowance(len(holders), len(holders) * cost_fen, stock=stock, budget_fen=budget_fen,
                        unit_cost_fen=cost_fen)
    assert logged == (1 if left == 0 and any(batches) else 0)  # exhaustion is logged once, not per customer
    with store.session() as s:
        assert bid not in reconcile(s)


# --- behaviour on both stores --------------------------------------------------------------------------------

def test_stock_runs_out_in_request_order_and_is_logged_once(ledger_store) -> None:
    store, runs = ledger_store
    it = item("trial", cost="3.50", stock=5)
    with store.session() as s:
        first = reserve(s, it, runs[0], ["a", "b", "c"], at=AT, actor="ops")
    assert first.granted == ["a", "b", "c"] and first.refused == {} and first.remaining_stock == 2
    assert not first.exhausted and not first.logged and _exhausted_entries(store, "trial") == []
    with store.session() as s:
        second = reserve(s, it, runs[1], ["d", "a", "e", "f", "g"], at=AT)
    assert second.granted == ["d", "a"] and second.refused == {"e": REASON_STOCK, "f": REASON_STOCK,
                                                                "g": REASON_STOCK}
    assert second.exhausted and second.logged and second.remaining_stock == 0
    with store.session() as s:
        third = reserve(s, it, runs[2], ["h", "i"], at=AT)
    assert third.granted == [] and third.refused == {"h": REASON_STOCK, "i": REASON_STOCK} and not third.logged
    entries = _exhausted_entries(store, "trial")
    assert len(entries) == 1 and entries[0].actor == "system"
    assert entries[0].after["reason"] == REASON_STOCK and entries[0].after["issued"] == 5
    assert entries[0].after["spent_fen"] == 1750 and entries[0].after["refused_in_this_batch"] == 3
    assert _ledger(store, "trial") == (5, 1750) == _counter(store, "trial")
    with store.session() as s:
        assert verify_audit(s).ok


def test_budget_limits_in_whole_fen(ledger_store) -> None:
    store, runs = ledger_store
    it = item("coupon", cost="3.33", budget="10.00")  # 1000 // 333 = 3 units, 1 fen left over
    with store.session() as s:
        r = reserve(s, it, runs[0], ["a", "b", "c", "d"], at=AT)
    assert r.granted == ["a", "b", "c"] and r.refused == {"d": REASON_BUDGET}
    assert r.remaining_budget_fen == 1 and r.remaining_stock is None and r.exhausted and r.logged
    assert r.spent_fen == 999 == _counter(store, "coupon")[1]
    assert _exhausted_entries(store, "coupon")[0].after["reason"] == REASON_BUDGET


def test_a_free_benefit_is_not_limited_by_budget(ledger_store) -> None:
    store, runs = ledger_store
    it = item("video", cost="0", budget="0.00")
    with store.session() as s:
        r = reserve(s, it, runs[0], [f"c{i}" for i in range(50)], at=AT)
    assert r.new == 50 and r.refused == {} and not r.exhausted and r.remaining_budget_fen == 0


def test_retry_in_a_new_transaction_reserves_nothing_twice(ledger_store) -> None:
    store, runs = ledger_store
    it = item("trial", cost="1.00", stock=10)
    ids = [f"c{i}" for i in range(8)]
    with store.session() as s:
        r1 = reserve(s, it, runs[0], ids, at=AT)
    with store.session() as s:
        r2 = reserve(s, it, runs[0], ids, at=AT + dt.timedelta(hours=1))
    assert r1.new == 8 and r2.new == 0 and r2.granted == ids and r2.held == ids
    assert _counter(store, "trial") == (8, 800) == _ledger(store, "trial")
    with store.session() as s:  # a partly new batch: only the new ones cost stock; the rest is refused
        r3 = reserve(s, it, runs[0], [*ids[:4], "x1", "x2", "x3"], at=AT)
    assert r3.held == ids[:4] and r3.granted == [*ids[:4], "x1", "x2"] and r3.refused == {"x3": REASON_STOCK}
    with store.session() as s:  # the same customers in another run are new there
        r4 = reserve(s, it, runs[1], ids[:2], at=AT)
    assert r4.new == 0 and r4.refused == {"c0": REASON_STOCK, "c1": REASON_STOCK}


def test_a_rolled_back_transaction_leaves_no_reservation(ledger_store) -> None:
    store, runs = ledger_store
    it = item("trial", cost="2.00", stock=3)
    with pytest.raises(RuntimeError, match="crash"), store.session() as s:
        r = reserve(s, it, runs[0], ["a", "b", "c", "d"], at=AT)
        assert r.new == 3 and r.logged
        raise RuntimeError("crash after the reservation, before the batch commits")
    assert _ledger(store, "trial") == (0, 0) and _counter(store, "trial") is None
    assert _exhausted_entries(store, "trial") == []
    with store.session() as s:  # the rerun of the batch gets the same answer
        r = reserve(s, it, runs[0], ["a", "b", "c", "d"], at=AT)
    assert r.granted == ["a", "b", "c"] and r.logged and _counter(store, "trial") == (3, 600)


def test_outside_the_validity_window_nothing_is_issued(ledger_store) -> None:
    store, runs = ledger_store
    it = item("summer", cost="1.00", stock=10, valid_from=dt.date(2026, 6, 1), valid_to=dt.date(2026, 6, 30))
    with store.session() as s:
        ok = reserve(s, it, runs[0], ["a"], at=dt.datetime(2026, 6, 30, 23, 59, tzinfo=SHANGHAI))
    # 2026-06-30 16:30 UTC is already 07-01 in Shanghai: the window is in Shanghai days
    late_utc = dt.datetime(2026, 6, 30, 16, 30, tzinfo=dt.UTC)
    with store.session() as s:
        late = reserve(s, it, runs[0], ["a", "b"], at=late_utc)
    with store.session() as s:
        early = reserve(s, it, runs[1], ["c"], at=dt.datetime(2026, 5, 31, 23, 0, tzinfo=SHANGHAI))
    assert ok.granted == ["a"]
    assert late.granted == ["a"] and late.refused == {"b": REASON_NOT_VALID} and late.new == 0
    assert early.refused == {"c": REASON_NOT_VALID}
    assert _counter(store, "summer") == (1, 100) and _exhausted_entries(store, "summer") == []


def test_bad_arguments_are_clear_errors(sqlite_ledger) -> None:
    store, runs = sqlite_ledger
    with store.session() as s:
        with pytest.raises(ValueError, match="naive"):
            reserve(s, item(), runs[0], ["a"], at=dt.datetime(2026, 6, 1, 10))
        with pytest.raises(ValueError, match="'a' appears twice"):
            reserve(s, item(), runs[0], ["a", "b", "a"], at=AT)
        with pytest.raises(ValueError, match="appears twice"):
            reserve_all(s, [(item("xx"), ["a"]), (item("xx"), ["b"])], runs[0], at=AT)
        assert reserve(s, item(), runs[0], [], at=AT).requested == 0


def test_reserve_all_and_usage(ledger_store) -> None:
    store, runs = ledger_store
    a, b = item("b-one", cost="1.25", stock=2), item("a-two", cost="0.10", budget="1.00")
    with store.session() as s:
        out = reserve_all(s, [(a, ["x", "y", "z"]), (b, ["x", "y"])], runs[0], at=AT)
    assert list(out) == ["a-two", "b-one"]  # locked (and reported) in benefit-id order
    assert out["b-one"].refused == {"z": REASON_STOCK} and out["a-two"].new == 2
    rows = {u.benefit_id: u for u in usage(store)}
    assert rows["b-one"].issued == 2 and rows["b-one"].spent_fen == 250 and rows["b-one"].remaining_stock == 0
    assert rows["b-one"].exhausted_at == AT and rows["b-one"].in_catalogue is None
    assert rows["a-two"].remaining_budget_fen == 80 and rows["a-two"].remaining_stock is None
    raised = item("b-one", cost="1.25", stock=4)  # the catalogue raises the stock
    other = item("never-used", cost="9.99", stock=1)
    with store.session() as s:
        listed = {u.benefit_id: u for u in usage(s, catalogue=[raised, other])}
    assert listed["b-one"].remaining_stock == 2 and listed["b-one"].units_left == 2
    assert listed["never-used"].issued == 0 and listed["never-used"].units_left == 1
    assert listed["a-two"].in_catalogue is False and listed["a-two"].budget_fen == 100
    assert usage(store, "b-one")[0].issued == 2 and usage(store, "nope") == []
    with store.session() as s:  # issuing again after the raise clears "exhausted", and a new exhaustion is logged
        r = reserve(s, raised, runs[1], ["p", "q", "r"], at=AT)
    assert r.granted == ["p", "q"] and r.logged and len(_exhausted_entries(store, "b-one")) == 2
    with store.session() as s:
        assert reconcile(s) == {}


def test_reconcile_names_a_counter_that_drifted(sqlite_ledger) -> None:
    store, runs = sqlite_ledger
    with store.session() as s:
        reserve(s, item("tt", cost="1.00"), runs[0], ["a", "b"], at=AT)
    with store.session() as s:
        s.get(BenefitStock, "tt").issued = 3  # type: ignore[union-attr]
    with store.session() as s:
        assert reconcile(s) == {"tt": (2, 200, 3, 200)}


@pytest.mark.parametrize("n", [10_000])
def test_ten_thousand_customers_in_one_batch_is_fast(ledger_store, n: int) -> None:
    store, runs = ledger_store
    it = item("bulk", cost="0.35", stock=n - 1000, budget="100000.00")
    ids = [f"c{i:07d}" for i in range(n)]
    t0 = time.perf_counter()
    with store.session() as s:
        r = reserve(s, it, runs[0], ids, at=AT)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    with store.session() as s:
        again = reserve(s, it, runs[0], ids, at=AT)
    retry = time.perf_counter() - t0
    print(f"\n{store.engine.dialect.name}: reserve {n} customers {first:.3f} s, retried {retry:.3f} s")
    assert r.new == n - 1000 and len(r.refused) == 1000 and again.new == 0 and again.granted == r.granted
    assert _ledger(store, "bulk") == (n - 1000, (n - 1000) * 35) == _counter(store, "bulk")
    assert first < 10 and retry < 10  # generous: the machine is shared; figures are printed above
