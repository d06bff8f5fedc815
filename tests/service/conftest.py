"""Service fixtures: a template workspace built once (users with passwords, playbooks, a run), copied per test.

Users (one role each, plus ``cmp_ops`` with two): ``root`` admin, ``ops`` and ``ops2`` operators, ``cmp``
compliance, ``cmp_ops`` compliance and operator, ``view`` viewer, ``adv`` advisor, ``gone`` a disabled
operator. Playbooks: ``ipo-day-wake-sleeping`` in review (v1 by ``ops``) and ``ipo-draft`` in draft
(v1 by ``ops``). One finished run of the playbook in review with its funnel. The passwords are test
values generated per session, never real credentials.
"""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from panhuo.config import Workspace
from panhuo.playbooks import repository as repo
from panhuo.playbooks.loader import LoadedPlaybook, validate_playbook
from panhuo.runs.models import Run
from panhuo.service.app import create_app
from panhuo.service.auth import set_password
from panhuo.store import add_user, disable_user, open_store
from tests.playbooks.test_playbook_schema import GOOD

__all__ = ["DRAFT", "GOOD", "IN_REVIEW", "PASSWORD", "ROLE_USER", "login", "snapshot"]

IN_REVIEW = "ipo-day-wake-sleeping"
DRAFT = "ipo-draft"
PASSWORD = "pw-" + secrets.token_hex(8)  # generated per test session
ROLE_USER = {"viewer": "view", "operator": "ops", "compliance": "cmp", "advisor": "adv", "admin": "root"}


def _loaded(text: str) -> LoadedPlaybook:
    return LoadedPlaybook(validate_playbook(text, "t.yaml"), text, "t.yaml")


@pytest.fixture(scope="session")
def template_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("service-template") / "ws"
    ws = Workspace.open(root)
    store = open_store(ws)
    try:
        with store.session() as s:
            add_user(s, "root", ["admin"])
            for name, roles in [("ops", ["operator"]), ("ops2", ["operator"]), ("cmp", ["compliance"]),
                                ("cmp_ops", ["compliance", "operator"]), ("view", ["viewer"]), ("adv", ["advisor"]),
                                ("gone", ["operator"])]:
                add_user(s, name, roles, actor="root")
        with store.session() as s:
            for name in ("root", "ops", "ops2", "cmp", "cmp_ops", "view", "adv", "gone"):
                set_password(s, name, PASSWORD, actor="root")
            disable_user(s, "gone", actor="root")
        with store.session() as s:
            repo.add_version(s, _loaded(GOOD), actor="ops")
            repo.submit(s, IN_REVIEW, actor="ops")
            repo.add_version(s, _loaded(GOOD.replace(f"id: {IN_REVIEW}", f"id: {DRAFT}")), actor="ops")
        with store.session() as s:
            s.add(Run(playbook_id=IN_REVIEW, playbook_version=1, run_key="2026-11-20", as_of=dt.date(2026, 11, 20),
                      state="done", candidates=1000, holdout=100, sends=850,
                      funnel={"stages": [["candidates", 1000], ["after consent", 950], ["holdout", 100],
                                         ["sends", 850]]}))
    finally:
        store.dispose()
    return root


@pytest.fixture
def ws(template_ws: Path, tmp_path: Path) -> Workspace:
    """A private copy of the template workspace."""
    target = tmp_path / "ws"
    shutil.copytree(template_ws, target)
    return Workspace.open(target, create=False)


@pytest.fixture
def client(ws: Workspace) -> Iterator[TestClient]:
    with TestClient(create_app(ws), base_url="https://testserver") as c:
        yield c


def login(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Log ``name`` in on ``client`` (cookie kept by the client); returns the CSRF token."""
    r = client.post("/api/v1/session", json={"name": name, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["csrf_token"]


def snapshot(ws: Workspace) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of the workspace's store (SQLite), sorted: equal snapshots mean nothing was written."""
    db = ws.root / "panhuo.db"
    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        conn.close()
