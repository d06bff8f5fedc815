"""Measurement benchmark: ``panhuo report`` for one playbook with N assignments (default 1M) on DuckDB.

Runnable alone::

    .venv/bin/python benchmarks/bench_report.py --assignments 1000000 [--no-record]

Set-up (not timed), in a temporary folder removed at the end:

- a warehouse load of N customers (the run's candidates) written as typed Parquet: two balance
  snapshots each (before the runs and inside the windows; some hold more cash: deposits), trades for
  about a fifth of them in the pre-period and in the windows (stock, fund and bond, so the stock+fund
  filter works), logins for about a third, data running past the last window (every window closed);
- the account status and the tag snapshot on the first run's date (``--no-tiers`` skips them), so the
  report evaluates the tier scheme for every assignment;
- a SQLite store with the bench playbook (success: trade within 10 trading days), two finished runs
  (half the customers each, as-of dates one week apart) and their N assignments (treated 90% on two
  arms, holdout 10%, and a global control share), written where the run engine keeps them today (the
  report reads them only through :func:`panhuo.runs.models.assignment_rows`), one sent outbox message
  per treated customer (SMS or app push) for the message cost and a benefit-ledger row for a tenth
  of them for the benefit cost.

Timed, in this process after the imports: :func:`panhuo.cli.report.make_report` for the playbook
(reading the assignments, outcomes in DuckDB, tiers, costs, every estimate) and then the JSON and
HTML renderings; the phases come from the report's own progress callback. Peak RSS of the process
is printed. Target (issue 7): under 30 s for 1M assignments. ``--record`` (the default) writes the
figures into ``benchmarks/RESULTS.md`` between ``<!-- bench-report:<n>:begin/end -->``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
TARGET = 30.0
PLAYBOOK_ID = "bench-report"
RUN_DATES = (dt.date(2026, 3, 2), dt.date(2026, 3, 9))
DATA_END = dt.date(2026, 4, 30)

PLAYBOOK = """\
id: bench-report
name: 基准报告
purpose: reactivation
timing:
  trigger: schedule
  schedule: every_trading_day
  at: "10:00"
  send_window: ["09:00", "20:00"]
  reentry: every_time
user:
  rule: "status != 'effective'"
benefit:
  items: [new-fund-intro]
channel:
  order: [app_push, sms]
method:
  mode: automated
  holdout: 0.1
  arms:
    - {id: arm-a, items: [new-fund-intro]}
    - {id: arm-b, items: [new-fund-intro]}
  success: {event: trade, within_trading_days: 10}
