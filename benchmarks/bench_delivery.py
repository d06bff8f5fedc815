"""Delivery benchmark: ``panhuo deliver --once`` against a bare httpx loop, both to the loopback simulator.

Runnable alone::

    .venv/bin/python benchmarks/bench_delivery.py --messages 100000 [--store postgresql|sqlite] [--no-record]

Set-up (not timed): a workspace under a temporary folder whose store (a PostgreSQL database created
for the run on ``$PANHUO_BENCH_PG``, default ``postgresql://postgres@127.0.0.1:5432/postgres``, dropped
at the end; or a SQLite file) holds N pending outbox rows, a third each SMS, app push and WeChat, and a
warehouse ``customers`` table with their phones; ``panhuo provider-sim`` as its own process (no faults,
latency 0). Contenders, each in a fresh subprocess, the simulator reset (counters and keys) before each:

- ``bare``: the floor the issue names: one pooled ``httpx.AsyncClient`` (the same limits and timeout as
  the worker's), at most ``concurrency`` requests in flight, posting exactly the requests panhuo sends
  (same paths and bodies, built beforehand from the outbox rows; nothing read or written in a store);
- ``bare-lean``: the same loop with panhuo's own client (:mod:`panhuo.delivery.http`, which the worker
  uses since httpx capped it near 500 requests/s): the floor of what the worker does beyond posting;
- ``panhuo``: ``panhuo deliver --once`` (claim, look up phones, send, record in batches), with
  ``--workers N`` when given (N processes on PostgreSQL).

Timed from outside and alike for all: from the first request the simulator counts (``/stats`` polled
every 50 ms) to the process's exit (so interpreter start and imports are not timed; the panhuo figure
includes its first claim and its last record). Also: peak RSS (``os.wait4``: the largest single
process) and, sampled every 50 ms over the process and its children summed, the peak and the RSS
when the simulator had 25/50/75% of the messages. Checks: the simulator delivered N unique keys with
no duplicate in each run, and the store holds N sent rows after panhuo. Targets (issue 6): panhuo >=
0.8x the bare httpx loop's rate and >= 3,000 messages/s; the ratio to ``bare-lean`` is printed too.
``--contenders`` runs a subset while iterating (recorded only with all three). ``--record`` (the
default) writes the figures into ``benchmarks/RESULTS.md`` between ``<!-- bench-delivery:<n>:begin/end -->``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import run as bench  # noqa: E402  (benchmarks/run.py: machine(), RESULTS, HEADER)

__all__ = ["main"]

TOKEN = "bench-token"
PANHUO = str(REPO / ".venv" / "bin" / "panhuo") if (REPO / ".venv" / "bin" / "panhuo").exists() else "panhuo"
PG_ADMIN = os.environ.get("PANHUO_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
CHANNELS = ("sms", "app_push", "wechat")
CONTENT = {"sms": {"text": "【盘活证券】新股申购日，来看看吧 回T退订"},
           "app_push": {"title": "好久不见", "body": "新股申购日，来看看吧"},
           "wechat": {"template_id": "tpl-1", "data": {"first": "您好", "remark": "来看看"}}}
PATHS = {"sms": "/sms/send", "app_push": "/push/send", "wechat": "/wechat/send"}
POLL_S = 0.05


# -- set-up ---------------------------------------------------------------------------------------

def _pg_admin(sql: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    dsn = make_url(PG_ADMIN).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, connect_timeout=3, autocommit=True) as conn:
        conn.execute(sql)


def prepare(root: Path, n: int, store: str, sim_url: str, concurrency: int | None, batch: int | None,
            workers: int = 1) -> dict[str, Any]:
    """Workspace, store with N pending outbox rows, customers with phones; the requests the bare loop sends."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sqlalchemy import insert
    from sqlalchemy.engine import make_url

    from panhuo.config import DeliveryProvider, Workspace
    from panhuo.runs.models import OutboxMessage, Run
    from panhuo.store import open_store
    from panhuo.store.models import Playbook, PlaybookVersion, User, now_shanghai
    from panhuo.warehouse import TableRecord, Warehouse

    database = None
    if store == "postgresql":
        database = f"panhuo_bench_delivery_{secrets.token_hex(4)}"
        _pg_admin(f'CREATE DATABASE "{database}"')
        url = make_url(PG_ADMIN).set(drivername="postgresql+psycopg", database=database).render_as_string(
            hide_password=False)
    else:
        url = f"sqlite:///{root / 'ws' / 'panhuo.db'}"
    ws = Workspace.open(root / "ws")
    d = ws.settings.delivery
    p = DeliveryProvider(base_url=sim_url, token_env="PANHUO_SIM_TOKEN", timeout=10.0, rate_per_second=100_000,
                         concurrency=concurrency or DeliveryProvider.model_fields["concurrency"].default)
    d = d.model_copy(update={"providers": {"sim": p}, **({"batch": batch} if batch else {})})
    ws = ws.save(ws.settings.model_copy(update={"store_url": url, "delivery": d}))
    customers = [f"c{i:07d}" for i in range(n)]
    phones = [f"139{i:08d}" for i in range(n)]
    wh = Warehouse(ws.warehouse_dir)
    tx = wh.begin_load("bench")
    pq.write_table(pa.table({"customer_id": customers, "phone": phones, "advisor_id": ["a1"] * n}),
                   tx.path_for("customers"))
    tx.record(TableRecord(name="customers", rows=n, file="customers.parquet", source="bench", source_format="parquet"))
    tx.commit()
    st = open_store(ws)
    at = now_shanghai() - dt.timedelta(minutes=1)
    try:
        with st.session() as s:
            s.add(User(name="bench", display_name="bench"))
            s.flush()
            s.add(Playbook(id="p", name="bench", state="live", current_version=1, live_version=1, created_by="bench"))
            s.flush()
            s.add(PlaybookVersion(playbook_id="p", version=1, yaml_text="", parsed={"user": {"segment": "sleeping"}},
                                  content_hash="h", author="bench"))
            run = Run(playbook_id="p", playbook_version=1, run_key="bench", as_of=at.date(), state="done")
            s.add(run)
            s.flush()
            run_id = run.id
        rows = []
        for i, cid in enumerate(customers):
            ch = CHANNELS[i % 3]
            rows.append({"run_id": run_id, "playbook_id": "p", "customer_id": cid, "channel": ch,
                         "content": json.dumps(CONTENT[ch], ensure_ascii=False, separators=(",", ":")),
                         "idempotency_key": f"bench-{i:07d}-{ch}", "status": "pending", "send_after": at})
        for k in range(0, n, 20_000):
            with st.session() as s:
                s.execute(insert(OutboxMessage.__table__), rows[k:k + 20_000])
        with st.session() as s:  # the ids the worker sends as message_id
            from sqlalchemy import select

            ids = dict(s.execute(select(OutboxMessage.idempotency_key, OutboxMessage.id)).all())
    finally:
        st.dispose()
    requests = []
    for i, r in enumerate(rows):
        ch, key, mid = r["channel"], r["idempotency_key"], str(ids[r["idempotency_key"]])
        c = CONTENT[ch]
        if ch == "sms":
            body = {"message_id": mid, "idempotency_key": key, "phone": phones[i], "text": c["text"]}
        elif ch == "app_push":
            body = {"message_id": mid, "idempotency_key": key, "customer_id": r["customer_id"], "title": c["title"],
                    "body": c["body"]}
        else:
            body = {"message_id": mid, "idempotency_key": key, "openid": r["customer_id"],
                    "template_id": c["template_id"], "data": c["data"]}
        requests.append([PATHS[ch], body])
    req_file = root / "requests.json"
    req_file.write_text(json.dumps(requests, ensure_ascii=False), encoding="utf-8")
    return {"ws": str(ws.root), "url": url, "database": database, "requests": str(req_file), "sim_url": sim_url,
            "concurrency": p.concurrency, "timeout": p.timeout, "batch": d.batch, "workers": workers}


