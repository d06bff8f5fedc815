"""Guardrail 6: quiet hours and the send window (Asia/Shanghai).

The run's send time is checked once: inside the playbook's ``send_window`` and outside quiet hours
(default 21:00-08:00 and the playbook's own ``quiet_hours``) it sends now. Outside, with
``runs.outside_window: defer`` (the default) the messages are queued with ``send_after`` at the next
window start on a trading day (a run after hours on Friday sends on Monday, or on the first trading
day after a holiday); decisions say ``deferred``. With ``skip`` every candidate is blocked.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from panhuo.playbooks.rules import DEFAULT_QUIET_HOURS, in_quiet_hours
from panhuo.playbooks.schema import PlaybookSpec, minutes
from panhuo.runs.guardrails.base import Check, GuardContext

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["DEFER_REASON", "NAME", "REASONS", "checks", "send_time"]

NAME = "send_window"
REASONS = ("outside_send_window",)
DEFER_REASON = "deferred_to_send_window"


def _inside(spec: PlaybookSpec, at: dt.datetime) -> bool:
    minute = at.hour * 60 + at.minute
    start, end = (minutes(x) for x in spec.timing.send_window)
    if not start <= minute < end:
        return False
    quiet = [DEFAULT_QUIET_HOURS, *([spec.timing.quiet_hours] if spec.timing.quiet_hours else [])]
    return not any(in_quiet_hours(minute, q) for q in quiet)


def send_time(spec: PlaybookSpec, now: dt.datetime, cal: Any = None) -> tuple[dt.datetime, bool]:
    """``(when to send, whether now is inside the window)``: now, or the next window start — on a trading
    day of ``cal`` (a :class:`~panhuo.calendar.TradingCalendar`) when given and it covers that date."""
    if _inside(spec, now):
        return now, True
    h, m = (int(x) for x in spec.timing.send_window[0].split(":"))
    start = now.replace(hour=h, minute=m, second=0, microsecond=0)
    if start <= now:
        start += dt.timedelta(days=1)
    if cal is not None and cal.is_covered_year(start.year) and not cal.is_trading_day(start.date()):
        day = cal.next_trading_day(start.date())
        start = start.replace(year=day.year, month=day.month, day=day.day)
    return start, False


def checks(t: ir.Table, ctx: GuardContext) -> list[Check]:
    import ibis

    if ctx.inside_window or ctx.settings.outside_window == "defer":
        return []
    return [(ibis.literal(True), "outside_send_window")]
