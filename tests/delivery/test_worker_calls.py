"""Call channel: messages become call tasks for the customer's advisor, due the next trading day; the CLI.

``panhuo calls list --advisor`` shows an advisor's tasks and ``panhuo calls outcome`` records what came
of a call (audited). Also ``panhuo deliver --once`` end to end in a subprocess.
"""

from __future__ import annotations

import os
import subprocess

from sqlalchemy import select

from panhuo.calendar.service import calendar_for
from panhuo.config import Workspace
from panhuo.delivery.models import CallTask, MessageArchive
from panhuo.delivery.worker import DeliveryWorker
from panhuo.runs.models import ContactLog, OutboxMessage
from panhuo.store import open_store
from panhuo.store.models import AuditEntry, now_shanghai
from tests.conftest import PANHUO
from tests.delivery._fake_provider import FakeProvider
from tests.delivery.conftest import ENV, seed_outbox, write_customers

__all__: list[str] = []


def _cli(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **ENV, "PANHUO_HOME": str(ws.root), "COLUMNS": "200"}
    return subprocess.run([PANHUO, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_call_messages_become_advisor_tasks_and_outcomes_are_recorded(sqlite_dws: Workspace,
                                                                     provider: FakeProvider) -> None:
    ws = sqlite_dws
    write_customers(ws, [{"customer_id": "c1", "phone": "13800001111", "advisor_id": "adv-7"},
                         {"customer_id": "c2", "phone": None, "advisor_id": "adv-9"},
                         {"customer_id": "c3", "phone": "13800003333", "advisor_id": None}])
    seed_outbox(ws, [("c1", "call"), ("c2", "call"), ("c3", "call"), ("c1", "app_push")])
    summary = DeliveryWorker(ws, env=ENV).run()
    assert summary.channels["call"].tasked == 3 and summary.sent == 1
    assert provider.stats()["requests"] == 1  # calls are not sent to any provider
    due = calendar_for(ws).next_trading_day(now_shanghai().date())
    store = open_store(ws)
    try:
        with store.session() as s:
            tasks = {t.customer_id: t for t in s.scalars(select(CallTask))}
            assert {c: t.advisor_id for c, t in tasks.items()} == {"c1": "adv-7", "c2": "adv-9", "c3": None}
            assert all(t.due_date == due and t.outcome is None and "客户经理" in t.script for t in tasks.values())
            assert set(s.scalars(select(OutboxMessage.status))) == {"tasked", "sent"}
            calls = s.scalars(select(ContactLog).where(ContactLog.channel == "call")).all()
            assert len(calls) == 3  # the call cap counts tasks
            arch = s.scalars(select(MessageArchive).where(MessageArchive.customer_id == "c1",
                                                          MessageArchive.channel == "call")).one()
            assert arch.recipient == "advisor:adv-7" and arch.provider == "advisor"
            task_id = tasks["c1"].id
    finally:
        store.dispose()
    listed = _cli(ws, "calls", "list", "--advisor", "adv-7")
    assert listed.returncode == 0, listed.stderr
    assert "c1" in listed.stdout and "c2" not in listed.stdout and due.isoformat() in listed.stdout
    done = _cli(ws, "calls", "outcome", str(task_id), "interested", "--note", "想了解新股申购")
    assert done.returncode == 0, done.stderr
    bad = _cli(ws, "calls", "outcome", str(task_id), "maybe")
    assert bad.returncode == 2 and "reached, no_answer, refused, interested" in bad.stderr
    store = open_store(ws)
    try:
        with store.session() as s:
            t = s.get(CallTask, task_id)
            assert t is not None and t.outcome == "interested" and t.note == "想了解新股申购"
            assert t.outcome_at is not None and t.outcome_by == "adv-7"
            audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "call.outcome")).one()
            assert audit.after == {"outcome": "interested", "note": "想了解新股申购"}
    finally:
        store.dispose()
    open_only = _cli(ws, "calls", "list", "--open")
    assert "c2" in open_only.stdout and "c1" not in open_only.stdout


def test_deliver_cli_once_and_missing_credential(sqlite_dws: Workspace, provider: FakeProvider) -> None:
    ws = sqlite_dws
    seed_outbox(ws, [("c1", "app_push"), ("c2", "wechat")])
    env = {k: v for k, v in os.environ.items() if k != "PANHUO_SIM_TOKEN"}
    missing = subprocess.run([PANHUO, "-w", str(ws.root), "deliver", "--once"], env=env, capture_output=True,
                             text=True, timeout=120, check=False)
    assert missing.returncode == 2 and "PANHUO_SIM_TOKEN" in missing.stderr
    assert provider.stats()["requests"] == 0
    ok = _cli(ws, "deliver", "--once", "--workers-id", "cli")
    assert ok.returncode == 0, ok.stderr
    assert "app_push" in ok.stdout and "wechat" in ok.stdout and "cli" in ok.stdout
    assert provider.stats()["unique_keys"] == 2
