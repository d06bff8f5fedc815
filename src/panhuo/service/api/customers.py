"""Customers over the API: one customer's profile, tags, status history, contacts, responses, benefits and call
tasks (:func:`panhuo.service.views.customer_view`), always masked; a compliance user may unmask one customer
with a reason, which is audited (``customer.unmask``).

Who may look: viewer, operator, compliance and admin any customer; an advisor only the customers whose
``advisor_id`` is the advisor's user name (403 for the others, and before anything is read about them).
"""

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request

from panhuo.service import auth, views
from panhuo.service.deps import API, READ_ROLES, NotFound, ReadDb, Who, WriteDb, requires, workspace_of
from panhuo.service.schemas import CustomerOut, UnmaskIn, errors
from panhuo.store.audit import record
from panhuo.store.errors import AccessDenied
from panhuo.store.users import require_role

__all__ = ["check_customer_access", "router"]

router = APIRouter(prefix=API, tags=["customers"])

Compliance = requires("compliance", action="unmasking a customer's personal data", write=True)


def check_customer_access(request: Request, who: auth.Authenticated, customer_id: str) -> None:
    """403 unless ``who`` may see ``customer_id`` (readers: anyone; advisors: their own customers), 404 for an
    unknown customer when the caller could see it."""
    if who.user.has_role(*READ_ROLES):
        return
    require_role(who.user, *READ_ROLES, "advisor", action="reading customers")
    advisor = views.customer_advisor(workspace_of(request), customer_id)
    if advisor != who.user.name:
        raise AccessDenied(f"advisor {who.user.name!r} sees only their own customers; {customer_id!r} is not one")


def _view(request: Request, s: Any, customer_id: str, as_of: dt.date | None, unmask: bool) -> dict[str, Any]:
    found = views.customer_view(workspace_of(request), s, customer_id, as_of=as_of, unmask=unmask)
    if found is None:
        raise NotFound(f"no customer {customer_id!r} in the load in force or the tag snapshots")
    return found


@router.get("/customers/{customer_id}", response_model=CustomerOut, responses=errors(404))
def get_customer(customer_id: str, request: Request, who: Who, s: ReadDb, as_of: dt.date | None = None) -> Any:
    """One customer: profile (masked), tags on or before ``as_of`` (default: latest), status and its history,
    messages, contacts, receipts and replies, opt-outs, benefits issued, call tasks."""
    check_customer_access(request, who, customer_id)
    return _view(request, s, customer_id, as_of, unmask=False)


@router.post("/customers/{customer_id}/unmask", response_model=CustomerOut, responses=errors(404))
def unmask_customer(customer_id: str, body: UnmaskIn, request: Request, who: Compliance, s: WriteDb) -> Any:
    """The customer with personal data in clear (compliance only; the reason is mandatory and audited)."""
    found = _view(request, s, customer_id, None, unmask=True)
    masked_fields = views.mask_profile(found["profile"])[1]
    record(s, actor=who.user.name, action="customer.unmask", entity="customer", entity_id=customer_id,
           after={"reason": body.reason.strip(), "fields": masked_fields})
    return found
