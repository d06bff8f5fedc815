"""What a tag is (:class:`TagSpec`) and what every tag group computes from (:class:`TagContext`).

A tag group (``assets``, ``trading``, ...) is one module with ``SPECS`` (its tags, in order) and
``extend(ctx, base) -> base``: it joins what it aggregates onto the per-customer ``base`` table and
adds one column per tag (stored name: ``<name>_fen`` for money). Every expression is plain Ibis over
the stored contract tables; nothing branches on the engine.

Windows are trailing and end at ``as_of`` inclusive: the 30-day window is
``[as_of - 29 days, as_of]`` (day 30 in, day 31 out). Only data on or before ``as_of`` is read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import ibis
import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from panhuo.calendar import TradingCalendar
    from panhuo.config import Settings

__all__ = [
    "GROUPS",
    "KINDS",
    "RESPONSE_TRADING_DAYS",
    "Kind",
    "TagContext",
    "TagSpec",
    "covered_days",
    "date_lit",
    "day_table",
    "window_start",
]

Kind = Literal["money", "int", "float", "bool", "date", "string"]
KINDS: tuple[str, ...] = ("money", "int", "float", "bool", "date", "string")
GROUPS: tuple[str, ...] = ("assets", "trading", "engagement", "reachability", "profile", "lifecycle", "response")

#: a contact counts as answered when the customer trades within this many trading days of it
RESPONSE_TRADING_DAYS = 10

_ARROW: dict[str, pa.DataType] = {
    "money": pa.int64(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "string": pa.string(),
}
_IBIS: dict[str, str] = {
    "money": "int64",
    "int": "int64",
    "float": "float64",
    "bool": "boolean",
    "date": "date",
    "string": "string",
}


@dataclass(frozen=True)
class TagSpec:
    """One tag: its name, group, kind, meaning (zh and en) and how it is computed.

    Money tags are stored as int64 fen in ``<name>_fen`` (exact); every other tag under its name.
    """

    name: str
    group: str
    kind: Kind
    zh: str
    en: str
    how: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"tag {self.name}: unknown kind {self.kind!r} (one of {', '.join(KINDS)})")
        if self.group not in GROUPS:
            raise ValueError(f"tag {self.name}: unknown group {self.group!r} (one of {', '.join(GROUPS)})")

    @property
    def stored(self) -> str:
        """The stored column: ``<name>_fen`` for money, else the name."""
        return f"{self.name}_fen" if self.kind == "money" else self.name

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW[self.kind]

    @property
    def ibis_type(self) -> str:
        return _IBIS[self.kind]


def date_lit(day: dt.date) -> ir.DateScalar:
    return ibis.literal(day, type="date")


def window_start(as_of: dt.date, days: int) -> dt.date:
    """First day of the trailing ``days``-day window ending on ``as_of`` (inclusive)."""
    return as_of - dt.timedelta(days=days - 1)


def covered_days(as_of: dt.date, previous_session: dt.date | None) -> list[dt.date]:
    """The calendar days in ``(previous_session, as_of]``, oldest first (``[as_of]`` without one).

    A run on ``as_of`` answers for these days: a weekend or holiday belongs to the next trading day.
    """
    if previous_session is None or previous_session >= as_of:
        return [as_of]
    return [previous_session + dt.timedelta(days=i) for i in range(1, (as_of - previous_session).days + 1)]


def day_table(cal: TradingCalendar, as_of: dt.date, response_days: int = RESPONSE_TRADING_DAYS) -> pa.Table:
    """Every calendar day from the calendar's first covered day to ``as_of``, for joins.

    Columns: ``cal_day`` (date), ``sessions`` (int64: trading days on or before ``cal_day`` since the
    calendar's start, so trading days in ``(a, b]`` are ``sessions(b) - sessions(a)``) and
    ``response_until`` (date: the ``response_days``-th trading day after ``cal_day``; the calendar's
    last day when that is beyond it). Built once from the calendar service, never per customer.
    """
    first = dt.date(cal.first_year, 1, 1)
    last = dt.date(cal.last_year, 12, 31)
    sessions = cal.sessions_array(first, last)
    days = np.arange(np.datetime64(first, "D"), np.datetime64(as_of, "D") + 1, dtype="datetime64[D]")
    counts = np.searchsorted(sessions, days, side="right").astype(np.int64)
    idx = counts + (response_days - 1)
    until = np.where(idx < len(sessions), sessions[np.minimum(idx, len(sessions) - 1)], np.datetime64(last, "D"))
    return pa.table(
        {
            "cal_day": pa.array(days, pa.date32()),
            "sessions": pa.array(counts, pa.int64()),
            "response_until": pa.array(until.astype("datetime64[D]"), pa.date32()),
        }
    )


@dataclass
class TagContext:
    """The inputs of one tag computation at ``as_of``.

    ``customers`` ... ``contact_permissions`` are the stored contract tables of the load in force;
    ``contacts`` is every contact (customer_id, sent_at) to count as process data, or None;
    ``status`` the stored status snapshot at ``as_of`` (with ``status_since``); ``days`` the
    calendar day table (:func:`day_table`) and ``sessions_at_as_of`` its ``sessions`` at ``as_of``;
    ``previous_session`` the last trading day strictly before ``as_of`` (None: ``as_of`` - 1 day), so
    ``(previous_session, as_of]`` holds the calendar days a run on ``as_of`` answers for (a weekend or
    holiday belongs to the next trading day).
    """

    as_of: dt.date
    settings: Settings
    customers: ir.Table
    balances: ir.Table
    trades: ir.Table
    app_events: ir.Table
    contact_permissions: ir.Table
    status: ir.Table
    days: ir.Table
    sessions_at_as_of: int
    contacts: ir.Table | None = None
    previous_session: dt.date | None = None

    @property
    def day(self) -> ir.DateScalar:
        return date_lit(self.as_of)

    def covered_days(self) -> list[dt.date]:
        """The calendar days in ``(previous_session, as_of]`` (:func:`covered_days`)."""
        return covered_days(self.as_of, self.previous_session)

    def restrict(self, low: str | None, high: str | None) -> TagContext:
        """The same inputs limited to customers with ``low <= customer_id < high`` (None: unbounded).

        Every tag is an aggregate over one customer's own rows, so the tags of a range computed
        from the restricted inputs are the tags of those customers computed from all of them.
        """

        def cut(t: ir.Table | None) -> ir.Table | None:
            if t is None:
                return None
            cond = []
            if low is not None:
                cond.append(t.customer_id >= low)
            if high is not None:
                cond.append(t.customer_id < high)
            return t.filter(*cond) if cond else t

        return replace(
            self,
            customers=cut(self.customers),
            balances=cut(self.balances),
            trades=cut(self.trades),
            app_events=cut(self.app_events),
            contact_permissions=cut(self.contact_permissions),
            status=cut(self.status),
            contacts=cut(self.contacts),
        )

    def start(self, days: int) -> ir.DateScalar:
        """First day of the trailing ``days``-day window, as a literal."""
        return date_lit(window_start(self.as_of, days))
