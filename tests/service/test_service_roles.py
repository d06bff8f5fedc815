"""Every endpoint tried by every role: the allowed ones succeed (and mutations are audited with the actor),
the others answer 403 and write nothing (every table of the store unchanged, no catalogue file written);
no authentication is 401. The OpenAPI document has no endpoint this matrix leaves out."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from panhuo.config import Workspace
from panhuo.service.app import create_app
from panhuo.store import open_store
from panhuo.store.audit import iter_audit, verify_audit
from tests.service.conftest import (
    APPROVED,
    AS_OF,
    CAMPAIGN,
    DRAFT,
    GOOD,
    IN_REVIEW,
    LIVE,
    OTHER,
    OWN,
    ROLE_USER,
    login,
    snapshot,
)

__all__ = ["ENDPOINTS", "UNMATRIXED"]

READERS = {"viewer", "operator", "compliance", "admin"}
EVERYONE = set(ROLE_USER)
NEW_PB = GOOD.replace(f"id: {IN_REVIEW}", "id: ipo-new")
API = "/api/v1"

# (name, method, path, json body, roles allowed, success status, audit action written on success or None)
ENDPOINTS: list[tuple[str, str, str, Any, set[str], int, str | None]] = [
    ("me", "GET", f"{API}/me", None, EVERYONE, 200, None),
    ("list playbooks", "GET", f"{API}/playbooks", None, READERS, 200, None),
    ("get playbook", "GET", f"{API}/playbooks/{IN_REVIEW}", None, READERS, 200, None),
    ("get version", "GET", f"{API}/playbooks/{IN_REVIEW}/versions/1", None, READERS, 200, None),
    ("diff", "GET", f"{API}/playbooks/{IN_REVIEW}/diff?from_version=1&to_version=1", None, READERS, 200, None),
    ("preview", "GET", f"{API}/playbooks/{LIVE}/preview?customer_id={OWN}", None, READERS, 200, None),
    ("dry run", "GET", f"{API}/playbooks/{LIVE}/dry-run?as_of={AS_OF}", None, {"operator", "compliance", "admin"},
     200, None),
    ("list runs", "GET", f"{API}/runs", None, READERS, 200, None),
    ("get run", "GET", f"{API}/runs/1", None, READERS, 200, None),
    ("add playbook", "POST", f"{API}/playbooks", {"yaml": NEW_PB}, {"operator", "admin"}, 201, "playbook.create"),
    ("submit", "POST", f"{API}/playbooks/{DRAFT}/submit", None, {"operator", "admin"}, 200, "playbook.submit"),
    ("approve", "POST", f"{API}/playbooks/{IN_REVIEW}/approve", {"note": "ok"}, {"compliance"}, 200,
     "playbook.approve"),
    ("reject", "POST", f"{API}/playbooks/{IN_REVIEW}/reject", {"reason": "wording"}, {"compliance"}, 200,
     "playbook.reject"),
    ("activate", "POST", f"{API}/playbooks/{APPROVED}/activate", None, {"operator", "admin"}, 200,
     "playbook.activate"),
    ("pause", "POST", f"{API}/playbooks/{LIVE}/pause", {"reason": "budget review"},
     {"operator", "compliance", "admin"}, 200, "playbook.pause"),
    ("retire", "POST", f"{API}/playbooks/{DRAFT}/retire", {"reason": "superseded"},
     {"operator", "compliance", "admin"}, 200, "playbook.retire"),
    ("customer", "GET", f"{API}/customers/{OWN}", None, READERS | {"advisor"}, 200, None),
    ("another advisor's customer", "GET", f"{API}/customers/{OTHER}", None, READERS, 200, None),
    ("unmask", "POST", f"{API}/customers/{OWN}/unmask", {"reason": "AML review case 42"}, {"compliance"}, 200,
     "customer.unmask"),
    ("segments", "GET", f"{API}/segments", None, READERS, 200, None),
    ("segment count", "GET", f"{API}/segments/sleeping", None, READERS, 200, None),
    ("tiers", "GET", f"{API}/tiers", None, READERS, 200, None),
    ("segment export", "GET", f"{API}/segments/sleeping/export?columns=total_assets,status", None,
     {"operator", "compliance", "admin"}, 200, "segment.export"),
    ("benefits", "GET", f"{API}/benefits", None, READERS, 200, None),
    ("benefit", "GET", f"{API}/benefits/level2-trial-7d", None, READERS, 200, None),
    ("stock change", "POST", f"{API}/benefits/level2-trial-7d/stock", {"stock": 5000, "reason": "Q4 top-up"},
     {"operator", "admin"}, 200, "benefit.stock"),
    ("tasks", "GET", f"{API}/tasks", None, READERS | {"advisor"}, 200, None),
    ("own task", "GET", f"{API}/tasks/1", None, READERS | {"advisor"}, 200, None),
    ("another advisor's task", "GET", f"{API}/tasks/2", None, READERS, 200, None),
    ("outcome", "POST", f"{API}/tasks/1/outcome", {"outcome": "reached", "note": "will trade"}, {"advisor"}, 200,
     "call.outcome"),
    ("outcome of another advisor's task", "POST", f"{API}/tasks/2/outcome", {"outcome": "reached"}, set(), 200,
     "call.outcome"),
    ("report", "GET", f"{API}/reports?campaign={CAMPAIGN}", None, READERS, 200, None),
    ("audit", "GET", f"{API}/audit", None, {"compliance", "admin"}, 200, None),
    ("audit verify", "GET", f"{API}/audit/verify", None, {"compliance", "admin"}, 200, None),
    ("users", "GET", f"{API}/users", None, {"admin"}, 200, None),
    ("add user", "POST", f"{API}/users", {"name": "newbie", "roles": ["viewer"]}, {"admin"}, 201, "user.add"),
    ("disable user", "POST", f"{API}/users/ops2/disable", None, {"admin"}, 200, "user.disable"),
    ("metrics", "GET", f"{API}/metrics", None, READERS, 200, None),
    ("logout", "DELETE", f"{API}/session", None, EVERYONE, 204, "session.logout"),
]
# mutations tried on a second fresh workspace: they conflict with others of the same role (approve/reject,
# submit/retire of the draft)
SECOND = {"reject", "retire"}
# not in the matrix: logging in (POST /session: anyone, tested in test_service_auth) and health (no login)
UNMATRIXED = {("POST", f"{API}/session"), ("GET", f"{API}/health")}


def _files(ws: Workspace) -> dict[str, bytes]:
    folder = ws.root / "benefits"
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*"))} if folder.is_dir() else {}


def _fresh(template_ws: Path, tmp_path: Path, name: str) -> Workspace:
    target = tmp_path / name
    shutil.copytree(template_ws, target)
    return Workspace.open(target, create=False)


@pytest.mark.parametrize("role", sorted(ROLE_USER))
def test_every_endpoint_by_every_role(template_ws: Path, tmp_path: Path, role: str) -> None:
    """Denials and reads run on one workspace (they must write nothing); the allowed mutations on fresh copies."""
    user = ROLE_USER[role]
    ws = _fresh(template_ws, tmp_path, "shared")
    with TestClient(create_app(ws), base_url="https://testserver") as c:
        csrf = login(c, user)
        for name, method, path, body, allowed, ok_status, action in ENDPOINTS:
            if role in allowed and action is not None:
                continue
            before, files = snapshot(ws), _files(ws)
            r = c.request(method, path, json=body, headers={"X-CSRF-Token": csrf})
            if role not in allowed:
                assert r.status_code == 403, (name, r.status_code, r.text)
                assert "detail" in r.json()
            else:
                assert r.status_code == ok_status, (name, r.status_code, r.text)
            assert snapshot(ws) == before, f"{name} by {role} wrote to the store"
            assert _files(ws) == files, f"{name} by {role} wrote a catalogue file"
    # the allowed mutations, in matrix order, on two fresh copies (reject and retire conflict with approve and
    # submit); each must answer its status and append exactly one audit entry naming the user and the action
    mine = [e for e in ENDPOINTS if role in e[4] and e[6] is not None]
    for g, group in enumerate(([e for e in mine if e[0] not in SECOND], [e for e in mine if e[0] in SECOND])):
        if not group:
            continue
        mws = _fresh(template_ws, tmp_path, f"m{g}")
        store = open_store(mws)
        try:
            with TestClient(create_app(mws), base_url="https://testserver") as c:
                csrf = login(c, user)
                for name, method, path, body, _allowed, ok_status, action in group:
                    before = len(snapshot(mws)["audit_log"])
                    r = c.request(method, path, json=body, headers={"X-CSRF-Token": csrf})
                    assert r.status_code == ok_status, (name, r.status_code, r.text)
                    with store.session() as s:
                        newest = next(iter_audit(s))
                        assert (newest.action, newest.actor) == (action, user), name
                        if action.startswith("playbook.") and action != "playbook.create":
                            assert newest.before is not None and newest.after is not None
                            assert newest.before["state"] != newest.after["state"]
                    assert len(snapshot(mws)["audit_log"]) == before + 1, name
            with store.session() as s:
                assert verify_audit(s).ok
        finally:
            store.dispose()


def test_every_endpoint_without_authentication_is_401_and_writes_nothing(client: TestClient, ws: Workspace) -> None:
    before, files = snapshot(ws), _files(ws)
    for name, method, path, body, *_ in ENDPOINTS:
        r = client.request(method, path, json=body)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", (name, r.status_code)
    assert snapshot(ws) == before and _files(ws) == files


def test_the_matrix_covers_every_operation_of_the_openapi_document(client: TestClient) -> None:
    doc = client.get(f"{API}/openapi.json").json()
    ops = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}

    def matches(template: str, path: str) -> bool:
        a, b = template.strip("/").split("/"), path.split("?")[0].strip("/").split("/")
        return len(a) == len(b) and all(x == y or x.startswith("{") for x, y in zip(a, b, strict=True))

    missing = {(m, p) for m, p in ops - UNMATRIXED if not any(m == em and matches(p, ep) for _n, em, ep, *_ in
                                                                ENDPOINTS)}
    assert not missing, f"operations no role test tries: {sorted(missing)}"


def test_a_session_without_the_csrf_token_changes_nothing(client: TestClient, ws: Workspace) -> None:
    login(client, "cmp")
    before, files = snapshot(ws), _files(ws)
    for name, method, path, body, _allowed, _st, action in ENDPOINTS:
        if action is None or method == "GET":  # a GET changes nothing (an export only adds its audit entry)
            continue
        r = client.request(method, path, json=body)
        assert r.status_code == 403 and "X-CSRF-Token" in r.json()["detail"], name
        r = client.request(method, path, json=body, headers={"X-CSRF-Token": "forged"})
        assert r.status_code == 403, name
    assert snapshot(ws) == before and _files(ws) == files


def test_health_needs_no_login(client: TestClient) -> None:
    r = client.get(f"{API}/health")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["store"] == "sqlite"
