"""What the API answers, on the generated brokerage of the fixtures: customers (masked for every role, unmasked
only by compliance with an audited reason, advisors limited to their own), segments and tiers against the
domain functions, the CSV export, stock changes, call outcomes, playbook versions/diff/lifecycle/preview/dry
run, reports, users, metrics; reads never wait for the SQLite writer lock; old login attempts are pruned."""

from __future__ import annotations

import csv
import datetime as dt
import io
import sqlite3
import threading
import time

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from panhuo.config import Workspace
from panhuo.service import auth
from panhuo.service.app import create_app
from panhuo.service.models import LoginAttempt
from panhuo.store import open_store
from panhuo.store.audit import iter_audit, verify_audit
from panhuo.store.models import now_shanghai
from tests.service.conftest import (
    AS_OF,
    CAMPAIGN,
    DRAFT,
    GOOD,
    IN_REVIEW,
    LIVE,
    NAME,
    OTHER,
    OWN,
    PASSWORD,
    PERSON_ID,
    PHONE,
    login,
    snapshot,
)

__all__: list[str] = []

API = "/api/v1"
NASTY = "'); DROP TABLE users;-- <script>alert(1)</script>"


def _post(c: TestClient, path: str, csrf: str, body: object = None) -> httpx.Response:
    return c.post(path, json=body, headers={"X-CSRF-Token": csrf})


def _newest(ws: Workspace):  # noqa: ANN202
    store = open_store(ws)
    try:
        with store.session() as s:
            e = next(iter_audit(s))
            assert verify_audit(s).ok
            return e
    finally:
        store.dispose()


@pytest.mark.parametrize("user", ["view", "ops", "cmp", "root", "adv"])
def test_a_customer_is_masked_for_every_role_and_complete(client: TestClient, user: str) -> None:
    login(client, user)
    r = client.get(f"{API}/customers/{OWN}")
    assert r.status_code == 200, r.text
    for secret in (PHONE, NAME, PERSON_ID, PHONE[3:7] + PHONE[-4:]):
        assert secret not in r.text
    c = r.json()
    p = c["profile"]
    assert (p["phone"], p["name"], p["id_number"]) == ("138****5678", "张**", "110***********1234")
    assert {"phone", "name", "id_number"} <= set(c["masked"]) and c["unmasked"] is False
    assert p["advisor_id"] == "adv" and c["tags"]["as_of"] == AS_OF.isoformat()
    assert c["status"]["status"] == c["tags"]["status"] and c["status"]["status"] in (
        "effective", "sleeping", "dormant", "new_empty")
    assert c["status_history"] and c["status_history"][0]["baseline"] is True
    assert [m["channel"] for m in c["messages"]] == ["call", "sms"]
    assert c["contacts"][0]["channel"] == "sms" and {e["event"] for e in c["responses"]} == {"delivered", "reply"}
    assert c["opt_outs"][0]["text"] == "T" and c["benefits"][0]["benefit_id"] == "market-weekly-news"
    assert [t["id"] for t in c["call_tasks"]] == [1]
    assert client.get(f"{API}/customers/C99999999").status_code == (403 if user == "adv" else 404)


def test_compliance_unmasks_one_customer_with_a_reason_which_is_audited(client: TestClient, ws: Workspace) -> None:
    csrf = login(client, "cmp")
    before = snapshot(ws)
    assert _post(client, f"{API}/customers/{OWN}/unmask", csrf, {}).status_code == 422
    assert _post(client, f"{API}/customers/{OWN}/unmask", csrf, {"reason": "  "}).status_code == 422
    assert _post(client, f"{API}/customers/C99999999/unmask", csrf, {"reason": "AML case 7"}).status_code == 404
    assert snapshot(ws) == before
    r = _post(client, f"{API}/customers/{OWN}/unmask", csrf, {"reason": NASTY})
    assert r.status_code == 200 and r.json()["unmasked"] is True and r.json()["masked"] == []
    p = r.json()["profile"]
    assert (p["phone"], p["name"], p["id_number"]) == (PHONE, NAME, PERSON_ID)
    e = _newest(ws)
    assert (e.actor, e.action, e.entity_id) == ("cmp", "customer.unmask", OWN)
    assert e.after["reason"] == NASTY and set(e.after["fields"]) >= {"phone", "name", "id_number"}
    login(client, "view")  # an unmask is for that answer only: the customer stays masked for everyone
    assert PHONE not in client.get(f"{API}/customers/{OWN}").text


