"""Service benchmark: the REST API's read endpoints under 50 concurrent clients on loopback.

Runnable alone::

    .venv/bin/python benchmarks/bench_service.py --customers 1000000 [--clients 50] [--duration 60]
        [--max-requests 200000] [--outbox 100000] [--workers 1] [--no-record] [--note "..."]

Set-up (not timed; cached in ``benchmarks/data/service-<customers>-<seed>/``, git-ignored): the synthetic
brokerage of ``benchmarks/run.py`` (``ensure_data``), ingested into a workspace, account status with its
12-month backfill, tags; in the store a user ``bench-viewer`` (viewer) with a read API key, and a past run
whose ``--outbox`` messages (outbox and contact_log rows, a third of them with receipts) stand for the
campaigns a brokerage has sent, so the customer view reads a store that is not empty.

Then ``panhuo serve`` (``--workers`` uvicorn processes) runs on 127.0.0.1 and a bounded load generator in this process
(``--clients`` asyncio workers over one pool of keep-alive connections of the lean client of
:mod:`panhuo.delivery.http`, no think time: a closed loop) sends read
requests until ``--duration`` seconds or ``--max-requests`` requests, whichever comes first. The mix,
one request each in turn per worker: a customer (random id of the N), a segment count (one of the
built-in segments), the tiers, the playbook list, the benefit list with stock, the call tasks, the runs.
Before timing, every segment and the tiers are requested once (their counts are cached until the tags
change, so the timed phase measures the steady state an operations team sees), and each endpoint a few
times. Printed: requests, errors, throughput and p50/p95/p99 per endpoint and overall, the machine's
load average before and after; target p95 < 300 ms. ``--record`` (the default) writes the figures into
``benchmarks/RESULTS.md`` between ``<!-- bench-service:<customers>:begin/end -->``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import run as bench  # noqa: E402  (benchmarks/run.py: ensure_data, machine, record)

__all__ = ["ENDPOINTS", "main", "prepare", "percentile"]

AS_OF = dt.date(2026, 11, 23)
SEGMENTS = ("sleeping", "effective", "dormant", "sleeping_traded_before", "sleeping_high_value", "sleeping_recent",
            "product_holders", "new_empty")
ENDPOINTS = ("customer", "segment", "tiers", "playbooks", "benefits", "tasks", "runs")
TARGET_P95_MS = 300.0


def _cpu_by_process(pid: int) -> dict[int, float]:
    """User + system CPU seconds of a process and of each of its children (the uvicorn workers), by pid."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    out: dict[int, float] = {}
    for pr in procs:
        try:
            t = pr.cpu_times()
            out[pr.pid] = t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return out


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (the uvicorn workers)."""
    return sum(_cpu_by_process(pid).values())


def _load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# -- set-up ---------------------------------------------------------------------------------------

def _workspace(root: Path, customers: int, seed: int) -> Path:
    """Ingest, status (with backfill) and tags into ``root/workspace`` unless already done."""
    from panhuo.config import Workspace
    from panhuo.contract.ingest import ingest
    from panhuo.engines import connect
    from panhuo.status.history import compute_status
    from panhuo.tags import compute_tags

    meta_path = root / "service.json"
    ws_root = root / "workspace"
    if meta_path.exists() and json.loads(meta_path.read_text(encoding="utf-8")).get("customers") == customers:
        print(f"reusing {ws_root}", flush=True)
        return ws_root
    bench.ensure_data(root, customers, seed, AS_OF, csv=False)
    ws = Workspace.open(ws_root)
    con = connect(ws.settings.engine, ws.tmp_dir)
    steps: dict[str, float] = {}
    for name, step in (("ingest", lambda: ingest(ws, root / "parquet", con=con)),
                       ("status", lambda: compute_status(ws, con, AS_OF, backfill=True)),
                       ("tags", lambda: compute_tags(ws, con, AS_OF))):
        t0 = time.perf_counter()
        step()
        steps[name] = round(time.perf_counter() - t0, 1)
        print(f"{name}: {steps[name]:.1f} s", flush=True)
    meta_path.write_text(json.dumps({"customers": customers, "seed": seed, "steps": steps}), encoding="utf-8")
    return ws_root


def _customer_ids(ws_root: Path) -> list[str]:
    import pyarrow.parquet as pq

    from panhuo.tags.store import tag_snapshots
    from panhuo.config import Workspace

    snap = tag_snapshots(Workspace.open(ws_root, create=False))[-1].path
    return [str(x) for x in pq.read_table(snap, columns=["customer_id"])["customer_id"].to_pylist()]


def _store(ws_root: Path, ids: list[str], outbox: int, seed: int) -> str:
    """The viewer, its read key, and a past run's outbox and contact_log rows (recreated each run)."""
    from sqlalchemy import delete, insert, select

    from panhuo.config import Workspace
    from panhuo.runs.models import ContactLog, OutboxMessage, Run
    from panhuo.runs.outbox import idempotency_key
    from panhuo.service import auth
    from panhuo.service.models import ApiKey
    from panhuo.store import add_user, open_store
    from panhuo.store.models import SHANGHAI, Playbook, PlaybookVersion, User
    from panhuo.store.users import get_user

    ws = Workspace.open(ws_root, create=False)
    st = open_store(ws)
    rng = random.Random(seed)
    try:
        with st.session() as s:
            if get_user(s, "bench-admin") is None:
                add_user(s, "bench-admin", ["admin"])
                add_user(s, "bench-viewer", ["viewer"], actor="bench-admin")
            s.execute(delete(ApiKey).where(ApiKey.name == "bench"))
            key = auth.create_api_key(s, "bench", user="bench-viewer", scope="read", actor="bench-admin").secret
            have = s.execute(select(Run.id).where(Run.run_key == "bench-history")).scalar_one_or_none()
            if have is None and outbox > 0:
                s.add(Playbook(id="bench-history", name="历史活动", state="retired", current_version=1,
                               created_by="bench-admin"))
                s.flush()
                s.add(PlaybookVersion(playbook_id="bench-history", version=1, yaml_text="", parsed={},
                                      content_hash="h", author="bench-admin"))
                run = Run(playbook_id="bench-history", playbook_version=1, run_key="bench-history", as_of=AS_OF,
                          state="done", sends=outbox)
                s.add(run)
                s.flush()
                at = dt.datetime(2026, 11, 20, 10, 0, tzinfo=SHANGHAI)
                chosen = rng.sample(ids, min(outbox, len(ids)))
                for i in range(0, len(chosen), 20_000):
                    part = chosen[i:i + 20_000]
                    s.execute(insert(OutboxMessage), [
                        {"run_id": run.id, "playbook_id": "bench-history", "customer_id": c, "channel": "sms",
                         "content": "【盘活证券】市场周报已为您准备好 回T退订",
                         "idempotency_key": idempotency_key("bench-history", c, "bench-history"),
                         "status": "sent", "send_after": at, "sent_at": at,
                         "receipt_status": "delivered" if k % 3 == 0 else None} for k, c in enumerate(part)])
                    s.execute(insert(ContactLog), [{"customer_id": c, "channel": "sms", "sent_at": at,
                                                    "playbook_id": "bench-history"} for c in part])
            users = s.execute(select(User.name)).scalars().all()
            assert "bench-viewer" in users
        return key
    finally:
        st.dispose()


