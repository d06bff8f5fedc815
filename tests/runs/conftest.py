"""Run fixtures: a workspace whose store is SQLite or PostgreSQL, a hand-built tags snapshot, a live playbook.

The tags snapshot is written where the tag library keeps them (``warehouse/tags/<as_of>.parquet``), so
the engine reads it through the normal audience path, in-process and from a ``panhuo run`` subprocess.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from panhuo.config import Workspace
from panhuo.playbooks import repository
from panhuo.playbooks.loader import load_playbook
from panhuo.store import add_user, open_store
from panhuo.store.models import SHANGHAI
from tests.store._pg import pg_database, pg_url, store_url  # noqa: F401  (fixtures)

__all__ = ["AS_OF", "NOW", "PLAYBOOK", "make_live", "tag_rows", "write_tags"]

AS_OF = dt.date(2026, 1, 30)
NOW = dt.datetime(2026, 1, 30, 10, 0, tzinfo=SHANGHAI)
CHANNELS = ("app_push", "sms", "wechat", "call")

PLAYBOOK = """\
id: {id}
name: 测试唤醒
purpose: {purpose}
timing:
  trigger: schedule
  schedule: every_trading_day
  at: "10:00"
  send_window: ["09:00", "20:00"]
  reentry: {reentry}
user:
  segment: {segment}
benefit:
  items: [{items}]
channel:
  {channel}
method:
  mode: automated
  holdout: {holdout}
  success: {{event: trade, within_trading_days: 10}}
"""


def tag_rows(n: int = 200) -> list[dict]:
    """Deterministic customers: mostly sleeping with consent; some opted out, dormant, unsuitable."""
    rows = []
    for i in range(n):
        rows.append({
            "customer_id": f"c{i:05d}",
            "status": "dormant" if i % 10 == 9 else "sleeping",
            "risk_level": f"C{1 + i % 5}" if i % 17 else None,
            "assessment_expired": i % 13 == 0,
            **{f"consent_{c}": True for c in CHANNELS},
            **{f"reach_{c}": True for c in CHANNELS},
        })
    return rows


def write_tags(ws: Workspace, rows: list[dict], as_of: dt.date = AS_OF) -> Path:
    folder = ws.warehouse_dir / "tags"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{as_of.isoformat()}.parquet"
    schema = pa.schema([("customer_id", pa.string()), ("status", pa.string()), ("risk_level", pa.string()),
                        ("assessment_expired", pa.bool_()),
                        *[(f"consent_{c}", pa.bool_()) for c in CHANNELS],
                        *[(f"reach_{c}", pa.bool_()) for c in CHANNELS]])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def make_live(ws: Workspace, tmp: Path, *, pid: str = "test-wake", purpose: str = "reactivation",
              segment: str = "sleeping", items: str = "news-daily", channel: str = "order: [app_push, sms]",
              holdout: float = 0.2, live: bool = True, arms: str | None = None, personalised: bool = False,
              reentry: str = "every_time") -> str:
    """Store the test playbook as ``ops``, approve it as ``cmp`` and put it live (unless ``live`` is False).

    ``arms``: YAML list items placed under ``method.arms``, e.g. ``"- {id: a, items: [x]}"`` lines.
    """
    text = PLAYBOOK.format(id=pid, purpose=purpose, segment=segment, items=items, channel=channel, holdout=holdout,
                           reentry=reentry)
    if personalised:
        text = text.replace("  success:", "  personalised: true\n  success:")
    if arms:
        text = text.replace("  success:", "  arms:\n" + "".join(f"    {line}\n" for line in arms.splitlines())
                            + "  success:")
    f = tmp / f"{pid}.yaml"
    f.write_text(text, encoding="utf-8")
    store = open_store(ws)
    try:
        with store.session() as s:
            from panhuo.store.users import get_user

            if get_user(s, "ops") is None:
                add_user(s, "root", ["admin"])
                add_user(s, "ops", ["operator"], actor="root")
                add_user(s, "cmp", ["compliance"], actor="root")
        with store.session() as s:
            repository.add_version(s, load_playbook(f), actor="ops")
        if live:
            with store.session() as s:
                repository.submit(s, pid, actor="ops")
            with store.session() as s:
                repository.approve(s, pid, actor="cmp")
            with store.session() as s:
                repository.activate(s, pid, actor="ops")
    finally:
        store.dispose()
    return pid


@pytest.fixture
def run_ws(tmp_path: Path, store_url: str) -> Workspace:  # noqa: F811
    """A workspace on SQLite and on PostgreSQL, with the hand-built tags at AS_OF."""
    ws = Workspace.open(tmp_path / "ws")
    ws = ws.save(ws.settings.model_copy(update={"store_url": store_url}))
    write_tags(ws, tag_rows())
    return ws


@pytest.fixture
def sqlite_ws(tmp_path: Path) -> Workspace:
    ws = Workspace.open(tmp_path / "ws")
    write_tags(ws, tag_rows())
    return ws


LiveFactory = Callable[..., str]
