"""Lifecycle tags from the stored account status at ``as_of``: status, status_since, months in status.

The status is never computed here: ``compute_tags`` requires ``panhuo status --as-of`` for the same
date and load first (see :mod:`panhuo.tags.store`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis

from panhuo.tags.spec import TagContext, TagSpec

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["SPECS", "extend", "months_between"]

_G = "lifecycle"
SPECS: tuple[TagSpec, ...] = (
    TagSpec("status", _G, "string", "账户状态", "account status (effective, sleeping, dormant, new_empty)",
            "the stored status at as_of (panhuo status)"),
    TagSpec("status_since", _G, "date", "状态起始日", "in this status since",
            "date of the last status change on or before as_of (the first computed date when none)"),
    TagSpec("months_in_status", _G, "int", "当前状态月数", "whole months in the current status",
            "completed calendar months from status_since to as_of"),
)


def months_between(start: ir.DateValue, end: ir.DateScalar) -> ir.IntegerValue:
    """Completed calendar months from ``start`` to ``end`` (31 Jan -> 28 Feb is 0, -> 1 Mar is 1)."""
    months = (end.year() * 12 + end.month()) - (start.year() * 12 + start.month())
    return (months - ibis.ifelse(end.day() < start.day(), 1, 0)).cast("int64")


def extend(ctx: TagContext, base: ir.Table) -> ir.Table:
    """Add the lifecycle tags; ``base`` has the status columns ``_st_*``."""
    since = base["_st_since"].cast("date")
    return base.mutate(
        status=base["_st_status"].cast("string"),
        status_since=since,
        months_in_status=months_between(since, ctx.day),
    )
