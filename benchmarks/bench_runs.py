"""Run-engine benchmark: a live playbook over N candidates (default 1M) into the outbox, against a plain COPY.

Runnable alone::

    .venv/bin/python benchmarks/bench_runs.py --customers 1000000 [--repeat 1] [--no-record] [--only ...]

Set-up (not timed), cached under ``benchmarks/data/runs-<customers>-<seed>/`` (git-ignored):

- a synthetic tags snapshot (Parquet, passed to the engine as ``tags_file``) of N customers with the
  columns the audience and the guardrails read (:data:`panhuo.runs.candidates.GUARD_COLUMNS`) and
  realistic mixes: statuses (sleeping, a dormant share, new-empty), consent and reach per channel,
  risk levels with some unknown, expired risk assessments, refusals of personalised marketing;
- a workspace and a bench playbook (:data:`PLAYBOOK`: an inline rule that every one of the N
  customers matches, a product offer rated R3 so suitability applies, personalised so PIPL applies,
  channels app push then SMS), stored, approved by a second user with the compliance role and put
  live, in a template store together with a contact log (a few percent of the customers contacted in
  the last week, so the frequency caps bite): a PostgreSQL database created for the run on
  ``$PANHUO_BENCH_PG`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``) and a SQLite file.
  Every contender run gets a fresh copy (``CREATE DATABASE ... TEMPLATE``, a file copy); every
  database created here is dropped at the end.

Contenders, each in a fresh subprocess (imports not timed; peak RSS from ``os.wait4``):

- ``panhuo``: :func:`panhuo.runs.engine.run_playbook` on PostgreSQL (through its public API). Timed:
  the whole call; the plan (store reads, candidates, guardrails, assignment: up to the first
  ``progress`` call) and the write (batches of decisions, which carry the assignments, and outbox rows, one
  transaction each, and the run's finish); time to the first *committed* outbox row, seen from
  outside by the parent polling ``SELECT 1 FROM outbox LIMIT 1`` on its own connection every 50 ms
  (and, from inside, the first batch's ``progress`` call).
- ``copy``: the baseline: a plain ``COPY outbox (...) FROM STDIN`` of exactly the rows the panhuo run
  wrote (read back from its database beforehand, text format) into the same ``outbox`` table of a
  fresh database (same schema and indexes, the run's ``runs`` row present for the foreign key).
- ``copy-all``: a second, diagnostic baseline (figure only): a plain COPY of everything the run wrote
  (its decisions and outbox rows; one transaction), to tell the cost of the volume a
  run writes from the cost of how panhuo writes it.
- ``panhuo-sqlite``: ``run_playbook`` on the SQLite store (figure only; same phases and first row).

Agreement: every outbox must hold the same rows (count, and a digest of the sorted idempotency key,
customer, channel and arm of every row), and the runs and ``copy-all`` the same numbers of decisions
and of assignments (decisions with a group); a disagreement exits 1. Targets (issue 5):
panhuo/copy on PostgreSQL <= 3x, first outbox row <= 5 s. ``--record`` (the default) writes the
figures into ``benchmarks/RESULTS.md`` between ``<!-- bench-runs:<n>:begin/end -->``. ``--profile``
runs the panhuo contender under cProfile (its log then lists the top functions; not a timed figure).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench

__all__ = ["CONTENDERS", "PLAYBOOK", "main", "synthetic_tags"]

CONTENDERS = ("panhuo", "copy", "copy-all", "panhuo-sqlite")
LABELS = {
    "panhuo": "panhuo run_playbook (PostgreSQL)",
    "copy": "plain COPY of the same outbox rows (PostgreSQL, baseline)",
    "copy-all": "plain COPY of all the run wrote: decisions (with assignments), outbox",
    "panhuo-sqlite": "panhuo run_playbook (SQLite)",
}
PG_ADMIN = os.environ.get("PANHUO_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PLAYBOOK_ID = "bench-wake"
AS_OF = dt.date(2026, 1, 30)
NOW = "2026-01-30T10:00:00+08:00"  # inside the send window: every message is a send, not deferred
OUTBOX_COLUMNS = ("run_id", "playbook_id", "customer_id", "channel", "arm", "benefit_id", "content",
                  "idempotency_key", "status", "send_after", "created_at")
WRITTEN = (  # what a run writes besides its runs row: table, columns (serial ids left out), order
    ("decisions", ("run_id", "customer_id", "guardrail", "outcome", "reason", "grp", "arm", "propensity", "seed"),
     "run_id, customer_id"),
    ("outbox", OUTBOX_COLUMNS, "id"),
)
FIRST_ROW_TARGET = 5.0
RATIO_TARGET = 3.0

PLAYBOOK = """\
# Benchmark playbook: every non-effective customer (the synthetic tags have no effective ones).
id: bench-wake
name: 基准唤醒
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
  personalised: true
  success: {event: trade, within_trading_days: 10}
