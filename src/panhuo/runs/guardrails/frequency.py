"""Guardrail 5: frequency caps per customer per day, week (7 days) and month (30 days), and per channel.

Counts come from the store: messages in ``contact_log`` plus pending ``outbox`` rows of other runs
(queued, not yet delivered: they will reach the customer too), counted in one grouped query relative
to the send time (:func:`contact_counts`), joined onto the candidates as ``_n_day``, ``_n_week``,
``_n_month`` (and ``_n_<period>_<channel>``). Caps are ``runs.max_per_day|week|month`` in settings;
a customer at a cap is blocked. Channel caps (``runs.channel_caps``, default SMS 2 and call 1 a week)
make a channel unusable: the customer falls through to the next channel of the playbook's order,
and is blocked (``freq_cap_channel``) only when every consented channel is capped.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import ibis
import pyarrow as pa
from sqlalchemy import and_, func, literal, select, union_all
from sqlalchemy.orm import Session

from panhuo.contract.schema import CHANNELS
from panhuo.runs.guardrails.base import Check, GuardContext
from panhuo.runs.models import ContactLog, OutboxMessage

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["NAME", "PERIODS", "REASONS", "capped", "checks", "contact_counts", "pivot"]

NAME = "frequency"
REASONS = ("freq_cap_day", "freq_cap_week", "freq_cap_month", "freq_cap_channel")
PERIODS = ("day", "week", "month")


def contact_counts(session: Session, send_at: dt.datetime, exclude_run: int | None = None) -> pa.Table:
    """``customer_id, channel, _n_day, _n_week, _n_month``: contacts per customer and channel in the 30
    days before ``send_at`` (one grouped query; :func:`pivot` turns it into columns per customer)."""
    day_start = send_at.replace(hour=0, minute=0, second=0, microsecond=0)
    week, month = send_at - dt.timedelta(days=7), send_at - dt.timedelta(days=30)
    sent = select(ContactLog.customer_id.label("cid"), ContactLog.channel.label("ch"),
                  ContactLog.sent_at.label("at")).where(and_(ContactLog.sent_at >= month, ContactLog.sent_at <= send_at))
    queued = select(OutboxMessage.customer_id.label("cid"), OutboxMessage.channel.label("ch"),
                    OutboxMessage.send_after.label("at")).where(
        and_(OutboxMessage.status == "pending", OutboxMessage.send_after >= month,
             OutboxMessage.send_after < day_start + dt.timedelta(days=1))
    )
    if exclude_run is not None:
        queued = queued.where(OutboxMessage.run_id != exclude_run)
    u = union_all(sent, queued).subquery()
    one, zero = literal(1), literal(0)
    q = select(
        u.c.cid, u.c.ch,
        func.sum(func.coalesce(_case(u.c.at >= day_start, one, zero), 0)),
        func.sum(func.coalesce(_case(u.c.at >= week, one, zero), 0)),
        func.count(),
    ).group_by(u.c.cid, u.c.ch)
    rows = session.execute(q).all()
    return pa.table({
        "customer_id": pa.array([r[0] for r in rows], pa.string()),
        "channel": pa.array([r[1] for r in rows], pa.string()),
        "_n_day": pa.array([int(r[2]) for r in rows], pa.int64()),
        "_n_week": pa.array([int(r[3]) for r in rows], pa.int64()),
        "_n_month": pa.array([int(r[4]) for r in rows], pa.int64()),
    })


def pivot(counts: ir.Table, channels: tuple[str, ...] = CHANNELS) -> ir.Table:
    """One row per customer: totals ``_n_<period>`` and per channel ``_n_<period>_<channel>``."""
    aggs = {f"_n_{p}": counts[f"_n_{p}"].sum() for p in PERIODS}
    for c in channels:
        aggs |= {f"_n_{p}_{c}": counts[f"_n_{p}"].sum(where=counts.channel == c) for p in PERIODS}
    return counts.group_by("customer_id").agg(**aggs)


def capped(t: ir.Table, channel: str, ctx: GuardContext) -> ir.BooleanValue:
    """Whether ``channel`` is at one of its caps (``runs.channel_caps``) for the customer; never null."""
    cap = ctx.settings.channel_caps.get(channel)  # type: ignore[call-overload]
    out = ibis.literal(False)
    if cap is None:
        return out
    for period in PERIODS:
        limit = getattr(cap, period)
        col = f"_n_{period}_{channel}"
        if limit is not None and col in t.columns:
            out = out | (t[col].fill_null(0) >= limit)
    return out


def _case(cond: object, a: object, b: object) -> object:
    from sqlalchemy import case

    return case((cond, a), else_=b)  # type: ignore[arg-type]


def checks(t: ir.Table, ctx: GuardContext) -> list[Check]:
    from panhuo.runs.guardrails.consent import channel_expr

    s = ctx.settings
    return [
        (t["_n_day"].fill_null(0) >= s.max_per_day, "freq_cap_day"),
        (t["_n_week"].fill_null(0) >= s.max_per_week, "freq_cap_week"),
        (t["_n_month"].fill_null(0) >= s.max_per_month, "freq_cap_month"),
        (channel_expr(t, ctx, caps=True).isnull(), "freq_cap_channel"),
    ]
