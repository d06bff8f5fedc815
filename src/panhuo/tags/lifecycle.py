"""Lifecycle tags from the stored account status at ``as_of``: status, status_since, months and trading
days in status (the trading days from a join with the calendar's day table, as for the last trade).

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
    TagSpec("trading_days_in_status", _G, "int", "当前状态交易日数", "trading days in the current status",
            "trading days in (status_since, as_of] by the trading calendar (0 on the day of the change); "
            "null when status_since is unknown or before the calendar's first covered year"),
)


def months_between(start: ir.DateValue, end: ir.DateScalar) -> ir.IntegerValue:
    """Completed calendar months from ``start`` to ``end`` (31 Jan -> 28 Feb is 0, -> 1 Mar is 1)."""
    months = (end.year() * 12 + end.month()) - (start.year() * 12 + start.month())
    return (months - ibis.ifelse(end.day() < start.day(), 1, 0)).cast("int64")


def extend(ctx: TagContext, base: ir.Table) -> ir.Table:
    """Add the lifecycle tags; ``base`` has the status columns ``_st_*``."""
    days = ctx.days.select(_sd=ctx.days.cal_day, _ss=ctx.days.sessions)
    j = base.left_join(days, base["_st_since"].cast("date") == days["_sd"]).drop("_sd")
    since = j["_st_since"].cast("date")
    return j.mutate(
        status=j["_st_status"].cast("string"),
        status_since=since,
        months_in_status=months_between(since, ctx.day),
        trading_days_in_status=(ibis.literal(ctx.sessions_at_as_of, "int64") - j["_ss"]).cast("int64"),
    )
