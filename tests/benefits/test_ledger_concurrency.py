"""Concurrent reservations from several OS processes (spawn) on one SQLite file and on PostgreSQL.

Four processes start together (a barrier) and reserve three benefits for overlapping customer batches
of the same run, one transaction per batch (all three benefits, or one of them): one benefit limited
by stock, one by budget, one with stock to spare. Afterwards exactly min(limit, distinct demand) units are issued, nothing is overdrawn,
every counter equals its ledger rows, each customer holds a benefit at most once, the units the
processes report as new add up to the ledger, and each exhausted benefit was logged exactly once.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import random
from typing import Any

import pytest
from sqlalchemy import select

from panhuo.benefits.ledger import EXHAUSTED_ACTION, REASON_BUDGET, REASON_STOCK, reconcile, usage
from panhuo.benefits.models import IssuedBenefit
from panhuo.store.audit import iter_audit, verify_audit
from tests.benefits._ledger_workers import reserve_worker

__all__: list[str] = []

PROCESSES = 4
BATCHES = 10
BATCH = 40
POOL = 900  # distinct customers; each process asks for 400 of them, so the processes overlap
SPECS: list[dict[str, Any]] = [
    {"bid": "by-stock", "cost": "1.00", "stock": 300},
    {"bid": "by-budget", "cost": "0.35", "budget": "100.00"},  # 10000 // 35 = 285 units, 25 fen never spent
    {"bid": "plenty", "cost": "0.01", "stock": 100_000},
]


def _batches(worker: int) -> list[tuple[list[str], list[str]]]:
    """(customer ids, benefit ids) per batch: every third batch all three benefits, the others one of them,
    so transactions lock different sets of counters (and may log an exhaustion while others wait)."""
    rng = random.Random(1000 + worker)
    ids = rng.sample([f"c{i:04d}" for i in range(POOL)], BATCHES * BATCH)
    bids = [s["bid"] for s in SPECS]
    return [(ids[lo:lo + BATCH], bids if (k + worker) % 3 == 0 else [bids[(k + worker) % len(bids)]])
            for k, lo in enumerate(range(0, len(ids), BATCH))]


def _run_workers(url: str, run_id: int) -> dict[int, list[dict[str, Any]]]:
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [ctx.Process(target=reserve_worker, args=(url, SPECS, run_id, _batches(w), barrier, results, w))
             for w in range(PROCESSES)]
    for p in procs:
        p.start()
    out: dict[int, Any] = {}
    try:
        while len(out) < PROCESSES:
            w, got = results.get(timeout=300)
            assert not isinstance(got, str), f"worker {w} failed: {got}"
            out[w] = got
    except queue.Empty:
        pytest.fail(f"workers did not finish: {sorted(set(range(PROCESSES)) - set(out))}")
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs)
    return out


def test_concurrent_processes_never_overdraw(ledger_store) -> None:
    store, runs = ledger_store
    out = _run_workers(store.engine.url.render_as_string(hide_password=False), runs[0])
    demand = {bid: {c for w in range(PROCESSES) for ids, bids in _batches(w) if bid in bids for c in ids}
              for bid in (s["bid"] for s in SPECS)}
    limits = {"by-stock": 300, "by-budget": 285, "plenty": 100_000}
    assert min(len(d) for d in demand.values()) > 300
    with store.session() as s:
        ledger: dict[str, set[str]] = {}
        for bid, cid in s.execute(select(IssuedBenefit.benefit_id, IssuedBenefit.customer_id)
                                  .where(IssuedBenefit.run_id == runs[0])):
            ledger.setdefault(bid, set()).add(cid)
        assert reconcile(s) == {}  # every counter equals its ledger rows
        assert verify_audit(s).ok
        logged = [e for e in iter_audit(s, entity="benefit") if e.action == EXHAUSTED_ACTION]
    used = {u.benefit_id: u for u in usage(store)}
    for bid, limit in limits.items():
        assert len(ledger[bid]) == used[bid].issued == min(limit, len(demand[bid])), bid
        new = sum(b[bid]["new"] for w in out.values() for b in w if bid in b)
        assert new == used[bid].issued, f"{bid}: the processes issued {new} units, the ledger holds {used[bid].issued}"
        granted = {c for w in out.values() for b in w if bid in b for c in b[bid]["granted"]}
        assert granted == ledger[bid]  # what the callers were told is exactly what was issued
        refused = {c: r for w in out.values() for b in w if bid in b for c, r in b[bid]["refused"].items()}
        assert not set(refused) & ledger[bid] and set(refused) | ledger[bid] == demand[bid]
    assert used["by-stock"].spent_fen == 30_000 and used["by-stock"].remaining_stock == 0
    assert used["by-budget"].spent_fen == 285 * 35 and used["by-budget"].remaining_budget_fen == 25
    assert used["plenty"].remaining_stock == 100_000 - len(demand["plenty"])
    refused_reasons = {bid: {r for w in out.values() for b in w if bid in b for r in b[bid]["refused"].values()}
                       for bid in limits}
    assert refused_reasons == {"by-stock": {REASON_STOCK}, "by-budget": {REASON_BUDGET}, "plenty": set()}
    assert sorted(e.entity_id for e in logged) == ["by-budget", "by-stock"]  # once each, by whichever process
    assert sum(b[bid]["logged"] for w in out.values() for b in w for bid in b) == 2


def test_the_audit_lock_is_taken_after_every_counter_lock(pg_url: str) -> None:
    """PostgreSQL: run 1 exhausts ``aa`` and then waits for ``bb``, held by run 2, which then exhausts ``cc``.

    Had run 1 logged ``aa``'s exhaustion before locking ``bb``, it would hold the audit log's lock while
    waiting for run 2, and run 2 would wait for that lock: a deadlock. The audit entries come last.
    """
    import threading
    import time

    from panhuo.benefits.ledger import reserve, reserve_all
    from panhuo.store import open_store
    from tests.benefits.conftest import AT, item, make_runs

    store = open_store(pg_url)
    try:
        runs = make_runs(store)
        aa, bb, cc = item("aa", cost="1.00", stock=1), item("bb", cost="1.00", stock=100), item("cc", stock=1)
        errors: list[BaseException] = []

        def run_one() -> None:
            try:
                with store.session() as s:
                    reserve_all(s, [(bb, ["p"]), (aa, ["p", "q"])], runs[0], at=AT)
            except BaseException as exc:
                errors.append(exc)

        with store.session() as s2:
            reserve(s2, bb, runs[1], ["x"], at=AT)  # run 2 holds bb's counter
            t = threading.Thread(target=run_one)
            t.start()
            with store.engine.connect() as watch:  # wait until run 1 waits for a lock
                from sqlalchemy import text

                for _ in range(600):
                    n = watch.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                           "AND datname = current_database()")).scalar_one()
                    if n:
                        break
                    time.sleep(0.05)
                assert n == 1
            reserve(s2, cc, runs[1], ["x", "y"], at=AT)  # exhausts cc: run 2 appends to the audit log
        t.join(timeout=120)
        assert not t.is_alive() and errors == []
        with store.session() as s:
            logged = sorted(e.entity_id for e in iter_audit(s, entity="benefit") if e.action == EXHAUSTED_ACTION)
            assert logged == ["aa", "cc"] and verify_audit(s).ok and reconcile(s) == {}
    finally:
        store.dispose()