"""


# -- set-up --------------------------------------------------------------------------------------
def synthetic_tags(n: int, seed: int = 42) -> Any:
    """N customers with the audience and guardrail columns, in realistic proportions (a pyarrow Table)."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    status = rng.choice(np.array(["sleeping", "dormant", "new_empty"]), n, p=[0.80, 0.15, 0.05])
    risk = rng.choice(np.array(["C1", "C2", "C3", "C4", "C5"]), n, p=[0.05, 0.15, 0.40, 0.28, 0.12])
    consent = {"app_push": 0.65, "sms": 0.90, "wechat": 0.35, "call": 0.55}
    reach = {"app_push": 0.75, "sms": 0.97, "wechat": 0.80, "call": 0.95}  # app user, phone, WeChat bound
    cols: dict[str, Any] = {
        "customer_id": pa.array([f"C{i:09d}" for i in range(n)]),
        "status": pa.array(status),
        "risk_level": pa.array(risk, mask=rng.random(n) < 0.03),  # 3% never assessed
        "assessment_expired": pa.array(rng.random(n) < 0.08),
        "refuses_personalised": pa.array(rng.random(n) < 0.02),
        "total_assets_fen": pa.array(rng.integers(0, 5_000_000, n)),
    }
    for c, p in consent.items():
        cols[f"consent_{c}"] = pa.array(rng.random(n) < p)
    for c, p in reach.items():
        cols[f"reach_{c}"] = pa.array(rng.random(n) < p)
    return pa.table(cols)


def contact_log_rows(n: int, seed: int, now: dt.datetime) -> list[dict[str, Any]]:
    """Messages sent in the last week to ~4% of the customers (1-3 each), so the frequency caps bite."""
    import numpy as np

    rng = np.random.default_rng(seed + 1)
    who = np.flatnonzero(rng.random(n) < 0.04)
    rows = []
    for i in who:
        for _ in range(int(rng.integers(1, 4))):
            rows.append({"customer_id": f"C{i:09d}", "channel": ("sms", "app_push")[int(rng.integers(0, 2))],
                         "sent_at": now - dt.timedelta(minutes=int(rng.integers(60, 7 * 24 * 60))),
                         "playbook_id": "earlier-campaign"})
    return rows


