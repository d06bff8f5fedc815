"""``panhuo serve`` takes the providers' webhooks too: with ``PANHUO_CALLBACK_SECRET`` set, signed receipts on
``POST /callbacks/receipts`` are recorded once (a duplicate changes nothing), bad signatures are refused and write
nothing, and the routes stay out of the OpenAPI document; without the secret they do not exist.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from panhuo.config import Workspace
from panhuo.delivery.channels import sign
from panhuo.delivery.events import DeliveryEvent
from panhuo.runs.models import OutboxMessage
from panhuo.service.app import ENV_CALLBACK_SECRET, create_app
from panhuo.store import open_store

__all__: list[str] = []

SECRET = "hook-secret"


def _events(ws: Workspace) -> list[tuple[str, str]]:
    store = open_store(ws)
    try:
        with store.session() as s:
            return [tuple(r) for r in s.execute(select(DeliveryEvent.ref, DeliveryEvent.event).order_by(DeliveryEvent.id))]
    finally:
        store.dispose()


def _sms_id(ws: Workspace) -> int:
    store = open_store(ws)
    try:
        with store.session() as s:
            return s.scalar(select(func.min(OutboxMessage.id)).where(OutboxMessage.channel == "sms",
                                                                      OutboxMessage.status == "sent"))
    finally:
        store.dispose()


def test_signed_receipts_are_taken_once_by_the_service(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_CALLBACK_SECRET, SECRET)
    mid = _sms_id(ws)
    before = _events(ws)
    raw = json.dumps({"provider_id": None, "message_id": str(mid), "channel": "sms", "event": "opened",
                      "at": "2026-11-23T11:00:00+08:00"}).encode()
    with TestClient(create_app(ws), base_url="https://testserver") as c:
        assert c.post("/callbacks/receipts", content=raw, headers={"X-Panhuo-Signature": sign("wrong", raw)}
                      ).status_code == 401
        assert _events(ws) == before  # a refusal writes nothing
        ok = c.post("/callbacks/receipts", content=raw, headers={"X-Panhuo-Signature": sign(SECRET, raw)})
        assert ok.status_code == 200 and ok.json()["duplicate"] is False
        again = c.post("/callbacks/receipts", content=raw, headers={"X-Panhuo-Signature": sign(SECRET, raw)})
        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert "/callbacks/receipts" not in c.get("/api/v1/openapi.json").json()["paths"]
    assert _events(ws) == [*before, (f"msg:{mid}", "opened")]


def test_without_a_secret_there_is_no_webhook_route(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_CALLBACK_SECRET, raising=False)
    with TestClient(create_app(ws), base_url="https://testserver") as c:
        assert c.post("/callbacks/receipts", content=b"{}").status_code in (404, 405)
