"""Tags benchmark: every tag for every customer, panhuo's compute_tags against hand-written DuckDB SQL and polars.

Runnable alone (and as the ``tags`` step of ``benchmarks/run.py --tags``)::

    .venv/bin/python benchmarks/bench_tags.py --customers 1000000 [--repeat 2] [--no-record]

Set-up (not timed): reuse the cached brokerage ``benchmarks/data/<customers>-<seed>/`` and its
workspace (generated and ingested when missing), compute the account status at ``--as-of`` for
the load in force when it is not stored yet, and write two small shared inputs: the status
snapshot at ``as_of`` with ``status_since`` (what ``load_status`` returns) and the trading
calendar's day table (``panhuo.tags.spec.day_table``). Every contender reads the same warehouse
Parquet files; SQL and polars read those two inputs, panhuo's ``compute_tags`` derives them itself
(its time includes ``load_status`` and the calendar).

Contenders, each in a fresh subprocess (peak RSS from ``os.wait4``), each writing all 55 tags of
every customer to Parquet:

- ``panhuo``: ``panhuo.tags.compute_tags`` (Ibis on DuckDB; writes the dated snapshot);
- ``sql``: one hand-written DuckDB query (``COPY ... TO``), windows scoped to the dates they need;
- ``polars``: polars lazy, the same tags, ``sink_parquet`` (streaming engine).

Agreement: the outputs are compared on EVERY customer and EVERY tag column (floats within 1e-9);
any difference exits 1. Targets: panhuo <= polars, panhuo <= 1.2x SQL. With ``--record`` (default)
the figures go into ``benchmarks/RESULTS.md`` between ``<!-- bench-tags:<n>:begin/end -->``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench
from bench_tags_contenders import WORKLOADS, literals

__all__ = ["CONTENDERS", "compare", "main"]

CONTENDERS = ("sql", "panhuo", "polars")
LABELS = {"sql": "hand-written DuckDB SQL", "panhuo": "panhuo compute_tags (Ibis/DuckDB)",
          "polars": "polars lazy (streaming)"}
FLOAT_TOL = 1e-9


def worker(name: str, ctx_path: Path) -> int:
    ctx = json.loads(ctx_path.read_text(encoding="utf-8"))
    result = WORKLOADS[name](ctx)
    Path(ctx["result"]).write_text(json.dumps(result), encoding="utf-8")
    return 0


def prepare(root: Path, customers: int, seed: int, as_of: dt.date) -> dict[str, Any]:
    """Data, load and status at ``as_of`` (computed only when missing); the shared inputs; the context."""
    import pyarrow.parquet as pq

    from panhuo.calendar import calendar_for
    from panhuo.config import Workspace
    from panhuo.engines import connect
    from panhuo.errors import WarehouseError
    from panhuo.status.history import compute_status, load_status
    from panhuo.tags.catalogue import TAG_SCHEMA
    from panhuo.tags.spec import day_table
    from panhuo.tags.store import _status_entry
    from panhuo.warehouse import Warehouse

    meta = bench.ensure_data(root, customers, seed, as_of, csv=False)
    ws = Workspace.open(root / "workspace")
    con = connect(ws.settings.engine, ws.tmp_dir)
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    if wh.current_id is None:
        from panhuo.contract.ingest import ingest

        print(f"ingesting {root / 'parquet'} (set-up, not timed) ...", flush=True)
        ingest(ws, root / "parquet", con=con)
    try:
        _status_entry(ws, as_of, wh.manifest().load_id)
    except WarehouseError:
        print(f"computing the account status at {as_of} (set-up, not timed) ...", flush=True)
        compute_status(ws, con, as_of, backfill=True)
    run_dir = root / "run-tags"
    run_dir.mkdir(parents=True, exist_ok=True)
    status_path = run_dir / "status.parquet"
    pq.write_table(load_status(ws, con, as_of).drop("as_of").to_pyarrow(), status_path)
    days_path = run_dir / "days.parquet"
    days = day_table(calendar_for(ws), as_of)
    pq.write_table(days, days_path)
    names = ("customers", "balances", "trades", "app_events", "contact_permissions", "contact_history")
    duck = ws.settings.engine.duckdb
    temp = Path(duck.temp_directory) if duck.temp_directory else ws.tmp_dir / "duckdb"
    temp.mkdir(parents=True, exist_ok=True)
    return {
        "meta": meta,
        "ws": ws,
        "run_dir": run_dir,
        "ctx": {
            "workspace": str(ws.root),
            "as_of": as_of.isoformat(),
            "duckdb": {"memory_limit": duck.memory_limit, "threads": duck.threads, "temp_directory": str(temp)},
            "warehouse": {n: str(wh.table_path(n)) for n in names},
            "status": str(status_path),
            "days": str(days_path),
            "sessions_at_as_of": int(days["sessions"][-1].as_py()),
            "columns": TAG_SCHEMA.names,
            "asset_bands": [str(b) for b in ws.settings.asset_bands],
        },
    }


def compare(outputs: dict[str, str], reference: str, columns: list[str]) -> dict[str, dict[str, int]]:
    """Per contender and column, the customers whose value differs from ``reference`` (0 everywhere = identical)."""
    import duckdb

    con = duckdb.connect()
    floats = {"cash_share", "net_commission_rate"}
    out: dict[str, dict[str, int]] = {}
    for name, path in outputs.items():
        if name == reference:
            continue
        checks = []
        for c in columns:
            if c == "customer_id":
                checks.append("count(*) FILTER (WHERE r.customer_id IS NULL OR x.customer_id IS NULL) AS customer_id")
            elif c in floats:
                checks.append(f'count(*) FILTER (WHERE (r."{c}" IS NULL) <> (x."{c}" IS NULL) '
                              f'OR abs(r."{c}" - x."{c}") > {FLOAT_TOL}) AS "{c}"')
            else:
                checks.append(f'count(*) FILTER (WHERE r."{c}" IS DISTINCT FROM x."{c}") AS "{c}"')
        # the reference's column types win: a contender's column is compared after a cast to them
        row = con.execute(
            f"SELECT {', '.join(checks)} FROM read_parquet($r) AS r FULL JOIN read_parquet($x) AS x "
            "ON r.customer_id = x.customer_id",
            {"r": outputs[reference], "x": path},
        ).fetchone()
        out[name] = dict(zip(columns, (int(v) for v in row), strict=True))
    con.close()
    return out


def markdown(args: argparse.Namespace, meta: dict[str, Any], mach: dict[str, str], best: dict[str, dict[str, Any]],
             checks: list[dict[str, Any]], diffs: dict[str, dict[str, int]], ncols: int) -> str:
    n = args.customers
    lines = [
        f"## Tags, {n:,} customers",
        "",
        (f"Recorded {dt.datetime.now().isoformat(timespec='seconds')} with `.venv/bin/python benchmarks/bench_tags.py "
        f"--customers {n} --seed {args.seed} --repeat {args.repeat}` (as-of {args.as_of}, best of runs; "
        f"all {ncols - 1} tags of every customer written to Parquet by each contender)."),
        "",
        (f"- Machine: {mach['cpu']}, {mach['nproc']} CPUs, {mach['memory']} RAM; {mach['versions']}; "
        f"panhuo commit {mach['commit']}"),
        "- Rows: " + ", ".join(f"{k} {v:,}" for k, v in meta.get("rows", {}).items()),
        "",
        "| contender | seconds | vs SQL | peak RSS | rows | result |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, res in best.items():
        vs = bench.ratio(res, best["sql"]) if "sql" in best else None
        if not res.get("ok"):
            chk = "failed: " + res.get("error", "")[:80].replace("|", "/")
        elif name in diffs:
            bad = {c: v for c, v in diffs[name].items() if v}
            chk = "identical (every tag, every customer)" if not bad else f"differs: {bad}"
        else:
            chk = "reference"
        rows = f"{res['rows']:,}" if res.get("rows") is not None else "-"
        lines.append(f"| {LABELS[name]} | {bench.fmt_s(res.get('seconds'))} | "
                     f"{'-' if vs is None else f'{vs:.2f}x'} | {bench.fmt_bytes(res.get('peak_rss'))} | {rows} | {chk} |")
    lines += ["", "| target | measured | goal | verdict |", "| --- | ---: | --- | --- |"]
    for c in checks:
        value = "n/a" if c["value"] is None else f"{c['value']:.2f}x"
        lines.append(f"| {c['line']} | {value} | {c['target']} | {bench.verdict(c['met'])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--as-of", default="2026-10-30")
    p.add_argument("--data", type=Path, default=HERE / "data", help="cache folder (shared with run.py)")
    p.add_argument("--repeat", type=int, default=2, help="runs per contender, interleaved (best is reported)")
    p.add_argument("--only", default="", help="comma-separated contenders (default: all)")
    p.add_argument("--rss-cap", type=float, default=12.0, help="GiB; a contender above it is killed")
    p.add_argument("--record", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--ctx", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.ctx)

    as_of = dt.date.fromisoformat(args.as_of)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    setup = prepare(args.data / f"{args.customers}-{args.seed}", args.customers, args.seed, as_of)
    run_dir: Path = setup["run_dir"]
    base = setup["ctx"]
    literals(base)  # fail here, not in a child, when the settings cannot be turned into literals
    for path in base["warehouse"].values():
        bench.warm(Path(path) if Path(path).is_dir() else Path(path).parent)
    print(f"TAGS at {as_of} for {args.customers:,} customers; results in {run_dir}", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {}
    outputs: dict[str, str] = {}
    for _ in range(args.repeat):
        for c in CONTENDERS:
            if only and c not in only:
                continue
            out = run_dir / f"tags_{c}.parquet"
            outputs[c] = str(out) if c != "panhuo" else str(setup["ws"].warehouse_dir / "tags" / f"{as_of}.parquet")
            res = bench.run_child(c, c, dict(base, out=str(out)), run_dir, int(args.rss_cap * bench.GiB),
                                  script=Path(__file__).resolve())
            runs.setdefault(c, []).append(res)
            state = f"{res['seconds']:.2f} s" if res.get("ok") else res["error"][:300]
            print(f"  {c:<8} {state:>10}  peak RSS {bench.fmt_bytes(res['peak_rss'])}", flush=True)
    best: dict[str, dict[str, Any]] = {}
    for name, results in runs.items():
        ok = [r for r in results if r.get("ok")]
        best[name] = dict(min(ok, key=lambda r: r["seconds"]) if ok else results[-1],
                          peak_rss=max(r["peak_rss"] for r in results))
    failed = [n for n, r in best.items() if not r.get("ok")]
    good = {n: o for n, o in outputs.items() if best[n].get("ok")}
    ref = "sql" if "sql" in good else next(iter(good), None)
    diffs = compare(good, ref, base["columns"]) if ref else {}
    checks = []
    for label, num, den in (("ratio tags panhuo/sql", "panhuo", "sql"), ("ratio tags panhuo/polars", "panhuo", "polars")):
        if num in best and den in best:
            r = bench.ratio(best[num], best[den])
            bound = 1.2 if den == "sql" else 1.0
            checks.append({"line": label, "value": r, "target": f"<= {bound:g}x", "met": None if r is None else r <= bound})
    for name, res in best.items():
        vs = bench.ratio(res, best["sql"]) if "sql" in best else None
        bad = {c: v for c, v in diffs.get(name, {}).items() if v}
        agree = "reference" if name == ref else ("identical on every tag" if not bad else f"DIFFERS {bad}")
        print(f"{LABELS[name]:<36} {bench.fmt_s(res.get('seconds')):>8} s  "
              f"{'-' if vs is None else f'{vs:.2f}x SQL':>10}  peak RSS {bench.fmt_bytes(res.get('peak_rss'))}  {agree}")
    for c in checks:
        value = "n/a" if c["value"] is None else f"{c['value']:.2f}x"
        print(f"{c['line']:<30} = {value:>8}   target {c['target']:<8} {bench.verdict(c['met'])}", flush=True)
    if args.record:
        bench.record(markdown(args, setup["meta"], bench.machine(), best, checks, diffs, len(base["columns"])),
                     args.customers, "bench-tags")
    if any(v for d in diffs.values() for v in d.values()):
        print("contenders DISAGREE on some tags (see above)", file=sys.stderr)
        return 1
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    print(f"all contenders agree on every tag of every customer ({len(base['columns']) - 1} tags)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
