"""SIGKILL at random points, five times, then a rerun: exactly one outbox row per (customer, playbook run).

A real ``panhuo run`` subprocess is killed with SIGKILL (no cleanup, no atexit, mid-transaction)
at random moments, on SQLite and on the PostgreSQL server at 127.0.0.1:5432 (its own test database,
created and dropped like tests/store does). After the final, uninterrupted rerun the outbox holds one
row per treated customer, no customer twice, and every candidate has exactly one decision.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

from sqlalchemy import func, select

from panhuo.config import Workspace
from panhuo.runs.engine import dry_run
from panhuo.runs.models import Decision, OutboxMessage, Run
from panhuo.store import open_store
from tests.conftest import PANHUO
from tests.runs.conftest import AS_OF, make_live, tag_rows, write_tags

__all__: list[str] = []

CUSTOMERS = 30_000
KILLS = 5
BATCH = 150


def _counts(ws: Workspace) -> tuple[int, int, int]:
    store = open_store(ws)
    try:
        with store.session() as s:
            rows = int(s.execute(select(func.count()).select_from(OutboxMessage)).scalar_one())
            people = int(s.execute(select(func.count(func.distinct(OutboxMessage.customer_id)))).scalar_one())
            decisions = int(s.execute(select(func.count()).select_from(Decision)).scalar_one())
            return rows, people, decisions
    finally:
        store.dispose()


def _decisions(ws: Workspace) -> int:
    store = open_store(ws)
    try:
        with store.session() as s:
            return int(s.execute(select(func.count()).select_from(Decision)).scalar_one())
    finally:
        store.dispose()


def _kill_when(proc: subprocess.Popen[bytes], ws: Workspace, target: int | None, delay: float) -> str:
    """SIGKILL ``proc`` after ``delay`` seconds (target None) or once ``target`` decisions are committed."""
    start = time.monotonic()
    while proc.poll() is None:
        if target is None and time.monotonic() - start >= delay:
            break
        if target is not None and _decisions(ws) >= target:
            break
        time.sleep(0.02)
    if proc.poll() is not None:
        return "finished"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return "killed"


def _cmd(ws: Workspace) -> list[str]:
    return [PANHUO, "-w", str(ws.root), "run", "test-wake", "--as-of", AS_OF.isoformat()]


def test_sigkill_five_times_then_rerun_leaves_one_row_per_customer(
    tmp_path: Path, store_url: str, capsys: object
) -> None:
    ws = Workspace.open(tmp_path / "ws")
    runs = ws.settings.runs.model_copy(update={"batch_size": BATCH, "max_per_day": 99, "max_per_week": 99,
                                               "max_per_month": 99})
    ws = ws.save(ws.settings.model_copy(update={"store_url": store_url, "runs": runs}))
    write_tags(ws, tag_rows(CUSTOMERS))
    make_live(ws, tmp_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
    rng = random.Random(20261125)
    total = dict(dry_run(ws, "test-wake", AS_OF).funnel)["candidates"]
    tally: list[tuple[str, str, int, int]] = []
    for k in range(KILLS):
        before = _decisions(ws)
        # the first kill lands blind at a random time (start-up, planning or writing); the others
        # once a random number of decisions is committed, i.e. mid-write
        target = None if k == 0 else before + int(rng.uniform(0.05, 0.6) * (total - before))
        proc = subprocess.Popen(_cmd(ws), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        delay = rng.uniform(0.5, 2.5)
        what = _kill_when(proc, ws, target, delay)
        rows, people, decisions = _counts(ws)
        assert rows == people, "a customer has two outbox rows in one run"
        tally.append((what, f"blind after {delay:.1f}s" if target is None else f"decisions>={target}", rows, decisions))
    done = subprocess.run(_cmd(ws), env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    expected = dict(dry_run(ws, "test-wake", AS_OF).funnel)
    rows, people, decisions = _counts(ws)
    store = open_store(ws)
    with store.session() as s:
        run = s.execute(select(Run)).scalar_one()
    store.dispose()
    backend = store_url.split(":", 1)[0]
    with capsys.disabled():  # type: ignore[attr-defined]
        print(f"\nSIGKILL tally on {backend}: (outcome, kill point, outbox rows, decisions) after each kill: {tally}; "
              f"final outbox {rows} rows / {people} customers, expected sends {expected['sends']}")
    assert run.state == "done"
    assert rows == people == expected["sends"] == run.sends
    assert decisions == expected["candidates"]