# -- the bare loop (run as ``--worker bare --ctx FILE``) -------------------------------------------

async def _bare(ctx: dict[str, Any]) -> int:
    import httpx

    from panhuo.delivery.worker import skip_missing_sniffio

    skip_missing_sniffio()  # as the worker does: the same client, the same cost
    requests = json.loads(Path(ctx["requests"]).read_text(encoding="utf-8"))
    conc = ctx["concurrency"]
    gate = asyncio.Semaphore(conc)
    bad = 0
    async with httpx.AsyncClient(base_url=ctx["sim_url"], headers={"Authorization": f"Bearer {TOKEN}"},
                                 timeout=httpx.Timeout(ctx["timeout"]),
                                 limits=httpx.Limits(max_connections=conc, max_keepalive_connections=conc)) as client:
        async def one(path: str, body: dict[str, Any]) -> None:
            nonlocal bad
            async with gate:
                for attempt in range(5):  # network errors are retried, as the worker retries them
                    try:
                        r = await client.post(path, json=body)
                        break
                    except httpx.TransportError:
                        if attempt == 4:
                            raise
                        await asyncio.sleep(0.05 * 2**attempt)
                if r.status_code != 200:
                    bad += 1
        await asyncio.gather(*(one(p, b) for p, b in requests))
    return bad