def test_an_advisor_sees_and_updates_only_their_own_customers_tasks(client: TestClient, ws: Workspace) -> None:
    csrf = login(client, "adv")
    assert client.get(f"{API}/customers/{OTHER}").status_code == 403
    assert [t["id"] for t in client.get(f"{API}/tasks").json()] == [1]
    assert client.get(f"{API}/tasks/2").status_code == 403
    before = snapshot(ws)
    assert _post(client, f"{API}/tasks/2/outcome", csrf, {"outcome": "reached"}).status_code == 403
    assert _post(client, f"{API}/tasks/1/outcome", csrf, {"outcome": "maybe"}).status_code == 400
    assert _post(client, f"{API}/tasks/99/outcome", csrf, {"outcome": "reached"}).status_code == 404
    assert snapshot(ws) == before
    r = _post(client, f"{API}/tasks/1/outcome", csrf, {"outcome": "interested", "note": NASTY})
    assert r.status_code == 200 and r.json()["outcome"] == "interested" and r.json()["note"] == NASTY
    assert r.json()["outcome_by"] == "adv"
    e = _newest(ws)
    assert (e.action, e.actor, e.before, e.after) == ("call.outcome", "adv", {"outcome": None, "note": None},
                                                      {"outcome": "interested", "note": NASTY})
    assert client.get(f"{API}/tasks", params={"open": True}).json() == []
    login(client, "view")
    assert [t["id"] for t in client.get(f"{API}/tasks").json()] == [1, 2]


def test_segment_counts_and_tiers_match_the_domain_functions(client: TestClient, ws: Workspace) -> None:
    from panhuo.engines import connect
    from panhuo.segments.audience import audience
    from panhuo.segments.tiers import load_tiers, tier_summary

    login(client, "view")
    aud = audience(ws, connect(ws.settings.engine, ws.tmp_dir), None)
    for name in ("sleeping", "effective", "dormant"):
        got = client.get(f"{API}/segments/{name}").json()
        assert got["customers"] == aud.count(name) and got["as_of"] == AS_OF.isoformat()
    rows = tier_summary(load_tiers(symbols=aud.symbols), aud.table, aud.symbols, aud.as_of)
    t = client.get(f"{API}/tiers").json()
    assert [(x["id"], x["customers"]) for x in t["tiers"]] == [(r.id, r.customers) for r in rows]
    assert t["total"] == sum(r.customers for r in rows) > 0
    assert {s["name"] for s in client.get(f"{API}/segments").json()} >= {"sleeping", "dormant", "sleeping_alive"}
    assert client.get(f"{API}/segments/no_such").status_code == 404
    assert client.get(f"{API}/segments/{NASTY}").status_code == 404


