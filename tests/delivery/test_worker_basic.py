"""The delivery worker against a loopback provider: every pending message once, retries, 429, dead letters.

Runs on SQLite and on PostgreSQL. Each test seeds outbox rows, runs a worker (in-process, credentials
from a passed environment) and checks the provider's view (keys delivered once, requests, timing)
and the store's (status, attempts, provider id, archive, contact log).
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from panhuo.config import Workspace
from panhuo.delivery.models import MessageArchive, outbox
from panhuo.delivery.worker import DeliveryWorker
from panhuo.errors import DeliveryError
from panhuo.runs.models import ContactLog
from panhuo.store import open_store
from panhuo.store.models import now_shanghai
from tests.delivery._fake_provider import FakeProvider
from tests.delivery.conftest import ENV, seed_outbox, write_customers

__all__: list[str] = []


def _rows(ws: Workspace) -> dict[str, dict]:
    store = open_store(ws)
    try:
        with store.session() as s:
            return {r.idempotency_key: dict(r._mapping) for r in s.execute(select(outbox))}
    finally:
        store.dispose()


def _count(ws: Workspace, model) -> int:
    store = open_store(ws)
    try:
        with store.session() as s:
            return int(s.execute(select(func.count()).select_from(model)).scalar_one())
    finally:
        store.dispose()


def test_every_pending_message_is_sent_once(dws: Workspace, provider: FakeProvider) -> None:
    people = [f"c{i:04d}" for i in range(60)]
    write_customers(dws, [{"customer_id": c, "phone": f"1380000{i:04d}", "advisor_id": "a1"} for i, c in enumerate(people)])
    channels = ("app_push", "sms", "wechat")
    keys = seed_outbox(dws, [(c, channels[i % 3]) for i, c in enumerate(people)])
    summary = DeliveryWorker(dws, env=ENV, batch=25, worker_id="w1").run()
    assert summary.sent == 60 and summary.dead == 0 and summary.batches == 3
    assert {ch: s.sent for ch, s in summary.channels.items()} == {"app_push": 20, "sms": 20, "wechat": 20}
    st = provider.stats()
    assert st["unique_keys"] == 60 and st["duplicates"] == 0 and st["requests"] == 60
    assert st["delivered"] == {"app_push": 20, "sms": 20, "wechat": 20}
    rows = _rows(dws)
    assert all(r["status"] == "sent" and r["attempts"] == 1 and r["claimed_by"] is None for r in rows.values())
    assert all(rows[k]["provider_id"] == provider.provider_ids[k] for k in keys)
    assert all(r["sent_at"] is not None and r["sent_at"].utcoffset() == dt.timedelta(hours=8) for r in rows.values())
    # the provider saw the contract's fields: the phone (sms), the customer id as openid (wechat)
    sms = provider.bodies[keys[1]]
    assert sms["phone"] == "13800000001" and sms["text"].startswith("【盘活证券】") and sms["text"].endswith("回T退订")
    assert provider.bodies[keys[2]]["openid"] == "c0002" and provider.bodies[keys[2]]["template_id"] == "tpl-1"
    assert provider.bodies[keys[0]]["title"] == "好久不见" and provider.bodies[keys[0]]["message_id"].isdigit()
    assert _count(dws, MessageArchive) == 60 and _count(dws, ContactLog) == 60
    store = open_store(dws)
    try:
        with store.session() as s:
            arch = s.scalars(select(MessageArchive).where(MessageArchive.channel == "sms")).first()
            assert arch is not None and arch.recipient == "138****0001" and "回T退订" in arch.content
            assert arch.provider_id and arch.provider == "sim"
    finally:
        store.dispose()
    # a second run finds nothing to do and sends nothing again
    again = DeliveryWorker(dws, env=ENV, worker_id="w1").run()
    assert again.done == 0 and provider.stats()["requests"] == 60


def test_transient_errors_are_retried_then_succeed(dws: Workspace, provider: FakeProvider) -> None:
    keys = seed_outbox(dws, [("c1", "app_push"), ("c2", "wechat"), ("c3", "app_push")])
    provider.script[keys[0]] = [503, 500]
    provider.script[keys[1]] = [429]
    provider.malformed[keys[2]] = 1  # a 200 whose body is not JSON: transient
    summary = DeliveryWorker(dws, env=ENV).run()
    assert summary.sent == 3 and summary.dead == 0
    assert summary.channels["app_push"].retried == 3 and summary.channels["wechat"].retried == 1
    rows = _rows(dws)
    assert [rows[k]["attempts"] for k in keys] == [3, 2, 2]
    assert all(rows[k]["status"] == "sent" for k in keys)
    assert provider.stats()["unique_keys"] == 3 and provider.stats()["duplicates"] == 0


def test_429_retry_after_is_waited_for(dws: Workspace, provider: FakeProvider) -> None:
    (key,) = seed_outbox(dws, [("c1", "app_push")])
    provider.script[key] = [(429, 1.0)]
    DeliveryWorker(dws, env=ENV).run()
    first, second = provider.times(key)
    assert second - first >= 0.95
    assert _rows(dws)[key]["status"] == "sent"


def test_long_retry_after_defers_the_message(dws: Workspace, provider: FakeProvider) -> None:
    (key,) = seed_outbox(dws, [("c1", "sms")])
    write_customers(dws, [{"customer_id": "c1", "phone": "13912345678", "advisor_id": None}])
    provider.script[key] = [(429, 3600)]
    before = now_shanghai()
    summary = DeliveryWorker(dws, env=ENV).run()
    assert summary.channels["sms"].deferred == 1 and summary.sent == 0
    row = _rows(dws)[key]
    assert row["status"] == "pending" and row["attempts"] == 1 and row["claimed_by"] is None
    assert row["send_after"] >= before + dt.timedelta(minutes=59)
    assert "429" in row["last_error"]


def test_permanent_400_is_a_dead_letter_without_retry(dws: Workspace, provider: FakeProvider) -> None:
    keys = seed_outbox(dws, [("c1", "app_push"), ("c2", "app_push")])
    provider.always[keys[0]] = (400, "invalid customer_id")
    summary = DeliveryWorker(dws, env=ENV).run()
    assert summary.dead == 1 and summary.sent == 1 and summary.channels["app_push"].retried == 0
    assert len(provider.times(keys[0])) == 1
    row = _rows(dws)[keys[0]]
    assert row["status"] == "dead" and row["attempts"] == 1 and "400 invalid customer_id" in row["last_error"]
    assert _count(dws, MessageArchive) == 1 and _count(dws, ContactLog) == 1


def test_max_attempts_makes_a_dead_letter_with_the_reason(dws: Workspace, provider: FakeProvider) -> None:
    (key,) = seed_outbox(dws, [("c1", "wechat")])
    provider.script[key] = [503] * 10
    summary = DeliveryWorker(dws, env=ENV).run()  # max_attempts 4 in the test settings
    assert summary.dead == 1 and summary.channels["wechat"].retried == 3
    assert len(provider.times(key)) == 4
    row = _rows(dws)[key]
    assert row["status"] == "dead" and row["attempts"] == 4
    assert row["last_error"] == "gave up after 4 attempts: 503 provider error"


def test_sms_without_a_phone_is_a_dead_letter(dws: Workspace, provider: FakeProvider) -> None:
    (key,) = seed_outbox(dws, [("nobody", "sms")])
    summary = DeliveryWorker(dws, env=ENV).run()
    assert summary.dead == 1 and provider.stats()["requests"] == 0
    assert _rows(dws)[key]["last_error"] == "no phone number for the customer"


def test_send_after_in_the_future_is_not_sent(dws: Workspace, provider: FakeProvider) -> None:
    later = seed_outbox(dws, [("c1", "app_push")], send_after=now_shanghai() + dt.timedelta(hours=1))
    now = seed_outbox(dws, [("c2", "app_push")], run_key="r2")
    summary = DeliveryWorker(dws, env=ENV).run()
    assert summary.sent == 1 and list(provider.provider_ids) == now
    assert _rows(dws)[later[0]]["status"] == "pending"


def test_missing_credential_fails_at_start_naming_the_variable(dws: Workspace, provider: FakeProvider) -> None:
    seed_outbox(dws, [("c1", "app_push")])
    with pytest.raises(DeliveryError, match="PANHUO_SIM_TOKEN") as exc:
        DeliveryWorker(dws, env={})
    assert "delivery.providers.sim.token_env" in str(exc.value)
    assert provider.stats()["requests"] == 0
    assert _rows(dws)[next(iter(_rows(dws)))]["claimed_by"] is None  # nothing claimed


def test_wrong_token_is_permanent(dws: Workspace, provider: FakeProvider) -> None:
    (key,) = seed_outbox(dws, [("c1", "app_push")])
    summary = DeliveryWorker(dws, env={"PANHUO_SIM_TOKEN": "wrong"}).run()
    assert summary.dead == 1 and "401" in _rows(dws)[key]["last_error"]
