"""Four eyes over the API, invalid playbooks (422 with file/line/field), SQL- and script-looking input stored
and returned verbatim as JSON, the OpenAPI document, and the app served by a real uvicorn on loopback."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient

from panhuo.config import Workspace
from panhuo.delivery._serve import LoopbackServer
from panhuo.service.app import COOKIE, create_app
from panhuo.store import open_store
from panhuo.store.audit import iter_audit
from tests.service.conftest import GOOD, IN_REVIEW, LIVE, PASSWORD, login, snapshot

__all__: list[str] = []

NASTY = "'); DROP TABLE users;-- <script>alert(1)</script> \" OR 1=1"


def _post(client: TestClient, path: str, csrf: str, body: object = None) -> httpx.Response:
    return client.post(path, json=body, headers={"X-CSRF-Token": csrf})


def test_four_eyes_the_author_cannot_approve_even_with_the_compliance_role(client: TestClient, ws: Workspace) -> None:
    csrf = login(client, "cmp_ops")  # compliance and operator
    text = GOOD.replace(f"id: {IN_REVIEW}", "id: own-work")
    assert _post(client, "/api/v1/playbooks", csrf, {"yaml": text}).status_code == 201
    assert _post(client, "/api/v1/playbooks/own-work/submit", csrf).json()["state"] == "in_review"
    before = snapshot(ws)
    r = _post(client, "/api/v1/playbooks/own-work/approve", csrf, {"note": "self"})
    assert r.status_code == 403 and "four eyes" in r.json()["detail"]
    assert snapshot(ws) == before
    csrf = login(client, "cmp")
    r = _post(client, "/api/v1/playbooks/own-work/approve", csrf, {"note": "checked"})
    assert r.status_code == 200 and r.json()["state"] == "approved" and r.json()["review_version"] == 1


def test_illegal_transition_is_409_and_unknown_playbook_404(client: TestClient, ws: Workspace) -> None:
    csrf = login(client, "ops")
    before = snapshot(ws)
    r = _post(client, f"/api/v1/playbooks/{IN_REVIEW}/submit", csrf)
    assert r.status_code == 409 and "in_review" in r.json()["detail"]
    assert _post(client, "/api/v1/playbooks/no-such/submit", csrf).status_code == 404
    assert client.get("/api/v1/playbooks/no-such").status_code == 404
    assert client.get("/api/v1/runs/999").status_code == 404
    assert snapshot(ws) == before


def test_invalid_playbook_is_422_with_file_line_and_field_and_stores_nothing(client: TestClient, ws: Workspace) -> None:
    csrf = login(client, "ops")
    before = snapshot(ws)
    bad = GOOD.replace(f"id: {IN_REVIEW}", "id: bad-one").replace("holdout: 0.10", "holdout: 0.6")
    r = _post(client, "/api/v1/playbooks", csrf, {"yaml": bad, "source": "editor.yaml"})
    assert r.status_code == 422
    issue = r.json()["issues"][0]
    assert issue["file"] == "editor.yaml" and issue["line"] == 6 and issue["field"] == "method.holdout"
    assert "between 0 and 0.5" in issue["reason"]
    r = _post(client, "/api/v1/playbooks", csrf, {"yaml": "id: [unclosed"})
    assert r.status_code == 422 and r.json()["issues"][0]["line"] == 1
    r = _post(client, "/api/v1/playbooks", csrf, {"yaml": GOOD.replace("ipo-guide-video", "no-such-benefit")
                                                  .replace(f"id: {IN_REVIEW}", "id: bad-two")})
    assert r.status_code == 422 and r.json()["issues"][0]["field"].startswith("benefit")
    assert snapshot(ws) == before


def test_sql_and_script_looking_input_is_stored_and_returned_verbatim(client: TestClient, ws: Workspace) -> None:
    csrf = login(client, "ops")
    name = NASTY.replace('"', "'")
    text = GOOD.replace(f"id: {IN_REVIEW}", "id: nasty").replace("name: 新股申购日唤醒沉睡客户",
                                                                 f'name: "{name}"') + f"# {NASTY}\n"
    r = _post(client, "/api/v1/playbooks", csrf, {"yaml": text, "source": NASTY})
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == "application/json"
    got = client.get("/api/v1/playbooks/nasty").json()
    assert got["name"] == name and got["versions"][0]["yaml_text"] == text and got["versions"][0]["source"] == NASTY
    assert any(p["name"] == name for p in client.get("/api/v1/playbooks").json())
    assert _post(client, "/api/v1/playbooks/nasty/submit", csrf).status_code == 200
    csrf = login(client, "cmp")
    assert _post(client, "/api/v1/playbooks/nasty/reject", csrf, {"reason": NASTY}).status_code == 200
    store = open_store(ws)
    with store.session() as s:
        assert next(iter_audit(s, entity_id="nasty")).after["reason"] == NASTY
    store.dispose()
    for path in ["/api/v1/playbooks/' OR 1=1 --", "/api/v1/playbooks/<script>", "/api/v1/runs/1 OR 1=1"]:
        assert client.get(path).status_code in (404, 422)
    assert client.get("/api/v1/playbooks", params={"state": "' OR '1'='1"}).json() == []
    r = client.post("/api/v1/session", json={"name": "root' --", "password": "' OR '1'='1"})
    assert r.status_code == 401
    assert len(snapshot(ws)["users"]) == 8


def test_openapi_document_lists_the_versioned_routes(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    paths = set(doc["paths"])
    assert {"/api/v1/session", "/api/v1/health", "/api/v1/me", "/api/v1/playbooks", "/api/v1/playbooks/{playbook_id}",
            "/api/v1/playbooks/{playbook_id}/submit", "/api/v1/playbooks/{playbook_id}/approve",
            "/api/v1/playbooks/{playbook_id}/reject", "/api/v1/runs", "/api/v1/runs/{run_id}"} <= paths
    assert "422" in doc["paths"]["/api/v1/playbooks"]["post"]["responses"]
    assert client.get("/docs").status_code == 404  # no CDN-backed docs page


def test_run_detail_has_its_funnel(client: TestClient) -> None:
    login(client, "view")
    runs = client.get("/api/v1/runs").json()
    assert [(r["id"], r["playbook_id"], r["sends"]) for r in runs] == [(3, LIVE, 2), (2, LIVE, 2), (1, IN_REVIEW, 850)]
    detail = client.get("/api/v1/runs/1").json()
    assert detail["funnel"]["stages"][0] == ["candidates", 1000]


def test_served_by_uvicorn_on_loopback(ws: Workspace) -> None:
    with LoopbackServer(create_app(ws, cookie_secure=False)) as server, httpx.Client(base_url=server.url) as c:
        assert c.get("/api/v1/health").json()["status"] == "ok"
        r = c.post("/api/v1/session", json={"name": "view", "password": PASSWORD})
        assert r.status_code == 200 and "httponly" in r.headers["set-cookie"].lower()
        assert "secure" not in r.headers["set-cookie"].lower()
        assert c.get("/api/v1/me").json()["name"] == "view"
        assert c.cookies.get(COOKIE)
        assert c.delete("/api/v1/session", headers={"X-CSRF-Token": r.json()["csrf_token"]}).status_code == 204
        assert c.get("/api/v1/me").status_code == 401


def test_no_answer_to_a_viewer_or_an_advisor_holds_personal_data_in_clear(ws: Workspace) -> None:
    """Every GET of the role matrix, as viewer and as advisor: the generated customer's phone, name and ID number
    never appear in clear, in JSON or CSV."""
    from tests.service.conftest import NAME, PERSON_ID, PHONE
    from tests.service.test_service_roles import ENDPOINTS

    for user in ("view", "adv"):
        with TestClient(create_app(ws), base_url="https://testserver") as c:
            login(c, user)
            for name, method, path, *_ in ENDPOINTS:
                if method != "GET":
                    continue
                r = c.get(path)
                for secret in (PHONE, NAME, PERSON_ID):
                    assert secret not in r.text, (user, name)


def test_script_and_sql_looking_ids_are_answered_as_json_errors(client: TestClient) -> None:
    login(client, "view")
    for path in [f"/api/v1/customers/{NASTY}", "/api/v1/customers/' OR '1'='1", f"/api/v1/segments/{NASTY}",
                 f"/api/v1/benefits/{NASTY}", "/api/v1/tasks/1 OR 1=1", "/api/v1/playbooks/x/versions/1;DROP"]:
        r = client.get(path)
        assert r.status_code in (404, 422), (path, r.status_code)
        assert r.headers["content-type"] == "application/json"
        assert "<script>" not in r.headers.get("content-type", "")
