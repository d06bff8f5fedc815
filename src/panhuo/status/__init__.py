"""Account status (effective, sleeping, dormant, new_empty), its history and transitions, as Ibis expressions.

The API other stages use::

    compute_status(ws, con, as_of, backfill=True) -> StatusResult   # compute, store, keep history
    load_status(ws, con, as_of=None) -> ibis.Table                  # latest snapshot + status_since
    transitions(ws, con, since=None, until=None) -> ibis.Table      # (customer_id, from_status, to_status, date)
    summarize(ws, con, as_of=None) -> StatusSummary
"""

from __future__ import annotations

from panhuo.status.history import StatusResult, compute_status, load_status, transitions
from panhuo.status.rules import STATUS_ZH, STATUSES, status_expr
from panhuo.status.summary import StatusSummary, summarize

__all__ = [
    "STATUSES",
    "STATUS_ZH",
    "StatusResult",
    "StatusSummary",
    "compute_status",
    "load_status",
    "transitions",
    "status_expr",
    "summarize",
]
