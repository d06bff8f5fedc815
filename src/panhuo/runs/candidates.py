"""The candidate set of a playbook: its user element (用户) compiled over the audience table.

``user.segment`` (a named segment, with its own exclusions) or ``user.rule`` (an inline rule),
minus ``user.exclude`` (segment names), capped at ``user.max_audience`` (first N by customer id).
Only the columns the guardrails read are kept. Everything stays an Ibis expression.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from panhuo.contract.schema import CHANNELS
from panhuo.playbooks.schema import PlaybookSpec
from panhuo.segments import audience, compile_rule

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace

__all__ = ["GUARD_COLUMNS", "candidate_table"]

GUARD_COLUMNS: tuple[str, ...] = (
    "status", "risk_level", "assessment_expired", "refuses_personalised",
    *(f"consent_{c}" for c in CHANNELS), *(f"reach_{c}" for c in CHANNELS),
)


def candidate_table(
    ws: Workspace, con: BaseBackend, spec: PlaybookSpec, as_of: dt.date, *, tags_file: Path | None = None
) -> ir.Table:
    """``customer_id`` and the guardrail columns present in the tags, for every member of the audience.

    Raises
    ------
    WarehouseError
        No tags on or before ``as_of``.
    SegmentError
        An unknown segment (in ``segment`` or ``exclude``) or a wrong inline rule.
    """
    aud = audience(ws, con, as_of, tags_file=tags_file)
    t, lib, sym, day = aud.table, aud.library, aud.symbols, aud.as_of
    user = spec.user
    if user.segment is not None:
        pred = lib.predicate(user.segment, t, sym, day)
        cap = lib.segment(user.segment).cap
    else:
        pred = compile_rule(user.rule or "", t, sym, as_of=day)
        cap = None
    for name in user.exclude:
        pred = pred & ~lib.predicate(name, t, sym, day)
    rows = t.filter(pred)
    limits = [x for x in (cap, user.max_audience) if x is not None]
    if limits:
        rows = rows.order_by("customer_id").limit(min(limits))
    keep = [c for c in GUARD_COLUMNS if c in rows.columns]
    return rows.select("customer_id", *keep)
