"""An opt-out arriving mid-run stops later sends to that customer on that channel (issue 6, item 6).

SQLite and PostgreSQL. The worker delivers to the provider simulator (:class:`SimServer`) in small
batches; after the first batches a signed SMS reply of ``T`` reaches the callback endpoint
(:class:`CallbackServer`), then the worker continues: the customer's later SMS are ``suppressed``
(``opted_out:sms``), never at the simulator, archived or contact-logged; their app push and every
other customer's messages are sent. And an opt-out arriving while its batch is in flight (claimed and
checked already) stops the customer's messages of that batch not yet sent (the worker's in-memory
opt-out set, refreshed every 0.2 s, is checked before every send attempt).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from sqlalchemy import func, select

from panhuo.delivery.callbacks import CallbackServer
from panhuo.delivery.channels import sign
from panhuo.delivery.models import MessageArchive, outbox
from panhuo.delivery.sim import SimServer
from panhuo.delivery.worker import DeliveryWorker
from panhuo.runs.models import ContactLog
from tests.delivery.conftest import ENV, TOKEN, deliver_ws, store_rows, seed_outbox, write_customers

__all__: list[str] = []

SECRET = "optout-secret"



def test_an_sms_opt_out_mid_run_stops_the_customers_later_sms(tmp_path: Path, store_url: str) -> None:
    ws = deliver_ws(tmp_path / "ws", store_url, "http://127.0.0.1:9", batch=2)
    write_customers(ws, [{"customer_id": c, "phone": f"1380000000{i}", "advisor_id": "a"}
                         for i, c in enumerate(("c0", "c1", "c2"))])
    # c1 gets an SMS in the first batch, then three more (separate runs) and an app push later on
    first = seed_outbox(ws, [("c1", "sms"), ("c0", "sms")], run_key="r1")
    later = [(c, "sms") for c in ("c1", "c2", "c0")]
    for k in range(2, 5):
        seed_outbox(ws, later, run_key=f"r{k}")
    seed_outbox(ws, [("c1", "app_push")], run_key="r5")
    total = 2 + 3 * 3 + 1

    with CallbackServer(ws, SECRET) as cb, SimServer(token=TOKEN) as sim:
        ws = deliver_ws(tmp_path / "ws", store_url, sim.url, batch=2)
        one = DeliveryWorker(ws, env=ENV, worker_id="w1").run(max_batches=1)
        assert one.sent == 2 and one.suppressed == 0
        assert sim.stats()["delivered"] == {"sms": 2, "app_push": 0, "wechat": 0}

        # c1 replies T to the SMS it got: the callback endpoint records the opt-out
        raw = json.dumps({"event": "reply", "channel": "sms", "phone": "13800000001", "text": "T",
                          "at": "2026-11-25T10:00:00+08:00"}).encode()
        r = httpx.post(cb.url, content=raw, timeout=10,
                       headers={"Content-Type": "application/json", "X-Panhuo-Signature": sign(SECRET, raw)})
        assert r.status_code == 200, r.text

        rest = DeliveryWorker(ws, env=ENV, worker_id="w1").run()
        stats = sim.stats()

    assert rest.suppressed == 3 and rest.of("sms").suppressed == 3
    assert rest.sent == total - 2 - 3  # c0's and c2's SMS and c1's app push
    assert stats["delivered"] == {"sms": 2 + 6, "app_push": 1, "wechat": 0}
    assert stats["requests"] == 2 + 6 + 1  # nothing of c1's later SMS reached the provider

    by_status = {(cid, ch, st, err) for cid, ch, st, err in store_rows(ws, select(
        outbox.c.customer_id, outbox.c.channel, outbox.c.status, outbox.c.last_error))}
    assert ("c1", "sms", "sent", None) in by_status  # the SMS before the reply stays sent
    c1_sms = [row for row in store_rows(ws, select(outbox.c.idempotency_key, outbox.c.status, outbox.c.last_error,
                                              outbox.c.provider_id, outbox.c.finished_at)
                                   .where(outbox.c.customer_id == "c1", outbox.c.channel == "sms"))]
    assert sorted((st, err) for _, st, err, _, _ in c1_sms) == [("sent", None)] + [("suppressed", "opted_out:sms")] * 3
    assert all(pid is None and fin is not None for k, st, _, pid, fin in c1_sms if st == "suppressed")
    assert first[0] in {k for k, st, *_ in c1_sms if st == "sent"}
    assert {(ch, st) for cid, ch, st, _ in by_status if cid == "c1" and ch == "app_push"} == {("app_push", "sent")}
    assert {st for cid, _, st, _ in by_status if cid != "c1"} == {"sent"}

    # never archived or contact-logged as sent: the frequency caps see only what went out
    archived = dict(store_rows(ws, select(MessageArchive.customer_id, func.count()).where(MessageArchive.channel == "sms")
                          .group_by(MessageArchive.customer_id)))
    assert archived == {"c0": 4, "c1": 1, "c2": 3}
    contacts = dict(store_rows(ws, select(ContactLog.customer_id, func.count()).where(ContactLog.channel == "sms")
                          .group_by(ContactLog.customer_id)))
    assert contacts == {"c0": 4, "c1": 1, "c2": 3}
    assert store_rows(ws, select(func.count()).select_from(outbox).where(outbox.c.status == "pending"))[0][0] == 0


def test_an_opt_out_arriving_while_its_batch_is_in_flight_stops_the_rest_of_that_batch(
        tmp_path: Path, store_url: str) -> None:
    """One batch of 12 SMS sent one at a time (provider concurrency 1, every answer held 0.15 s); c1's
    first SMS goes out, c1 replies T, and c1's two later SMS of the same batch (already claimed and
    checked against opt-outs when the batch was claimed) are suppressed: never at the provider."""
    import threading
    import time

    from panhuo.config import DeliveryProvider
    from tests.delivery._fake_provider import FakeProvider

    customers = [f"c{i}" for i in range(4)]
    with FakeProvider(token=TOKEN, delay=0.15) as fake, CallbackServer(ws := deliver_ws(
            tmp_path / "ws", store_url, "http://127.0.0.1:9"), SECRET) as cb:
        provider = DeliveryProvider(base_url=fake.url, token_env="PANHUO_SIM_TOKEN", timeout=5.0, rate_per_second=1000,
                                    concurrency=1, max_attempts=3)
        ws = deliver_ws(tmp_path / "ws", store_url, fake.url, batch=20, providers={"sim": provider})
        write_customers(ws, [{"customer_id": c, "phone": f"1390000000{i}", "advisor_id": "a"}
                             for i, c in enumerate(customers)])
        keys: list[str] = []
        for k in range(3):  # three runs: c0 c1 c2 c3 each, so c1's SMS are the 2nd, 6th and 10th of the batch
            keys += seed_outbox(ws, [(c, "sms") for c in customers], run_key=f"r{k}")
        c1_keys = [keys[1], keys[5], keys[9]]
        worker = DeliveryWorker(ws, env=ENV, worker_id="w1")
        out: dict = {}
        thread = threading.Thread(target=lambda: out.update(summary=worker.run()))
        thread.start()
        deadline = time.monotonic() + 30
        while not fake.times(c1_keys[0]):  # c1's first SMS has reached the provider
            assert time.monotonic() < deadline and thread.is_alive(), "c1's first SMS never came"
            time.sleep(0.01)
        raw = json.dumps({"event": "reply", "channel": "sms", "phone": "13900000001", "text": "T",
                          "at": "2026-11-25T10:00:00+08:00"}).encode()
        r = httpx.post(cb.url, content=raw, timeout=10,
                       headers={"Content-Type": "application/json", "X-Panhuo-Signature": sign(SECRET, raw)})
        assert r.status_code == 200, r.text
        thread.join(60)
        assert not thread.is_alive()
    summary = out["summary"]
    assert summary.batches == 1  # the opt-out came after the batch's claim-time check
    assert summary.suppressed == 2 and summary.sent == 10
    assert len(fake.times(c1_keys[0])) == 1 and not fake.times(c1_keys[1]) and not fake.times(c1_keys[2])
    assert fake.stats()["delivered"] == {"sms": 10}
    rows = {k: (st, err) for k, st, err in store_rows(ws, select(outbox.c.idempotency_key, outbox.c.status,
                                                                 outbox.c.last_error))}
    assert rows[c1_keys[0]] == ("sent", None)
    assert rows[c1_keys[1]] == rows[c1_keys[2]] == ("suppressed", "opted_out:sms")
    assert {st for k, (st, _) in rows.items() if k not in c1_keys} == {"sent"}
    archived = dict(store_rows(ws, select(MessageArchive.customer_id, func.count()).group_by(MessageArchive.customer_id)))
    assert archived == {"c0": 3, "c1": 1, "c2": 3, "c3": 3}
    contacts = dict(store_rows(ws, select(ContactLog.customer_id, func.count()).group_by(ContactLog.customer_id)))
    assert contacts == archived
