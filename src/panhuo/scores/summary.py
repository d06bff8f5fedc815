"""The per-customer BG/NBD summary on trading days, as one portable Ibis expression.

Time is counted in trading days of the one trading calendar (:mod:`panhuo.calendar`): every trade
date is mapped to its session index by a join against a small sessions table, so the whole summary
is a single aggregation on the engine (no per-customer Python). For a customer with at least one
trade on or before ``as_of``:

- ``frequency``: distinct trading days with a trade, minus one (the first day is the "birth");
- ``recency``: trading days from the first to the last trading day with a trade (``t_x``);
- ``T``: trading days from the first trading day with a trade to ``as_of`` (the last session on or
  before it).

Trades dated on a day that is not a session of the calendar (a weekend or holiday booking) do not
match the sessions table and are left out.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import ibis
import pyarrow as pa

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from panhuo.calendar import TradingCalendar

__all__ = ["as_of_session", "collapsed_summary", "sessions_table", "trading_day_summary"]


def sessions_table(cal: TradingCalendar, end: dt.date) -> ir.Table:
    """``(session_date, session_idx)`` for every session from the calendar's first year to ``end``."""
    days = cal.sessions(dt.date(cal.first_year, 1, 1), end)
    return ibis.memtable(
        pa.table({
            "session_date": pa.array(days, type=pa.date32()),
            "session_idx": pa.array(range(len(days)), type=pa.int64()),
        })
    )


def as_of_session(cal: TradingCalendar, as_of: dt.date) -> int:
    """The session index (as in :func:`sessions_table`) of the last session on or before ``as_of``."""
    return len(cal.sessions(dt.date(cal.first_year, 1, 1), as_of)) - 1


def trading_day_summary(trades: ir.Table, cal: TradingCalendar, as_of: dt.date) -> ir.Table:
    """``customer_id, frequency, recency, T`` (int64, trading days) per customer with a trade by ``as_of``."""
    sessions = sessions_table(cal, as_of)
    last = as_of_session(cal, as_of)
    t = trades.filter(trades.trade_date <= ibis.literal(as_of, type="date"))
    days = t.select(cid=t.customer_id, day=t.trade_date.cast("date")).distinct()
    j = days.join(sessions, days.day == sessions.session_date)
    per = j.group_by(j.cid).agg(first=j.session_idx.min(), last=j.session_idx.max(), n=j.session_idx.count())
    return per.select(
        customer_id=per.cid,
        frequency=(per.n - 1).cast("int64"),
        recency=(per["last"] - per["first"]).cast("int64"),
        T=(ibis.literal(last, type="int64") - per["first"]).cast("int64"),
    )


def collapsed_summary(summary: ir.Table) -> pa.Table:
    """Distinct ``(frequency, recency, T)`` rows with the number of customers ``n`` (computed on the engine)."""
    g = summary.group_by("frequency", "recency", "T").agg(n=summary.count())
    return g.select(
        g.frequency.cast("int64"), g.recency.cast("int64"), g.T.cast("int64"), g.n.cast("int64")
    ).to_pyarrow()
