"""Several workers at once and a worker killed mid-batch: each message reaches the provider exactly once.

PostgreSQL: two workers in threads claim with FOR UPDATE SKIP LOCKED; the provider counts as many
unique keys as outbox rows and no duplicate send. Killed worker (SQLite and PostgreSQL): a real
``panhuo deliver`` subprocess is SIGKILLed while its batch is in flight; once its lease has passed
the next worker takes its rows and the provider has each key delivered once (a resend of a key the
killed worker had already sent is answered as a duplicate, never delivered twice).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from sqlalchemy import func, select

from panhuo.config import Workspace
from panhuo.delivery.models import MessageArchive
from panhuo.delivery.worker import DeliverySummary, DeliveryWorker
from panhuo.runs.models import ContactLog, OutboxMessage
from panhuo.store import open_store
from tests.conftest import PANHUO
from tests.delivery._fake_provider import FakeProvider
from tests.delivery.conftest import ENV, TOKEN, deliver_ws, seed_outbox, store_rows

__all__: list[str] = []


def _store_counts(ws: Workspace) -> tuple[dict[str, int], int, int]:
    store = open_store(ws)
    try:
        with store.session() as s:
            status = dict(s.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all())
            archive = int(s.execute(select(func.count()).select_from(MessageArchive)).scalar_one())
            contacts = int(s.execute(select(func.count()).select_from(ContactLog)).scalar_one())
            return status, archive, contacts
    finally:
        store.dispose()


def test_two_workers_side_by_side_deliver_each_message_once(tmp_path: Path, pg_url: str,
                                                            provider: FakeProvider) -> None:
    ws = deliver_ws(tmp_path / "ws", pg_url, provider.url)
    n = 600
    keys = seed_outbox(ws, [(f"c{i:05d}", ("app_push", "wechat")[i % 2]) for i in range(n)])
    provider.delay = 0.005
    results: dict[str, DeliverySummary] = {}

    def work(name: str) -> None:
        results[name] = DeliveryWorker(ws, env=ENV, worker_id=name, batch=40).run()

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert set(results) == {"w0", "w1"}
    assert results["w0"].sent + results["w1"].sent == n
    assert results["w0"].sent > 0 and results["w1"].sent > 0  # both really worked
    st = provider.stats()
    assert st["unique_keys"] == n and st["duplicates"] == 0 and st["requests"] == n
    assert set(provider.provider_ids) == set(keys)
    assert _store_counts(ws) == ({"sent": n}, n, n)


def test_killed_worker_rows_are_reclaimed_after_the_lease(dws: Workspace, provider: FakeProvider) -> None:
    n = 120
    keys = seed_outbox(dws, [(f"c{i:05d}", "app_push") for i in range(n)])
    ws = dws.save(dws.settings.model_copy(update={"delivery": dws.settings.delivery.model_copy(
        update={"lease_seconds": 2})}))
    provider.delay = 0.4  # the batch is in flight for a while
    env = {**os.environ, **ENV, "PANHUO_HOME": str(ws.root)}
    proc = subprocess.Popen([PANHUO, "deliver", "--once", "--workers-id", "doomed", "--batch", "60"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while provider.stats()["unique_keys"] < 10:  # mid-batch: some sent, none recorded yet
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    sent_before = set(provider.provider_ids)
    assert 0 < len(sent_before) < n
    status, _, _ = _store_counts(ws)
    assert status == {"pending": n}  # the killed worker recorded nothing
    provider.delay = 0.0
    time.sleep(2.2)  # the killed worker's lease passes
    summary = DeliveryWorker(ws, env={"PANHUO_SIM_TOKEN": TOKEN}, worker_id="next").run()
    assert summary.sent == n
    assert set(provider.provider_ids) == set(keys)
    assert all(v == 1 for v in provider.delivered_keys.values()) and len(provider.delivered_keys) == n
    assert provider.stats()["delivered"] == {"app_push": n}
    assert provider.duplicates >= len(sent_before)  # resent, answered as duplicates, delivered once
    assert _store_counts(ws) == ({"sent": n}, n, n)


def test_sqlite_lease_row_admits_one_worker(sqlite_dws: Workspace, provider: FakeProvider) -> None:
    from panhuo.errors import DeliveryError

    seed_outbox(sqlite_dws, [("c1", "app_push")])
    first = DeliveryWorker(sqlite_dws, env=ENV, worker_id="one")
    assert first._sqlite_lease(wait=False)
    second = DeliveryWorker(sqlite_dws, env=ENV, worker_id="two")
    try:
        second.run()
        raise AssertionError("the second worker ran")
    except DeliveryError as exc:
        assert "(one) holds the SQLite store's lease" in str(exc)
    first._release_sqlite_lease()
    assert second.run().sent == 1


def test_deliver_workers_n_runs_processes_side_by_side_on_postgresql(tmp_path: Path, pg_url: str,
                                                                   provider: FakeProvider) -> None:
    """``panhuo deliver --once --workers 3``: three processes drain the outbox; each message reaches the
    provider once; one summary table for all; on SQLite the option is refused before anything is sent."""
    ws = deliver_ws(tmp_path / "ws", pg_url, provider.url, batch=20)
    channels = ("app_push", "wechat")
    seed_outbox(ws, [(f"c{i:03d}", channels[i % 2]) for i in range(300)])
    env = {**os.environ, **ENV, "PANHUO_HOME": str(ws.root), "COLUMNS": "200"}
    out = subprocess.run([PANHUO, "deliver", "--once", "--workers", "3", "--workers-id", "wk"], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Delivery by 3 workers (wk/1 .. wk/3)" in out.stdout, out.stdout
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in out.stdout.splitlines()
            if line.count("│") >= 3 and line.split("│")[1].strip() in channels}
    assert rows == {"app_push": "150", "wechat": "150"}, out.stdout
    st = provider.stats()
    assert st["unique_keys"] == 300 and st["duplicates"] == 0 and sum(st["delivered"].values()) == 300
    status, archive, contacts = _store_counts(ws)
    assert status == {"sent": 300} and archive == contacts == 300
    claimed = store_rows(ws, select(MessageArchive.outbox_id))  # one archive row per message
    assert len({r[0] for r in claimed}) == 300

    sq = deliver_ws(tmp_path / "sq", f"sqlite:///{tmp_path / 'sq' / 'panhuo.db'}", provider.url)
    seed_outbox(sq, [("c1", "app_push")])
    out = subprocess.run([PANHUO, "deliver", "--once", "--workers", "2"], capture_output=True, text=True,
                         env={**env, "PANHUO_HOME": str(sq.root)}, timeout=120, check=False)
    assert out.returncode != 0 and "needs a PostgreSQL store" in out.stdout + out.stderr
    assert provider.stats()["unique_keys"] == 300