async def _bare_lean(ctx: dict[str, Any]) -> int:
    """The same loop with panhuo's own HTTP client (:mod:`panhuo.delivery.http`) instead of httpx."""
    from panhuo.delivery.http import HttpClient, HttpTransportError

    requests = json.loads(Path(ctx["requests"]).read_text(encoding="utf-8"))
    conc = ctx["concurrency"]
    gate = asyncio.Semaphore(conc)
    bad = 0
    async with HttpClient(ctx["sim_url"], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=ctx["timeout"],
                          max_connections=conc) as client:
        async def one(path: str, body: dict[str, Any]) -> None:
            nonlocal bad
            raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            async with gate:
                for attempt in range(5):
                    try:
                        r = await client.post(path, raw)
                        break
                    except HttpTransportError:
                        if attempt == 4:
                            raise
                        await asyncio.sleep(0.05 * 2**attempt)
                if r.status_code != 200:
                    bad += 1
        await asyncio.gather(*(one(p, b) for p, b in requests))
    return bad


# -- driving ---------------------------------------------------------------------------------------

def start_sim() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([PANHUO, "provider-sim", "--port", "0", "--token", TOKEN], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    raise SystemExit(f"provider-sim did not start: {proc.stderr.read()}")


def run_contender(name: str, ctx: dict[str, Any], n: int, log: Path) -> dict[str, Any]:
    """One contender in a fresh process; timed from the simulator's first request to the exit."""
    import httpx
    import psutil

    sim = httpx.Client(base_url=ctx["sim_url"], timeout=10)
    sim.post("/reset").raise_for_status()
    if name == "panhuo":
        cmd = [PANHUO, "deliver", "--once"] + (["--workers", str(ctx["workers"])] if ctx.get("workers", 1) > 1 else [])
    else:
        ctx_file = log.with_suffix(".ctx.json")
        ctx_file.write_text(json.dumps(ctx), encoding="utf-8")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--ctx", str(ctx_file)]
    env = {**os.environ, "PANHUO_HOME": ctx["ws"], "PANHUO_SIM_TOKEN": TOKEN}
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    ps = psutil.Process(proc.pid)
    first: float | None = None
    last_zero = time.monotonic()  # the last poll that saw nothing delivered yet
    marks: dict[int, int] = {}
    peak = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        now = time.monotonic()
        if pid:
            break
        done = sum(sim.get("/stats").json()["delivered"].values())
        if first is None and done:
            first = now
        elif not done:
            last_zero = now
        rss = 0
        try:  # the process and its children (``--workers N``: N worker processes)
            for q in [ps, *ps.children(recursive=True)]:
                rss += q.memory_info().rss
        except psutil.NoSuchProcess:
            pass
        peak = max(peak, rss)
        for q in (25, 50, 75):
            if q not in marks and done >= n * q / 100:
                marks[q] = rss
        time.sleep(POLL_S)
    code = os.waitstatus_to_exitcode(status)
    st = sim.get("/stats").json()
    if first is None and sum(st["delivered"].values()):  # all sent between two polls (a tiny run)
        first = last_zero
    sim.close()
    res = {"ok": code == 0, "exit": code, "peak_rss": usage.ru_maxrss * 1024, "peak_sampled": peak, "rss_marks": marks,
           "seconds": (now - first) if first is not None else None, "delivered": sum(st["delivered"].values()),
           "unique_keys": st["unique_keys"], "duplicates": st["duplicates"], "requests": st["requests"]}
    if code != 0:
        res["error"] = " | ".join(log.read_text(errors="replace").strip().splitlines()[-10:])
    if res["seconds"]:
        res["rate"] = res["delivered"] / res["seconds"]
    return res


def store_counts(ctx: dict[str, Any]) -> dict[str, int]:
    from sqlalchemy import create_engine, func, select

    from panhuo.runs.models import OutboxMessage

    eng = create_engine(ctx["url"])
    try:
        with eng.connect() as c:
            return dict(c.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all())
    finally:
        eng.dispose()


def _verdict(goal: str, ok: bool) -> str:
    return "-" if goal == "(information)" else ("met" if ok else "NOT met")


def _mib(b: int | None) -> str:
    return "-" if not b else f"{b / 2**20:,.0f} MiB"


def markdown(args: argparse.Namespace, ctx: dict[str, Any], res: dict[str, dict[str, Any]], load: str,
             load_after: str, mach: dict[str, str], checks: list[tuple[str, str, str, bool]]) -> str:
    workers = (f" --workers {args.workers}" if args.workers > 1 else "") + \
        (f" --batch {args.batch}" if args.batch else "") + (f" --concurrency {args.concurrency}" if args.concurrency else "")
    lines = [f"## Delivery, {args.messages:,} messages", "",
             (f"Recorded {dt.datetime.now().isoformat(timespec='seconds')} with `.venv/bin/python "
              f"benchmarks/bench_delivery.py --messages {args.messages} --store {args.store}{workers}` "
              f"(concurrency {ctx['concurrency']}, batch {ctx['batch']}; simulator: `panhuo provider-sim`, "
              "one process, no faults, latency 0)."), "",
             (f"- Machine: {mach['cpu']}, {mach['nproc']} CPUs, {mach['memory']} RAM; load average before the run "
              f"{load}, after {load_after}; panhuo commit {mach['commit']}"), "",
             "| contender | seconds | messages/s | peak RSS (wait4) | peak RSS sampled | RSS at 25/50/75% | "
             "delivered (unique) | duplicates |",
             "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |"]
    for name, r in res.items():
        secs = f"{r['seconds']:.1f}" if r.get("seconds") else "-"
        rate = f"{r['rate']:,.0f}" if r.get("rate") else "-"
        marks = " / ".join(_mib(r["rss_marks"].get(q)) for q in (25, 50, 75))
        lines.append(f"| {name} | {secs} | {rate} | {_mib(r['peak_rss'])} | {_mib(r['peak_sampled'])} | {marks} | "
                     f"{r['unique_keys']:,} | {r['duplicates']:,} |")
    lines += ["", "| target | measured | goal | verdict |", "| --- | ---: | --- | --- |"]
    lines += [f"| {a} | {b} | {c} | {_verdict(c, ok)} |" for a, b, c, ok in checks]
    if args.note:
        lines += ["", args.note]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--store", choices=("postgresql", "sqlite"), default="postgresql")
    p.add_argument("--concurrency", type=int, default=None, help="requests in flight (default: the worker's)")
    p.add_argument("--batch", type=int, default=None, help="delivery.batch (default: the worker's)")
    p.add_argument("--record", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--note", default="", help="a line added to the recorded section (conditions of the run)")
    p.add_argument("--contenders", default="bare,bare-lean,panhuo",
                   help="comma-separated subset of bare,bare-lean,panhuo (recorded only with all three)")
    p.add_argument("--workers", type=int, default=1, help="panhuo deliver --workers N (PostgreSQL)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--ctx", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        loop = {"bare": _bare, "bare-lean": _bare_lean}[args.worker]
        return 1 if asyncio.run(loop(json.loads(args.ctx.read_text(encoding="utf-8")))) else 0

    load = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    root = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    sim, sim_url = start_sim()
    ctx: dict[str, Any] = {}
    try:
        t = time.monotonic()
        ctx = prepare(root, args.messages, args.store, sim_url, args.concurrency, args.batch, args.workers)
        print(f"set-up: {args.messages:,} outbox rows on {args.store} in {time.monotonic() - t:.1f}s; "
              f"simulator {sim_url}; load {load}", flush=True)
        res: dict[str, dict[str, Any]] = {}
        names = [c for c in ("bare", "bare-lean", "panhuo") if c in args.contenders.split(",")]
        for name in names:
            res[name] = r = run_contender(name, ctx, args.messages, root / f"{name}.log")
            print(f"{name}: " + (f"{r['rate']:,.0f} messages/s in {r['seconds']:.1f}s" if r.get("rate") else "no rate")
                  + f", peak RSS {_mib(r['peak_rss'])} (sampled {_mib(r['peak_sampled'])}), RSS at 25/50/75% "
                  + " / ".join(_mib(r["rss_marks"].get(q)) for q in (25, 50, 75))
                  + f", delivered {r['unique_keys']:,} unique, duplicates {r['duplicates']}"
                  + ("" if r["ok"] else f"; FAILED: {r.get('error')}"), flush=True)
        counts = store_counts(ctx) if "panhuo" in res else {"sent": args.messages}
        if "panhuo" in res:
            print(f"store after panhuo: {counts}")
        ok = all(r["ok"] and r["unique_keys"] == args.messages == r["delivered"] and r["duplicates"] == 0
                 for r in res.values()) and counts == {"sent": args.messages}
        if not ok:
            print("CHECK FAILED: every run must deliver N unique keys without duplicates, the store N sent rows")
        rate = (res.get("panhuo") or {}).get("rate") or 0.0
        checks = []
        for base, label in (("bare", "panhuo / bare loop rate"), ("bare-lean", "panhuo / bare lean-client loop rate")):
            floor = (res.get(base) or {}).get("rate") or 0.0
            if "panhuo" in res and floor:
                ratio = rate / floor
                checks.append((label, f"{ratio:.2f}x", ">= 0.8x" if base == "bare" else "(information)",
                               ratio >= 0.8))
        if "panhuo" in res:
            checks.append(("panhuo messages/s", f"{rate:,.0f}", ">= 3,000", rate >= 3000))
        for a, b, c, good in checks:
            print(f"target {a}: {b} (goal {c}) {_verdict(c, good)}")
        load_after = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
        print(f"load average after the runs: {load_after}")
        if args.record and ok and len(res) == 3:
            bench.record(markdown(args, ctx, res, load, load_after, bench.machine(), checks), args.messages,
                         "bench-delivery")
        return 0 if ok else 1
    finally:
        sim.send_signal(signal.SIGTERM)
        try:
            sim.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            sim.kill()
        if ctx.get("database"):
            _pg_admin(f'DROP DATABASE IF EXISTS "{ctx["database"]}" WITH (FORCE)')
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
