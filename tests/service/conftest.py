"""Service fixtures: a template workspace built once (data, users with passwords, playbooks, a run), copied per test.

Data: a generated brokerage of :data:`N_CUSTOMERS` customers as of :data:`AS_OF` (ingested, account status
with its 12-month backfill, tags). Before the ingest two extra columns are added to ``customers`` (``name``
and ``id_number``: personal data the API must mask) and the advisors are set: :data:`OWN` and
:data:`OWN2` are customers of the advisor ``adv``, :data:`OTHER` of ``adv-other``.

Users (one role each, plus ``cmp_ops`` with two): ``root`` admin, ``ops`` and ``ops2`` operators, ``cmp``
compliance, ``cmp_ops`` compliance and operator, ``view`` viewer, ``adv`` advisor, ``gone`` a disabled
operator. Playbooks: ``ipo-day-wake-sleeping`` in review (v1 by ``ops``), ``ipo-draft`` in draft
(v1 by ``ops``), :data:`APPROVED` approved and :data:`LIVE` (the starter ``rescue-effective-to-sleeping``, with content) live. One
finished run of the playbook in review with its funnel; for :data:`OWN` a sent message with a delivery
receipt and an SMS reply, an opt-out, an issued benefit and a call task (task 1, advisor ``adv``); for
:data:`OTHER` a call task of ``adv-other`` (task 2). The passwords are test values generated per session,
never real credentials.
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

__all__ = ["APPROVED", "AS_OF", "CAMPAIGN", "DRAFT", "GOOD", "IN_REVIEW", "LIVE", "NAME", "OTHER", "OWN", "OWN2", "PASSWORD", "PERSON_ID",
           "PHONE", "ROLE_USER", "login", "snapshot"]

IN_REVIEW = "ipo-day-wake-sleeping"
DRAFT = "ipo-draft"
LIVE = "rescue-effective-to-sleeping"
APPROVED = "ipo-approved"
CAMPAIGN = "sms-2026q2-wakeup"  # the generated brokerage's past campaign (contact_history)
AS_OF = dt.date(2026, 11, 23)
N_CUSTOMERS = 200
OWN, OWN2, OTHER = "C00000001", "C00000002", "C00000003"
NAME = "张三丰"
PERSON_ID = "110101199003071234"
PHONE = "13812345678"
REPO = Path(__file__).resolve().parents[2]
PASSWORD = "pw-" + secrets.token_hex(8)  # generated per test session
ROLE_USER = {"viewer": "view", "operator": "ops", "compliance": "cmp", "advisor": "adv", "admin": "root"}


def _loaded(text: str) -> LoadedPlaybook:
    return LoadedPlaybook(validate_playbook(text, "t.yaml"), text, "t.yaml")


def _data(ws: Workspace, folder: Path) -> None:
    """Generate, adjust ``customers`` (names, ID numbers, advisors), ingest, status with history, tags."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from panhuo.contract.ingest import ingest
    from panhuo.engines import connect
    from panhuo.generate import generate_brokerage
    from panhuo.status.history import compute_status
    from panhuo.tags import compute_tags

    generate_brokerage(folder, customers=N_CUSTOMERS, seed=11, as_of=AS_OF)
    path = folder / "customers.parquet"
    t = pq.read_table(path)
    ids = t["customer_id"].to_pylist()
    advisors = [{OWN: "adv", OWN2: "adv", OTHER: "adv-other"}.get(c, a) for c, a in zip(ids, t["advisor_id"].to_pylist())]
    phones = [PHONE if c == OWN else p for c, p in zip(ids, t["phone"].to_pylist())]
    t = t.set_column(t.schema.get_field_index("advisor_id"), "advisor_id", pa.array(advisors, pa.string()))
    t = t.set_column(t.schema.get_field_index("phone"), "phone", pa.array(phones, pa.string()))
    t = t.append_column("name", pa.array([NAME if c == OWN else f"客户{i}" for i, c in enumerate(ids)], pa.string()))
    t = t.append_column("id_number", pa.array([PERSON_ID if c == OWN else f"{110101199001010000 + i}"
                                               for i, c in enumerate(ids)], pa.string()))
    pq.write_table(t, path)
    con = connect(ws.settings.engine, ws.tmp_dir)
    ingest(ws, folder, con=con)
    compute_status(ws, con, AS_OF, backfill=True)
    compute_tags(ws, con, AS_OF)


