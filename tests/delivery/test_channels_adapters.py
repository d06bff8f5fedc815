"""Channel adapters: response classification, signatures, the signed webhook, delivery settings errors."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from panhuo.config import DeliveryProvider, Settings, Workspace, load_settings
from panhuo.delivery.channels import classify, openid_for, parse_signature, sign
from panhuo.delivery.worker import DeliveryWorker, check_credentials
from panhuo.errors import ConfigError, DeliveryError
from tests.delivery._fake_provider import FakeProvider
from tests.delivery.conftest import ENV, deliver_ws, seed_outbox

__all__: list[str] = []


def _resp(code: int, body: bytes | None = None, headers: dict | None = None, json: object = None) -> httpx.Response:
    req = httpx.Request("POST", "http://p/sms/send")
    if json is not None:
        return httpx.Response(code, json=json, headers=headers, request=req)
    return httpx.Response(code, content=body or b"", headers=headers, request=req)


def test_classify_follows_the_contract() -> None:
    ok = classify(_resp(200, json={"provider_id": "p1", "status": "accepted", "duplicate": True}))
    assert ok.ok and ok.provider_id == "p1" and ok.duplicate
    r = classify(_resp(429, headers={"Retry-After": "7"}))
    assert r.outcome == "transient" and r.retry_after == 7.0
    assert classify(_resp(503)).outcome == "transient" and classify(_resp(500)).retry_after is None
    bad = classify(_resp(400, json={"error": "invalid phone"}))
    assert bad.outcome == "permanent" and bad.reason == "400 invalid phone"
    assert classify(_resp(200, body=b"<html>")).outcome == "transient"  # malformed: retried
    assert classify(_resp(200, json={"status": "accepted"})).outcome == "transient"


def test_signature_round_trip_and_refusals() -> None:
    body = b'{"provider_id":"x","status":"delivered"}'
    header = sign("s3cret", body)
    assert abs(parse_signature(header, "s3cret", body) - time.time()) < 5
    with pytest.raises(ValueError, match="does not match"):
        parse_signature(header, "other", body)
    with pytest.raises(ValueError, match="does not match"):
        parse_signature(header, "s3cret", body + b" ")
    with pytest.raises(ValueError, match="away from now"):
        parse_signature(sign("s3cret", body, t=int(time.time()) - 3600), "s3cret", body)
    with pytest.raises(ValueError, match="no X-Panhuo-Signature"):
        parse_signature(None, "s3cret", body)
    assert openid_for("c42") == "c42"


def test_settings_refuse_unknown_channels_and_providers(tmp_path: Path) -> None:
    f = tmp_path / "panhuo.yaml"
    f.write_text("delivery:\n  channels: {fax: sim}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown channel 'fax'"):
        load_settings(f)
    f.write_text("delivery:\n  channels: {sms: nowhere}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown provider 'nowhere'"):
        load_settings(f)
    f.write_text("delivery:\n  channels: {sms: advisor}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="serves only the call channel"):
        load_settings(f)
    f.write_text("delivery:\n  providers: {p: {base_url: 'ftp://x'}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="delivery.providers.p.base_url"):
        load_settings(f)


def test_missing_variables_are_all_named() -> None:
    d = Settings().delivery.model_copy(update={"providers": {
        "sim": DeliveryProvider(base_url="http://x", token_env="SIM_TOKEN"),
        "hook": DeliveryProvider(kind="webhook", base_url="http://y", secret_env="HOOK_SECRET")},
        "channels": {"sms": "sim", "app_push": "hook", "call": "advisor"}})
    with pytest.raises(DeliveryError) as exc:
        check_credentials(d, {})
    assert "SIM_TOKEN (delivery.providers.sim.token_env)" in str(exc.value)
    assert "HOOK_SECRET (delivery.providers.hook.secret_env)" in str(exc.value)
    assert check_credentials(d, {"SIM_TOKEN": "a", "HOOK_SECRET": "b"}) == {"hook": {"secret": "b"},
                                                                           "sim": {"token": "a"}}


def test_webhook_posts_message_segment_and_tags_signed(tmp_path: Path, provider: FakeProvider) -> None:
    ws = deliver_ws(tmp_path / "ws", f"sqlite:///{tmp_path / 'ws' / 'panhuo.db'}", provider.url)
    d = ws.settings.delivery.model_copy(update={
        "providers": {**ws.settings.delivery.providers,
                      "centre": DeliveryProvider(kind="webhook", base_url=provider.url + "/hook",
                                                 secret_env="CENTRE_SECRET", rate_per_second=1000)},
        "channels": {"app_push": "centre", "wechat": "sim", "call": "advisor"},
        "webhook_tags": ["asset_band", "not_a_tag"]})
    ws: Workspace = ws.save(ws.settings.model_copy(update={"delivery": d}))
    (ws.warehouse_dir / "tags").mkdir(parents=True)
    pq.write_table(pa.table({"customer_id": ["c1", "c2"], "asset_band": ["<1000", "1000-10000"]}),
                   ws.warehouse_dir / "tags" / "2026-01-30.parquet")
    keys = seed_outbox(ws, [("c1", "app_push"), ("c2", "wechat")])
    summary = DeliveryWorker(ws, env={**ENV, "CENTRE_SECRET": provider.secret}).run()
    assert summary.sent == 2
    hook = provider.bodies[keys[0]]
    assert hook["segment"] == "sleeping" and hook["tags"] == {"asset_band": "<1000"}
    assert hook["channel"] == "app_push" and hook["content"] == {"title": "好久不见", "body": "新股申购日，来看看吧"}
    assert provider.stats()["delivered"] == {"webhook": 1, "wechat": 1}
    # a wrong secret: the centre refuses the signature (401, permanent)
    keys2 = seed_outbox(ws, [("c2", "app_push")], run_key="r2")
    summary = DeliveryWorker(ws, env={**ENV, "CENTRE_SECRET": "wrong"}).run()
    assert summary.dead == 1 and keys2[0] not in provider.provider_ids
