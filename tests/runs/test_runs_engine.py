"""The run engine on SQLite and PostgreSQL: only live playbooks run; reruns write nothing twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from panhuo.config import Workspace
from panhuo.playbooks.errors import LifecycleError
from panhuo.runs.engine import dry_run, run_playbook
from panhuo.runs.models import Assignment, Decision, OutboxMessage, Run
from panhuo.runs.outbox import idempotency_key
from panhuo.store import open_store
from tests.runs.conftest import AS_OF, NOW, make_live

__all__: list[str] = []


def _count(ws: Workspace, model: type) -> int:
    store = open_store(ws)
    try:
        with store.session() as s:
            return int(s.execute(select(func.count()).select_from(model)).scalar_one())
    finally:
        store.dispose()


def test_a_playbook_that_is_not_live_is_refused_and_nothing_written(run_ws: Workspace, tmp_path: Path) -> None:
    pid = make_live(run_ws, tmp_path, live=False)
    with pytest.raises(LifecycleError, match="is draft, not live"):
        run_playbook(run_ws, pid, AS_OF, now=NOW)
    with pytest.raises(LifecycleError, match="no playbook"):
        run_playbook(run_ws, "no-such-playbook", AS_OF, now=NOW)
    for model in (Run, Decision, Assignment, OutboxMessage):
        assert _count(run_ws, model) == 0
    assert dry_run(run_ws, pid, AS_OF, now=NOW).funnel[0] == ("candidates", 180)  # a dry run may preview a draft


def test_run_writes_once_and_records_the_version(run_ws: Workspace, tmp_path: Path) -> None:
    pid = make_live(run_ws, tmp_path)
    ws = run_ws.save(run_ws.settings.model_copy(update={"runs": run_ws.settings.runs.model_copy(
        update={"batch_size": 7})}))
    first = run_playbook(ws, pid, AS_OF, now=NOW)
    again = run_playbook(ws, pid, AS_OF, now=NOW)
    sends = dict(first.funnel)["sends"]
    assert _count(ws, OutboxMessage) == sends and again.written == 0
    assert _count(ws, Decision) == 180
    store = open_store(ws)
    try:
        with store.session() as s:
            run = s.execute(select(Run)).scalar_one()
            assert (run.playbook_version, run.state, run.sends, run.run_key) == (1, "done", sends, "2026-01-30")
            msg = s.execute(select(OutboxMessage).order_by(OutboxMessage.customer_id)).scalars().first()
            assert msg is not None and msg.idempotency_key == idempotency_key(pid, msg.customer_id, "2026-01-30")
            assert msg.status == "pending" and msg.content
            props = {a.grp: a.propensity for a in s.execute(select(Assignment)).scalars()}
            assert props["holdout"] == pytest.approx(0.2) and props["treated"] == pytest.approx(0.8)
    finally:
        store.dispose()


def test_rerun_after_the_candidate_set_changed_still_writes_each_customer_once(
    sqlite_ws: Workspace, tmp_path: Path
) -> None:
    from tests.runs.conftest import tag_rows, write_tags

    pid = make_live(sqlite_ws, tmp_path, holdout=0.0)
    ws = sqlite_ws.save(sqlite_ws.settings.model_copy(update={"runs": sqlite_ws.settings.runs.model_copy(
        update={"global_control_share": 0.0, "max_per_day": 9})}))
    run_playbook(ws, pid, AS_OF, now=NOW)
    rows = tag_rows()
    rows += [{**rows[0], "customer_id": f"a{i:03d}"} for i in range(15)]  # new customers sorting first
    write_tags(ws, rows)
    report = run_playbook(ws, pid, AS_OF, now=NOW)
    assert report.skipped == 0  # the old prefix no longer lines up: start over, ignoring existing rows
    assert _count(ws, OutboxMessage) == dict(report.funnel)["sends"] == 195
    assert _count(ws, Decision) == 195
