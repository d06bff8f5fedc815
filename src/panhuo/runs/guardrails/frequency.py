"""Guardrail 5: frequency caps per customer per day, week (7 days) and month (30 days).

Counts come from the store: messages in ``contact_log`` plus pending ``outbox`` rows of other runs
(queued, not yet delivered: they will reach the customer too), counted in one grouped query relative
to the send time (:func:`contact_counts`), joined onto the candidates as ``_n_day``, ``_n_week``,
``_n_month``. Caps are ``runs.max_per_day|week|month`` in settings; a customer at a cap is blocked.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlalchemy import and_, func, literal, select, union_all
from sqlalchemy.orm import Session

from panhuo.runs.guardrails.base import Check, GuardContext
from panhuo.runs.models import ContactLog, OutboxMessage

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["NAME", "REASONS", "checks", "contact_counts"]

NAME = "frequency"
REASONS = ("freq_cap_day", "freq_cap_week", "freq_cap_month")


def contact_counts(session: Session, send_at: dt.datetime, exclude_run: int | None = None) -> pa.Table:
    """``customer_id, _n_day, _n_week, _n_month`` for every customer contacted in the 30 days before ``send_at``."""
    day_start = send_at.replace(hour=0, minute=0, second=0, microsecond=0)
    week, month = send_at - dt.timedelta(days=7), send_at - dt.timedelta(days=30)
    sent = select(ContactLog.customer_id.label("cid"), ContactLog.sent_at.label("at")).where(
        and_(ContactLog.sent_at >= month, ContactLog.sent_at <= send_at)
    )
    queued = select(OutboxMessage.customer_id.label("cid"), OutboxMessage.send_after.label("at")).where(
        and_(OutboxMessage.status == "pending", OutboxMessage.send_after >= month,
             OutboxMessage.send_after < day_start + dt.timedelta(days=1))
    )
    if exclude_run is not None:
        queued = queued.where(OutboxMessage.run_id != exclude_run)
    u = union_all(sent, queued).subquery()
    one, zero = literal(1), literal(0)
    q = select(
        u.c.cid,
        func.sum(func.coalesce(_case(u.c.at >= day_start, one, zero), 0)),
        func.sum(func.coalesce(_case(u.c.at >= week, one, zero), 0)),
        func.count(),
    ).group_by(u.c.cid)
    rows = session.execute(q).all()
    return pa.table({
        "customer_id": pa.array([r[0] for r in rows], pa.string()),
        "_n_day": pa.array([int(r[1]) for r in rows], pa.int64()),
        "_n_week": pa.array([int(r[2]) for r in rows], pa.int64()),
        "_n_month": pa.array([int(r[3]) for r in rows], pa.int64()),
    })


def _case(cond: object, a: object, b: object) -> object:
    from sqlalchemy import case

    return case((cond, a), else_=b)  # type: ignore[arg-type]


def checks(t: ir.Table, ctx: GuardContext) -> list[Check]:
    s = ctx.settings
    return [
        (t["_n_day"].fill_null(0) >= s.max_per_day, "freq_cap_day"),
        (t["_n_week"].fill_null(0) >= s.max_per_week, "freq_cap_week"),
        (t["_n_month"].fill_null(0) >= s.max_per_month, "freq_cap_month"),
    ]
