"""Logins, cookies, CSRF, throttling, session fixation, passwords and API keys (CLI and API)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from panhuo.cli import _common
from panhuo.cli.main import app as cli
from panhuo.config import Workspace
from panhuo.errors import PanhuoError
from panhuo.service import auth
from panhuo.service.app import COOKIE, create_app
from panhuo.store import open_store
from panhuo.store.audit import iter_audit, verify_audit
from panhuo.store.models import now_shanghai
from tests.service.conftest import GOOD, IN_REVIEW, PASSWORD, login, snapshot

__all__: list[str] = []


@dataclass
class _Result:
    exit_code: int
    output: str
    stdout: str


def _cli(ws: Workspace, *args: str, stdin: str | None = None) -> _Result:
    """Invoke the CLI in-process; a PanhuoError exits 2 with its message, as ``panhuo.cli.main.main`` does."""
    _common.STATE._ws = None  # the CLI caches the workspace per process; each test has its own
    r = CliRunner().invoke(cli, ["--workspace", str(ws.root), *args], input=stdin)
    if isinstance(r.exception, PanhuoError):
        return _Result(2, r.output + str(r.exception), r.stdout)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return _Result(r.exit_code, r.output, r.stdout)


def test_login_sets_a_strict_httponly_secure_cookie_and_answers_the_csrf_token(client: TestClient) -> None:
    r = client.post("/api/v1/session", json={"name": "ops", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["user"] == {"name": "ops", "display_name": "", "roles": ["operator"], "via": "session",
                            "scope": "write"}
    assert len(body["csrf_token"]) >= 40
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    flags = {p.strip().lower() for p in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags
    assert body["csrf_token"] not in cookie
    me = client.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["name"] == "ops"


def test_logout_needs_the_csrf_token_then_ends_the_session(client: TestClient, ws: Workspace) -> None:
    csrf = login(client, "view")
    before = snapshot(ws)
    assert client.delete("/api/v1/session").status_code == 403
    assert client.delete("/api/v1/session", headers={"X-CSRF-Token": "x" + csrf}).status_code == 403
    assert snapshot(ws) == before
    r = client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204
    assert client.get("/api/v1/me").status_code == 401
    store = open_store(ws)
    with store.session() as s:
        assert next(iter_audit(s)).action == "session.logout"
    store.dispose()


def test_stolen_cookie_value_is_useless_after_logout(ws: Workspace) -> None:
    with TestClient(create_app(ws), base_url="https://testserver") as c:
        csrf = login(c, "ops")
        sid = c.cookies[COOKIE]
        assert c.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    with TestClient(create_app(ws), base_url="https://testserver", cookies={COOKIE: sid}) as other:
        assert other.get("/api/v1/me").status_code == 401


def test_wrong_password_unknown_and_disabled_users_get_the_same_401(client: TestClient, ws: Workspace) -> None:
    audit_before = snapshot(ws)["audit_log"]
    answers = [client.post("/api/v1/session", json={"name": n, "password": p})
               for n, p in [("ops", PASSWORD + "x"), ("nobody", PASSWORD), ("gone", PASSWORD)]]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert len({a.json()["detail"] for a in answers}) == 1
    assert all("set-cookie" not in a.headers for a in answers)
    after = snapshot(ws)
    assert after["audit_log"] == audit_before  # failures are only login attempts
    assert [(row[1], row[4]) for row in after["login_attempts"]] == [("ops", 0), ("nobody", 0), ("gone", 0)]


def test_five_failures_throttle_the_name_from_that_address(ws: Workspace) -> None:
    with TestClient(create_app(ws), base_url="https://testserver", client=("10.0.0.7", 5000)) as c:
        for _ in range(auth.MAX_FAILURES):
            assert c.post("/api/v1/session", json={"name": "cmp", "password": "wrong-password"}).status_code == 401
        r = c.post("/api/v1/session", json={"name": "cmp", "password": PASSWORD})
        assert r.status_code == 429 and "set-cookie" not in r.headers
        assert int(r.headers["retry-after"]) == 900
        assert c.post("/api/v1/session", json={"name": "ops", "password": PASSWORD}).status_code == 200
    with TestClient(create_app(ws), base_url="https://testserver", client=("10.0.0.8", 5000)) as other:
        assert other.post("/api/v1/session", json={"name": "cmp", "password": PASSWORD}).status_code == 200
    store = open_store(ws)
    with store.session() as s:  # the window passes
        later = now_shanghai() + auth.THROTTLE_WINDOW + dt.timedelta(seconds=1)
        assert auth.login(s, "cmp", PASSWORD, ip="10.0.0.7", now=later).user.name == "cmp"
    store.dispose()


def test_a_login_never_keeps_a_session_id_it_did_not_issue(ws: Workspace) -> None:
    with TestClient(create_app(ws), base_url="https://testserver") as c:
        login(c, "view")
        planted = c.cookies[COOKIE]
        login(c, "ops")
        assert c.cookies[COOKIE] != planted
    with TestClient(create_app(ws), base_url="https://testserver", cookies={COOKIE: planted}) as attacker:
        assert attacker.get("/api/v1/me").status_code == 401


def test_users_passwd_reads_stdin_and_only_self_or_admin(ws: Workspace) -> None:
    new = "another-" + PASSWORD
    r = _cli(ws, "users", "passwd", "view", "--as", "ops", stdin=new + "\n")
    assert r.exit_code == 2 and "admin" in r.output
    r = _cli(ws, "users", "passwd", "view", "--as", "view", stdin="short\n")
    assert r.exit_code == 2 and "at least" in r.output
    r = _cli(ws, "users", "passwd", "view", "--as", "view", stdin=new + "\n")
    assert r.exit_code == 0, r.output
    assert new not in r.output
    with TestClient(create_app(ws), base_url="https://testserver") as c:
        assert c.post("/api/v1/session", json={"name": "view", "password": PASSWORD}).status_code == 401
        assert login(c, "view", new)
    store = open_store(ws)
    with store.session() as s:
        entry = next(e for e in iter_audit(s, entity="user", entity_id="view") if e.action == "user.passwd")
        assert entry.actor == "view" and new not in str(entry.after)
        assert verify_audit(s).ok
    store.dispose()
    db_bytes = (ws.root / "panhuo.db").read_bytes() + (ws.root / "panhuo.db-wal").read_bytes() \
        if (ws.root / "panhuo.db-wal").exists() else (ws.root / "panhuo.db").read_bytes()
    assert new.encode() not in db_bytes


def test_api_keys_created_once_used_scoped_and_revoked(ws: Workspace) -> None:
    r = _cli(ws, "apikeys", "create", "crm-sync", "--user", "ops", "--scope", "write", "--as", "ops")
    assert r.exit_code == 2 and "admin" in r.output
    r = _cli(ws, "apikeys", "create", "crm-sync", "--user", "ops", "--scope", "write", "--as", "root")
    assert r.exit_code == 0, r.output
    write_key = next(w for w in r.stdout.split() if w.startswith(auth.KEY_PREFIX))
    r = _cli(ws, "apikeys", "create", "bi-read", "--user", "ops", "--scope", "read", "--as", "root")
    read_key = next(w for w in r.stdout.split() if w.startswith(auth.KEY_PREFIX))
    listing = _cli(ws, "apikeys", "list", "--as", "root")
    assert listing.exit_code == 0 and "crm-sync" in listing.output
    assert write_key not in listing.output and read_key not in listing.output

    new_pb = GOOD.replace(f"id: {IN_REVIEW}", "id: from-key")
    with TestClient(create_app(ws), base_url="https://testserver") as c:
        read_h = {"Authorization": f"Bearer {read_key}"}
        write_h = {"Authorization": f"Bearer {write_key}"}
        me = c.get("/api/v1/me", headers=read_h).json()
        assert me["via"] == "api_key" and me["scope"] == "read" and me["name"] == "ops"
        assert c.get("/api/v1/playbooks", headers=read_h).status_code == 200
        before = snapshot(ws)
        assert c.post(f"/api/v1/playbooks/{IN_REVIEW}/submit", headers=read_h).status_code == 403
        assert c.post("/api/v1/playbooks", headers=read_h, json={"yaml": new_pb}).status_code == 403
        assert snapshot(ws) == before
        r = c.post("/api/v1/playbooks", headers=write_h, json={"yaml": new_pb})  # no CSRF token for keys
        assert r.status_code == 201, r.text
        assert r.json()["versions"][0]["author"] == "ops"
        assert c.get("/api/v1/me", headers={"Authorization": "Bearer phk_not-a-key"}).status_code == 401
        assert c.get("/api/v1/me", headers={"Authorization": f"Basic {write_key}"}).status_code == 401

        store = open_store(ws)
        with store.session() as s:
            key_id = str(next(k.id for k, user in auth.list_api_keys(s) if k.name == "crm-sync" and user == "ops"))
        store.dispose()
        assert _cli(ws, "apikeys", "revoke", key_id, "--as", "root").exit_code == 0
        assert c.get("/api/v1/me", headers=write_h).status_code == 401
        assert _cli(ws, "apikeys", "revoke", key_id, "--as", "root").exit_code == 2
    store = open_store(ws)
    with store.session() as s:
        actions = [e.action for e in iter_audit(s, entity="api_key")]
        assert actions == ["apikey.revoke", "apikey.create", "apikey.create"]
        assert all(write_key not in str(e.after) for e in iter_audit(s))
    store.dispose()
    assert write_key.encode() not in (ws.root / "panhuo.db").read_bytes()


def test_a_write_key_still_has_only_its_users_roles(ws: Workspace) -> None:
    r = _cli(ws, "apikeys", "create", "viewer-write", "--user", "view", "--scope", "write", "--as", "root")
    key = next(w for w in r.stdout.split() if w.startswith(auth.KEY_PREFIX))
    with TestClient(create_app(ws), base_url="https://testserver") as c:
        before = snapshot(ws)
        r = c.post(f"/api/v1/playbooks/{IN_REVIEW}/approve", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 403 and "compliance" in r.json()["detail"]
        assert snapshot(ws) == before


def test_sessions_expire(ws: Workspace) -> None:
    store = open_store(ws)
    with store.session() as s:
        new = auth.login(s, "ops", PASSWORD, ip="127.0.0.1")
    with store.session() as s:
        assert auth.session_user(s, new.session_id).user.name == "ops"
        assert auth.session_user(s, new.session_id, now=new.expires_at) is None
        assert auth.session_user(s, "made-up") is None
    store.dispose()


def test_an_api_key_has_no_session_to_end(ws: Workspace) -> None:
    r = _cli(ws, "apikeys", "create", "ops-write", "--user", "ops", "--scope", "write", "--as", "root")
    key = next(w for w in r.stdout.split() if w.startswith(auth.KEY_PREFIX))
    with TestClient(create_app(ws), base_url="https://testserver") as c:
        before = snapshot(ws)
        r = c.delete("/api/v1/session", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 403 and "revoke" in r.json()["detail"]
        assert snapshot(ws) == before
        assert c.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_cached_key_lookups_stop_within_the_cache_time_after_a_revocation_elsewhere(ws: Workspace) -> None:
    """Reads reuse a key's lookup for AUTH_CACHE_SECONDS; a revocation by another process (the CLI here) ends
    the key's reads within that time, and a change request served by the app forgets every cached lookup."""
    import time

    from panhuo.service import deps

    r = _cli(ws, "apikeys", "create", "bi-cache", "--user", "view", "--scope", "read", "--as", "root")
    key = next(w for w in r.stdout.split() if w.startswith(auth.KEY_PREFIX))
    h = {"Authorization": f"Bearer {key}"}
    deps.forget_authentications()
    with TestClient(create_app(ws), base_url="https://testserver") as c:
        assert c.get("/api/v1/me", headers=h).status_code == 200  # looked up, then cached
        assert any(v[1].key_id is not None for v in deps._auth_cache.values())
        assert all(key not in str(k) for k in deps._auth_cache)  # keyed by the hash, never the secret
        store = open_store(ws)
        with store.session() as s:
            key_id = str(next(k.id for k, user in auth.list_api_keys(s) if k.name == "bi-cache"))
        store.dispose()
        revoked_at = time.monotonic()
        assert _cli(ws, "apikeys", "revoke", key_id, "--as", "root").exit_code == 0
        while c.get("/api/v1/me", headers=h).status_code == 200:
            assert time.monotonic() - revoked_at < deps.AUTH_CACHE_SECONDS + 1.0, "revoked key still reads"
            time.sleep(0.05)
        assert c.get("/api/v1/playbooks", headers=h).status_code == 401

        # a user disabled through the API: the app forgets its cached lookups at once
        view_key = next(w for w in _cli(ws, "apikeys", "create", "bi-2", "--user", "view", "--scope", "read",
                                        "--as", "root").stdout.split() if w.startswith(auth.KEY_PREFIX))
        vh = {"Authorization": f"Bearer {view_key}"}
        assert c.get("/api/v1/me", headers=vh).status_code == 200
        csrf = login(c, "root")
        assert c.post("/api/v1/users/view/disable", headers={"X-CSRF-Token": csrf}).status_code == 200
        assert c.get("/api/v1/me", headers=vh).status_code == 401
