"""The provider simulator's receipts and replies, received by a second small server on loopback.

Every receipt's ``X-Panhuo-Signature`` is checked with the contract's HMAC computed here by hand.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from panhuo.delivery.sim import SimServer, sign, verify_signature

AUTH = {"Authorization": "Bearer sim-token"}
SECRET = "whsec-test-1"


class Receiver:
    """A webhook endpoint on loopback recording (arrival time, signature header, raw body)."""

    def __init__(self, status: int = 200) -> None:
        self.got: list[tuple[float, str | None, bytes]] = []
        self.status = status
        self.lock = threading.Lock()

        async def hook(request: Request) -> JSONResponse:
            raw = await request.body()
            with self.lock:
                self.got.append((time.monotonic(), request.headers.get("x-panhuo-signature"), raw))
            return JSONResponse({"ok": self.status < 400}, status_code=self.status)

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the receiver did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()

    def events(self) -> list[dict]:
        with self.lock:
            return [json.loads(raw) for _, _, raw in self.got]


def expected_signature(secret: str, t: str, raw: bytes) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def sms(key: str, phone: str = "13000000001") -> dict:
    return {"message_id": f"m-{key}", "idempotency_key": key, "phone": phone, "text": "您好，回T退订"}


def push(key: str) -> dict:
    return {"message_id": f"m-{key}", "idempotency_key": key, "customer_id": "C1", "title": "t", "body": "b"}


def wechat(key: str) -> dict:
    return {"message_id": f"m-{key}", "idempotency_key": key, "openid": "o1", "template_id": "tp",
            "data": {"k": "v"}}


def test_signed_receipts_arrive_for_every_channel_and_verify(receiver):
    with SimServer(callback_url=receiver.url, secret=SECRET) as sim, httpx.Client(headers=AUTH) as c:
        ids = {}
        for ch, path, body in (("sms", "/sms/send", sms("a")), ("app_push", "/push/send", push("b")),
                               ("wechat", "/wechat/send", wechat("c"))):
            ids[ch] = (c.post(sim.url + path, json=body).json()["provider_id"], body["message_id"])
        c.post(sim.url + "/sms/send", json=sms("a"))  # a duplicate request sends no second receipt
        assert sim.drain(10)
        assert sim.stats()["receipts"]["sent"] == 3
    assert len(receiver.got) == 3
    for _, header, raw in receiver.got:
        parts = dict(p.split("=", 1) for p in header.split(","))
        assert abs(int(parts["t"]) - time.time()) < 60
        assert hmac.compare_digest(parts["v1"], expected_signature(SECRET, parts["t"], raw))
        assert verify_signature(SECRET, raw, header)
        assert not verify_signature("another-secret", raw, header)
        assert not verify_signature(SECRET, raw + b" ", header)
    got = {e["channel"]: e for e in receiver.events()}
    assert set(got) == {"sms", "app_push", "wechat"}
    for ch, e in got.items():
        assert set(e) == {"provider_id", "message_id", "channel", "event", "at"}
        assert e["event"] == "delivered" and (e["provider_id"], e["message_id"]) == ids[ch]
        at = dt.datetime.fromisoformat(e["at"])
        assert at.utcoffset() == dt.timedelta(hours=8)


def test_sign_and_verify_agree_and_reject_stale_signatures():
    body = b'{"a":1}'
    header = sign(SECRET, body, t=1_700_000_000)
    assert header == f"t=1700000000,v1={expected_signature(SECRET, '1700000000', body)}"
    assert verify_signature(SECRET, body, header, now=1_700_000_100)
    assert not verify_signature(SECRET, body, header, now=1_700_001_000)
    assert not verify_signature(SECRET, body, None) and not verify_signature(SECRET, body, "garbage")


def test_duplicate_receipts_are_sent_twice(receiver):
    with SimServer(callback_url=receiver.url, secret=SECRET, duplicate_receipts=1.0) as sim:
        for i in range(3):
            assert httpx.post(f"{sim.url}/push/send", json=push(f"d{i}"), headers=AUTH).status_code == 200
        assert sim.drain(10)
        assert sim.stats()["delivered"]["app_push"] == 3  # counted once each
    events = receiver.events()
    assert len(events) == 6
    for i in range(3):
        assert sum(e["message_id"] == f"m-d{i}" and e["event"] == "delivered" for e in events) == 2


def test_duplicate_receipt_share_is_roughly_honoured(receiver):
    with SimServer(callback_url=receiver.url, secret=SECRET, duplicate_receipts=0.3, seed=2) as sim, \
            httpx.Client(headers=AUTH) as c:
        for i in range(200):
            c.post(f"{sim.url}/wechat/send", json=wechat(f"s{i}"))
        assert sim.drain(20)
    assert 200 + 35 <= len(receiver.got) <= 200 + 85


def test_late_receipts_come_after_the_delay_with_the_delivery_time(receiver):
    with SimServer(callback_url=receiver.url, secret=SECRET, late_receipts=1.0, late_delay_ms=600) as sim:
        sent = time.monotonic()
        before = dt.datetime.now(dt.timezone.utc)
        assert httpx.post(f"{sim.url}/sms/send", json=sms("late"), headers=AUTH).status_code == 200
        time.sleep(0.25)
        assert receiver.got == [] and sim.stats()["receipts"]["pending"] == 1
        assert sim.drain(10)
    (arrived, _, raw), = receiver.got
    assert arrived - sent >= 0.6
    at = dt.datetime.fromisoformat(json.loads(raw)["at"])
    assert abs((at - before).total_seconds()) < 0.5  # "at" is when it was delivered, not when it arrived


def test_replies_with_T_follow_delivered_sms(receiver):
    with SimServer(callback_url=receiver.url, secret=SECRET, reply_rate=1.0) as sim:
        httpx.post(f"{sim.url}/sms/send", json=sms("r", phone="13900000007"), headers=AUTH)
        httpx.post(f"{sim.url}/push/send", json=push("p"), headers=AUTH)  # push never replies
        assert sim.drain(10)
        assert sim.stats()["receipts"]["replies"] == 1
    replies = [e for e in receiver.events() if e["event"] == "reply"]
    assert len(replies) == 1
    reply = replies[0]
    assert set(reply) == {"event", "channel", "phone", "text", "at"}
    assert reply["channel"] == "sms" and reply["phone"] == "13900000007" and reply["text"] == "T"
    events = [e["event"] for e in receiver.events() if e["channel"] == "sms"]
    assert events == ["delivered", "reply"]  # a message's events are sent in order


def test_reply_share_and_text_are_configurable(receiver):
    with SimServer(callback_url=receiver.url, secret=SECRET, seed=9) as sim, httpx.Client(headers=AUTH) as c:
        c.post(f"{sim.url}/config", json={"reply_rate": 0.25, "reply_text": "TD"})
        for i in range(200):
            c.post(f"{sim.url}/sms/send", json=sms(f"q{i}"))
        assert sim.drain(20)
    replies = [e for e in receiver.events() if e["event"] == "reply"]
    assert 30 <= len(replies) <= 70 and {e["text"] for e in replies} == {"TD"}


def test_failed_receipts_are_not_counted_as_delivered(receiver):
    with SimServer(callback_url=receiver.url, secret=SECRET, failed_receipt_rate=1.0, reply_rate=1.0) as sim:
        r = httpx.post(f"{sim.url}/sms/send", json=sms("f"), headers=AUTH)
        assert r.status_code == 200
        assert sim.drain(10)
        st = sim.stats()
    assert st["delivered"]["sms"] == 0 and st["undelivered"]["sms"] == 1
    assert [e["event"] for e in receiver.events()] == ["failed"]  # no reply to an undelivered SMS


def test_opened_and_clicked_follow_delivered_for_push(receiver):
    with SimServer(callback_url=receiver.url, secret=SECRET, open_rate=1.0, click_rate=1.0) as sim:
        httpx.post(f"{sim.url}/push/send", json=push("o"), headers=AUTH)
        assert sim.drain(10)
    assert [e["event"] for e in receiver.events()] == ["delivered", "opened", "clicked"]


def test_a_faulted_request_sends_no_receipt(receiver):
    with SimServer(callback_url=receiver.url, secret=SECRET, error_rate=1.0) as sim:
        assert httpx.post(f"{sim.url}/sms/send", json=sms("x"), headers=AUTH).status_code in (500, 503)
        assert sim.drain(10)
    assert receiver.got == []


def test_a_lost_response_still_sends_its_receipt(receiver):
    with SimServer(callback_url=receiver.url, secret=SECRET, lost_response_rate=1.0) as sim:
        assert httpx.post(f"{sim.url}/sms/send", json=sms("x"), headers=AUTH).status_code == 503
        assert sim.drain(10)
    assert [e["event"] for e in receiver.events()] == ["delivered"]


def test_a_failing_callback_is_retried_then_given_up():
    with Receiver(status=500) as bad:
        with SimServer(callback_url=bad.url, secret=SECRET) as sim:
            httpx.post(f"{sim.url}/sms/send", json=sms("x"), headers=AUTH)
            assert sim.drain(10)
            assert sim.stats()["receipts"]["failed"] == 1
        assert len(bad.got) == 4  # the first try and three retries


def test_a_4xx_from_the_callback_is_not_retried():
    with Receiver(status=401) as bad:
        with SimServer(callback_url=bad.url, secret=SECRET) as sim:
            httpx.post(f"{sim.url}/sms/send", json=sms("x"), headers=AUTH)
            assert sim.drain(10)
            assert sim.stats()["receipts"]["rejected"] == 1
        assert len(bad.got) == 1


def test_the_callback_can_be_set_while_running(receiver):
    with SimServer(secret=SECRET) as sim:
        httpx.post(f"{sim.url}/sms/send", json=sms("before"), headers=AUTH)  # no callback yet: no receipt
        r = httpx.post(f"{sim.url}/config", json={"callback_url": receiver.url})
        assert r.status_code == 200 and r.json()["callback_url"] == receiver.url
        httpx.post(f"{sim.url}/sms/send", json=sms("after"), headers=AUTH)
        assert sim.drain(10)
    assert [e["message_id"] for e in receiver.events()] == ["m-after"]
