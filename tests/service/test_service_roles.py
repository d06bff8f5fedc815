"""Every endpoint tried by every role: the allowed ones succeed (and mutations are audited with the actor),
the others answer 403 and write nothing (every table of the store unchanged); no authentication is 401."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from panhuo.config import Workspace
from panhuo.store import open_store
from panhuo.store.audit import iter_audit, verify_audit
from tests.service.conftest import DRAFT, GOOD, IN_REVIEW, ROLE_USER, login, snapshot

__all__: list[str] = []

READERS = {"viewer", "operator", "compliance", "admin"}
EVERYONE = set(ROLE_USER)
NEW_PB = GOOD.replace(f"id: {IN_REVIEW}", "id: ipo-new")

# (name, method, path, json body, roles allowed, success status, audit action written on success or None)
ENDPOINTS: list[tuple[str, str, str, Any, set[str], int, str | None]] = [
    ("me", "GET", "/api/v1/me", None, EVERYONE, 200, None),
    ("list playbooks", "GET", "/api/v1/playbooks", None, READERS, 200, None),
    ("get playbook", "GET", f"/api/v1/playbooks/{IN_REVIEW}", None, READERS, 200, None),
    ("list runs", "GET", "/api/v1/runs", None, READERS, 200, None),
    ("get run", "GET", "/api/v1/runs/1", None, READERS, 200, None),
    ("add playbook", "POST", "/api/v1/playbooks", {"yaml": NEW_PB}, {"operator", "admin"}, 201, "playbook.create"),
    ("submit", "POST", f"/api/v1/playbooks/{DRAFT}/submit", None, {"operator", "admin"}, 200, "playbook.submit"),
    ("approve", "POST", f"/api/v1/playbooks/{IN_REVIEW}/approve", {"note": "ok"}, {"compliance"}, 200,
     "playbook.approve"),
    ("reject", "POST", f"/api/v1/playbooks/{IN_REVIEW}/reject", {"reason": "wording"}, {"compliance"}, 200,
     "playbook.reject"),
    ("logout", "DELETE", "/api/v1/session", None, EVERYONE, 204, "session.logout"),
]


@pytest.mark.parametrize("role", sorted(ROLE_USER))
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_every_endpoint_by_every_role(client: TestClient, ws: Workspace, role: str,
                                      endpoint: tuple[str, str, str, Any, set[str], int, str | None]) -> None:
    _name, method, path, body, allowed, ok_status, action = endpoint
    user = ROLE_USER[role]
    csrf = login(client, user)
    before = snapshot(ws)
    r = client.request(method, path, json=body, headers={"X-CSRF-Token": csrf})
    if role not in allowed:
        assert r.status_code == 403, r.text
        assert "detail" in r.json()
        assert snapshot(ws) == before
        return
    assert r.status_code == ok_status, r.text
    store = open_store(ws)
    try:
        with store.session() as s:
            newest = next(iter_audit(s))
            if action is None:
                assert snapshot(ws) == before  # reads write nothing
            else:
                assert (newest.action, newest.actor) == (action, user)
                assert len(snapshot(ws)["audit_log"]) == len(before["audit_log"]) + 1
                if action.startswith("playbook.") and action != "playbook.create":
                    assert newest.before is not None and newest.after is not None
                    assert newest.before["state"] != newest.after["state"]
            assert verify_audit(s).ok
    finally:
        store.dispose()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_every_endpoint_without_authentication_is_401_and_writes_nothing(
        client: TestClient, ws: Workspace, endpoint: tuple[str, str, str, Any, set[str], int, str | None]) -> None:
    _name, method, path, body, *_ = endpoint
    before = snapshot(ws)
    r = client.request(method, path, json=body)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert snapshot(ws) == before


def test_a_session_without_the_csrf_token_changes_nothing(client: TestClient, ws: Workspace) -> None:
    login(client, "cmp")
    before = snapshot(ws)
    for method, path, body in [("POST", f"/api/v1/playbooks/{IN_REVIEW}/approve", {}),
                               ("POST", f"/api/v1/playbooks/{IN_REVIEW}/reject", {"reason": "x"}),
                               ("DELETE", "/api/v1/session", None)]:
        r = client.request(method, path, json=body)
        assert r.status_code == 403 and "X-CSRF-Token" in r.json()["detail"]
        r = client.request(method, path, json=body, headers={"X-CSRF-Token": "forged"})
        assert r.status_code == 403
    assert snapshot(ws) == before


def test_health_needs_no_login(client: TestClient) -> None:
    r = client.get("/api/v1/health")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["store"] == "sqlite"
