"""Advisor call tasks: recording what came of a call, the one implementation ``panhuo calls outcome`` and the
API (``POST /api/v1/tasks/{id}/outcome``) share.

A call-channel message is not sent out: delivery makes it a :class:`~panhuo.delivery.models.CallTask` for the
customer's advisor. The advisor records one of :data:`~panhuo.delivery.models.CALL_OUTCOMES` (once more
replaces the earlier one); each recording is in the audit log (``call.outcome``) with the earlier outcome and
note as ``before``.
"""

from __future__ import annotations

from typing import Any

from panhuo.store.errors import AccessDenied, StoreError

__all__ = ["UnknownCallTask", "record_call_outcome"]


class UnknownCallTask(StoreError):
    """No call task has the id given."""


def record_call_outcome(session: Any, task_id: int, outcome: str, note: str | None, *, actor: str | None = None,
                        advisor: str | None = None) -> Any:
    """Set call task ``task_id``'s outcome and note, audited; returns the task (flushed, not committed).

    ``actor`` is who records it (default: the task's advisor, as ``advisor:<id>``); with ``advisor`` given the
    task must belong to that advisor's customer (else :class:`AccessDenied`, nothing changed). An outcome
    outside ``CALL_OUTCOMES`` is a :class:`StoreError`, an unknown id :class:`UnknownCallTask`.
    """
    from panhuo.delivery.models import CALL_OUTCOMES, CallTask
    from panhuo.store.audit import record
    from panhuo.store.models import now_shanghai

    if outcome not in CALL_OUTCOMES:
        raise StoreError(f"outcome {outcome!r} is not one of {', '.join(CALL_OUTCOMES)}")
    task = session.get(CallTask, task_id, with_for_update=True)
    if task is None:
        raise UnknownCallTask(f"no call task {task_id}")
    if advisor is not None and task.advisor_id != advisor:
        raise AccessDenied(f"call task {task_id} belongs to another advisor's customer; {advisor!r} may record "
                           f"outcomes only for their own")
    before = {"outcome": task.outcome, "note": task.note}
    task.outcome, task.note = outcome, note
    task.outcome_at, task.outcome_by = now_shanghai(), actor or task.advisor_id
    session.flush()
    record(session, actor=actor or f"advisor:{task.advisor_id or '-'}", action="call.outcome", entity="call_task",
           entity_id=str(task_id), before=before, after={"outcome": outcome, "note": note})
    return task
