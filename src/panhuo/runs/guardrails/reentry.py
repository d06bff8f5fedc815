"""Guardrail 1b: re-entry — whether a customer who already entered this playbook may enter again.

A customer *entered* a playbook when an earlier run of it (any version) assigned them to treatment or
holdout; global-control and blocked customers did not enter. The playbook's ``timing.reentry``:

- ``once_ever``: nobody enters twice (``reentry_once_ever``);
- ``every_n_trading_days`` (``n``): not again until ``n`` trading days after the last entry's as-of
  date (``reentry_too_soon``), counted on the exchange calendar;
- ``every_time``: whenever the trigger fires for them again (a customer who turns sleeping again is
  caught again); one message per run still holds (``one_per_run``).

:func:`entry_gaps` reads the last entry per customer from the store in one grouped query (over the
decisions, which carry the assignments) and turns it
into ``_entry_gap`` (trading days since it; null: never entered), joined onto the candidates.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from panhuo.runs.guardrails.base import Check, GuardContext
from panhuo.runs.models import Decision, Run

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from panhuo.calendar import TradingCalendar

__all__ = ["COLUMN", "NAME", "REASONS", "checks", "entry_gaps"]

NAME = "reentry"
REASONS = ("reentry_once_ever", "reentry_too_soon")
COLUMN = "_entry_gap"


def entry_gaps(session: Session, playbook_id: str, as_of: dt.date, cal: TradingCalendar,
               exclude_run: int | None = None) -> pa.Table:
    """``customer_id, _entry_gap``: trading days from each customer's last entry (as-of date of an earlier
    run of ``playbook_id``, on or before ``as_of``) to ``as_of``; customers who never entered are absent."""
    q = (  # the assignment is on the decision (migration 0007)
        select(Decision.customer_id, func.max(Run.as_of))
        .join(Run, Run.id == Decision.run_id)
        .where(Run.playbook_id == playbook_id, Run.as_of <= as_of, Decision.grp.in_(("treated", "holdout")))
        .group_by(Decision.customer_id)
    )
    if exclude_run is not None:
        q = q.where(Run.id != exclude_run)
    rows = session.execute(q).all()
    ids = [r[0] for r in rows]
    last = np.array([r[1] for r in rows], dtype="datetime64[D]")
    if len(rows):
        first = dt.date(cal.first_year, 1, 1)
        sessions = cal.sessions_array(first, as_of)
        at = np.searchsorted(sessions, np.datetime64(as_of, "D"), side="right")
        gap = at - np.searchsorted(sessions, last, side="right")
    else:
        gap = np.zeros(0, dtype=np.int64)
    return pa.table({"customer_id": pa.array(ids, pa.string()), COLUMN: pa.array(gap.astype(np.int64), pa.int64())})


def checks(t: ir.Table, ctx: GuardContext) -> list[Check]:
    policy = ctx.spec.timing.reentry
    if policy.policy == "every_time" or COLUMN not in t.columns:
        return []
    gap = t[COLUMN]
    if policy.policy == "once_ever":
        return [(gap.notnull(), "reentry_once_ever")]
    return [(gap.notnull() & (gap < int(policy.n or 0)), "reentry_too_soon")]
