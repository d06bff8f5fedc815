"""Delivery fixtures: a workspace (SQLite and PostgreSQL) pointing at a loopback fake provider, seeded outboxes.

``seed_outbox`` writes a user, a playbook (segment ``sleeping``), a run and outbox rows straight into
the store; ``write_customers`` makes a warehouse load with the ``customers`` table (phone, advisor).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from panhuo.config import DeliveryProvider, Workspace
from panhuo.runs.models import OutboxMessage, Run
from panhuo.store import open_store
from panhuo.store.models import Playbook, PlaybookVersion, User, now_shanghai
from panhuo.warehouse import TableRecord, Warehouse
from tests.delivery._fake_provider import FakeProvider
from tests.store._pg import pg_database, pg_url, store_url  # noqa: F401  (fixtures)

__all__ = ["CONTENT", "TOKEN", "deliver_ws", "key_of", "seed_outbox", "write_customers"]

TOKEN = "tok-123"
ENV = {"PANHUO_SIM_TOKEN": TOKEN}
CONTENT = {
    "app_push": {"title": "好久不见", "body": "新股申购日，来看看吧"},
    "sms": {"text": "【盘活证券】新股申购日，来看看吧 回T退订"},
    "wechat": {"template_id": "tpl-1", "data": {"first": "您好", "remark": "来看看"}},
    "call": {"script": "您好，我是您的客户经理……"},
}


def key_of(customer_id: str, channel: str, run_key: str = "r1") -> str:
    return hashlib.sha256(f"p\x1f{customer_id}\x1f{channel}\x1f{run_key}".encode()).hexdigest()


def deliver_ws(root: Path, url: str, provider_url: str, **delivery: object) -> Workspace:
    ws = Workspace.open(root)
    d = ws.settings.delivery.model_copy(update={
        "providers": {"sim": DeliveryProvider(base_url=provider_url, token_env="PANHUO_SIM_TOKEN", timeout=2.0,
                                              rate_per_second=2000, max_attempts=4)},
        "backoff_base": 0.02, "backoff_max": 0.2, "max_wait": 5.0, "poll_seconds": 0.1, **delivery})
    return ws.save(ws.settings.model_copy(update={"store_url": url, "delivery": d}))


def seed_outbox(ws: Workspace, rows: Sequence[tuple[str, str]], *, send_after: dt.datetime | None = None,
                run_key: str = "r1") -> list[str]:
    """Outbox rows (customer id, channel) with the channel's content; returns their idempotency keys."""
    store = open_store(ws)
    at = send_after or now_shanghai() - dt.timedelta(minutes=1)
    keys = []
    try:
        with store.session() as s:
            if s.scalar(select(User).where(User.name == "u")) is None:
                s.add(User(name="u", display_name="u"))
                s.flush()
                s.add(Playbook(id="p", name="测试", state="live", current_version=1, live_version=1, created_by="u"))
                s.flush()
                s.add(PlaybookVersion(playbook_id="p", version=1, yaml_text="", parsed={"user": {"segment": "sleeping"}},
                                      content_hash="h", author="u"))
            run = Run(playbook_id="p", playbook_version=1, run_key=run_key, as_of=at.date(), state="done")
            s.add(run)
            s.flush()
            for cid, ch in rows:
                k = key_of(cid, ch, run_key)
                keys.append(k)
                s.add(OutboxMessage(run_id=run.id, playbook_id="p", customer_id=cid, channel=ch,
                                    content=json.dumps(CONTENT[ch], ensure_ascii=False, separators=(",", ":")),
                                    idempotency_key=k, status="pending", send_after=at))
    finally:
        store.dispose()
    return keys


def store_rows(ws: Workspace, stmt) -> list:
    """All rows of one query against the workspace's store (opened and disposed here)."""
    store = open_store(ws)
    try:
        with store.session() as s:
            return s.execute(stmt).all()
    finally:
        store.dispose()


def write_customers(ws: Workspace, rows: Sequence[dict]) -> None:
    """A warehouse load holding only ``customers`` (customer_id, phone, advisor_id)."""
    wh = Warehouse(ws.warehouse_dir)
    tx = wh.begin_load("test")
    table = pa.Table.from_pylist(list(rows), schema=pa.schema([("customer_id", pa.string()), ("phone", pa.string()),
                                                              ("advisor_id", pa.string())]))
    pq.write_table(table, tx.path_for("customers"))
    tx.record(TableRecord(name="customers", rows=len(rows), file="customers.parquet", source="test",
                          source_format="parquet"))
    tx.commit()


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with FakeProvider(token=TOKEN) as p:
        yield p


@pytest.fixture
def dws(tmp_path: Path, store_url: str, provider: FakeProvider) -> Workspace:  # noqa: F811
    """A workspace on SQLite and on PostgreSQL whose provider ``sim`` is the fake provider."""
    return deliver_ws(tmp_path / "ws", store_url, provider.url)


@pytest.fixture
def sqlite_dws(tmp_path: Path, provider: FakeProvider) -> Workspace:
    return deliver_ws(tmp_path / "ws", f"sqlite:///{tmp_path / 'ws' / 'panhuo.db'}", provider.url)

