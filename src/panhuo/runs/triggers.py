"""Triggers (时点): whether a playbook's timing fires on a day, and whom the firing is about.

:func:`evaluate` answers for one playbook and one as-of day ``T``; ``panhuo run --due`` and the
scheduler ask it for every live playbook. Days are Asia/Shanghai calendar dates; "trading day" is
the exchange calendar (:mod:`panhuo.calendar`). A run only happens on a trading day, and what
happened since the previous trading day is caught on ``T``: an event or a transition dated on a
weekend or holiday fires on the next trading day, so nothing falls between two runs.

- ``schedule``: ``every_trading_day`` (every trading day; the scheduler waits until ``at``),
  ``first_trading_day_of_month``, ``n_trading_days_before`` a market event of a kind (the event's
  date is ``n`` trading days after ``T``).
- ``market_event``: a ``market_events`` row of the kind dated in ``(previous trading day, T]``;
  ``index_move`` also needs ``|change_pct| >= threshold`` in the wanted direction (and the index,
  when the playbook names one). The audience is the playbook's segment, unchanged.
- ``lifecycle``: status transitions dated in ``(previous trading day, T]`` from the status history
  (``effective_to_sleeping``: effective -> sleeping; ``reactivated``: sleeping or dormant ->
  effective); ``new_empty``: customers still new and empty whose account opened exactly ``d``
  calendar days before a day in that interval, for each ``d`` of ``days``. The audience is the
  segment restricted to those customers (:attr:`Firing.audience`).
- ``behaviour``: ``logged_in_no_trade``: at least ``min_logins`` logins in the ``days`` calendar days
  ending on ``T`` and no trade in them; ``push_opened_no_trade``: a push opened in those days and no
  trade on or after the first such open. Read from ``app_events`` and ``trades`` (set-based).

Re-entry (once ever, every N trading days, every time) is not decided here but by the ``reentry``
guardrail, over the same candidate set, so its refusals show in the funnel.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ibis

from panhuo.calendar import TradingCalendar, calendar_for
from panhuo.errors import CalendarError
from panhuo.playbooks.schema import (
    BehaviourTiming,
    LifecycleTiming,
    MarketEventTiming,
    PlaybookSpec,
    ScheduleTiming,
)

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace
    from panhuo.warehouse import Warehouse

__all__ = ["Firing", "evaluate", "market_events", "window"]

_TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "effective_to_sleeping": (("effective",), "sleeping"),
    "reactivated": (("sleeping", "dormant"), "effective"),
}


@dataclass
class Firing:
    """The answer for one playbook on one day.

    ``fires``: whether it runs; ``why``: a sentence for the operator (also when it does not fire);
    ``audience``: ``customer_id`` of the customers the firing is about (None: the whole segment);
    ``events``: the market events that fired it (``date``, ``kind``, ``attributes``).
    """

    playbook_id: str
    as_of: dt.date
    fires: bool
    why: str
    audience: ir.Table | None = None
    events: list[dict[str, Any]] | None = None


def window(cal: TradingCalendar, as_of: dt.date) -> tuple[dt.date, dt.date]:
    """``(first, last)`` calendar days a run on trading day ``as_of`` covers: the day after the
    previous trading day up to ``as_of`` (so a weekend's events are caught on Monday)."""
    prev = cal.previous_trading_day(as_of)
    return prev + dt.timedelta(days=1), as_of


def market_events(wh: Warehouse, con: BaseBackend, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
    """Market events dated in ``[first, last]`` as dicts (attributes parsed); [] without the table."""
    if not wh.has_table("market_events"):
        return []
    t = wh.table(con, "market_events")
    lo, hi = ibis.literal(first, type="date"), ibis.literal(last, type="date")
    rows = t.filter((t.date >= lo) & (t.date <= hi)).select("date", "kind", "attributes").to_pyarrow().to_pylist()
    out = []
    for r in rows:
        attrs = r.get("attributes")
        if isinstance(attrs, str):
            try:
                attrs = json.loads(attrs)
            except ValueError:
                attrs = {}
        out.append({"date": r["date"], "kind": r["kind"], "attributes": attrs or {}})
    return sorted(out, key=lambda e: (e["date"], e["kind"], json.dumps(e["attributes"], sort_keys=True)))


def _index_code(text: str) -> str:
    return text.strip().upper().split(".")[0]


def _index_move_matches(timing: MarketEventTiming, attrs: dict[str, Any]) -> bool:
    try:
        change = float(attrs.get("change_pct"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    if timing.index and _index_code(str(attrs.get("index", ""))) != _index_code(timing.index):
        return False
    threshold = float(timing.threshold or 0)
    direction = timing.direction or "either"
    if direction == "up":
        return change >= threshold
    if direction == "down":
        return change <= -threshold
    return abs(change) >= threshold


def _schedule(spec: PlaybookSpec, timing: ScheduleTiming, cal: TradingCalendar, as_of: dt.date,
              wh: Warehouse, con: BaseBackend) -> Firing:
    if timing.schedule == "every_trading_day":
        return Firing(spec.id, as_of, True, f"every trading day at {timing.at}")
    if timing.schedule == "first_trading_day_of_month":
        first = cal.sessions(as_of.replace(day=1), as_of)[0]
        if first == as_of:
            return Firing(spec.id, as_of, True, "the first trading day of the month")
        return Firing(spec.id, as_of, False, f"not the first trading day of the month (that was {first})")
    n = int(timing.n or 0)
    target = cal.add_trading_days(as_of, n)
    events = [e for e in market_events(wh, con, target, target) if e["kind"] == timing.event]
    if events:
        return Firing(spec.id, as_of, True, f"{len(events)} {timing.event} event(s) on {target}, {n} trading "
                      f"day(s) ahead", events=events)
    return Firing(spec.id, as_of, False, f"no {timing.event} event on {target} ({n} trading day(s) ahead)")


def _market(spec: PlaybookSpec, timing: MarketEventTiming, cal: TradingCalendar, as_of: dt.date,
            wh: Warehouse, con: BaseBackend) -> Firing:
    first, last = window(cal, as_of)
    events = [e for e in market_events(wh, con, first, last) if e["kind"] == timing.event]
    if timing.event == "index_move":
        events = [e for e in events if _index_move_matches(timing, e["attributes"])]
    span = f"{first}..{last}" if first != last else str(last)
    if events:
        return Firing(spec.id, as_of, True, f"{len(events)} {timing.event} event(s) on {span}", events=events)
    return Firing(spec.id, as_of, False, f"no matching {timing.event} event on {span}")


def _lifecycle(ws: Workspace, spec: PlaybookSpec, timing: LifecycleTiming, cal: TradingCalendar,
               as_of: dt.date, wh: Warehouse, con: BaseBackend) -> Firing:
    from panhuo.status.history import load_status, transitions

    first, last = window(cal, as_of)
    if timing.transition == "new_empty":
        status = load_status(ws, con, as_of)
        cust = wh.table(con, "customers")
        offsets = sorted(int(d) for d in timing.days or [])
        opened = ibis.literal(False)
        for d in offsets:
            lo = ibis.literal(first - dt.timedelta(days=d), type="date")
            hi = ibis.literal(last - dt.timedelta(days=d), type="date")
            opened = opened | ((cust.open_date >= lo) & (cust.open_date <= hi))
        ids = cust.filter(opened).select(_oid=cust.customer_id.cast("string"))
        new = status.filter(status.status == "new_empty").select(customer_id=status.customer_id)
        aud = new.join(ids, new.customer_id == ids._oid).select("customer_id").distinct()
        days = ", ".join(str(d) for d in offsets)
        return Firing(spec.id, as_of, True, f"accounts opened {days} day(s) before {first}..{last}, still empty",
                      audience=aud)
    sources, target = _TRANSITIONS[timing.transition]
    ev = transitions(ws, con, since=first, until=last)
    ev = ev.filter(ev.from_status.isin(list(sources)) & (ev.to_status == target))
    aud = ev.select(customer_id=ev.customer_id.cast("string")).distinct()
    return Firing(spec.id, as_of, True, f"{timing.transition} transitions dated {first}..{last}", audience=aud)


def _behaviour(spec: PlaybookSpec, timing: BehaviourTiming, as_of: dt.date, wh: Warehouse,
               con: BaseBackend) -> Firing:
    start = as_of - dt.timedelta(days=timing.days - 1)
    lo = ibis.literal(dt.datetime.combine(start, dt.time()), type="timestamp")
    hi = ibis.literal(dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time()), type="timestamp")
    ev = wh.table(con, "app_events")
    ev = ev.filter((ev.event_time.cast("timestamp") >= lo) & (ev.event_time.cast("timestamp") < hi))
    tr = wh.table(con, "trades")
    tr = tr.filter((tr.trade_date >= ibis.literal(start, type="date"))
                   & (tr.trade_date <= ibis.literal(as_of, type="date")))
    if timing.behaviour == "logged_in_no_trade":
        logins = ev.filter(ev.event == "login").group_by(cid=ev.customer_id.cast("string")).agg(n=ibis._.count())
        who = logins.filter(logins.n >= int(timing.min_logins or 1)).select("cid")
        traded = tr.select(tid=tr.customer_id.cast("string")).distinct()
        aud = who.anti_join(traded, who.cid == traded.tid).select(customer_id="cid")
        why = f"at least {timing.min_logins} logins in {timing.days} day(s) without a trade"
    else:
        opens = ev.filter(ev.event == "push_open").group_by(cid=ev.customer_id.cast("string")).agg(
            first_open=ev.event_time.cast("timestamp").min())
        day_of_open = opens.first_open.date()
        traded = tr.select(tid=tr.customer_id.cast("string"), td=tr.trade_date)
        after = opens.join(traded, (opens.cid == traded.tid) & (traded.td >= day_of_open)).select("cid").distinct()
        aud = opens.select("cid").anti_join(after, "cid").select(customer_id="cid")
        why = f"a push opened in {timing.days} day(s) and no trade since"
    return Firing(spec.id, as_of, True, why, audience=aud)


def evaluate(ws: Workspace, con: BaseBackend, spec: PlaybookSpec, as_of: dt.date,
             cal: TradingCalendar | None = None) -> Firing:
    """Whether ``spec``'s trigger fires on ``as_of`` and, for per-customer triggers, whom it is about.

    Raises
    ------
    CalendarError
        ``as_of`` is outside the trading calendar.
    WarehouseError
        Nothing loaded (or, for lifecycle triggers, no status history).
    """
    from panhuo.warehouse import Warehouse

    cal = cal or calendar_for(ws)
    if not cal.is_covered_year(as_of.year):
        raise CalendarError(f"{as_of} is outside the trading calendar ({cal.first_year}-{cal.last_year})")
    if not cal.is_trading_day(as_of):
        return Firing(spec.id, as_of, False, f"{as_of} is not a trading day: runs happen on trading days only")
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    timing = spec.timing
    if isinstance(timing, ScheduleTiming):
        return _schedule(spec, timing, cal, as_of, wh, con)
    if isinstance(timing, MarketEventTiming):
        return _market(spec, timing, cal, as_of, wh, con)
    if isinstance(timing, LifecycleTiming):
        return _lifecycle(ws, spec, timing, cal, as_of, wh, con)
    assert isinstance(timing, BehaviourTiming)
    return _behaviour(spec, timing, as_of, wh, con)
