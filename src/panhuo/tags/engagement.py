"""Engagement tags from ``app_events``: last login, logins and active days over 30/90 days, monthly
active, content views, push opens, app user, complaints over 90 days.

Complaints (投诉): the contract has no complaints table; the call centre or complaint system exports
each complaint as an ``app_events`` row with ``event = 'complaint'`` (``channel`` where it came in,
e.g. ``call_centre``). A complaint is not app activity: it counts in ``complaints_90d`` only, never
in the active days.

One pass over the 90-day window: events are first reduced to one row per customer and day (with
counts per event kind), then summed per customer with 30-day filters, so the active-day counts are
plain counts of day rows, never a distinct count over the whole history. ``last_login`` needs the
whole history of logins (one narrow scan of login events).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import ibis

from panhuo.tags._join import attach
from panhuo.tags.spec import TagContext, TagSpec

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["COMPLAINT", "CONTENT_VIEW", "LOGIN", "PUSH_OPEN", "SPECS", "extend"]

LOGIN = "login"
CONTENT_VIEW = "content_view"
PUSH_OPEN = "push_open"
COMPLAINT = "complaint"

_G = "engagement"
SPECS: tuple[TagSpec, ...] = (
    TagSpec("last_login", _G, "date", "最近登录日期", "last app login",
            "date of the latest login event on or before as_of; null when none"),
    TagSpec("logins_30d", _G, "int", "近30天登录次数", "logins in the last 30 days",
            "count of login events in [as_of - 29 days, as_of]"),
    TagSpec("logins_90d", _G, "int", "近90天登录次数", "logins in the last 90 days",
            "count of login events in [as_of - 89 days, as_of]"),
    TagSpec("active_days_30d", _G, "int", "近30天活跃天数", "active days in the last 30 days",
            "days with any app event (complaints aside) in [as_of - 29 days, as_of]"),
    TagSpec("active_days_90d", _G, "int", "近90天活跃天数", "active days in the last 90 days",
            "days with any app event (complaints aside) in [as_of - 89 days, as_of]"),
    TagSpec("monthly_active", _G, "bool", "月活", "monthly active (app MAU)",
            "a login in the 30 days to as_of (logins_30d > 0)"),
    TagSpec("content_views_30d", _G, "int", "近30天内容浏览", "content views in the last 30 days",
            "count of content_view events in [as_of - 29 days, as_of]"),
    TagSpec("push_opens_30d", _G, "int", "近30天推送打开", "push notifications opened in the last 30 days",
            "count of push_open events in [as_of - 29 days, as_of]"),
    TagSpec("app_user", _G, "bool", "APP用户", "app user",
            "customers.app_user, or any login on or before as_of"),
    TagSpec("complaints_90d", _G, "int", "近90天投诉次数", "complaints in the last 90 days",
            "count of app_events with event 'complaint' in [as_of - 89 days, as_of]: the call centre or "
            "complaint system exports each complaint as such a row (channel e.g. call_centre)"),
)


def _ts(day: dt.date) -> ir.TimestampScalar:
    return ibis.literal(dt.datetime(day.year, day.month, day.day), type="timestamp")


def extend(ctx: TagContext, base: ir.Table) -> ir.Table:
    """Add the engagement tags; ``base`` has ``_c_app_user`` (customers.app_user)."""
    ev = ctx.app_events
    end = _ts(ctx.as_of + dt.timedelta(days=1))  # event_time < the next midnight
    start = _ts(ctx.as_of - dt.timedelta(days=89))
    w = ev.filter((ev.event_time >= start) & (ev.event_time < end))
    w = w.select(_eid=w.customer_id, _day=w.event_time.cast("timestamp").date(), _ev=w.event)
    per_day = w.group_by(["_eid", "_day"]).agg(
        _lg=w["_ev"].count(where=w["_ev"] == LOGIN),
        _cv=w["_ev"].count(where=w["_ev"] == CONTENT_VIEW),
        _po=w["_ev"].count(where=w["_ev"] == PUSH_OPEN),
        _cp=w["_ev"].count(where=w["_ev"] == COMPLAINT),
        _n=w["_ev"].count(),
    )
    in30 = per_day["_day"] >= ctx.start(30)
    active = per_day["_n"] > per_day["_cp"]  # some event besides complaints
    agg = per_day.group_by("_eid").agg(
        _lg30=per_day["_lg"].sum(where=in30),
        _lg90=per_day["_lg"].sum(),
        _ad30=per_day["_day"].count(where=in30 & active),
        _ad90=per_day["_day"].count(where=active),
        _cv30=per_day["_cv"].sum(where=in30),
        _po30=per_day["_po"].sum(where=in30),
        _cp90=per_day["_cp"].sum(),
    )
    logins = ev.filter((ev.event == LOGIN) & (ev.event_time < end))
    last = logins.group_by(logins.customer_id.name("_lid")).agg(_last=logins.event_time.max())

    j = attach(attach(base, agg, "_eid"), last, "_lid")

    def z(col: str) -> ir.IntegerValue:
        return j[col].fill_null(0).cast("int64")

    last_login = j["_last"].cast("timestamp").date()
    return j.mutate(
        last_login=last_login,
        logins_30d=z("_lg30"),
        logins_90d=z("_lg90"),
        active_days_30d=z("_ad30"),
        active_days_90d=z("_ad90"),
        monthly_active=z("_lg30") > 0,
        content_views_30d=z("_cv30"),
        push_opens_30d=z("_po30"),
        app_user=j["_c_app_user"].fill_null(False) | last_login.notnull(),
        complaints_90d=z("_cp90"),
    )
