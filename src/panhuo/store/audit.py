"""The append-only audit log with a tamper-evident hash chain.

Every entry holds ``seq`` (1, 2, 3 ... without gaps), ``at`` (aware, Asia/Shanghai), ``actor``,
``action``, ``entity``, ``entity_id``, ``before`` and ``after`` (JSON), ``prev_hash`` (the previous
entry's hash; 64 zeros for the first) and ``hash``::

    hash = sha256( canonical_json({seq, at, actor, action, entity, entity_id, before, after}) + prev_hash )

where canonical JSON has sorted keys, no spaces, UTF-8 and ``at`` as ISO 8601 with its +08:00 offset.
Editing any stored field, deleting or inserting an entry breaks the chain from that entry on, and
:func:`verify_audit` names the first broken ``seq``. The database also refuses UPDATE and DELETE on
the table (triggers in the first migration); the chain catches what someone with DDL rights does anyway.
Appends are serialised: ``BEGIN IMMEDIATE`` on SQLite, an advisory transaction lock on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from panhuo.store.models import SHANGHAI, AuditEntry, now_shanghai

__all__ = [
    "AUDIT_LOCK",
    "GENESIS_HASH",
    "AuditVerification",
    "canonical_json",
    "count_audit",
    "entry_hash",
    "iter_audit",
    "record",
    "verify_audit",
]

GENESIS_HASH = "0" * 64
AUDIT_LOCK = 72_230_002  # pg_advisory_xact_lock key of audit appends


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text: the same bytes for the same content everywhere."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _at_text(at: dt.datetime) -> str:
    return at.astimezone(SHANGHAI).isoformat(timespec="microseconds")


def entry_hash(
    *,
    seq: int,
    at: dt.datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    before: Any,
    after: Any,
    prev_hash: str,
) -> str:
    """The hash of one audit entry chained to ``prev_hash``."""
    body = {
        "seq": seq,
        "at": _at_text(at),
        "actor": actor,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "before": before,
        "after": after,
    }
    return hashlib.sha256((canonical_json(body) + prev_hash).encode("utf-8")).hexdigest()


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK})


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction (it commits or rolls back with the change it records)."""
    _lock(session)
    last = session.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
    at = (at or now_shanghai()).astimezone(SHANGHAI)
    # Round-trip through JSON so what is hashed is exactly what the JSON column gives back.
    before_j = json.loads(canonical_json(before)) if before is not None else None
    after_j = json.loads(canonical_json(after)) if after is not None else None
    fields: dict[str, Any] = {"seq": seq, "at": at, "actor": actor, "action": action, "entity": entity,
                              "entity_id": str(entity_id), "before": before_j, "after": after_j}
    entry = AuditEntry(**fields, prev_hash=prev, hash=entry_hash(**fields, prev_hash=prev))
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class AuditVerification:
    """The result of walking the chain: ``ok``, entries checked, and the first broken ``seq`` with why."""

    ok: bool
    checked: int
    broken_seq: int | None = None
    reason: str | None = None

    def __str__(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.checked} entries verified"
        return f"audit chain broken at seq {self.broken_seq}: {self.reason} ({self.checked} entries before it verified)"


def verify_audit(session: Session, *, batch: int = 5000) -> AuditVerification:
    """Walk the whole chain in ``seq`` order and report the first entry that does not verify."""
    expected_seq, prev, checked = 1, GENESIS_HASH, 0
    for e in session.execute(select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=batch)).scalars():
        if e.seq != expected_seq:
            missing = min(e.seq, expected_seq)
            return AuditVerification(False, checked, missing, f"expected seq {expected_seq}, found {e.seq}")
        if e.prev_hash != prev:
            return AuditVerification(False, checked, e.seq, "prev_hash does not match the previous entry's hash")
        recomputed = entry_hash(seq=e.seq, at=e.at, actor=e.actor, action=e.action, entity=e.entity,
                                entity_id=e.entity_id, before=e.before, after=e.after, prev_hash=e.prev_hash)
        if recomputed != e.hash:
            return AuditVerification(False, checked, e.seq, "content does not match its hash (entry was modified)")
        prev, expected_seq, checked = e.hash, expected_seq + 1, checked + 1
    return AuditVerification(True, checked)


def iter_audit(
    session: Session,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    limit: int | None = None,
) -> Iterator[AuditEntry]:
    """Audit entries, newest first, optionally for one entity, entity id or actor."""
    q = select(AuditEntry)
    if entity is not None:
        q = q.where(AuditEntry.entity == entity)
    if entity_id is not None:
        q = q.where(AuditEntry.entity_id == entity_id)
    if actor is not None:
        q = q.where(AuditEntry.actor == actor)
    q = q.order_by(AuditEntry.seq.desc())
    if limit is not None:
        q = q.limit(limit)
    yield from session.execute(q).scalars()


def count_audit(session: Session) -> int:
    """Number of entries in the log."""
    return int(session.execute(select(func.count()).select_from(AuditEntry)).scalar_one())

