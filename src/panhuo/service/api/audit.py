"""The audit log over the API (compliance or admin): entries newest first with filters, and the chain check."""

from typing import Any

from fastapi import APIRouter, Query

from panhuo.service import views
from panhuo.service.deps import API, MAX_ID, ReadDb, requires
from panhuo.service.schemas import AuditOut, AuditVerifyOut, errors

__all__ = ["router"]

router = APIRouter(prefix=API, tags=["audit"])

Auditor = requires("compliance", "admin", action="reading the audit log")


@router.get("/audit", response_model=list[AuditOut], responses=errors())
def list_audit(_who: Auditor, s: ReadDb, entity: str | None = Query(default=None, max_length=64),
               entity_id: str | None = Query(default=None, max_length=200),
               actor: str | None = Query(default=None, max_length=64),
               action: str | None = Query(default=None, max_length=64),
               before_seq: int | None = Query(default=None, ge=1, le=MAX_ID, description="page back: entries before this seq"),
               limit: int = Query(default=100, ge=1, le=1000)) -> Any:
    """Audit entries (who, when, what, before and after), newest first."""
    return views.audit_entries(s, entity=entity, entity_id=entity_id, actor=actor, action=action, limit=limit,
                               before_seq=before_seq)


@router.get("/audit/verify", response_model=AuditVerifyOut, responses=errors())
def verify(_who: Auditor, s: ReadDb) -> Any:
    """Walk the hash chain: ok, entries checked, and the first broken seq with why."""
    from panhuo.store.audit import verify_audit

    v = verify_audit(s)
    return {"ok": v.ok, "checked": v.checked, "broken_seq": v.broken_seq, "reason": v.reason}
