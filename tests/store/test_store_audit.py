"""The audit log: aware Shanghai times, an intact chain verifies, tampering is detected at its seq."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from panhuo.store import db
from panhuo.store.audit import GENESIS_HASH, iter_audit, record, verify_audit
from panhuo.store.models import SHANGHAI, AuditEntry

__all__: list[str] = []


def _fill(store: db.Store, n: int = 5) -> None:
    for i in range(1, n + 1):
        with store.session() as s:
            record(s, actor="alice", action="thing.edit", entity="thing", entity_id=str(i),
                   before={"v": i - 1, "名": "旧"}, after={"v": i, "名": "新", "share": 0.1})


def _drop_append_only_triggers(store: db.Store) -> None:
    """What someone with DDL rights could do: remove the database's own protection."""
    with store.session() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("DROP TRIGGER audit_log_append_only ON audit_log"))
        else:
            s.execute(text("DROP TRIGGER audit_log_no_update"))
            s.execute(text("DROP TRIGGER audit_log_no_delete"))


def test_chain_verifies_and_links(store_url: str) -> None:
    store = db.open_store(store_url)
    _fill(store)
    with store.session() as s:
        result = verify_audit(s)
        entries = sorted(iter_audit(s), key=lambda e: e.seq)
    assert result.ok and result.checked == 5
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    store.dispose()


def test_entry_time_is_aware_asia_shanghai(store_url: str) -> None:
    store = db.open_store(store_url)
    at = dt.datetime(2026, 11, 24, 1, 30, 15, 123456, tzinfo=dt.UTC)
    with store.session() as s:
        record(s, actor="a", action="x", entity="e", entity_id="1", at=at)
    with store.session() as s:
        got = s.get(AuditEntry, 1)
        assert got is not None
        assert got.at == at and got.at.utcoffset() == dt.timedelta(hours=8)
        assert str(got.at.tzinfo) == str(SHANGHAI)
        assert verify_audit(s).ok
    store.dispose()


def test_database_refuses_update_and_delete(store_url: str) -> None:
    store = db.open_store(store_url)
    _fill(store, 2)
    for stmt in ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1", "DELETE FROM audit_log WHERE seq = 2"):
        with pytest.raises(DBAPIError, match="append-only"), store.session() as s:
            s.execute(text(stmt))
    store.dispose()


def test_tampered_after_is_detected_at_its_seq(store_url: str) -> None:
    store = db.open_store(store_url)
    _fill(store)
    _drop_append_only_triggers(store)
    with store.session() as s:
        s.execute(text("""UPDATE audit_log SET "after" = '{"v": 999}' WHERE seq = 3"""))
    with store.session() as s:
        result = verify_audit(s)
    assert not result.ok
    assert result.broken_seq == 3 and result.checked == 2
    assert "seq 3" in str(result)
    store.dispose()


def test_deleted_entry_is_detected(store_url: str) -> None:
    store = db.open_store(store_url)
    _fill(store)
    _drop_append_only_triggers(store)
    with store.session() as s:
        s.execute(text("DELETE FROM audit_log WHERE seq = 4"))
    with store.session() as s:
        result = verify_audit(s)
    assert not result.ok and result.broken_seq == 4
    store.dispose()


def test_rewritten_hash_breaks_the_next_link(store_url: str) -> None:
    store = db.open_store(store_url)
    _fill(store)
    _drop_append_only_triggers(store)
    with store.session() as s:
        s.execute(text("UPDATE audit_log SET actor = 'mallory', hash = :h WHERE seq = 2"), {"h": "f" * 64})
    with store.session() as s:
        assert verify_audit(s).broken_seq == 2
    store.dispose()
