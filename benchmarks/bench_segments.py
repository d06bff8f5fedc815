"""Segment count on a synthetic tags table (default 1M customers) on DuckDB: time to compile and count.

Run alone: ``.venv/bin/python benchmarks/bench_segments.py [--customers 1000000] [--repeat 5]``.
The table is written to a temporary Parquet file and read back, as a stored tags snapshot would be.
Prints the best and median wall time of (parse + check + compile + count) for a few segments and
for the full tier summary. Target (issue 4): a segment count on 1M customers under 1 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

__all__ = ["main", "synthetic_tags"]

RULES = {
    "simple": "status = 'sleeping'",
    "vip": "status = 'sleeping' and (total_assets_365d_ago >= 50000 or commission_365d >= 500) "
           "and coalesce(logins_30d, 0) >= 1 and not (age > 70) and province in ['广东', '浙江']",
    "dates": "days_since(last_login) <= 30 and total_assets between 1000 and 9999.99",
}


def synthetic_tags(n: int, seed: int = 7) -> pa.Table:
    """A tags snapshot with the columns the rules above and the default tiers use."""
    rng = np.random.default_rng(seed)
    base = np.datetime64("2026-01-30")
    status = rng.choice(np.array(["effective", "sleeping", "dormant", "new_empty"]), n, p=[0.35, 0.45, 0.15, 0.05])
    nullable = rng.random(n) < 0.1
    return pa.table({
        "customer_id": pa.array([f"C{i:09d}" for i in range(n)]),
        "status": pa.array(status),
        "total_assets_fen": pa.array(rng.integers(0, 50_000_000, n)),
        "total_assets_90d_ago_fen": pa.array(rng.integers(0, 50_000_000, n)),
        "total_assets_365d_ago_fen": pa.array(rng.integers(0, 50_000_000, n), mask=nullable),
        "commission_365d_fen": pa.array(rng.integers(0, 200_000, n)),
        "logins_30d": pa.array(rng.integers(0, 10, n), mask=nullable),
        "logins_90d": pa.array(rng.integers(0, 30, n)),
        "active_days_30d": pa.array(rng.integers(0, 20, n)),
        "age": pa.array(rng.integers(18, 90, n)),
        "app_user": pa.array(rng.random(n) < 0.6),
        "province": pa.array(rng.choice(np.array(["广东", "浙江", "北京", "上海", "四川"]), n)),
        "last_login": pa.array((base - rng.integers(0, 400, n).astype("timedelta64[D]")), mask=nullable),
        "last_trade_date": pa.array((base - rng.integers(0, 2000, n).astype("timedelta64[D]")), mask=nullable),
        "trading_days_since_last_trade": pa.array(rng.integers(0, 1500, n), mask=nullable),
        "asset_trend_90d": pa.array(rng.choice(np.array(["up", "flat", "down"]), n)),
    })


def _time(fn, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    import datetime as dt

    import ibis

    from panhuo.segments.compiler import compile_rule
    from panhuo.segments.symbols import symbols_for_table
    from panhuo.segments.tiers import load_tiers, tier_summary

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    data = synthetic_tags(args.customers)
    import pyarrow.parquet as pq

    tmp = Path(tempfile.mkdtemp(prefix="bench_segments_"))
    pq.write_table(data, tmp / "tags.parquet")  # as the tag library stores a snapshot
    con = ibis.duckdb.connect()
    table = con.read_parquet(str(tmp / "tags.parquet"))
    print(f"synthetic tags: {args.customers:,} customers, {data.num_columns} columns "
          f"(built and loaded in {time.perf_counter() - t0:.1f} s); duckdb {con.version}")
    symbols = symbols_for_table(table)
    as_of = dt.date(2026, 1, 30)
    worst = 0.0
    for name, rule in RULES.items():
        result: list[int] = []

        def count(rule: str = rule, result: list[int] = result) -> None:
            result.append(int(table.filter(compile_rule(rule, table, symbols, as_of=as_of)).count().execute()))

        best, median = _time(count, args.repeat)
        worst = max(worst, median)
        print(f"segment count {name:<7} {result[-1]:>10,} customers: best {best * 1000:7.1f} ms, "
              f"median {median * 1000:7.1f} ms")
    scheme = load_tiers()
    best, median = _time(lambda: tier_summary(scheme, table, symbols, as_of), args.repeat)
    print(f"tier summary ({len(scheme.tiers)} tiers):          best {best * 1000:7.1f} ms, median {median * 1000:7.1f} ms")
    shutil.rmtree(tmp, ignore_errors=True)
    ok = worst < 1.0
    print(f"target: segment count under 1 s on {args.customers:,} customers: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
