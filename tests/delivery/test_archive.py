"""The compliance archive: ``panhuo archive export`` masks every phone number (recipient and text), writes
atomically, is for compliance/admin only and audited; ``panhuo archive prune`` deletes only what is past
``delivery.archive_retention_days``; the phone masking of free text holds for any text (Hypothesis).
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import subprocess

import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from panhuo.config import Workspace
from panhuo.delivery.archive import mask_phones_in
from panhuo.delivery.models import MessageArchive
from panhuo.runs.models import OutboxMessage
from panhuo.store import open_store
from panhuo.store.models import AuditEntry, now_shanghai
from panhuo.store.users import add_user
from tests.conftest import PANHUO
from tests.delivery.conftest import ENV, seed_outbox, store_rows

__all__: list[str] = []

PHONE = "13812341234"


def _cli(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **ENV, "PANHUO_HOME": str(ws.root), "COLUMNS": "200"}
    return subprocess.run([PANHUO, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def _archive(ws: Workspace, ages_days: list[int]) -> None:
    """Users (admin, compliance, operator) and one archived SMS per age, sent that many days ago."""
    store = open_store(ws)
    try:
        with store.session() as s:
            add_user(s, "root", ["admin"])  # the first user of the store
    finally:
        store.dispose()
    seed_outbox(ws, [(f"c{i}", "sms") for i in range(len(ages_days))])
    store = open_store(ws)
    try:
        with store.session() as s:
            add_user(s, "comp", ["compliance"], actor="root")
            add_user(s, "ops", ["operator"], actor="root")
            ids = s.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id)).all()
            now = now_shanghai()
            for i, (oid, age) in enumerate(zip(ids, ages_days, strict=True)):
                s.add(MessageArchive(outbox_id=oid, playbook_id="wake", customer_id=f"c{i}", channel="sms",
                                     provider="sim", provider_id=f"p{i}", recipient="138****1234",
                                     content=f"【盘活证券】客户经理电话 {PHONE}，回T退订", sent_at=now - dt.timedelta(days=age)))
    finally:
        store.dispose()


def test_export_masks_phones_is_audited_and_refused_to_operators(dws: Workspace) -> None:
    _archive(dws, [0, 1, 40])
    out = dws.root / "exports" / "archive.csv"
    refused = _cli(dws, "archive", "export", "--out", str(out), "--as", "ops")
    assert refused.returncode != 0 and "compliance" in refused.stderr and not out.exists()
    since = (now_shanghai().date() - dt.timedelta(days=10)).isoformat()
    done = _cli(dws, "archive", "export", "--out", str(out), "--from", since, "--as", "comp")
    assert done.returncode == 0, done.stderr
    with open(out, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and {r["customer_id"] for r in rows} == {"c0", "c1"}  # the 40-day-old one is out
    text = out.read_text(encoding="utf-8-sig")
    assert PHONE not in text and "138****1234" in rows[0]["content"] and "回T退订" in rows[0]["content"]
    assert [p.name for p in out.parent.iterdir()] == ["archive.csv"]  # no temporary left
    pq_out = dws.root / "exports" / "archive.parquet"
    assert _cli(dws, "archive", "export", "--out", str(pq_out), "--as", "root").returncode == 0
    table = pq.read_table(pq_out)
    assert table.num_rows == 3 and PHONE not in " ".join(table.column("content").to_pylist())
    audit = store_rows(dws, select(AuditEntry.actor).where(AuditEntry.action == "archive.export"))
    assert sorted(a for (a,) in audit) == ["comp", "root"]
    bad = _cli(dws, "archive", "export", "--out", str(dws.root / "x.xlsx"), "--as", "comp")
    assert bad.returncode != 0 and ".csv or .parquet" in bad.stderr


def test_prune_deletes_only_past_retention(dws: Workspace) -> None:
    _archive(dws, [0, 30, 1900, 4000])  # retention default 1,825 days
    assert _cli(dws, "archive", "prune", "--as", "comp").returncode != 0  # admin only
    dry = _cli(dws, "archive", "prune", "--dry-run", "--as", "root")
    assert dry.returncode == 0 and "would delete 2 " in dry.stdout
    assert store_rows(dws, select(func.count()).select_from(MessageArchive))[0][0] == 4
    done = _cli(dws, "archive", "prune", "--as", "root")
    assert done.returncode == 0 and "deleted 2 " in done.stdout, done.stdout + done.stderr
    left = store_rows(dws, select(MessageArchive.customer_id).order_by(MessageArchive.customer_id))
    assert [c for (c,) in left] == ["c0", "c1"]
    (entry,) = store_rows(dws, select(AuditEntry.before, AuditEntry.after).where(AuditEntry.action == "archive.prune"))
    assert entry[0] == {"rows_before_cutoff": 2} and entry[1]["retention_days"] == 1825


_TEXT = st.text(alphabet=st.sampled_from(list("【】盘活证券，回T退订 abc-+:")), max_size=20)
_MOBILE = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.tuples(_TEXT, _MOBILE), min_size=1, max_size=4), tail=_TEXT)
def test_no_mobile_number_survives_masking(parts: list[tuple[str, str]], tail: str) -> None:
    text = "".join(t + m for t, m in parts) + tail
    masked = mask_phones_in(text)
    assert not re.search(r"1[3-9]\d{9}", masked)  # whatever surrounds them, even numbers written together
    if all(t for t, _m in parts[1:]):  # each number apart from the one before: masked as everywhere in panhuo
        for _t, m in parts:
            assert m[:3] + "****" + m[-4:] in masked
    assert mask_phones_in(masked) == masked  # masking twice changes nothing
