"""The provider simulator over real loopback HTTP: send shapes, auth, dedup, faults, control endpoints."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from panhuo.delivery.sim import SimConfig, SimServer, create_app
from panhuo.errors import ConfigError

AUTH = {"Authorization": "Bearer sim-token"}


def sms(key: str, phone: str = "13000000001", text: str = "您好，回T退订") -> dict:
    return {"message_id": f"m-{key}", "idempotency_key": key, "phone": phone, "text": text}


def push(key: str) -> dict:
    return {"message_id": f"m-{key}", "idempotency_key": key, "customer_id": "C0001", "title": "t", "body": "b"}


def wechat(key: str) -> dict:
    return {"message_id": f"m-{key}", "idempotency_key": key, "openid": "o-1", "template_id": "tpl-1",
            "data": {"name": "王*", "amount": "100.00"}}


@pytest.fixture
def sim():
    with SimServer() as server:
        yield server


@pytest.fixture
def client(sim):
    with httpx.Client(base_url=sim.url, headers=AUTH, timeout=10) as c:
        yield c


def test_each_endpoint_accepts_and_answers_the_contract_shape(sim, client):
    assert sim.url.startswith("http://127.0.0.1:") and not sim.url.endswith(":0")
    ids = set()
    for path, body in (("/sms/send", sms("a")), ("/push/send", push("a")), ("/wechat/send", wechat("a"))):
        r = client.post(path, json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert set(out) == {"provider_id", "status", "duplicate"}
        assert out["status"] == "accepted" and out["duplicate"] is False and out["provider_id"]
        ids.add(out["provider_id"])
    assert len(ids) == 3  # each channel is its own provider
    st = client.get("/stats").json()
    assert st["delivered"] == {"sms": 1, "app_push": 1, "wechat": 1}
    assert st["unique_keys"] == 3 and st["duplicates"] == 0 and st["requests"] == 3
    assert st["faults"] == {"429": 0, "5xx": 0, "400": 0, "malformed": 0, "lost_response": 0}


def test_the_same_key_gets_the_same_provider_id_and_counts_once(sim, client):
    first = client.post("/sms/send", json=sms("k")).json()
    again = client.post("/sms/send", json=sms("k")).json()
    assert again == {**first, "duplicate": True}
    assert sim.stats()["delivered"]["sms"] == 1 and sim.stats()["duplicates"] == 1


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "sim-token"}])
def test_a_wrong_or_missing_token_is_401_and_nothing_is_delivered(sim, headers):
    r = httpx.post(f"{sim.url}/sms/send", json=sms("k"), headers=headers)
    assert r.status_code == 401 and "error" in r.json()
    st = sim.stats()
    assert st["delivered"]["sms"] == 0 and st["unauthorized"] == 1


def test_a_custom_token_is_the_only_one_accepted():
    with SimServer(token="s3cret-token") as server:
        assert httpx.post(f"{server.url}/push/send", json=push("k"), headers=AUTH).status_code == 401
        ok = httpx.post(f"{server.url}/push/send", json=push("k"),
                        headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200


@pytest.mark.parametrize("path,body,needle", [
    ("/sms/send", sms("k", phone="12345"), "invalid phone"),
    ("/sms/send", sms("k", text="字" * 501), "more than 500"),
    ("/sms/send", {"message_id": "m", "idempotency_key": "k", "phone": "13000000001"}, "missing field text"),
    ("/push/send", {"message_id": "m", "idempotency_key": "k", "title": "t", "body": "b"}, "customer_id"),
    ("/wechat/send", {**wechat("k"), "data": {"n": 1}}, "strings"),
    ("/wechat/send", {**wechat("k"), "idempotency_key": 7}, "idempotency_key"),
])
def test_invalid_requests_are_400_with_an_error_and_not_delivered(sim, client, path, body, needle):
    r = client.post(path, json=body)
    assert r.status_code == 400 and needle in r.json()["error"]
    st = sim.stats()
    assert sum(st["delivered"].values()) == 0 and st["invalid"] == 1 and st["faults"]["400"] == 1


def test_a_body_that_is_not_json_is_400(client):
    r = client.post("/sms/send", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json() == {"error": "body is not JSON"}


def test_sms_text_of_exactly_500_chars_and_a_86_prefix_are_accepted(client):
    assert client.post("/sms/send", json=sms("k", phone="+8613000000001", text="字" * 500)).status_code == 200


def test_fifty_concurrent_identical_requests_deliver_once_with_one_provider_id(sim):
    sim.configure(latency_ms=(5, 40))

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=sim.url, headers=AUTH, timeout=20) as c:
            return await asyncio.gather(*(c.post("/wechat/send", json=wechat("same")) for _ in range(50)))

    responses = asyncio.run(burst())
    assert all(r.status_code == 200 for r in responses)
    bodies = [r.json() for r in responses]
    assert len({b["provider_id"] for b in bodies}) == 1
    assert sum(not b["duplicate"] for b in bodies) == 1
    st = sim.stats()
    assert st["delivered"]["wechat"] == 1 and st["unique_keys"] == 1 and st["duplicates"] == 49


def _outcomes(client: httpx.Client, n: int, prefix: str = "k") -> list[str]:
    out = []
    for i in range(n):
        r = client.post("/sms/send", json=sms(f"{prefix}{i}"))
        if r.status_code == 200:
            try:
                r.json()
                out.append("200")
            except ValueError:
                out.append("malformed")
        elif r.status_code == 429:
            assert int(r.headers["Retry-After"]) >= 1
            out.append("429")
        else:
            out.append(str(r.status_code))
    return out


def test_fault_rates_are_honoured_and_faulted_requests_are_not_delivered(sim, client):
    sim.configure(error_rate=0.2, rate_429=0.1, permanent_rate=0.1, malformed_rate=0.05, seed=11)
    n = 1000
    outcomes = _outcomes(client, n)
    count = {k: outcomes.count(k) for k in set(outcomes)}
    five = count.get("500", 0) + count.get("503", 0)
    assert abs(five / n - 0.2) < 0.04 and count.get("500", 0) > 0 and count.get("503", 0) > 0
    assert abs(count["429"] / n - 0.1) < 0.03
    assert abs(count["400"] / n - 0.1) < 0.03
    assert abs(count["malformed"] / n - 0.05) < 0.025
    st = sim.stats()
    assert st["delivered"]["sms"] == count["200"] == st["unique_keys"]
    assert st["faults"] == {"429": count["429"], "5xx": five, "400": count["400"],
                            "malformed": count["malformed"], "lost_response": 0}
    # A faulted key was not delivered: without faults its retry is a first delivery.
    sim.configure(error_rate=0, rate_429=0, permanent_rate=0, malformed_rate=0)
    for i, o in enumerate(outcomes[:100]):
        again = client.post("/sms/send", json=sms(f"k{i}")).json()
        assert again["duplicate"] is (o == "200")


def test_fault_decisions_are_fixed_by_the_seed(sim, client):
    sim.configure(error_rate=0.3, rate_429=0.2, seed=5)
    first = _outcomes(client, 200)
    client.post("/reset")
    assert _outcomes(client, 200) == first
    client.post("/reset")
    sim.configure(seed=6)
    assert _outcomes(client, 200) != first


def test_a_retry_of_a_faulted_key_gets_a_fresh_decision(sim, client):
    sim.configure(error_rate=0.5, seed=3)
    for i in range(20):
        statuses = []
        while not statuses or statuses[-1] != 200:
            statuses.append(client.post("/push/send", json=push(f"r{i}")).status_code)
            assert len(statuses) < 40
    assert sim.stats()["delivered"]["app_push"] == 20 and sim.stats()["faults"]["5xx"] > 0


def test_a_lost_response_is_delivered_and_the_retry_is_a_duplicate(sim, client):
    sim.configure(lost_response_rate=1.0)
    r = client.post("/sms/send", json=sms("lost"))
    assert r.status_code == 503
    assert sim.stats()["delivered"]["sms"] == 1 and sim.stats()["faults"]["lost_response"] == 1
    retry = client.post("/sms/send", json=sms("lost"))  # a delivered key is always answered 200
    assert retry.status_code == 200 and retry.json()["duplicate"] is True
    assert sim.stats()["delivered"]["sms"] == 1


def test_a_429_burst_refuses_everything_on_the_channel_for_a_while(sim, client):
    sim.configure(rate_429=1.0, burst_429_ms=400, retry_after_s=1)
    assert client.post("/sms/send", json=sms("b0")).status_code == 429
    sim.configure(rate_429=0.0)
    r = client.post("/sms/send", json=sms("b1"))
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert client.post("/push/send", json=push("b1")).status_code == 200  # other channels are unaffected
    time.sleep(0.45)
    assert client.post("/sms/send", json=sms("b1")).status_code == 200


def test_latency_is_applied(sim, client):
    sim.configure(latency_ms=(120, 150))
    t0 = time.perf_counter()
    client.post("/sms/send", json=sms("slow"))
    assert time.perf_counter() - t0 >= 0.12


def test_stats_reset_and_config_endpoints(sim, client):
    client.post("/sms/send", json=sms("x"))
    assert client.get("/stats").json()["delivered"]["sms"] == 1
    assert client.post("/reset").json() == {"ok": True}
    st = client.get("/stats").json()
    assert st["delivered"]["sms"] == 0 and st["unique_keys"] == 0 and st["requests"] == 0
    assert client.post("/sms/send", json=sms("x")).json()["duplicate"] is False  # keys were cleared

    cfg = client.post("/config", json={"latency_ms": [1, 2], "error_rate": 0.25, "reply_text": "TD"}).json()
    assert cfg["latency_ms"] == [1, 2] and cfg["error_rate"] == 0.25 and cfg["reply_text"] == "TD"
    assert client.get("/config").json() == cfg
    assert "token" not in cfg and "secret" not in cfg
    assert sim.config.error_rate == 0.25
    for bad in ({"error_rate": 1.5}, {"nope": 1}, {"latency_ms": [5, 1]}, {"token": "x"}, {"secret": "x"},
                {"error_rate": 0.6, "rate_429": 0.6}):
        r = client.post("/config", json=bad)
        assert r.status_code == 400 and r.json()["error"], bad
    assert client.get("/config").json() == cfg  # a refused change leaves the settings as they were


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="error_rate"):
        SimConfig(error_rate=-0.1).checked()
    with pytest.raises(ConfigError, match="secret"):
        SimConfig(callback_url="http://127.0.0.1:9/cb").checked()
    with pytest.raises(ConfigError, match="unknown"):
        create_app().state.sim.configure(colour="red")


def test_a_port_in_use_is_a_config_error(sim):
    port = int(sim.url.rsplit(":", 1)[1])
    with pytest.raises(ConfigError, match="cannot listen"):
        SimServer(port=port).start()


def test_two_servers_run_side_by_side_and_stop_cleanly():
    with SimServer() as a, SimServer() as b:
        assert a.url != b.url
        assert httpx.post(f"{a.url}/sms/send", json=sms("k"), headers=AUTH).status_code == 200
        assert a.stats()["delivered"]["sms"] == 1 and b.stats()["delivered"]["sms"] == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{a.url}/health", timeout=2)