def test_segment_export_is_csv_masked_and_audited(client: TestClient, ws: Workspace) -> None:
    login(client, "ops")
    n = client.get(f"{API}/segments/sleeping").json()["customers"]
    before = snapshot(ws)
    r = client.get(f"{API}/segments/sleeping/export", params={"columns": "name"})
    assert r.status_code == 400 and "personal data" in r.json()["detail"]
    assert client.get(f"{API}/segments/sleeping/export", params={"columns": "no_such_tag"}).status_code == 400
    assert snapshot(ws) == before
    r = client.get(f"{API}/segments/sleeping/export", params={"columns": "total_assets,status"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == n and set(rows[0]) == {"customer_id", "total_assets", "status"}
    assert all(row["status"] == "sleeping" for row in rows)
    assert all("." in row["total_assets"] for row in rows)  # RMB with two decimals, from fen
    e = _newest(ws)
    assert (e.action, e.actor, e.entity_id, e.after["rows"]) == ("segment.export", "ops", "sleeping", n)
    assert not list(ws.tmp_dir.glob("export-*.csv"))


def test_stock_change_edits_the_catalogue_and_is_audited(client: TestClient, ws: Workspace) -> None:
    from panhuo.benefits import load_catalogue

    csrf = login(client, "ops")
    before = snapshot(ws)
    assert _post(client, f"{API}/benefits/no-such/stock", csrf, {"stock": 5, "reason": "top-up"}).status_code == 404
    assert _post(client, f"{API}/benefits/level2-trial-7d/stock", csrf, {"stock": -1, "reason": "x"}).status_code == 422
    assert snapshot(ws) == before and not (ws.root / "benefits").exists()
    r = _post(client, f"{API}/benefits/level2-trial-7d/stock", csrf, {"stock": 5000, "reason": "Q4 top-up"})
    assert r.status_code == 200 and (r.json()["stock"], r.json()["stock_left"]) == (5000, 5000)
    assert load_catalogue(ws).get("level2-trial-7d").stock == 5000
    doc = yaml.safe_load((ws.root / "benefits" / "stock-overrides.yaml").read_text(encoding="utf-8"))
    assert [i["id"] for i in doc["items"]] == ["level2-trial-7d"]
    e = _newest(ws)
    assert (e.action, e.before["stock"], e.after["stock"], e.after["reason"]) == ("benefit.stock", 100000, 5000,
                                                                                  "Q4 top-up")
    r = _post(client, f"{API}/benefits/level2-trial-7d/stock", csrf, {"stock": None, "reason": "unlimited now"})
    assert r.status_code == 200 and r.json()["stock"] is None
    assert load_catalogue(ws).get("level2-trial-7d").stock is None
    listed = {b["id"]: b for b in client.get(f"{API}/benefits").json()}
    assert listed["market-weekly-news"]["issued"] == 1 and listed["level2-trial-7d"]["state"] == "ok"


def test_playbook_versions_diff_lifecycle_preview_and_dry_run(client: TestClient, ws: Workspace) -> None:
    csrf = login(client, "ops")
    v2 = GOOD.replace(f"id: {IN_REVIEW}", f"id: {DRAFT}").replace("holdout: 0.10", "holdout: 0.20")
    assert _post(client, f"{API}/playbooks", csrf, {"yaml": v2}).status_code == 201
    assert client.get(f"{API}/playbooks/{DRAFT}/versions/2").json()["yaml_text"] == v2
    assert client.get(f"{API}/playbooks/{DRAFT}/versions/3").status_code == 404
    d = client.get(f"{API}/playbooks/{DRAFT}/diff", params={"from_version": 1, "to_version": 2}).json()["diff"]
    assert "-method:    {mode: automated, holdout: 0.10" in d and "+method:    {mode: automated, holdout: 0.20" in d
    assert client.get(f"{API}/playbooks/{DRAFT}/diff", params={"from_version": 1, "to_version": 9}).status_code == 404
    assert _post(client, f"{API}/playbooks/{LIVE}/pause", csrf, {"reason": NASTY}).json()["state"] == "paused"
    assert _newest(ws).after["reason"] == NASTY
    assert _post(client, f"{API}/playbooks/{LIVE}/pause", csrf).status_code == 409
    assert _post(client, f"{API}/playbooks/{LIVE}/activate", csrf).json()["state"] == "live"
    assert _post(client, f"{API}/playbooks/{DRAFT}/retire", csrf).json()["state"] == "retired"
    assert _post(client, f"{API}/playbooks/no-such/retire", csrf).status_code == 404

    p = client.get(f"{API}/playbooks/{LIVE}/preview", params={"customer_id": OWN})
    assert p.status_code == 200, p.text
    sms = next(m for m in p.json()["messages"] if m["channel"] == "sms")
    assert sms["parts"]["template"].endswith("回T退订") and sms["sms"]["ok"] and PHONE not in p.text
    assert client.get(f"{API}/playbooks/{LIVE}/preview", params={"customer_id": "C99999999"}).status_code == 400

    before = snapshot(ws)
    r = client.get(f"{API}/playbooks/{LIVE}/dry-run", params={"as_of": AS_OF.isoformat()})
    assert r.status_code == 200, r.text
    assert r.json()["funnel"][0]["stage"] == "candidates" and r.json()["written"] == 0
    assert snapshot(ws) == before


def test_report_is_make_reports_json(client: TestClient, ws: Workspace) -> None:
    from panhuo.measure.report import make_report

    login(client, "view")
    got = client.get(f"{API}/reports", params={"campaign": CAMPAIGN}).json()
    want = make_report(ws, campaign=CAMPAIGN)
    assert got["format"] == want["format"] and got["items"] == want["items"]
    r = client.get(f"{API}/reports", params={"playbook": IN_REVIEW})  # a run without assignments: nothing made up
    group = r.json()["items"][0]["groups"][0]
    assert r.status_code == 200 and group["not_estimable"] and group["incremental_conversions"]["estimate"] is None
    r = client.get(f"{API}/reports", params={"playbook": "no-such"})
    assert r.status_code == 404, r.text


def test_users_admin_add_with_password_list_and_disable(client: TestClient, ws: Workspace) -> None:
    csrf = login(client, "root")
    pw = "new-" + PASSWORD
    r = _post(client, f"{API}/users", csrf, {"name": "wang.wu", "roles": ["operator"], "display_name": "王五",
                                            "password": pw})
    assert r.status_code == 201 and r.json()["has_password"] is True and r.json()["roles"] == ["operator"]
    assert _post(client, f"{API}/users", csrf, {"name": "wang.wu", "roles": ["viewer"]}).status_code == 400
    assert _post(client, f"{API}/users", csrf, {"name": "x y", "roles": ["viewer"]}).status_code == 400
    assert _post(client, f"{API}/users", csrf, {"name": "zz", "roles": ["boss"]}).status_code == 400
    assert {u["name"]: u["active"] for u in client.get(f"{API}/users").json()}["wang.wu"] is True
    with TestClient(create_app(ws), base_url="https://testserver") as other:
        assert login(other, "wang.wu", pw)
        assert _post(client, f"{API}/users/wang.wu/disable", csrf).json()["active"] is False
        assert other.get(f"{API}/me").status_code == 401
    assert _post(client, f"{API}/users/nobody/disable", csrf).status_code == 404
    assert _post(client, f"{API}/users/root/disable", csrf).status_code == 400  # the last active admin
    assert pw not in str([e.after for e in iter_audit(open_store(ws)._factory())])


def test_metrics_count_requests_by_route_template_and_outbox_rows(client: TestClient) -> None:
    login(client, "view")
    client.get(f"{API}/customers/{OWN}")
    client.get(f"{API}/customers/C99999999")
    text = client.get(f"{API}/metrics").text
    assert 'panhuo_http_requests_total{method="GET",route="/api/v1/customers/{customer_id}",status="200"} 1' in text
    assert 'route="/api/v1/customers/{customer_id}",status="404"} 1' in text
    assert OWN not in text
    assert 'panhuo_http_request_duration_seconds_count{method="GET",route="/api/v1/customers/{customer_id}"} 2' in text
    assert 'panhuo_outbox_rows{status="sent"} 3' in text and 'panhuo_outbox_rows{status="pending"} 1' in text


def test_reads_do_not_wait_for_the_sqlite_writer_lock(client: TestClient, ws: Workspace) -> None:
    login(client, "view")
    holder = sqlite3.connect(ws.root / "panhuo.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing (a run, a delivery worker)
    try:
        got: dict[str, object] = {}

        def read() -> None:
            t0 = time.perf_counter()
            got["status"] = [client.get(f"{API}/{p}").status_code for p in ("me", "playbooks", "runs/1",
                                                                           f"customers/{OWN}", "benefits")]
            got["seconds"] = time.perf_counter() - t0

        th = threading.Thread(target=read)
        th.start()
        th.join(timeout=20)
        assert not th.is_alive(), "a read waited for the writer lock"
        assert got["status"] == [200] * 5 and float(got["seconds"]) < 10  # type: ignore[arg-type]
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_login_prunes_attempts_older_than_a_week(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(ws)
    now = now_shanghai()
    with store.session() as s:
        s.add_all([LoginAttempt(user_name="x", ip="10.1.1.1", at=now - dt.timedelta(days=8), ok=False),
                   LoginAttempt(user_name="x", ip="10.1.1.1", at=now - dt.timedelta(days=1), ok=False)])
    monkeypatch.setattr(auth, "_last_prune", None)
    with store.session() as s:
        auth.login(s, "ops", PASSWORD, ip="127.0.0.1", now=now)
    with store.session() as s:
        left = sorted((a.user_name, a.at < now - dt.timedelta(days=7)) for a in s.query(LoginAttempt))
    store.dispose()
    assert ("x", True) not in left and ("x", False) in left and ("ops", False) in left


def test_customer_lookup_copies_give_the_same_answer(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """With copies forced (tiny thresholds), a customer reads the same from the sorted copies as from the files;
    warm() makes them under tmp/service-index and removes copies of files no longer in force."""
    from panhuo.service import views

    store = open_store(ws)
    try:
        with store.read_session() as s:
            plain = views.customer_view(ws, s, OWN)
        monkeypatch.setattr(views, "_INDEX_MIN_ROWS", 10)
        monkeypatch.setattr(views, "INDEX_ROW_GROUP", 16)
        folder = ws.tmp_dir / "service-index"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "stale-old.parquet").write_bytes(b"x")
        views.warm(ws)
        copies = sorted(p.name for p in folder.glob("*.parquet"))
        assert len(copies) == 3 and "stale-old.parquet" not in copies  # customers, tags, the event log
        with store.read_session() as s:
            indexed = views.customer_view(ws, s, OWN)
            other = views.customer_view(ws, s, OTHER)
        assert indexed == plain and other is not None and other["customer_id"] == OTHER
    finally:
        store.dispose()