def _contacts(s: object) -> None:
    """Two runs of the live playbook: a sent SMS with its receipt, a reply, an opt-out, a benefit; call tasks."""
    from panhuo.benefits.models import BenefitStock, IssuedBenefit
    from panhuo.delivery.events import DeliveryEvent, OptOut
    from panhuo.delivery.models import CallTask
    from panhuo.runs.models import ContactLog, OutboxMessage
    from panhuo.runs.outbox import idempotency_key
    from panhuo.store.models import SHANGHAI

    at = dt.datetime(2026, 11, 23, 10, 30, tzinfo=SHANGHAI)
    runs = [Run(playbook_id=LIVE, playbook_version=1, run_key=key, as_of=AS_OF, state="done", candidates=2, holdout=0,
                sends=2, funnel={"stages": [["candidates", 2], ["sends", 2]]}) for key in ("2026-11-23", "calls")]
    s.add_all(runs)  # type: ignore[attr-defined]
    s.flush()  # type: ignore[attr-defined]
    run = runs[0]
    # one message per customer per run, keyed as the run engine keys them
    msgs = [OutboxMessage(run_id=r.id, playbook_id=LIVE, customer_id=c, channel=ch, content=text,
                          idempotency_key=idempotency_key(LIVE, c, r.run_key), status=st, send_after=at,
                          sent_at=at if st == "sent" else None, receipt_status="delivered" if st == "sent" else None)
            for r, c, ch, text, st in [(runs[0], OWN, "sms", "【盘活证券】市场周报已为您准备好 回T退订", "sent"),
                                       (runs[1], OWN, "call", "请致电客户介绍市场周报", "sent"),
                                       (runs[1], OTHER, "call", "请致电客户介绍市场周报", "sent"),
                                       (runs[0], OWN2, "app_push", "市场周报已为您准备好", "pending")]]
    s.add_all(msgs)  # type: ignore[attr-defined]
    s.flush()  # type: ignore[attr-defined]
    s.add_all([  # type: ignore[attr-defined]
        ContactLog(customer_id=OWN, channel="sms", sent_at=at, playbook_id=LIVE),
        DeliveryEvent(ref=f"msg:{msgs[0].id}", event="delivered", outbox_id=msgs[0].id, customer_id=OWN, channel="sms",
                      at=at, raw="{}"),
        DeliveryEvent(ref="reply:abc", event="reply", outbox_id=None, customer_id=OWN, channel="sms", at=at,
                      raw='{"phone": "138****5678", "text": "T"}'),
        OptOut(customer_id=OWN, channel="sms", source="sms_reply", text="T", at=at),
        IssuedBenefit(run_id=run.id, customer_id=OWN, benefit_id="market-weekly-news", unit_cost_fen=0, issued_at=at),
        BenefitStock(benefit_id="market-weekly-news", issued=1, spent_fen=0),
        CallTask(outbox_id=msgs[1].id, playbook_id=LIVE, customer_id=OWN, advisor_id="adv", due_date=AS_OF,
                 script="请致电客户介绍市场周报"),
        CallTask(outbox_id=msgs[2].id, playbook_id=LIVE, customer_id=OTHER, advisor_id="adv-other", due_date=AS_OF,
                 script="请致电客户介绍市场周报"),
    ])


@pytest.fixture(scope="session")
def template_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("service-template")
    root = base / "ws"
    ws = Workspace.open(root)
    _data(ws, base / "data")
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
            live = (REPO / "playbooks" / f"{LIVE}.yaml").read_text(encoding="utf-8")
            repo.add_version(s, _loaded(live), actor="ops")
            repo.submit(s, LIVE, actor="ops")
            repo.approve(s, LIVE, actor="cmp")
            repo.activate(s, LIVE, actor="ops")
            repo.add_version(s, _loaded(GOOD.replace(f"id: {IN_REVIEW}", f"id: {APPROVED}")), actor="ops")
            repo.submit(s, APPROVED, actor="ops")
            repo.approve(s, APPROVED, actor="cmp")
        with store.session() as s:
            s.add(Run(playbook_id=IN_REVIEW, playbook_version=1, run_key="2026-11-20", as_of=dt.date(2026, 11, 20),
                      state="done", candidates=1000, holdout=100, sends=850,
                      funnel={"stages": [["candidates", 1000], ["after consent", 950], ["holdout", 100],
                                         ["sends", 850]]}))
        with store.session() as s:
            _contacts(s)
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
