"""Triggers in the run engine: a playbook that is not due is refused (or forced), re-entry policies on
the trading calendar, ``run --due`` over every live playbook, the scheduler, and failed runs that resume."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from panhuo.config import Workspace
from panhuo.runs import engine
from panhuo.runs.engine import NotDue, due_playbooks, run_due, run_playbook
from panhuo.runs.models import Assignment, OutboxMessage, Run
from panhuo.store import open_store
from panhuo.store.models import AuditEntry
from tests.conftest import PANHUO
from tests.runs.conftest import AS_OF, NOW, make_live

MON, WED = dt.date(2026, 2, 2), dt.date(2026, 2, 4)  # AS_OF is Friday 30 January 2026


def _at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=NOW.tzinfo)


def _count(ws: Workspace, model: type, **where: object) -> int:
    store = open_store(ws)
    try:
        with store.session() as s:
            q = select(func.count()).select_from(model)
            for k, v in where.items():
                q = q.where(getattr(model, k) == v)
            return int(s.execute(q).scalar_one())
    finally:
        store.dispose()


def _entered(ws: Workspace, run_id: int) -> int:
    store = open_store(ws)
    try:
        with store.session() as s:
            return int(s.execute(select(func.count()).select_from(Assignment).where(
                Assignment.run_id == run_id, Assignment.grp.in_(("treated", "holdout")))).scalar_one())
    finally:
        store.dispose()


def _monthly(ws: Workspace, tmp: Path, pid: str = "monthly") -> str:
    make_live(ws, tmp, pid=pid, live=False)
    text = (tmp / f"{pid}.yaml").read_text(encoding="utf-8").replace(
        'schedule: every_trading_day\n  at: "10:00"', "schedule: first_trading_day_of_month")
    (tmp / f"{pid}.yaml").write_text(text, encoding="utf-8")
    from panhuo.playbooks import repository
    from panhuo.playbooks.loader import load_playbook

    store = open_store(ws)
    try:
        with store.session() as s:
            repository.add_version(s, load_playbook(tmp / f"{pid}.yaml"), actor="ops")
        for step, who in ((repository.submit, "ops"), (repository.approve, "cmp"), (repository.activate, "ops")):
            with store.session() as s:
                step(s, pid, actor=who)
    finally:
        store.dispose()
    return pid


def test_a_playbook_not_due_is_refused_unless_forced(sqlite_ws: Workspace, tmp_path: Path) -> None:
    pid = _monthly(sqlite_ws, tmp_path)
    with pytest.raises(NotDue, match=r"not the first trading day of the month \(that was 2026-01-05\)"):
        run_playbook(sqlite_ws, pid, AS_OF, now=NOW)
    assert _count(sqlite_ws, Run) == 0 and _count(sqlite_ws, OutboxMessage) == 0
    report = run_playbook(sqlite_ws, pid, AS_OF, now=NOW, force=True)
    assert report.trigger.startswith("does not fire: not the first trading day")
    assert report.written > 0
    mon = run_playbook(sqlite_ws, pid, MON, now=_at(MON))  # Monday 2 February: the first trading day
    assert mon.trigger == "the first trading day of the month"


def test_reentry_once_ever(sqlite_ws: Workspace, tmp_path: Path) -> None:
    pid = make_live(sqlite_ws, tmp_path, reentry="once_ever")
    first = run_playbook(sqlite_ws, pid, AS_OF, now=NOW)
    entered = _entered(sqlite_ws, first.run_id)
    assert entered > 0
    again = run_playbook(sqlite_ws, pid, MON, now=_at(MON))
    assert again.reasons.get("reentry_once_ever") == entered
    assert _entered(sqlite_ws, again.run_id) == 0
    later = run_playbook(sqlite_ws, pid, WED, now=_at(WED))
    assert later.reasons.get("reentry_once_ever") == entered


def test_reentry_every_n_trading_days_counts_on_the_exchange_calendar(sqlite_ws: Workspace, tmp_path: Path) -> None:
    pid = make_live(sqlite_ws, tmp_path, reentry="{policy: every_n_trading_days, n: 3}")
    first = run_playbook(sqlite_ws, pid, AS_OF, now=NOW)
    entered = _entered(sqlite_ws, first.run_id)
    # Monday is 1 trading day after Friday (the weekend does not count): too soon
    mon = run_playbook(sqlite_ws, pid, MON, now=_at(MON))
    assert mon.reasons.get("reentry_too_soon") == entered
    # Wednesday 4 February is 3 trading days after Friday 30 January: allowed again
    wed = run_playbook(sqlite_ws, pid, WED, now=_at(WED))
    assert "reentry_too_soon" not in wed.reasons
    assert _entered(sqlite_ws, wed.run_id) == entered


def test_reentry_every_time_never_blocks(sqlite_ws: Workspace, tmp_path: Path) -> None:
    pid = make_live(sqlite_ws, tmp_path)
    first = run_playbook(sqlite_ws, pid, AS_OF, now=NOW)
    mon = run_playbook(sqlite_ws, pid, MON, now=_at(MON))
    assert not any(r.startswith("reentry") for r in mon.reasons)
    assert _entered(sqlite_ws, mon.run_id) == _entered(sqlite_ws, first.run_id)


def test_due_lists_every_live_playbook_and_runs_the_due_ones(sqlite_ws: Workspace, tmp_path: Path) -> None:
    daily = make_live(sqlite_ws, tmp_path, pid="daily")
    monthly = _monthly(sqlite_ws, tmp_path)
    make_live(sqlite_ws, tmp_path, pid="draft-only", live=False)
    early = {r.playbook_id: r for r in due_playbooks(sqlite_ws, AS_OF, _at(AS_OF, 9))}
    assert set(early) == {daily, monthly}  # only live playbooks
    assert early[daily].state == "waiting" and "waiting until 10:00" in early[daily].why
    assert early[monthly].state == "not_due"
    results = {r.playbook_id: r for r in run_due(sqlite_ws, AS_OF, now=NOW)}
    assert results[daily].state == "ran" and results[daily].report is not None
    assert results[monthly].state == "not_due" and results[monthly].report is None
    assert _count(sqlite_ws, OutboxMessage) == results[daily].report.written > 0
    # a past as-of date is due whatever the clock says; a second call finds it done
    again = {r.playbook_id: r for r in run_due(sqlite_ws, AS_OF, now=_at(AS_OF, 9))}
    assert again[daily].state == "done"
    assert _count(sqlite_ws, Run) == 1


def test_a_failing_run_is_marked_failed_and_resumes(sqlite_ws: Workspace, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ws = sqlite_ws.save(sqlite_ws.settings.model_copy(
        update={"runs": sqlite_ws.settings.runs.model_copy(update={"batch_size": 40})}))
    pid = make_live(ws, tmp_path)
    real, calls = engine.sqlite_insert_ignore, {"n": 0}

    def flaky(session, table, cols, rows):  # noqa: ANN001
        if table.name == "outbox":
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError("disk full")
        return real(session, table, cols, rows)

    monkeypatch.setattr(engine, "sqlite_insert_ignore", flaky)
    with pytest.raises(OSError, match="disk full"):
        run_playbook(ws, pid, AS_OF, now=NOW)
    store = open_store(ws)
    try:
        with store.session() as s:
            run = s.execute(select(Run)).scalar_one()
            assert run.state == "failed" and run.funnel["error"] == "OSError: disk full"
            assert s.execute(select(AuditEntry).where(AuditEntry.action == "run.fail")).scalar_one()
    finally:
        store.dispose()
    partial = _count(ws, OutboxMessage)
    monkeypatch.setattr(engine, "sqlite_insert_ignore", real)
    report = run_playbook(ws, pid, AS_OF, now=NOW)
    assert report.skipped == 80 and _count(ws, OutboxMessage) == dict(report.funnel)["sends"] > partial
    assert _count(ws, Run, state="done") == 1


def test_cli_run_due_and_scheduler_once(sqlite_ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from panhuo.cli.main import app

    make_live(sqlite_ws, tmp_path, pid="daily")
    runner = CliRunner()
    env = {"PANHUO_HOME": str(sqlite_ws.root), "COLUMNS": "200"}
    bad = subprocess.run([PANHUO, "-w", str(sqlite_ws.root), "run", "daily", "--due"], capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 2 and "not both" in bad.stderr + bad.stdout
    res = runner.invoke(app, ["run", "--due", "--as-of", "2026-01-31", "--as", "ops"], env=env)
    assert res.exit_code == 0, res.output
    assert "not_due" in res.output and "not a trading day" in res.output
    res = runner.invoke(app, ["run", "--due", "--as-of", "2026-01-30", "--as", "ops"], env=env)
    assert res.exit_code == 0, res.output
    assert "ran" in res.output and "sends" in res.output
    # the scheduler checks today (Asia/Shanghai); pin "today" to Friday 30 January 2026, 10:30
    monkeypatch.setattr("panhuo.store.models.now_shanghai", lambda: _at(AS_OF).replace(minute=30))
    res = runner.invoke(app, ["scheduler", "--once"], env=env)
    assert res.exit_code == 0, res.output
    assert "done" in res.output and "scheduler stopped" in res.output