def prepare(customers: int, seed: int, outbox: int) -> dict[str, Any]:
    root = HERE / "data" / f"service-{customers}-{seed}"
    t0 = time.perf_counter()
    ws_root = _workspace(root, customers, seed)
    ids = _customer_ids(ws_root)
    key = _store(ws_root, ids, outbox, seed)
    print(f"set-up: {len(ids):,} customers, {outbox:,} past messages in {time.perf_counter() - t0:.1f} s", flush=True)
    return {"workspace": str(ws_root), "ids": ids, "key": key}


# -- server and load ------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(ws_root: str, workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = _free_port()
    log = open(Path(ws_root) / "serve.log", "wb")  # noqa: SIM115  (kept open for the process's life)
    proc = subprocess.Popen([sys.executable, "-c", "from panhuo.cli.main import main; main()", "--workspace", ws_root,
                             "serve", "--port", str(port), "--workers", str(workers)], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/api/v1"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"panhuo serve did not start; see {Path(ws_root) / 'serve.log'}")
        time.sleep(0.2)


def _path(kind: str, rng: random.Random, ids: list[str]) -> str:
    if kind == "customer":
        return f"/customers/{rng.choice(ids)}"
    if kind == "segment":
        return f"/segments/{rng.choice(SEGMENTS)}"
    return {"tiers": "/tiers", "playbooks": "/playbooks", "benefits": "/benefits", "tasks": "/tasks",
            "runs": "/runs"}[kind]


class _GetClient:
    """The lean keep-alive HTTP/1.1 client of :mod:`panhuo.delivery.http` (tens of microseconds of CPU a
    request, where httpx spends 1-2 ms: the load generator must not be what the benchmark measures) with the
    API key. ``HttpClient.get`` retries once a reused connection the server closed before any byte of the
    answer (the keep-alive race); anything else is an error with its reason."""

    def __init__(self, base_url: str, key: str, clients: int, timeout: float = 60.0) -> None:
        from panhuo.delivery.http import HttpClient

        self._c = HttpClient(base_url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout,
                             max_connections=clients)

    async def get(self, path: str) -> Any:
        return await self._c.get(path)

    async def aclose(self) -> None:
        await self._c.aclose()


def _ok(r: Any, path: str) -> None:
    if r.status_code != 200:
        raise SystemExit(f"warm-up GET {path}: HTTP {r.status_code} {r.text[:200]}")


async def _load_phase(base: str, key: str, ids: list[str], clients: int, duration: float, max_requests: int,
                      seed: int, mark: Any = None) -> tuple[dict[str, list[float]], dict[str, int], float]:
    from panhuo.delivery.http import HttpTransportError

    lat: dict[str, list[float]] = {k: [] for k in ENDPOINTS}
    errors: dict[str, int] = {k: 0 for k in ENDPOINTS}
    reasons: dict[str, int] = {}
    sent = 0
    client = _GetClient(base, key, clients)
    try:
        # warm-up: every segment and the tiers once (cached counts), every endpoint a few times
        for path in (*(f"/segments/{seg}" for seg in SEGMENTS), "/tiers"):
            _ok(await client.get(path), path)
        wrng = random.Random(seed + 1)
        for kind in ENDPOINTS:
            for _ in range(3):
                path = _path(kind, wrng, ids)
                _ok(await client.get(path), path)
        if mark is not None:
            mark()
        start = time.perf_counter()
        stop_at = start + duration

        async def worker(i: int) -> None:
            nonlocal sent
            rng = random.Random(seed * 1000 + i)
            k = i % len(ENDPOINTS)
            while time.perf_counter() < stop_at and sent < max_requests:
                sent += 1
                kind = ENDPOINTS[k % len(ENDPOINTS)]
                k += 1
                t0 = time.perf_counter()
                try:
                    r = await client.get(_path(kind, rng, ids))
                    why = "" if r.status_code == 200 else f"HTTP {r.status_code}"
                except HttpTransportError as exc:
                    why = f"{type(exc).__name__}: {exc}"
                if not why:
                    lat[kind].append(time.perf_counter() - t0)
                else:
                    errors[kind] += 1
                    reasons[f"{kind}: {why}"] = reasons.get(f"{kind}: {why}", 0) + 1

        await asyncio.gather(*(worker(i) for i in range(clients)))
        elapsed = time.perf_counter() - start
    finally:
        await client.aclose()
    for why, n in sorted(reasons.items()):
        print(f"error: {n} x {why}")
    return lat, errors, elapsed


def _ms(x: float) -> str:
    return f"{x * 1000:,.0f}" if x == x else "-"


def summarise(lat: dict[str, list[float]], errors: dict[str, int], elapsed: float) -> list[dict[str, Any]]:
    rows = []
    for kind in (*ENDPOINTS, "all"):
        v = [x for vs in lat.values() for x in vs] if kind == "all" else lat[kind]
        e = sum(errors.values()) if kind == "all" else errors[kind]
        rows.append({"endpoint": kind, "requests": len(v), "errors": e, "rps": len(v) / elapsed if elapsed else 0.0,
                     "p50": percentile(v, 50), "p95": percentile(v, 95), "p99": percentile(v, 99),
                     "mean": statistics.fmean(v) if v else float("nan")})
    return rows


def markdown(args: argparse.Namespace, rows: list[dict[str, Any]], elapsed: float, load: str, load_after: str,
             machine: dict[str, str], met: bool, server_cpu: str) -> str:
    lines = [f"## Service API read endpoints, {args.customers:,} customers\n",
             f"- command: `.venv/bin/python benchmarks/bench_service.py --customers {args.customers} --clients "
             f"{args.clients} --duration {args.duration:g} --max-requests {args.max_requests} --outbox {args.outbox} "
             f"--workers {args.workers}`",
             f"- `panhuo serve --workers {args.workers}` on 127.0.0.1; {args.clients} concurrent clients, closed loop, "
             f"no think time; {elapsed:.1f} s timed after a warm-up (segment counts and tiers cached)",
             f"- machine: {machine['cpu']}, {machine['nproc']} CPUs, {machine['memory']}; load average before "
             f"{load}, after {load_after} (a shared machine: other work ran at the same time)",
             f"- server CPU during the timed phase: {server_cpu}",
             f"- commit {machine['commit']}; {machine['python']}", ""]
    if args.note:
        lines.insert(-1, f"- note: {args.note}")
    lines += ["| endpoint | requests | errors | req/s | p50 ms | p95 ms | p99 ms |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['endpoint']} | {r['requests']:,} | {r['errors']} | {r['rps']:,.1f} | {_ms(r['p50'])} | "
                     f"{_ms(r['p95'])} | {_ms(r['p99'])} |")
    overall = rows[-1]
    lines += ["", f"Target p95 < {TARGET_P95_MS:.0f} ms: {'met' if met else 'NOT met'} "
                  f"(overall p95 {_ms(overall['p95'])} ms at {overall['rps']:,.1f} requests/s).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of timed load (upper bound)")
    p.add_argument("--max-requests", type=int, default=200_000, help="requests of timed load (upper bound)")
    p.add_argument("--outbox", type=int, default=100_000, help="past messages in the store")
    p.add_argument("--workers", type=int, default=1, help="panhuo serve --workers N")
    p.add_argument("--record", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--note", default="")
    args = p.parse_args(argv)

    ctx = prepare(args.customers, args.seed, args.outbox)
    load = _load()
    proc, base = start_server(ctx["workspace"], args.workers)
    try:
        cpu = {"before": 0.0}

        by_before: dict[int, float] = {}

        def mark() -> None:
            by_before.update(_cpu_by_process(proc.pid))
            cpu["before"] = sum(by_before.values())
            cpu["client"] = time.process_time()

        lat, errors, elapsed = asyncio.run(_load_phase(base, ctx["key"], ctx["ids"], args.clients, args.duration,
                                                       args.max_requests, args.seed, mark))
        by_after = _cpu_by_process(proc.pid)
        server_cpu = sum(by_after.values()) - cpu["before"]
        client_cpu = time.process_time() - cpu["client"]
        # each process's share: worker processes far apart would mean keep-alive connections piled on one
        per_process = ", ".join(f"{by_after[p] - by_before.get(p, 0.0):.1f}" for p in sorted(by_after))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    load_after = _load()
    rows = summarise(lat, errors, elapsed)
    done = rows[-1]["requests"] + rows[-1]["errors"]
    per_request = server_cpu / done * 1000 if done else float("nan")
    print(f"{args.clients} clients for {elapsed:.1f} s; load average before {load}, after {load_after}")
    print(f"server CPU {server_cpu:.1f} s for {done:,} requests: {per_request:.1f} ms CPU per request, "
          f"{server_cpu / elapsed:.2f} CPUs busy on average (by process, s: {per_process}); "
          f"load generator CPU {client_cpu:.1f} s")
    print(f"{'endpoint':<10} {'requests':>9} {'errors':>6} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}")
    for r in rows:
        print(f"{r['endpoint']:<10} {r['requests']:>9,} {r['errors']:>6} {r['rps']:>8,.1f} {_ms(r['p50']):>7} "
              f"{_ms(r['p95']):>7} {_ms(r['p99']):>7}")
    overall = rows[-1]
    met = overall["errors"] == 0 and overall["p95"] * 1000 < TARGET_P95_MS
    print(f"target p95 < {TARGET_P95_MS:.0f} ms: {'met' if met else 'NOT met'} (p95 {_ms(overall['p95'])} ms, "
          f"{overall['rps']:,.1f} requests/s)")
    if overall["requests"] == 0:
        print("FAILED: no request succeeded")
        return 1
    if args.record:
        bench.record(markdown(args, rows, elapsed, load, load_after, bench.machine(), met,
                              f"{server_cpu:.1f} s ({per_request:.1f} ms per request, {server_cpu / elapsed:.2f} CPUs "
                              f"busy on average; by process, s: {per_process}); the load generator's own CPU "
                              f"{client_cpu:.1f} s"),
                     args.customers, "bench-service")
    return 0


if __name__ == "__main__":
    sys.exit(main())