"""


def _schema(table: str) -> Any:
    import pyarrow as pa

    from panhuo.contract.schema import TABLES

    kinds = {"id": pa.string(), "text": pa.string(), "enum": pa.string(), "money": pa.int64(),
             "number": pa.float64(), "int": pa.int64(), "date": pa.date32(), "timestamp": pa.timestamp("us"),
             "bool": pa.bool_(), "json": pa.string()}
    return pa.schema([(c.stored, kinds[c.kind]) for c in TABLES[table].columns])


def _typed(table: str, cols: dict[str, Any], n: int) -> Any:
    import pyarrow as pa

    schema = _schema(table)
    return pa.table({f.name: (pa.array(cols[f.name], f.type) if f.name in cols else pa.nulls(n, f.type))
                     for f in schema}, schema=schema)


def write_load(ws: Any, n: int, seed: int) -> None:
    """The warehouse load of N customers (see the module docstring)."""
    import numpy as np
    import pyarrow.parquet as pq

    from panhuo.warehouse import TableRecord, Warehouse

    rng = np.random.default_rng(seed)
    ids = np.array([f"C{i:08d}" for i in range(n)], dtype=object)
    tables: dict[str, Any] = {}
    tables["customers"] = _typed("customers", {"customer_id": ids,
                                               "open_date": np.full(n, np.datetime64("2019-06-03"))}, n)
    # balances: one snapshot before the runs, one inside the windows
    before = np.full(n, np.datetime64("2026-02-27"))
    inside = np.full(n, np.datetime64("2026-03-13"))
    cash0 = rng.integers(0, 5_000_000, n)
    cash1 = cash0 + np.where(rng.random(n) < 0.15, rng.integers(1, 2_000_000, n), 0)
    tables["balances"] = _typed("balances", {
        "customer_id": np.concatenate([ids, ids]), "as_of": np.concatenate([before, inside]),
        "cash_fen": np.concatenate([cash0, cash1]),
        "securities_value_fen": rng.integers(0, 20_000_000, 2 * n),
        "product_value_fen": np.zeros(2 * n, dtype=np.int64)}, 2 * n)
    # trades: about a fifth trade in the pre-period, about a fifth in the windows, on trading days
    days = np.array(["2026-02-16", "2026-02-24", "2026-02-27", "2026-03-05", "2026-03-10", "2026-03-12",
                     "2026-03-17", "2026-03-19"], dtype="datetime64[D]")
    k = int(n * 0.45)
    who = rng.integers(0, n, k)
    amount = rng.integers(100_000, 50_000_000, k)
    tables["trades"] = _typed("trades", {
        "customer_id": ids[who], "trade_date": days[rng.integers(0, len(days), k)],
        "market": np.where(rng.random(k) < 0.5, "SH", "SZ"), "symbol": np.full(k, "600000"),
        "asset_class": rng.choice(np.array(["stock", "fund", "bond"]), k, p=[0.7, 0.2, 0.1]),
        "side": np.where(rng.random(k) < 0.5, "buy", "sell"), "quantity": np.full(k, 100.0),
        "amount_fen": amount, "commission_fen": np.maximum(500, amount * 25 // 100_000)}, k)
    m = int(n * 0.6)
    who = rng.integers(0, n, m)
    stamp = np.datetime64("2026-02-10T09:00") + rng.integers(0, 40 * 24 * 60, m).astype("timedelta64[m]")
    tables["app_events"] = _typed("app_events", {"customer_id": ids[who], "event_time": stamp.astype("datetime64[us]"),
                                                 "event": np.where(rng.random(m) < 0.8, "login", "view_quote"),
                                                 "channel": np.full(m, "app")}, m)
    # the data's last date: one balance row at DATA_END closes every window
    tables["balances"] = __import__("pyarrow").concat_tables([tables["balances"], _typed("balances", {
        "customer_id": ids[:1], "as_of": [DATA_END], "cash_fen": [0], "securities_value_fen": [0],
        "product_value_fen": [0]}, 1)])
    tables["contact_permissions"] = _typed("contact_permissions", {}, 0)
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    tx = wh.begin_load("bench-report", "duckdb")
    for name, t in tables.items():
        pq.write_table(t, tx.path_for(name))
        tx.record(TableRecord(name=name, rows=t.num_rows, file=f"{name}.parquet", source=f"{name}.parquet",
                              source_format="parquet"))
    tx.commit()


def write_tags(ws: Any) -> None:
    """Account status and the tag snapshot on the first run's date, so the report finds each customer's tier."""
    from panhuo.engines import connect
    from panhuo.status.history import compute_status
    from panhuo.tags.store import compute_tags

    con = connect(ws.settings.engine, ws.tmp_dir)
    compute_status(ws, con, RUN_DATES[0], backfill=False)
    compute_tags(ws, con, RUN_DATES[0])


def write_store(ws: Any, root: Path, n: int, seed: int) -> dict[str, int]:
    """Playbook, two finished runs, N assignments, outbox and ledger rows; returns counts by group."""
    import numpy as np
    from sqlalchemy import insert

    from panhuo.benefits.models import IssuedBenefit
    from panhuo.playbooks import repository
    from panhuo.playbooks.loader import load_playbook
    from panhuo.runs import models as rm
    from panhuo.store import add_user, open_store

    f = root / "bench-report.yaml"
    f.write_text(PLAYBOOK, encoding="utf-8")
    rng = np.random.default_rng(seed + 1)
    store = open_store(ws)
    counts: dict[str, int] = {}
    try:
        with store.session() as s:
            add_user(s, "root", ["admin"])
            add_user(s, "ops", ["operator"], actor="root")
        with store.session() as s:
            repository.add_version(s, load_playbook(f), actor="ops")
        run_ids = []
        with store.session() as s:
            for i, day in enumerate(RUN_DATES):
                run = rm.Run(playbook_id=PLAYBOOK_ID, playbook_version=1, run_key=f"bench-{i}", as_of=day,
                             state="done")
                s.add(run)
                s.flush()
                run_ids.append(run.id)
        u = rng.random(n)
        arm_u = rng.random(n)
        grp = np.where(u < 0.02, "global_control", np.where(u < 0.12, "holdout", "treated"))
        arm = np.where(grp == "treated", np.where(arm_u < 0.6, "arm-a", "arm-b"), None)
        prop = np.where(grp == "global_control", 0.02, np.where(grp == "holdout", 0.1,
                                                                np.where(arm == "arm-a", 0.9 * 0.6, 0.9 * 0.4)))
        half = n // 2
        run_of = np.where(np.arange(n) < half, run_ids[0], run_ids[1])
        for g in ("treated", "holdout", "global_control"):
            counts[g] = int((grp == g).sum())
        folded = "grp" in rm.Decision.__table__.c  # since migration 0007 the assignment is part of the decision
        outcome = np.where(grp == "treated", "send", np.where(grp == "holdout", "holdout", "blocked"))
        guard = np.where(grp == "global_control", "global_control", "none")
        batch = 100_000
        for lo in range(0, n, batch):
            hi = min(n, lo + batch)
            dec = [{"run_id": int(run_of[i]), "customer_id": f"C{i:08d}", "guardrail": str(guard[i]),
                    "outcome": str(outcome[i]), "reason": str(guard[i])} for i in range(lo, hi)]
            asg = [{"run_id": int(run_of[i]), "customer_id": f"C{i:08d}", "grp": str(grp[i]),
                    "arm": None if arm[i] is None else str(arm[i]), "propensity": float(prop[i]),
                    "seed": "bench"} for i in range(lo, hi)]
            with store.session() as s:
                if folded:
                    s.execute(insert(rm.Decision.__table__), [{**d, **a} for d, a in zip(dec, asg, strict=True)])
                else:
                    s.execute(insert(rm.Decision.__table__), dec)
                    s.execute(insert(rm.Assignment.__table__), asg)
                now = dt.datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
                out = [{"run_id": int(run_of[i]), "playbook_id": PLAYBOOK_ID, "customer_id": f"C{i:08d}",
                        "channel": "sms" if i % 3 == 0 else "app_push", "arm": str(arm[i]), "benefit_id": None,
                        "content": "bench", "idempotency_key": f"k{i:08d}", "status": "sent", "send_after": now,
                        "created_at": now} for i in range(lo, hi) if grp[i] == "treated"]
                s.execute(insert(rm.OutboxMessage.__table__), out)
                led = [{"run_id": int(run_of[i]), "customer_id": f"C{i:08d}", "benefit_id": "new-fund-intro",
                        "unit_cost_fen": 800, "issued_at": now} for i in range(lo, hi)
                       if grp[i] == "treated" and i % 10 == 0]
                if led:
                    s.execute(insert(IssuedBenefit.__table__), led)
    finally:
        store.dispose()
    return counts


def _cpu() -> float:
    """CPU seconds of this process so far, every thread (DuckDB's too): user + system."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(ws: Any) -> dict[str, Any]:
    """Time make_report and the renderings; the phases from the progress callback."""
    from panhuo.cli.report import make_report
    from panhuo.measure.report import to_markdown
    from panhuo.report.measure import render_report

    marks: list[tuple[str, float]] = []
    c0 = _cpu()
    t0 = time.perf_counter()
    data = make_report(ws, playbook=PLAYBOOK_ID, progress=lambda step, _d, _t: marks.append((step, time.perf_counter())))
    t_report = time.perf_counter() - t0
    cpu = _cpu() - c0
    t1 = time.perf_counter()
    text = json.dumps(data, ensure_ascii=False)
    html = render_report(data)
    md = to_markdown(data)
    t_render = time.perf_counter() - t1
    phases = {}
    for (name, at), (_, nxt) in zip(marks, marks[1:] + [("end", t0 + t_report)], strict=True):
        phases[name.split(": ")[-1]] = nxt - at
    return {"report": t_report, "cpu": cpu, "render": t_render, "phases": phases, "data": data,
            "sizes": (len(text), len(html), len(md))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--assignments", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-tiers", dest="tiers", action="store_false", default=True,
                    help="skip the status and tag snapshot (the report then has no tier breakdown)")
    ap.add_argument("--record", dest="record", action="store_true", default=True)
    ap.add_argument("--no-record", dest="record", action="store_false")
    args = ap.parse_args(argv)
    n = args.assignments
    if n < 100:
        ap.error("--assignments must be at least 100")
    from panhuo.config import Workspace

    root = Path(tempfile.mkdtemp(prefix="panhuo-bench-report-"))
    try:
        ws = Workspace.open(root / "ws")
        t = time.perf_counter()
        write_load(ws, n, args.seed)
        if args.tiers:
            write_tags(ws)
        counts = write_store(ws, root, n, args.seed)
        print(f"set-up: {n:,} assignments ({', '.join(f'{k} {v:,}' for k, v in counts.items())}) "
              f"in {time.perf_counter() - t:.1f}s")
        r = measure(ws)
        item = r["data"]["items"][0]
        g = item["groups"][0]
        if item["assignments"] != n or item["measured"] != n or not item["final"]:
            print(f"FAIL: the report measured {item['measured']} of {item['assignments']} assignments "
                  f"(final {item['final']}), expected all {n}")
            return 1
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        phases = ", ".join(f"{k} {v:.1f}s" for k, v in r["phases"].items())
        load = os.getloadavg()
        print(f"report: {n:,} assignments in {r['report']:.1f}s ({phases}); CPU {r['cpu']:.1f}s; renderings "
              f"(json, html, md) {r['render']:.1f}s; peak RSS {rss:,} MiB; load average {load[0]:.1f} on "
              f"{os.cpu_count()} CPUs")
        tiers = sorted({x["tier"] for x in item["groups"]} - {"all"})
        print(f"check: treated {g['n_treated']:,}, holdout {g['n_holdout']:,}, groups {len(item['groups'])} "
              f"(tiers: {', '.join(tiers) or 'none'}), "
              f"incremental conversions {g['incremental_conversions']['estimate']}, cost {g['cost_rmb']} RMB")
        met = r["report"] < TARGET
        print(f"target report for {n:,} assignments < {TARGET:.0f}s: {r['report']:.1f}s {'met' if met else 'NOT met'}")
        if args.record:
            sys.path.insert(0, str(HERE))
            from run import machine, record

            mach = machine()
            section = (f"### Report ({n:,} assignments, DuckDB, SQLite store)\n\n"
                       f"`.venv/bin/python benchmarks/bench_report.py --assignments {n}` "
                       f"({dt.date.today().isoformat()}, commit {mach['commit']}, {mach['cpu']}, {mach['nproc']} CPUs, "
                       f"load {load[0]:.1f})\n\n"
                       f"| step | seconds |\n|---|---|\n| make_report (total, wall) | {r['report']:.1f} |\n"
                       f"| make_report (CPU, all threads) | {r['cpu']:.1f} |\n"
                       + "".join(f"| {k} | {v:.1f} |\n" for k, v in r["phases"].items())
                       + f"| json + html + md | {r['render']:.1f} |\n\n"
                       f"Peak RSS {rss:,} MiB. Target < {TARGET:.0f} s: {'met' if met else 'NOT met'}.\n")
            record(section, n, "bench-report")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
