"""The callback endpoint over real loopback HTTP, on SQLite and PostgreSQL: signatures, limits, receipts, replies.

Each test seeds outbox rows (tests/delivery/conftest.py), gives some a provider id as the worker
would, starts :class:`panhuo.delivery.callbacks.CallbackServer` on an OS-picked port and POSTs
signed (or badly signed) bodies with httpx; then reads the store.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select, update

from panhuo.config import Workspace
from panhuo.delivery.callbacks import CallbackServer
from panhuo.delivery.channels import sign
from panhuo.delivery.events import DeliveryEvent, OptOut, optout_flags
from panhuo.delivery.models import outbox
from panhuo.store import open_store
from tests.delivery.conftest import deliver_ws, seed_outbox, write_customers

__all__: list[str] = []

SECRET = "cb-secret"


@pytest.fixture
def cws(tmp_path, store_url: str) -> Workspace:
    ws = deliver_ws(tmp_path / "ws", store_url, "http://127.0.0.1:9")
    write_customers(ws, [{"customer_id": "c1", "phone": "+86 138-0000-0001", "advisor_id": "a"},
                         {"customer_id": "c2", "phone": "13800000002", "advisor_id": "a"},
                         {"customer_id": "c3", "phone": "13800000003", "advisor_id": "a"}])
    seed_outbox(ws, [("c1", "sms"), ("c2", "app_push"), ("c3", "sms")])
    store = open_store(ws)
    try:
        with store.session() as s:  # as the worker leaves them: sent, with the provider's id
            for cid, pid in (("c1", "SMS-1"), ("c2", "PUSH-2")):
                s.execute(update(outbox).where(outbox.c.customer_id == cid).values(status="sent", provider_id=pid))
    finally:
        store.dispose()
    return ws


@pytest.fixture
def server(cws: Workspace) -> Iterator[CallbackServer]:
    with CallbackServer(cws, SECRET, max_body=4096) as srv:
        yield srv


def _post(url: str, body: dict | bytes, *, secret: str = SECRET, t: int | None = None,
          header: str | None = "sign") -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json"}
    if header == "sign":
        headers["X-Panhuo-Signature"] = sign(secret, raw, t)
    elif header is not None:
        headers["X-Panhuo-Signature"] = header
    return httpx.post(url, content=raw, headers=headers, timeout=10)


def _state(ws: Workspace) -> dict:
    store = open_store(ws)
    try:
        with store.session() as s:
            rows = {r.customer_id: (r.receipt_status, r.receipt_at) for r in s.execute(select(outbox))}
            events = s.execute(select(DeliveryEvent.ref, DeliveryEvent.event).order_by(DeliveryEvent.id)).all()
            opts = s.execute(select(OptOut.customer_id, OptOut.channel, OptOut.source, OptOut.text)).all()
            return {"outbox": rows, "events": [tuple(e) for e in events], "optouts": sorted(tuple(o) for o in opts)}
    finally:
        store.dispose()


def _receipt(pid: str, event: str = "delivered", mid: str | None = None, at: str = "2026-11-25T10:00:00.000+08:00"):
    return {"provider_id": pid, "message_id": mid, "channel": "sms", "event": event, "at": at}


def test_a_signed_receipt_is_recorded_and_a_duplicate_changes_nothing(cws, server) -> None:
    r = _post(server.url, _receipt("SMS-1"))
    assert r.status_code == 200 and r.json() == {"ok": True, "duplicate": False, "receipt_status": "delivered"}
    first = _state(cws)
    assert first["outbox"]["c1"][0] == "delivered" and first["outbox"]["c1"][1].isoformat().endswith("+08:00")
    assert first["events"] == [("SMS-1", "delivered")]
    again = _post(server.url, _receipt("SMS-1", at="2026-11-25T10:05:00.000+08:00"))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert _state(cws) == first  # one event row, the same state and time


def test_a_late_delivered_after_opened_keeps_the_state(cws, server) -> None:
    assert _post(server.url, _receipt("PUSH-2", "opened", at="2026-11-25T10:01:00+08:00")).json()["receipt_status"] \
        == "delivered"
    before = _state(cws)["outbox"]["c2"]
    r = _post(server.url, _receipt("PUSH-2", "delivered", at="2026-11-25T10:00:00+08:00"))
    assert r.status_code == 200 and r.json()["receipt_status"] == "delivered"
    assert _post(server.url, _receipt("PUSH-2", "failed")).json()["receipt_status"] == "delivered"
    assert _post(server.url, _receipt("PUSH-2", "clicked")).status_code == 200
    st = _state(cws)
    assert st["outbox"]["c2"] == before  # the time of the open, not of the late receipt
    assert st["events"] == [("PUSH-2", e) for e in ("opened", "delivered", "failed", "clicked")]


def test_a_failed_receipt_and_a_receipt_before_the_provider_id_is_stored(cws, server) -> None:
    assert _post(server.url, _receipt("SMS-1", "failed")).json()["receipt_status"] == "failed"
    store = open_store(cws)
    try:
        with store.session() as s:
            c3 = s.execute(select(outbox.c.id).where(outbox.c.customer_id == "c3")).scalar_one()
    finally:
        store.dispose()
    # the provider answers the worker after its receipt: the message id (the outbox id) finds the row
    r = _post(server.url, _receipt("SMS-3", "delivered", mid=str(c3)))
    assert r.status_code == 200 and _state(cws)["outbox"]["c3"][0] == "delivered"
    # a provider id that contradicts the row's is refused
    assert _post(server.url, _receipt("SMS-other", "opened", mid=str(c3))).status_code == 200  # no id stored yet
    st = _state(cws)
    assert _post(server.url, _receipt("SMS-zzz", "delivered", mid=str(_first_id(cws, "c1")))).status_code == 404
    assert _state(cws) == st


def _first_id(ws: Workspace, cid: str) -> int:
    store = open_store(ws)
    try:
        with store.session() as s:
            return s.execute(select(outbox.c.id).where(outbox.c.customer_id == cid)).scalar_one()
    finally:
        store.dispose()


@pytest.mark.parametrize("case", ["bad", "stale", "future", "missing", "malformed", "other-body"])
def test_bad_stale_or_missing_signatures_are_refused_and_change_nothing(cws, server, case, caplog) -> None:
    before = _state(cws)
    body = json.dumps(_receipt("SMS-1")).encode()
    with caplog.at_level(logging.WARNING, logger="panhuo.delivery.callbacks"):
        if case == "bad":
            r = _post(server.url, body, secret="wrong")
        elif case == "stale":
            r = _post(server.url, body, t=int(time.time()) - 301)
        elif case == "future":
            r = _post(server.url, body, t=int(time.time()) + 400)
        elif case == "missing":
            r = _post(server.url, body, header=None)
        elif case == "malformed":
            r = _post(server.url, body, header="v1=abc")
        else:
            r = _post(server.url, body, header=sign(SECRET, body + b" "))
        assert r.status_code == 401 and "signature" in r.json()["error"]
    assert _state(cws) == before
    assert any("refused 401" in m for m in caplog.messages)


def test_oversized_malformed_and_unknown_are_refused(cws, server) -> None:
    before = _state(cws)
    big = {**_receipt("SMS-1"), "pad": "x" * 5000}
    assert _post(server.url, big).status_code == 413
    # no Content-Length: the body is counted while it is read
    raw = json.dumps(big).encode()
    r = httpx.post(server.url, content=iter([raw[:2000], raw[2000:]]),
                   headers={"X-Panhuo-Signature": sign(SECRET, raw)}, timeout=10)
    assert r.status_code == 413
    assert _post(server.url, b"{not json").status_code == 400
    assert _post(server.url, b"[1, 2]").status_code == 400
    assert _post(server.url, {**_receipt("SMS-1"), "event": "exploded"}).status_code == 400
    assert _post(server.url, {"event": "delivered", "channel": "sms"}).status_code == 400
    r = _post(server.url, _receipt("SMS-nobody"))
    assert r.status_code == 404 and "unknown message" in r.json()["error"]
    assert _post(server.url, _receipt("SMS-nobody", mid="999999")).status_code == 404
    assert _state(cws) == before


@pytest.mark.parametrize("text", ["T", " td ", "退订", "Td\n"])
def test_a_stop_reply_records_the_sms_opt_out_within_the_request(cws, server, text) -> None:
    reply = {"event": "reply", "channel": "sms", "phone": "13800000001", "text": text, "at": "2026-11-25T10:02:00+08:00"}
    r = _post(server.url, reply)
    assert r.status_code == 200 and r.json()["opted_out"] == ["c1"]
    assert _state(cws)["optouts"] == [("c1", "sms", "sms_reply", text)]
    st = _state(cws)
    assert _post(server.url, reply).json()["duplicate"] is True and _state(cws) == st
    store = open_store(cws)
    try:
        with store.session() as s:
            flags = optout_flags(s).to_pylist()
            raw = s.execute(select(DeliveryEvent.raw).where(DeliveryEvent.event == "reply")).scalar_one()
    finally:
        store.dispose()
    assert flags == [{"customer_id": "c1", "_optout_app_push": False, "_optout_sms": True,
                      "_optout_wechat": False, "_optout_call": False}]
    assert "13800000001" not in raw and "138****0001" in raw  # the phone is kept masked


def test_other_replies_and_unknown_phones(cws, server) -> None:
    r = _post(server.url, {"event": "reply", "channel": "sms", "phone": "13800000002", "text": "好的，谢谢", "at": "x"})
    assert r.status_code == 200 and "opted_out" not in r.json()
    before = _state(cws)
    assert before["optouts"] == [] and [e for _, e in before["events"]] == ["reply"]
    r = _post(server.url, {"event": "reply", "channel": "sms", "phone": "13999999999", "text": "T", "at": "x"})
    assert r.status_code == 404 and "139****9999" in r.json()["error"]
    assert _state(cws) == before


def test_the_store_counts_one_event_under_concurrent_duplicates(cws, server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: _post(server.url, _receipt("SMS-1")).status_code, range(16)))
    assert codes == [200] * 16
    store = open_store(cws)
    try:
        with store.session() as s:
            assert s.execute(select(func.count()).select_from(DeliveryEvent)).scalar_one() == 1
    finally:
        store.dispose()
