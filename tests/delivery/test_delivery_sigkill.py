"""Delivery under fire (issue 6, item 6): workers SIGKILLed at random while the provider misbehaves.

``panhuo provider-sim`` runs as its own process with seeded faults (5xx, 429, lost responses,
permanent 400s) and duplicate receipts (POSTed to a loopback receiver); three ``panhuo deliver --follow``
workers drain a few thousand SMS / push / WeChat outbox rows on PostgreSQL. For 20 rounds a random
worker is SIGKILLed after a random (seeded) pause and a replacement started; then the workers drain
what is left (a short lease brings the killed workers' claims back) and are stopped. At the end:

- every outbox row is ``sent`` or ``dead``; none pending, none still leased;
- the simulator delivered exactly the sent rows' keys, each once (its unique keys == sent rows, its
  delivered counter == unique keys; a resend of a delivered key is a dedup hit, never a delivery),
  and each sent row carries the provider id the simulator derives from that key;
- one archive row and one contact-log row per sent row (nothing recorded twice);
- every dead letter is a permanent 400 from the simulator (the reason text), and the simulator's own
  seeded decisions for that key (recomputed here) do end in a 400 before any delivery.

"An opt-out arriving mid-run stops later sends to that customer" is tested in test_worker_optout.py
(the simulator, a signed reply of T to the callback endpoint between two worker runs).
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from panhuo.config import DeliveryProvider
from panhuo.delivery.models import MessageArchive
from panhuo.delivery.models import outbox as outbox_table
from panhuo.delivery.sim import _RESPONSE_FAULTS, _provider_id, _uniform
from panhuo.runs.models import ContactLog
from panhuo.store import open_store
from tests.conftest import PANHUO
from tests.delivery.conftest import deliver_ws, seed_outbox, write_customers
from tests.delivery.test_sim_receipts import Receiver

__all__: list[str] = []

SEED = 20261125
N = 3000  # outbox rows, a third per channel
ROUNDS = 20
WORKERS = 3
LEASE_S = 3
TOKEN = "kill-token"
SIM_FAULTS = {"error_rate": 0.1, "rate_429": 0.05, "lost_response_rate": 0.05, "permanent_rate": 0.02,
              "duplicate_receipts": 0.2}
_TRANSIENT = {"429", "5xx", "malformed"}


def _fate(channel: str, key: str, limit: int = 200) -> tuple[str, int]:
    """What the simulator does with ``key`` when it keeps being retried: its first non-transient decision.

    ``("400", a)``: refused permanently on attempt ``a`` (never delivered unless retried after that);
    ``("delivered", a)``: delivered (maybe answered 503, a lost response) on attempt ``a``.
    """
    for attempt in range(limit):
        u, edge, fault = _uniform(SEED, "fault", channel, key, attempt), 0.0, None
        for name, kind in _RESPONSE_FAULTS:
            edge += SIM_FAULTS.get(name, 0.0)
            if u < edge:
                fault = kind
                break
        if fault in _TRANSIENT:
            continue
        return ("400" if fault == "400" else "delivered"), attempt
    raise AssertionError(f"{key} faults {limit} times in a row")


def _start_sim(receiver_url: str) -> tuple[subprocess.Popen, str]:
    args = [PANHUO, "provider-sim", "--port", "0", "--token", TOKEN, "--seed", str(SEED),
            "--callback", receiver_url, "--secret-env", "PANHUO_KILL_SIM_SECRET"]
    for name, value in SIM_FAULTS.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PANHUO_KILL_SIM_SECRET": "kill-secret"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    raise AssertionError(f"provider-sim did not start: {proc.stderr.read()}")


def _status_counts(ws) -> tuple[dict[str, int], int, int, int]:
    store = open_store(ws)
    try:
        with store.session() as s:
            o = outbox_table.c  # delivery's columns live on the table (mapped or not, whatever the import order)
            status = dict(s.execute(select(o.status, func.count()).group_by(o.status)).all())
            leased = int(s.execute(select(func.count()).select_from(outbox_table).where(o.lease_until.is_not(None))).scalar_one())
            archive = int(s.execute(select(func.count()).select_from(MessageArchive)).scalar_one())
            contacts = int(s.execute(select(func.count()).select_from(ContactLog)).scalar_one())
            return status, leased, archive, contacts
    finally:
        store.dispose()


@pytest.mark.slow
def test_sigkilled_workers_deliver_every_message_exactly_once(tmp_path: Path, pg_url: str) -> None:
    rng = random.Random(SEED)
    channels = ("sms", "app_push", "wechat")
    rows = [(f"c{i:06d}", channels[i % 3]) for i in range(N)]
    with Receiver() as receiver:
        sim, sim_url = _start_sim(receiver.url)
        workers: list[subprocess.Popen] = []
        logs = tmp_path / "logs"
        logs.mkdir()
        try:
            provider = DeliveryProvider(base_url=sim_url, token_env="PANHUO_SIM_TOKEN", timeout=3.0,
                                        rate_per_second=5000, concurrency=16, max_attempts=50)
            ws = deliver_ws(tmp_path / "ws", pg_url, sim_url, providers={"sim": provider}, lease_seconds=LEASE_S,
                            batch=60, poll_seconds=0.2, backoff_base=0.02, backoff_max=0.3, max_wait=5.0)
            write_customers(ws, [{"customer_id": c, "phone": f"138{i:08d}", "advisor_id": "a1"}
                                 for i, (c, _) in enumerate(rows)])
            keys = seed_outbox(ws, rows)
            env = {**os.environ, "PANHUO_HOME": str(ws.root), "PANHUO_SIM_TOKEN": TOKEN}
            started = 0

            def start_worker() -> subprocess.Popen:
                nonlocal started
                started += 1
                out = open(logs / f"w{started:02d}.log", "w")  # noqa: SIM115 (closed with the process)
                p = subprocess.Popen([PANHUO, "deliver", "--follow", "--workers-id", f"w{started:02d}"], env=env,
                                     stdout=out, stderr=subprocess.STDOUT)
                out.close()
                return p

            t0 = time.monotonic()
            workers = [start_worker() for _ in range(WORKERS)]
            kills, killed_busy = 0, 0
            for _ in range(ROUNDS):
                time.sleep(rng.uniform(0.3, 1.5))
                i = rng.randrange(len(workers))
                victim = workers[i]
                assert victim.poll() is None, "a worker died by itself"
                if _status_counts(ws)[0].get("pending", 0):
                    killed_busy += 1
                os.kill(victim.pid, signal.SIGKILL)
                victim.wait(10)
                kills += 1
                workers[i] = start_worker()
            rounds_s = time.monotonic() - t0

            deadline = time.monotonic() + 150
            while True:
                status, leased, _, _ = _status_counts(ws)
                if not status.get("pending") and not leased:
                    break
                assert all(w.poll() is None for w in workers), "a worker died by itself"
                assert time.monotonic() < deadline, f"not drained: {status}, {leased} leased"
                time.sleep(0.3)
            drain_s = time.monotonic() - t0
            for w in workers:
                w.send_signal(signal.SIGINT)
            for w in workers:
                assert w.wait(30) in (0, 130)

            # receipts (duplicates included) have been sent or given up before the counters are read
            deadline = time.monotonic() + 30
            while (st := httpx.get(f"{sim_url}/stats").json())["receipts"]["pending"] and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            for w in workers:
                if w.poll() is None:
                    w.kill()
                    w.wait(10)
            sim.send_signal(signal.SIGTERM)
            try:
                sim.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                sim.kill()
        events = receiver.events()

    status, leased, archive, contacts = _status_counts(ws)
    store = open_store(ws)
    try:
        with store.session() as s:
            o = outbox_table.c
            got = s.execute(select(o.channel, o.idempotency_key, o.status, o.provider_id, o.last_error)).all()
    finally:
        store.dispose()
    sent = [r for r in got if r.status == "sent"]
    dead = [r for r in got if r.status == "dead"]

    # every row finished: sent or dead, none pending or leased
    assert set(status) <= {"sent", "dead"} and len(got) == N and leased == 0, status
    assert sorted(r.idempotency_key for r in got) == sorted(keys)
    # exactly once at the simulator: its delivered keys are the sent rows' keys, each delivered once
    receipted = {e["provider_id"] for e in events if e.get("event") == "delivered"}
    assert st["unique_keys"] == len(sent), [
        (r.channel, r.status, r.last_error, _fate(r.channel, r.idempotency_key))
        for r in got if r.status != "sent" and _provider_id(r.channel, r.idempotency_key) in receipted]
    assert sum(st["delivered"].values()) == st["unique_keys"] and sum(st["undelivered"].values()) == 0
    assert {ch: n for ch, n in st["delivered"].items() if n} == {
        ch: sum(1 for r in sent if r.channel == ch) for ch in channels if any(r.channel == ch for r in sent)}
    assert all(r.provider_id == _provider_id(r.channel, r.idempotency_key) for r in sent)
    assert st["invalid"] == 0 and st["unauthorized"] == 0
    # every request is a delivery, a dedup hit, an injected fault (lost responses are deliveries too) or
    # cut off: its sender was killed before the whole body arrived (nothing delivered)
    faults = st["faults"]
    assert st["requests"] == (st["unique_keys"] - faults["lost_response"] + st["duplicates"] + sum(faults.values())
                              + st["cut_off"])
    # nothing recorded twice
    assert archive == len(sent) and contacts == len(sent)
    # dead letters only where the simulator refused permanently
    assert all((r.last_error or "").startswith("400 rejected by the provider (simulated permanent failure)")
               for r in dead), {r.last_error for r in dead}
    fates = {(r.channel, r.idempotency_key): _fate(r.channel, r.idempotency_key)[0] for r in got}
    assert all(fates[(r.channel, r.idempotency_key)] == "400" for r in dead)
    refused = sum(1 for f in fates.values() if f == "400")
    # a 400 whose worker was killed before recording it is retried, and a retry may be delivered
    refused_then_sent = sum(1 for r in sent if fates[(r.channel, r.idempotency_key)] == "400")
    assert len(dead) + refused_then_sent == refused
    assert 0 < len(dead) and faults["400"] >= len(dead)
    # the duplicate receipts really came: more status receipts than delivered keys, each for a sent row
    statuses = [e for e in events if e.get("event") == "delivered"]
    assert {e["provider_id"] for e in statuses} == {r.provider_id for r in sent}
    assert len(statuses) > len(sent)

    print(f"\nsigkill tally: rounds={ROUNDS} kills={kills} (while rows pending: {killed_busy}) "
          f"workers started={started} rows={N} sent={len(sent)} dead={len(dead)} "
          f"(400 fates {refused}, of which resent and delivered after a kill {refused_then_sent}) "
          f"requests={st['requests']} retried(faulted requests)={sum(faults.values())} {faults} "
          f"duplicates suppressed={st['duplicates']} receipts={len(events)} "
          f"(status {len(statuses)}, duplicate {len(statuses) - len(sent)}) "
          f"rounds {rounds_s:.1f}s, drained at {drain_s:.1f}s")