def pg_dsn(database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(PG_ADMIN).set(drivername="postgresql", database=database).render_as_string(hide_password=False)


def pg_url(database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(PG_ADMIN).set(drivername="postgresql+psycopg", database=database).render_as_string(
        hide_password=False)


def pg_admin(sql: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(PG_ADMIN).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, connect_timeout=5, autocommit=True) as conn:
        conn.execute(sql)


def build_store(url: str, playbook_file: Path, contacts: list[dict[str, Any]]) -> None:
    """Schema, users, the bench playbook live (approved by a compliance user) and the contact log."""
    from panhuo.playbooks import repository
    from panhuo.playbooks.loader import load_playbook
    from panhuo.runs.models import ContactLog
    from panhuo.runs.outbox import insert_ignore
    from panhuo.store import add_user, open_store

    store = open_store(url)
    try:
        with store.session() as s:
            add_user(s, "root", ["admin"])
            add_user(s, "ops", ["operator"], actor="root")
            add_user(s, "cmp", ["compliance"], actor="root")
        with store.session() as s:
            repository.add_version(s, load_playbook(playbook_file), actor="ops")
        with store.session() as s:
            repository.submit(s, PLAYBOOK_ID, actor="ops")
        with store.session() as s:
            repository.approve(s, PLAYBOOK_ID, actor="cmp")
        with store.session() as s:
            repository.activate(s, PLAYBOOK_ID, actor="ops")
        for lo in range(0, len(contacts), 50_000):
            with store.session() as s:
                insert_ignore(s, ContactLog.__table__, contacts[lo:lo + 50_000])  # type: ignore[arg-type]
    finally:
        store.dispose()


def prepare(run_dir: Path, customers: int, seed: int, pg: bool, batch_size: int | None = None) -> dict[str, Any]:
    """Tags file (cached), workspace, playbook file, template stores; returns the shared context."""
    import pyarrow.parquet as pq

    from panhuo.config import Workspace

    run_dir.mkdir(parents=True, exist_ok=True)
    tags = run_dir / "tags.parquet"
    meta_path = run_dir / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    if not tags.exists() or meta.get("customers") != customers or meta.get("seed") != seed:
        t0 = time.perf_counter()
        table = synthetic_tags(customers, seed)
        pq.write_table(table, tags)
        meta = {"customers": customers, "seed": seed, "tags_seconds": round(time.perf_counter() - t0, 1)}
        meta_path.write_text(json.dumps(meta), encoding="utf-8")
        print(f"wrote synthetic tags for {customers:,} customers to {tags} in {meta['tags_seconds']} s", flush=True)
    else:
        print(f"reusing {tags}", flush=True)
    mix = tag_mix(tags)
    ws_root = run_dir / "workspace"
    shutil.rmtree(ws_root, ignore_errors=True)
    ws = Workspace.open(ws_root)
    if batch_size is not None:  # runs.batch_size: outbox rows per transaction
        ws = ws.save(ws.settings.model_copy(update={"runs": ws.settings.runs.model_copy(
            update={"batch_size": batch_size})}))
    playbook_file = run_dir / f"{PLAYBOOK_ID}.yaml"
    playbook_file.write_text(PLAYBOOK, encoding="utf-8")
    now = dt.datetime.fromisoformat(NOW)
    contacts = contact_log_rows(customers, seed, now)
    t0 = time.perf_counter()
    sqlite_tmpl = run_dir / "template.db"
    for p in run_dir.glob("*.db*"):
        p.unlink()
    build_store(f"sqlite:///{sqlite_tmpl}", playbook_file, contacts)
    with sqlite3.connect(sqlite_tmpl) as conn:  # one self-contained file to copy per run
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pg_tmpl = None
    if pg:
        pg_tmpl = f"panhuo_bench_runs_{secrets.token_hex(4)}"
        pg_admin(f'CREATE DATABASE "{pg_tmpl}"')
        build_store(pg_url(pg_tmpl), playbook_file, contacts)
    print(f"template stores (schema, users, live playbook, {len(contacts):,} contact-log rows) built in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    return {"run_dir": run_dir, "pg_tmpl": pg_tmpl, "sqlite_tmpl": sqlite_tmpl, "contacts": len(contacts),
            "mix": mix,
            "ctx": {"workspace": str(ws.root), "tags_file": str(tags), "playbook": PLAYBOOK_ID,
                    "as_of": AS_OF.isoformat(), "now": NOW}}


def tag_mix(tags: Path) -> dict[str, str]:
    """Shares of the synthetic tags, for the report."""
    import duckdb

    con = duckdb.connect()
    row = con.execute(
        "SELECT count(*), avg((status = 'dormant')::INT), avg((status = 'new_empty')::INT), "
        "avg((NOT consent_app_push AND NOT consent_sms)::INT), avg(assessment_expired::INT), "
        "avg((risk_level IS NULL)::INT), avg(refuses_personalised::INT) FROM read_parquet($p)", {"p": str(tags)},
    ).fetchone()
    con.close()
    names = ("dormant", "new_empty", "no consent on app push nor SMS", "assessment expired", "risk level unknown",
             "refuses personalised")
    return {k: f"{v * 100:.1f}%" for k, v in zip(names, row[1:], strict=True)}


# -- worker side ---------------------------------------------------------------------------------
def _outbox_digest(conn: Any) -> tuple[int, str]:
    """Row count and sha256 over (key, customer, channel, arm) of every outbox row, in key order."""
    import hashlib

    h = hashlib.sha256()
    n = 0
    cur = conn.cursor()
    cur.execute("SELECT idempotency_key, customer_id, channel, coalesce(arm, '') FROM outbox ORDER BY idempotency_key")
    while True:
        rows = cur.fetchmany(50_000)
        if not rows:
            break
        for r in rows:
            h.update("\x1f".join(r).encode())
            h.update(b"\n")
        n += len(rows)
    cur.close()
    return n, h.hexdigest()


def _counts(conn: Any) -> list[int]:
    """Decisions, and assignments among them (the decisions with a group: migration 0007)."""
    return list(conn.execute("SELECT count(*), count(grp) FROM decisions").fetchone())


def _work_panhuo(ctx: dict[str, Any]) -> dict[str, Any]:
    import cProfile
    import pstats

    import ibis  # noqa: F401  (imports are not timed)
    import ibis.backends.duckdb  # noqa: F401

    import panhuo.engines  # noqa: F401
    from panhuo.config import Workspace
    from panhuo.runs.engine import run_playbook

    for lazy in ("panhuo.scores", "panhuo.tags", "panhuo.benefits.catalogue", "panhuo.content", "panhuo.calendar",
                 "exchange_calendars", "pandas", "panhuo.runs.triggers"):
        try:  # what run_playbook imports on first use: imports are not timed
            importlib.import_module(lazy)
        except ImportError:
            pass

    base = Workspace.open(Path(ctx["workspace"]), create=False)
    ws = Workspace(base.root, base.settings.model_copy(update={"store_url": ctx["store_url"]}))
    marks: list[tuple[float, int]] = []

    def progress(done: int, total: int) -> None:
        marks.append((time.time(), done))

    prof = cProfile.Profile() if ctx.get("profile") else None
    t0 = time.time()
    if prof:
        prof.enable()
    report = run_playbook(ws, ctx["playbook"], dt.date.fromisoformat(ctx["as_of"]), actor="ops",
                          now=dt.datetime.fromisoformat(ctx["now"]), tags_file=Path(ctx["tags_file"]),
                          progress=progress)
    if prof:
        prof.disable()
    t1 = time.time()
    if prof:
        prof.dump_stats(ctx["result"] + ".prof")
        pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
    plan_end = marks[0][0] if marks else t1
    first_batch = marks[1][0] if len(marks) > 1 else None
    if ctx["store_url"].startswith("sqlite"):
        conn = sqlite3.connect(ctx["store_url"].removeprefix("sqlite:///"))
        rows, digest = _outbox_digest(conn)
        counts = _counts(conn)
        conn.close()
    else:
        import psycopg

        with psycopg.connect(ctx["dsn"]) as conn:
            rows, digest = _outbox_digest(conn)
            counts = _counts(conn)
    return {"seconds": t1 - t0, "started": t0, "plan_seconds": plan_end - t0, "write_seconds": t1 - plan_end,
            "first_batch_seconds": None if first_batch is None else first_batch - t0, "batches": len(marks) - 1,
            "rows": rows, "digest": digest, "decisions": counts[0], "assignments": counts[1],
            "written": report.written, "funnel": report.funnel, "reasons": report.reasons}


def _work_copy(ctx: dict[str, Any]) -> dict[str, Any]:
    import psycopg

    t0 = time.time()
    with psycopg.connect(ctx["dsn"]) as conn:
        for table, cols, path in ctx["files"]:  # one transaction, one COPY per table
            with conn.cursor() as cur, open(path, "rb") as fh:
                with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                    while block := fh.read(1 << 20):
                        copy.write(block)
        conn.commit()
        t1 = time.time()
        rows, digest = _outbox_digest(conn)
        counts = _counts(conn)
    return {"seconds": t1 - t0, "started": t0, "rows": rows, "digest": digest, "decisions": counts[0],
            "assignments": counts[1]}


WORKLOADS = {"panhuo": _work_panhuo, "copy": _work_copy, "copy-all": _work_copy, "panhuo-sqlite": _work_panhuo}


def worker(name: str, ctx_path: Path) -> int:
    ctx = json.loads(ctx_path.read_text(encoding="utf-8"))
    result = WORKLOADS[name](ctx)
    Path(ctx["result"]).write_text(json.dumps(result), encoding="utf-8")
    return 0


# -- parent side ---------------------------------------------------------------------------------
def _poller(ctx: dict[str, Any]) -> Any:
    """A function returning True once the contender's outbox holds a committed row (own connection)."""
    state: dict[str, Any] = {}

    def poll() -> bool:
        try:
            if "conn" not in state:
                if ctx["store_url"].startswith("sqlite"):
                    state["conn"] = sqlite3.connect(ctx["store_url"].removeprefix("sqlite:///"), timeout=0.05)
                else:
                    import psycopg

                    state["conn"] = psycopg.connect(ctx["dsn"], autocommit=True, connect_timeout=2)
            return state["conn"].execute("SELECT 1 FROM outbox LIMIT 1").fetchone() is not None
        except Exception:  # noqa: BLE001  (locked, not there yet: try again at the next tick)
            return False

    def close() -> None:
        if "conn" in state:
            state.pop("conn").close()

    poll.close = close  # type: ignore[attr-defined]
    return poll


def run_contender(name: str, ctx: dict[str, Any], run_dir: Path, rss_cap: int) -> dict[str, Any]:
    """One contender in a fresh interpreter: peak RSS from ``os.wait4``, first committed outbox row polled."""
    poll = _poller(ctx) if name.startswith("panhuo") else None
    res = bench.run_child(name, name, ctx, run_dir, rss_cap, script=Path(__file__).resolve(), poll=poll)
    if res.get("ok"):
        seen = res.pop("seen_at")
        res["first_row_seconds"] = None if seen is None else seen - res["started"]
    return res


def export_rows(database: str, run_dir: Path) -> list[tuple[str, tuple[str, ...], str]]:
    """The rows the panhuo run wrote, per table, to text files in COPY format (in the order written)."""
    import psycopg

    out = []
    with psycopg.connect(pg_dsn(database)) as src:
        for table, cols, order in WRITTEN:
            path = run_dir / f"{table}.copy"
            with src.cursor() as cur, open(path, "wb") as fh:
                with cur.copy(f"COPY (SELECT {', '.join(cols)} FROM {table} ORDER BY {order}) TO STDOUT") as copy:
                    for block in copy:
                        fh.write(block)
            out.append((table, cols, str(path)))
    return out


def copy_target(template: str, name: str, source: str) -> None:
    """A fresh database from the template holding the panhuo run's ``runs`` row (for the foreign keys)."""
    import psycopg

    pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    with psycopg.connect(pg_dsn(source)) as src, psycopg.connect(pg_dsn(name)) as dst:
        with src.cursor() as cur, dst.cursor() as out:
            with cur.copy("COPY runs TO STDOUT") as c_in, out.copy("COPY runs FROM STDIN") as c_out:
                for block in c_in:
                    c_out.write(block)
        dst.commit()


def best_of(results: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in results if r.get("ok")]
    best = dict(min(ok, key=lambda r: r["seconds"]) if ok else results[-1])
    best["peak_rss"] = max(r["peak_rss"] for r in results)
    firsts = [r["first_row_seconds"] for r in ok if r.get("first_row_seconds") is not None]
    if firsts:
        best["first_row_seconds"] = min(firsts)
    return best


def targets(best: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    if "panhuo" in best and "copy" in best:
        r = bench.ratio(best["panhuo"], best["copy"])
        out.append({"line": "ratio runs panhuo/copy (PostgreSQL)", "value": r, "unit": "x",
                    "target": f"<= {RATIO_TARGET:g}x", "met": None if r is None else r <= RATIO_TARGET})
    if "panhuo" in best and "copy-all" in best:
        r = bench.ratio(best["panhuo"], best["copy-all"])
        out.append({"line": "ratio runs panhuo/copy-all (PostgreSQL)", "value": r, "unit": "x",
                    "target": "figure only", "met": None})
    if "panhuo" in best:
        f = best["panhuo"].get("first_row_seconds")
        out.append({"line": "first outbox row (PostgreSQL)", "value": f, "unit": " s",
                    "target": f"<= {FIRST_ROW_TARGET:g} s", "met": None if f is None else f <= FIRST_ROW_TARGET})
    if "panhuo-sqlite" in best:
        s = best["panhuo-sqlite"].get("seconds")
        out.append({"line": "runs on SQLite", "value": s, "unit": " s", "target": "figure only", "met": None})
        f = best["panhuo-sqlite"].get("first_row_seconds")
        out.append({"line": "first outbox row (SQLite)", "value": f, "unit": " s", "target": "figure only",
                    "met": None})
    return out


def _value(c: dict[str, Any]) -> str:
    return "n/a" if c["value"] is None else f"{c['value']:.2f}{c['unit']}"


def _verdict(c: dict[str, Any]) -> str:
    return "-" if c["target"] == "figure only" else bench.verdict(c["met"])


def _phase(res: dict[str, Any], key: str) -> str:
    return bench.fmt_s(res.get(key)) if res.get("ok") else "-"


def rows_table(best: dict[str, dict[str, Any]]) -> list[list[str]]:
    out = []
    for name, res in best.items():
        vs = bench.ratio(res, best["copy"]) if "copy" in best else None
        state = "" if res.get("ok") else "failed: " + res.get("error", "")[:100].replace("|", "/")
        out.append([LABELS[name], bench.fmt_s(res.get("seconds")), "-" if vs is None else f"{vs:.2f}x",
                    _phase(res, "plan_seconds"), _phase(res, "write_seconds"),
                    bench.fmt_s(res.get("first_row_seconds")), bench.fmt_bytes(res.get("peak_rss")),
                    f"{res['rows']:,}" if res.get("rows") is not None else "-",
                    f"{res['rows'] + res['decisions']:,}" if res.get("ok") else "-", state])
    return out


HEAD = ["contender", "seconds", "vs COPY", "plan s", "write s", "first row s", "peak RSS", "outbox rows",
        "table rows", "note"]


def markdown(args: argparse.Namespace, setup: dict[str, Any], mach: dict[str, str], best: dict[str, dict[str, Any]],
             checks: list[dict[str, Any]], load: str) -> str:
    n = args.customers
    extra = (f" --only {args.only}" if args.only else "") + (f" --batch-size {args.batch_size}" if args.batch_size else "")
    lines = [
        f"## Runs, {n:,} candidates",
        "",
        (f"Recorded {dt.datetime.now().isoformat(timespec='seconds')} with `.venv/bin/python benchmarks/bench_runs.py "
         f"--customers {n} --seed {args.seed} --repeat {args.repeat}{extra}` (best of runs; a fresh database per run)."),
        "",
        (f"- Machine: {mach['cpu']}, {mach['nproc']} CPUs, {mach['memory']} RAM; load average before the run {load}; "
         f"panhuo commit {mach['commit']}{_dirty()}"),
        "- Candidates: " + ", ".join(f"{k} {v}" for k, v in setup["mix"].items())
        + f"; contact log {setup['contacts']:,} rows",
        "",
        "| " + " | ".join(HEAD) + " |",
        "| --- | " + " | ".join("---:" for _ in HEAD[1:-1]) + " | --- |",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows_table(best)]
    lines += ["", "| target | measured | goal | verdict |", "| --- | ---: | --- | --- |"]
    lines += [f"| {c['line']} | {_value(c)} | {c['target']} | {_verdict(c)} |" for c in checks]
    p = best.get("panhuo") or best.get("panhuo-sqlite")
    if p and p.get("ok"):
        lines += ["", "Funnel: " + ", ".join(f"{k} {v:,}" for k, v in p["funnel"])
                  + f"; per run also {p['decisions']:,} decisions ({p['assignments']:,} of them with an assignment)"
                  + " written"
                  + f" in {p['batches']} batches."]
    return "\n".join(lines) + "\n"


def _dirty() -> str:
    """A note when the measured source differs from the commit (other engineers edit the same tree)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=bench.REPO, capture_output=True,
                             text=True, check=False).stdout
    except OSError:
        return ""
    files = [line[3:] for line in out.splitlines() if line.strip()]
    return f" plus uncommitted changes to {len(files)} files under src/" if files else ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data", type=Path, default=HERE / "data", help="cache folder (shared with run.py)")
    p.add_argument("--repeat", type=int, default=1, help="runs per contender, interleaved (best is reported)")
    p.add_argument("--only", default="", help="comma-separated contenders (default: all): " + ", ".join(CONTENDERS))
    p.add_argument("--rss-cap", type=float, default=12.0, help="GiB; a contender above it is killed")
    p.add_argument("--profile", action="store_true", help="run the panhuo contenders under cProfile")
    p.add_argument("--batch-size", type=int, help="the workspace's runs.batch_size (default: its default, 10k)")
    p.add_argument("--record", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--ctx", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.ctx)

    only = [s.strip() for s in args.only.split(",") if s.strip()] or list(CONTENDERS)
    unknown = set(only) - set(CONTENDERS)
    if unknown:
        p.error(f"unknown contenders: {', '.join(sorted(unknown))}")
    if any(c.startswith("copy") for c in only) and "panhuo" not in only:
        p.error("the COPY baselines write the rows the panhuo contender wrote: run them with panhuo")
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    pg = "panhuo" in only
    setup = prepare(args.data / f"runs-{args.customers}-{args.seed}", args.customers, args.seed, pg, args.batch_size)
    run_dir: Path = setup["run_dir"]
    base = dict(setup["ctx"], profile=args.profile)
    cap = int(args.rss_cap * bench.GiB)
    Path(base["tags_file"]).read_bytes()  # a warm page cache for every contender
    print(f"RUNS of {PLAYBOOK_ID!r} over {args.customers:,} candidates; results in {run_dir}; "
          f"load average {load}", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {}
    created: list[str] = []
    try:
        for k in range(args.repeat):
            for c in CONTENDERS:
                if c not in only or c.startswith("copy"):
                    continue
                if c == "panhuo":
                    db = f"{setup['pg_tmpl']}_p{k}"
                    pg_admin(f'CREATE DATABASE "{db}" TEMPLATE "{setup["pg_tmpl"]}"')
                    created.append(db)
                    ctx = dict(base, store_url=pg_url(db), dsn=pg_dsn(db))
                else:
                    path = run_dir / f"sqlite-{k}.db"
                    shutil.copyfile(setup["sqlite_tmpl"], path)
                    ctx = dict(base, store_url=f"sqlite:///{path}")
                res = run_contender(c, ctx, run_dir, cap)
                runs.setdefault(c, []).append(res)
                _progress_line(c, res)
                baselines = [b for b in ("copy", "copy-all") if b in only]
                if c == "panhuo" and baselines and res.get("ok"):
                    files = export_rows(db, run_dir)  # set-up of the baselines, not timed
                    for b in baselines:
                        target = f"{setup['pg_tmpl']}_{'c' if b == 'copy' else 'a'}{k}"
                        copy_target(setup["pg_tmpl"], target, db)
                        created.append(target)
                        chosen = [f for f in files if b == "copy-all" or f[0] == "outbox"]
                        res = run_contender(b, dict(base, dsn=pg_dsn(target), files=chosen), run_dir, cap)
                        runs.setdefault(b, []).append(res)
                        _progress_line(b, res)
                        pg_admin(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
                    pg_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                    for f in files:
                        Path(f[2]).unlink(missing_ok=True)
                elif c == "panhuo":
                    pg_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                else:
                    for f in run_dir.glob(f"sqlite-{k}.db*"):
                        f.unlink()
    finally:
        for db in [*created, setup["pg_tmpl"]]:
            if db:
                pg_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    best = {c: best_of(runs[c]) for c in CONTENDERS if c in runs}
    checks = targets(best)
    print()
    widths = [62, 8, 8, 7, 8, 11, 10, 12, 11]
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(HEAD, widths))))
    for r in rows_table(best):
        print("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
              + ("  " + r[-1] if r[-1] else ""))
    for c in checks:
        print(f"{c['line']:<38} = {_value(c):>9}   target {c['target']:<11} {_verdict(c)}", flush=True)
    ok = [n for n, r in best.items() if r.get("ok")]
    digests = {n: (best[n]["rows"], best[n]["digest"]) for n in ok}
    tables = {n: (best[n]["decisions"], best[n]["assignments"]) for n in ok if n != "copy"}
    agree = len(set(digests.values())) <= 1 and len(set(tables.values())) <= 1
    p0 = best.get("panhuo") or best.get("panhuo-sqlite")
    if p0 and p0.get("ok"):
        print("funnel: " + ", ".join(f"{k} {v:,}" for k, v in p0["funnel"]))
        if p0["funnel"][0][1] != args.customers:
            print(f"expected {args.customers:,} candidates, got {p0['funnel'][0][1]:,}", file=sys.stderr)
            agree = False
    if args.record:
        bench.record(markdown(args, setup, bench.machine(), best, checks, load), args.customers, "bench-runs")
    failed = [n for n, r in best.items() if not r.get("ok")]
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    if not agree:
        print(f"contenders DISAGREE on the outbox: {digests}; decisions, assignments: {tables}", file=sys.stderr)
        return 1
    print(f"all contenders hold the same {next(iter(digests.values()))[0]:,} outbox rows "
          f"(same keys, customers, channels, arms)"
          + (" and the same numbers of decisions and assignments" if tables else ""))
    return 0


def _progress_line(name: str, res: dict[str, Any]) -> None:
    if not res.get("ok"):
        print(f"  {name:<14} {res['error'][:400]}", flush=True)
        return
    extra = ""
    if "plan_seconds" in res:
        extra = (f"  plan {res['plan_seconds']:.2f} s, write {res['write_seconds']:.2f} s, first row "
                 f"{bench.fmt_s(res.get('first_row_seconds'))} s")
    print(f"  {name:<14} {res['seconds']:8.2f} s{extra}  rows {res['rows']:,}  peak RSS "
          f"{bench.fmt_bytes(res['peak_rss'])}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
