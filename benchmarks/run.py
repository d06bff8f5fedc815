"""panhuo benchmarks: ingest and account status against plain DuckDB, hand-written SQL, polars, pandas.

One command: ``make bench`` (1M customers) or ``make bench SIZE=10000000``; directly::

    .venv/bin/python benchmarks/run.py --customers 1000000 [--repeat 3] [--csv] [--no-record]

What it does
------------
1. Generates the synthetic brokerage (Parquet; with ``--csv`` also a CSV copy) once into
   ``benchmarks/data/<customers>-<seed>/`` and reuses it on later runs (git-ignored).
2. INGEST: ``panhuo.contract.ingest.ingest`` (full validation, DuckDB) against a plain DuckDB
   ``COPY`` of the same files to Parquet. Target: ingest <= 3x COPY.
3. STATUS at one as-of date over the ingested warehouse Parquet: panhuo's ``status_expr`` (Ibis on
   DuckDB) against a plain DuckDB scan of the needed columns (the floor), hand-written DuckDB SQL,
   polars lazy and pandas (see ``benchmarks/contenders.py``). Every contender writes the full
   per-customer result to Parquet; the script then checks that all of them agree: the same counts
   per status and the same status, total assets and last trade date for *every* customer (a
   disagreement exits 1). Targets: Ibis <= 1.2x SQL, Ibis <= polars, pandas >= 3x Ibis.
4. Each contender runs in a fresh subprocess; its peak RSS is taken from ``os.wait4`` (the
   child's own ``ru_maxrss``). DuckDB's ``memory_limit``/``threads``/``temp_directory`` come from the
   benchmark workspace's ``panhuo.yaml`` (``benchmarks/data/<size>-<seed>/workspace``; edit it to
   tune). A watchdog kills a contender whose RSS passes ``--rss-cap`` (default 12 GiB) so a run on
   a shared machine cannot exhaust it; that contender is then reported as killed. Target: every
   contender's peak RSS < 8 GiB at 10M customers.
5. TAGS (``--tags``, the default; not with ``--only``): ``benchmarks/bench_tags.py`` on the same data and
   workspace: all tags by panhuo's ``compute_tags`` against hand-written DuckDB SQL and polars.
6. Prints a Rich table and ``ratio ...`` lines; with ``--record`` (the default) writes the figures
   for this size into ``benchmarks/RESULTS.md`` together with a description of the machine.

Times are the best of ``--repeat`` runs (status) and ``--ingest-repeat`` runs (ingest),
interleaved round-robin, with the input files read once beforehand so every contender starts with
a warm page cache. Imports are not timed. Exit status: 0 whether or not targets are met (this is a
measurement), 1 when contenders disagree or a contender fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "RESULTS.md"
GiB = 1024**3
RSS_TARGET = 8 * GiB

INGEST_CONTENDERS = ("copy", "ingest")
STATUS_CONTENDERS = ("floor", "sql", "ibis", "ibis_batches", "polars", "pandas")
LABELS = {
    "copy": "DuckDB COPY (baseline)",
    "ingest": "panhuo ingest (full validation)",
    "copy_csv": "DuckDB COPY from CSV (baseline)",
    "ingest_csv": "panhuo ingest from CSV",
    "floor": "DuckDB scan of needed columns (floor)",
    "sql": "hand-written DuckDB SQL",
    "ibis": "panhuo status_expr (Ibis/DuckDB)",
    "ibis_batches": "status_expr via pyarrow batches (compute_status writer)",
    "polars": "polars lazy (streaming)",
    "pandas": "pandas (analyst style)",
}


# -- worker side --------------------------------------------------------------------------------
def worker(name: str, ctx_path: Path) -> int:
    sys.path.insert(0, str(HERE))
    from contenders import WORKLOADS

    ctx = json.loads(ctx_path.read_text(encoding="utf-8"))
    result = WORKLOADS[name](ctx)
    Path(ctx["result"]).write_text(json.dumps(result), encoding="utf-8")
    return 0


# -- parent side --------------------------------------------------------------------------------
def run_child(name: str, workload: str, ctx: dict[str, Any], run_dir: Path, rss_cap: int,
              script: Path | None = None, poll: Any = None) -> dict[str, Any]:
    """Run one workload in a fresh interpreter; returns its result with ``peak_rss`` (bytes).

    ``script`` is the benchmark script whose ``--worker`` mode runs ``workload`` (default: this one).
    ``poll``, if given, is called every 50 ms while the child runs until it returns true (e.g. "the first
    row is visible"); the time it first did is returned as ``seen_at`` (None if never); its ``close()``
    is called at the end. Peak RSS comes from ``os.wait4`` (the child's own maximum resident set).
    """
    import psutil

    ctx = dict(ctx, result=str(run_dir / f"{name}.result.json"))
    Path(ctx["result"]).unlink(missing_ok=True)
    ctx_path = run_dir / f"{name}.ctx.json"
    ctx_path.write_text(json.dumps(ctx, default=str), encoding="utf-8")
    log = run_dir / f"{name}.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, str(script or Path(__file__).resolve()), "--worker", workload, "--ctx",
             str(ctx_path)],
            stdout=fh, stderr=subprocess.STDOUT, cwd=REPO,
        )
    ps = psutil.Process(proc.pid)
    killed = False
    seen: float | None = None
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            try:
                if ps.memory_info().rss > rss_cap:
                    proc.kill()
                    killed = True
            except psutil.NoSuchProcess:
                pass
            if poll is not None and seen is None and poll():
                seen = time.time()
            time.sleep(0.05)
    finally:
        if poll is not None:
            poll.close()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen from waiting again
    peak = usage.ru_maxrss * 1024  # KiB on Linux
    if killed:
        return {"ok": False, "error": f"killed: RSS above --rss-cap {rss_cap / GiB:.0f} GiB", "peak_rss": peak}
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-15:]
        return {"ok": False, "error": f"exit {proc.returncode}: " + " | ".join(tail), "peak_rss": peak}
    res = json.loads(Path(ctx["result"]).read_text(encoding="utf-8"))
    return dict(res, ok=True, peak_rss=peak, seen_at=seen)


def ensure_data(root: Path, customers: int, seed: int, as_of: dt.date, csv: bool) -> dict[str, Any]:
    """Generate the brokerage into ``root/parquet`` (and ``root/csv``) unless it is already there."""
    from panhuo.generate import generate_brokerage

    meta_path = root / "meta.json"
    meta: dict[str, Any] = {}
    if meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("as_of") != as_of.isoformat() or meta.get("customers") != customers:
            print(f"cache {root} was generated for other settings; regenerating")
            shutil.rmtree(root / "parquet", ignore_errors=True)
            shutil.rmtree(root / "csv", ignore_errors=True)
            meta = {}
    root.mkdir(parents=True, exist_ok=True)
    for fmt in ("parquet", "csv") if csv else ("parquet",):
        if (root / fmt).is_dir() and "rows" in meta and (fmt == "parquet" or meta.get("csv_seconds") is not None):
            print(f"reusing {root / fmt}")
            continue
        print(f"generating {customers:,} customers (seed {seed}, as of {as_of}) as {fmt} into {root / fmt} ...",
              flush=True)
        t0 = time.perf_counter()
        rows = generate_brokerage(root / fmt, customers=customers, seed=seed, as_of=as_of, fmt=fmt)
        meta.update(customers=customers, seed=seed, as_of=as_of.isoformat(), rows=rows)
        meta[f"{fmt}_seconds"] = round(time.perf_counter() - t0, 1)
        meta_path.write_text(json.dumps(meta, indent=1), encoding="utf-8")
        print(f"generated in {meta[f'{fmt}_seconds']:.0f} s: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))
    return meta


def warm(folder: Path) -> None:
    """Read every file once so all contenders start with the same (warm) page cache."""
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            with open(p, "rb") as fh:
                while fh.read(1 << 24):
                    pass


def source_files(folder: Path) -> dict[str, str]:
    return {p.stem: str(p) for p in sorted(folder.iterdir()) if p.suffix in (".parquet", ".csv")}


def machine() -> dict[str, str]:
    import duckdb
    import ibis
    import pandas
    import polars
    import psutil
    import pyarrow

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, check=False).stdout.strip() or "unknown"
    except OSError:
        commit = "unknown"
    return {
        "cpu": cpu,
        "nproc": str(os.cpu_count()),
        "memory": f"{psutil.virtual_memory().total / GiB:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": f"duckdb {duckdb.__version__}, ibis {ibis.__version__}, polars {polars.__version__}, "
                    f"pandas {pandas.__version__}, pyarrow {pyarrow.__version__}",
        "commit": commit,
    }


def compare(outputs: dict[str, str], reference: str) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Counts per status of every output, and per output the customers that differ from ``reference``."""
    import duckdb

    con = duckdb.connect()
    counts: dict[str, dict[str, int]] = {}
    for name, path in outputs.items():
        rows = con.execute("SELECT status, count(*) FROM read_parquet($p) GROUP BY ALL", {"p": path}).fetchall()
        counts[name] = {s: int(n) for s, n in sorted(rows)}
    diffs: dict[str, int] = {}
    for name, path in outputs.items():
        if name == reference:
            continue
        diffs[name] = con.execute(
            """
            SELECT count(*) FROM read_parquet($r) AS r FULL JOIN read_parquet($x) AS x USING (customer_id)
            WHERE r.status IS DISTINCT FROM x.status
               OR r.total_assets_fen IS DISTINCT FROM x.total_assets_fen::BIGINT
               OR r.last_trade_date IS DISTINCT FROM x.last_trade_date::DATE
            """,
            {"r": outputs[reference], "x": path},
        ).fetchone()[0]
    con.close()
    return counts, diffs


def fmt_bytes(n: int | None) -> str:
    return "-" if n is None else f"{n / GiB:.2f} GiB"


def fmt_s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def ratio(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    if a.get("seconds") is None or b.get("seconds") is None or not b["seconds"]:
        return None
    return a["seconds"] / b["seconds"]


def targets(best: dict[str, dict[str, Any]], customers: int) -> list[dict[str, Any]]:
    """The target checks: name, value, bound, met (None when a contender is missing)."""
    out = []

    def check(label: str, num: str, den: str, op: str, bound: float) -> None:
        if num not in best or den not in best:
            return
        r = ratio(best[num], best[den])
        met = None if r is None else (r <= bound if op == "<=" else r >= bound)
        out.append({"line": f"ratio {label}", "value": r, "target": f"{op} {bound:g}x", "met": met})

    check("ingest/copy", "ingest", "copy", "<=", 3.0)
    check("ingest_csv/copy_csv", "ingest_csv", "copy_csv", "<=", 3.0)
    check("ibis/sql", "ibis", "sql", "<=", 1.2)
    check("ibis/polars", "ibis", "polars", "<=", 1.0)
    check("pandas/ibis", "pandas", "ibis", ">=", 3.0)
    # The memory target is panhuo's own (ingest and status); the baselines only show what they cost.
    peaks = [v["peak_rss"] for k, v in best.items() if k in _PANHUO and v.get("peak_rss")]
    if peaks:
        worst = max(peaks)
        out.append({"line": "peak RSS (largest panhuo step)", "value": worst / GiB, "unit": "GiB",
                    "target": "< 8 GiB" + ("" if customers >= 10_000_000 else " (target set for 10M)"),
                    "met": worst < RSS_TARGET})
    return out


_PANHUO = ("ingest", "ingest_csv", "ibis", "ibis_batches")


def verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "n/a"}[met]


def report(best: dict[str, dict[str, Any]], checks: list[dict[str, Any]], counts: dict[str, dict[str, int]],
           diffs: dict[str, int]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=140)
    baselines = {"ingest": "copy", "ingest_csv": "copy_csv", "copy": "copy", "copy_csv": "copy_csv"}
    table = Table(title="panhuo benchmark (best of runs; peak RSS of the contender's process)")
    for col in ("contender", "seconds", "vs baseline", "vs floor", "peak RSS", "rows", "check"):
        table.add_column(col, justify="left" if col in ("contender", "check") else "right")
    for name, res in best.items():
        base = baselines.get(name, "sql")
        vs = ratio(res, best[base]) if base in best else None
        vf = ratio(res, best["floor"]) if "floor" in best and name in STATUS_CONTENDERS else None
        if not res.get("ok"):
            chk = "[red]" + res.get("error", "failed")[:60]
        elif name in diffs:
            chk = "[green]identical" if diffs[name] == 0 else f"[red]{diffs[name]:,} customers differ"
        elif name == "sql":
            chk = "reference"
        else:
            chk = ""
        table.add_row(LABELS[name], fmt_s(res.get("seconds")), "-" if vs is None else f"{vs:.2f}x ({base})",
                      "-" if vf is None else f"{vf:.2f}x", fmt_bytes(res.get("peak_rss")),
                      f"{res['rows']:,}" if res.get("rows") is not None else "-", chk)
    console.print(table)
    if counts:
        first = next(iter(counts.values()))
        console.print("status counts: " + ", ".join(f"{k} {v:,}" for k, v in first.items())
                      + ("  (identical across contenders)" if all(c == first for c in counts.values())
                         else "  [red](DIFFER across contenders)"))
    for c in checks:
        unit = c.get("unit", "x")
        value = "n/a" if c["value"] is None else f"{c['value']:.2f}{unit if unit == 'x' else ' ' + unit}"
        print(f"{c['line']:<30} = {value:>10}   target {c['target']:<28} {verdict(c['met'])}", flush=True)


def markdown(args: argparse.Namespace, meta: dict[str, Any], mach: dict[str, str],
             best: dict[str, dict[str, Any]], checks: list[dict[str, Any]], counts: dict[str, dict[str, int]],
             diffs: dict[str, int]) -> str:
    n = args.customers
    lines = [
        f"## {n:,} customers",
        "",
        f"Recorded {dt.datetime.now().isoformat(timespec='seconds')} with "
        f"`.venv/bin/python benchmarks/run.py --customers {n} --seed {args.seed} --repeat {args.repeat}"
        f" --ingest-repeat {args.ingest_repeat}{' --csv' if args.csv else ''}` "
        f"(as-of {args.as_of}, best of runs).",
        "",
        f"- Machine: {mach['cpu']}, {mach['nproc']} CPUs (`nproc`), {mach['memory']} RAM, {mach['os']}",
        f"- Software: Python {mach['python']}, {mach['versions']}; panhuo commit {mach['commit']}",
        f"- DuckDB settings (benchmark workspace `panhuo.yaml`): memory_limit {args.duckdb['memory_limit']}, "
        f"threads {args.duckdb.get('threads') or 'all'}",
        "- Rows: " + ", ".join(f"{k} {v:,}" for k, v in meta.get("rows", {}).items()),
        "",
        "| contender | seconds | vs baseline | peak RSS | rows | result |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    baselines = {"ingest": "copy", "ingest_csv": "copy_csv", "copy": "copy", "copy_csv": "copy_csv"}
    for name, res in best.items():
        base = baselines.get(name, "sql")
        vs = ratio(res, best[base]) if base in best else None
        if not res.get("ok"):
            chk = "failed: " + res.get("error", "")[:80].replace("|", "/")
        elif name in diffs:
            chk = "identical" if diffs[name] == 0 else f"{diffs[name]:,} customers differ"
        else:
            chk = "reference" if name == "sql" else ""
        lines.append(f"| {LABELS[name]} | {fmt_s(res.get('seconds'))} | "
                     f"{'-' if vs is None else f'{vs:.2f}x ({base})'} | {fmt_bytes(res.get('peak_rss'))} | "
                     f"{res['rows']:,} | {chk} |" if res.get("rows") is not None else
                     f"| {LABELS[name]} | {fmt_s(res.get('seconds'))} | - | {fmt_bytes(res.get('peak_rss'))} | - | {chk} |")
    lines += ["", "| target | measured | goal | verdict |", "| --- | ---: | --- | --- |"]
    for c in checks:
        unit = c.get("unit", "x")
        value = "n/a" if c["value"] is None else f"{c['value']:.2f}{unit if unit == 'x' else ' ' + unit}"
        lines.append(f"| {c['line']} | {value} | {c['target']} | {verdict(c['met'])} |")
    if counts:
        first = next(iter(counts.values()))
        lines += ["", "Status counts (identical across contenders): " + ", ".join(f"{k} {v:,}" for k, v in first.items())]
    return "\n".join(lines) + "\n"


HEADER = """# panhuo benchmarks

Written by `benchmarks/run.py --record` (the default; `make bench`, `make bench SIZE=10000000`).
Each section below is replaced when the same size is measured again. What is measured and how:
see the docstrings of `benchmarks/run.py` and `benchmarks/contenders.py`. Times are wall-clock
seconds, best of the runs; peak RSS is the contender's own process (`os.wait4` ru_maxrss), Python
interpreter and imports included. Analysis notes, if any, follow the sections.
"""


def record(section: str, size: int, kind: str = "bench") -> None:
    """Put ``section`` in RESULTS.md between its markers (``<!-- {kind}:{size}:begin/end -->``).

    An existing section of the same kind and size is replaced; a new one goes before the first larger
    section of its kind, else after the last one (else at the end). Nothing else in the file changes;
    the file is replaced atomically. Every benchmark script records through this.
    """
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else HEADER
    begin, end = f"<!-- {kind}:{size}:begin -->", f"<!-- {kind}:{size}:end -->"
    block = f"{begin}\n{section}{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    else:
        k = re.escape(kind)
        sizes = [(int(m.group(1)), m.start()) for m in re.finditer(rf"<!-- {k}:(\d+):begin -->", text)]
        later = [pos for n, pos in sizes if n > size]
        if later:
            text = text[: later[0]] + block + "\n\n" + text[later[0]:]
        else:
            ends = [m.end() for m in re.finditer(rf"<!-- {k}:\d+:end -->", text)]
            pos = ends[-1] if ends else len(text.rstrip("\n"))
            rest = text[pos:].lstrip("\n")
            text = text[:pos] + "\n\n" + block + "\n" + ("\n" + rest if rest else "")
    tmp = RESULTS.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, RESULTS)
    print(f"recorded in {RESULTS}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--as-of", default="2026-10-30", help="as-of date of the data and the status (fixed, so runs compare)")
    p.add_argument("--data", type=Path, default=HERE / "data", help="cache folder")
    p.add_argument("--repeat", type=int, default=3, help="runs per status contender (best is reported)")
    p.add_argument("--ingest-repeat", type=int, default=1, help="runs of ingest and COPY (best is reported)")
    p.add_argument("--csv", action="store_true", help="also time ingest and COPY from CSV")
    p.add_argument("--only", default="", help="comma-separated contenders to run (default: all)")
    p.add_argument("--rss-cap", type=float, default=12.0, help="GiB; a contender above it is killed")
    p.add_argument("--record", action=argparse.BooleanOptionalAction, default=True,
                   help="write the figures into benchmarks/RESULTS.md (default: yes)")
    p.add_argument("--tags", action=argparse.BooleanOptionalAction, default=True,
                   help="then run the tags benchmark (benchmarks/bench_tags.py) on the same data (default: yes)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--ctx", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.ctx)

    from panhuo.config import Workspace
    from panhuo.warehouse import Warehouse

    as_of = dt.date.fromisoformat(args.as_of)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    root = args.data / f"{args.customers}-{args.seed}"
    meta = ensure_data(root, args.customers, args.seed, as_of, args.csv)
    ws = Workspace.open(root / "workspace")
    run_dir = root / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    duck = ws.settings.engine.duckdb
    temp = Path(duck.temp_directory) if duck.temp_directory else ws.tmp_dir / "duckdb"
    temp.mkdir(parents=True, exist_ok=True)
    args.duckdb = {"memory_limit": duck.memory_limit, "threads": duck.threads, "temp_directory": str(temp)}
    base_ctx = {"workspace": str(ws.root), "as_of": as_of.isoformat(), "duckdb": args.duckdb,
                "rules": ws.settings.status.model_dump(mode="json")}
    cap = int(args.rss_cap * GiB)
    print(f"DuckDB memory_limit {duck.memory_limit} (from {ws.settings_file}); results in {run_dir}", flush=True)

    runs: dict[str, list[dict[str, Any]]] = {}

    def go(name: str, workload: str, ctx: dict[str, Any]) -> None:
        res = run_child(name, workload, ctx, run_dir, cap)
        runs.setdefault(name, []).append(res)
        state = f"{res['seconds']:.2f} s" if res.get("ok") else res["error"][:200]
        print(f"  {name:<13} {state:>10}  peak RSS {fmt_bytes(res['peak_rss'])}", flush=True)

    # INGEST -------------------------------------------------------------------------------------
    inputs = [("", root / "parquet")] + ([("_csv", root / "csv")] if args.csv else [])
    print("INGEST (warming the page cache first)", flush=True)
    for suffix, folder in inputs:
        warm(folder)
    for rep in range(args.ingest_repeat):
        for suffix, folder in reversed(inputs):  # the Parquet load runs last: its warehouse is used below
            for c in INGEST_CONTENDERS:
                if only and c not in only and c + suffix not in only:
                    continue
                ctx = dict(base_ctx, source=str(folder), source_files=source_files(folder),
                           out=str(run_dir / f"copy{suffix}"))
                go(c + suffix, c, ctx)
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    if wh.current_id is None:
        print("no warehouse load: run without --only or include ingest", file=sys.stderr)
        return 1

    # STATUS -------------------------------------------------------------------------------------
    warehouse = {n: str(wh.table_path(n)) for n in ("customers", "balances", "trades")}
    for path in warehouse.values():
        warm(Path(path)) if Path(path).is_dir() else warm(Path(path).parent)
    print(f"STATUS at {as_of} over load {wh.current_id}", flush=True)
    outputs: dict[str, str] = {}
    for rep in range(args.repeat):
        for c in STATUS_CONTENDERS:
            if only and c not in only:
                continue
            out = run_dir / f"status_{c}.parquet"
            outputs[c] = str(out)
            go(c, c, dict(base_ctx, warehouse=warehouse, out=str(out)))

    best: dict[str, dict[str, Any]] = {}
    for name, results in runs.items():
        ok = [r for r in results if r.get("ok")]
        peak = max(r["peak_rss"] for r in results)
        best[name] = dict(min(ok, key=lambda r: r["seconds"]) if ok else results[-1], peak_rss=peak)
    failed = [n for n, r in best.items() if not r.get("ok")]

    verifiable = {n: p for n, p in outputs.items() if n != "floor" and best[n].get("ok")}
    counts, diffs = ({}, {})
    if verifiable:
        ref = "sql" if "sql" in verifiable else next(iter(verifiable))
        counts, diffs = compare(verifiable, ref)
    checks = targets(best, args.customers)
    report(best, checks, counts, diffs)
    agree = all(v == 0 for v in diffs.values()) and len({json.dumps(c, sort_keys=True) for c in counts.values()}) <= 1
    if args.record:
        record(markdown(args, meta, machine(), best, checks, counts, diffs), args.customers)
    tags_rc = 0
    if args.tags and not only:
        sys.path.insert(0, str(HERE))
        import bench_tags

        print("TAGS (benchmarks/bench_tags.py)", flush=True)
        tags_rc = bench_tags.main([
            "--customers", str(args.customers), "--seed", str(args.seed), "--as-of", args.as_of,
            "--data", str(args.data), "--repeat", str(args.repeat), "--rss-cap", str(args.rss_cap),
            "--record" if args.record else "--no-record",
        ])
    if not agree:
        print("contenders DISAGREE on the status (see the table)", file=sys.stderr)
        return 1
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    print("all contenders agree on every customer's status")
    return tags_rc


if __name__ == "__main__":
    sys.exit(main())
