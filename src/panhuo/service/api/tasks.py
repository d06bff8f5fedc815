"""Advisor call tasks over the API: the list and recording a call's outcome.

An advisor is a user with the ``advisor`` role whose user name is their ``advisor_id`` in the customer
data (``customers.advisor_id``, copied onto each call task). An advisor sees and updates only the tasks
of their own customers: any other task answers 403, even to look at. Viewer, operator, compliance and
admin see every task; only advisors record outcomes. An outcome is audited (``call.outcome``, with the
earlier outcome and note as ``before``) by :func:`panhuo.delivery.calls.record_call_outcome`, the one
``panhuo calls outcome`` calls too.
"""

from typing import Any

from fastapi import APIRouter, Query

from panhuo.service import auth, views
from panhuo.service.deps import API, READ_ROLES, NotFound, ReadDb, RowId, Who, WriteDb, requires
from panhuo.service.schemas import CallTaskOut, OutcomeIn, errors
from panhuo.store.errors import AccessDenied
from panhuo.store.users import require_role

__all__ = ["record_outcome", "router"]

router = APIRouter(prefix=API, tags=["call tasks"])

Advisor = requires("advisor", action="recording a call outcome", write=True)


def _own_or_403(who: auth.Authenticated, task: Any) -> None:
    if who.user.has_role(*READ_ROLES):
        return
    if task.advisor_id != who.user.name:
        raise AccessDenied(f"call task {task.id} belongs to another advisor's customer; {who.user.name!r} sees only "
                           f"their own")


def record_outcome(session: Any, task_id: int, outcome: str, note: str | None, *, who: auth.Authenticated) -> Any:
    """Set a call task's outcome as ``who`` (an advisor, on their own customer's task) and audit it."""
    from panhuo.delivery.calls import UnknownCallTask, record_call_outcome

    try:
        return record_call_outcome(session, task_id, outcome, note, actor=who.user.name, advisor=who.user.name)
    except UnknownCallTask as exc:
        raise NotFound(str(exc)) from exc


@router.get("/tasks", response_model=list[CallTaskOut], responses=errors())
def list_tasks(who: Who, s: ReadDb, open_only: bool = Query(default=False, alias="open"),
               limit: int = Query(default=200, ge=1, le=1000)) -> Any:
    """Call tasks, oldest due first: an advisor's own, or every task for the other reading roles."""
    require_role(who.user, *READ_ROLES, "advisor", action="reading call tasks")
    mine = None if who.user.has_role(*READ_ROLES) else who.user.name
    return views.call_tasks(s, advisor=mine, open_only=open_only, limit=limit)


@router.get("/tasks/{task_id}", response_model=CallTaskOut, responses=errors(404))
def get_task(task_id: RowId, who: Who, s: ReadDb) -> Any:
    """One call task (an advisor: only their own customers')."""
    from panhuo.delivery.models import CallTask

    require_role(who.user, *READ_ROLES, "advisor", action="reading call tasks")
    task = s.get(CallTask, task_id)
    if task is None:
        raise NotFound(f"no call task {task_id}")
    _own_or_403(who, task)
    return views._task(task)


@router.post("/tasks/{task_id}/outcome", response_model=CallTaskOut, responses=errors(400, 404))
def set_outcome(task_id: RowId, body: OutcomeIn, who: Advisor, s: WriteDb) -> Any:
    """Record what came of a call (reached, no_answer, refused, interested); once more replaces it. Advisors only,
    on their own customers' tasks."""
    return views._task(record_outcome(s, task_id, body.outcome, body.note, who=who))
