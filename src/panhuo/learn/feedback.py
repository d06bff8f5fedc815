"""Outcome tags (结果标签): what past contacts did, written back as dated tags the segment language reads.

``compute_feedback(ws, con, as_of)`` reads every **contact** sent on or before ``as_of``: the treated
rows of the warehouse's ``contact_history`` (past campaigns run outside panhuo: channel, benefit) and
panhuo's own messages the delivery worker sent (operational ``outbox`` rows with status ``sent``:
channel, benefit). A contact is **answered** exactly as the response tags count it
(:mod:`panhuo.tags.response`): the customer trades on the day it was sent or within
``RESPONSE_TRADING_DAYS`` (10) trading days after it, counting trades on or before ``as_of`` only (so
tags of a past date never see the future, and a recent contact may still become answered later).

Tags (one row per customer opened on or before ``as_of``):

* ``responded_90d`` (bool): some contact sent in the 90 days ``[as_of - 89, as_of]`` was answered;
* ``best_channel`` (string: app_push, sms, wechat, call): over the contacts of the last 365 days, the
  channel with the most answered contacts; ties go to the higher answer rate, then the most recent
  answer, then the channel name. Null when no contact of the last 365 days was answered;
* ``best_benefit_kind`` (string): the same over the **kind** of the benefit offered (the benefit
  catalogue's ``kind``, e.g. ``level2_trial``; a benefit id the catalogue does not know counts as its
  own kind); contacts without a benefit are not counted. Null when none was answered;
* ``contact_fatigue_30d`` (int): contacts sent in the 30 days ``[as_of - 29, as_of]`` not answered
  (so far): a customer messaged three times this month without reacting is tired, not asleep.

Stored like a score family (``feedback``, :class:`panhuo.scores.store.ScoreStore`: a dated Parquet
snapshot committed atomically by its JSON), so the audience of every segment and playbook joins the
newest snapshot on or before its date and rules use the names directly:
``responded_90d and contact_fatigue_30d < 3``, ``best_channel = 'sms'``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace

__all__ = ["FAMILY", "OUTCOME_TAGS", "SCHEMA", "FeedbackResult", "compute_feedback", "own_sends", "outcome_tags"]

FAMILY = "feedback"
#: name -> (kind, zh, en)
OUTCOME_TAGS: dict[str, tuple[str, str, str]] = {
    "responded_90d": ("bool", "近90天有响应", "answered a contact in the last 90 days"),
    "best_channel": ("string", "最佳触达渠道", "channel with the most answered contacts (365 days)"),
    "best_benefit_kind": ("string", "最佳权益类型", "benefit kind with the most answered contacts (365 days)"),
    "contact_fatigue_30d": ("int", "近30天未响应触达次数", "contacts in the last 30 days without response"),
}
SCHEMA = pa.schema([("customer_id", pa.string()), ("responded_90d", pa.bool_()), ("best_channel", pa.string()),
                    ("best_benefit_kind", pa.string()), ("contact_fatigue_30d", pa.int64())])
_CONTACT_SCHEMA = pa.schema([("customer_id", pa.string()), ("sent_at", pa.timestamp("us")),
                             ("channel", pa.string()), ("benefit", pa.string())])

Progress = Callable[[str, int, int], None]


@dataclass
class FeedbackResult:
    """A stored outcome-tag snapshot and a one-line distribution per tag."""

    as_of: dt.date
    customers: int
    contacts: int  # contacts sent in the 365 days up to as_of that were read
    path: Path
    summary: dict[str, tuple[str, str]]  # tag -> (zh, distribution)
    table: pa.Table = field(repr=False)


def own_sends(ws: Workspace, as_of: dt.date) -> pa.Table:
    """panhuo's own sent messages up to ``as_of`` (customer_id, sent_at as Shanghai wall time, channel, benefit)."""
    from sqlalchemy import select

    from panhuo.runs.models import OutboxMessage
    from panhuo.store import open_store

    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    store = open_store(ws)
    try:
        with store.session() as s:
            o = OutboxMessage
            got = s.execute(select(o.customer_id, o.sent_at, o.channel, o.benefit_id)
                            .where(o.status == "sent", o.sent_at.is_not(None))).all()
    finally:
        store.dispose()
    rows = {"customer_id": [], "sent_at": [], "channel": [], "benefit": []}
    for cid, sent, channel, benefit in got:
        wall = sent.replace(tzinfo=None) if sent.tzinfo is None else sent.astimezone(_shanghai()).replace(tzinfo=None)
        if wall < end:
            for k, v in (("customer_id", cid), ("sent_at", wall), ("channel", channel), ("benefit", benefit)):
                rows[k].append(v)
    return pa.table(rows, schema=_CONTACT_SCHEMA)


def _shanghai() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")


def _benefit_kinds(ws: Workspace) -> pa.Table:
    from panhuo.benefits.catalogue import load_catalogue

    items = list(load_catalogue(ws))
    return pa.table({"_bid": [b.id for b in items], "_bkind": [str(b.kind) for b in items]},
                    schema=pa.schema([("_bid", pa.string()), ("_bkind", pa.string())]))


def _best(c: ir.Table, key: str, name: str) -> ir.Table:
    """Per customer: the value of ``key`` with the most answered contacts (ties: rate, latest answer, name)."""
    c = c.filter(c[key].notnull())
    g = c.group_by([c._kid, c[key].name("_v")]).agg(
        _ans=c._ans.sum(), _n=c._ans.count(), _last=c._sd.max(where=c._ans == 1))
    g = g.filter(g._ans > 0)
    g = g.mutate(_rate=g._ans.cast("float64") / g._n)
    w = ibis.window(group_by=g._kid, order_by=[ibis.desc(g._ans), ibis.desc(g._rate), ibis.desc(g._last), g._v])
    g = g.mutate(_rn=ibis.row_number().over(w))
    g = g.filter(g._rn == 0)
    return g.select(**{f"_{name}_id": g._kid, name: g._v})


def outcome_tags(customers: ir.Table, contacts: ir.Table | None, trades: ir.Table, days: ir.Table,
                 kinds: ir.Table, as_of: dt.date) -> ir.Table:
    """The outcome tags as one Ibis expression (see the module docstring); ``days`` is ``day_table``'s."""
    from panhuo.tags.spec import window_start

    base = customers.filter(customers.open_date <= as_of).select(customer_id=customers.customer_id.cast("string"))
    if contacts is None:
        return base.mutate(responded_90d=ibis.literal(False), best_channel=ibis.null("string"),
                           best_benefit_kind=ibis.null("string"), contact_fatigue_30d=ibis.literal(0, "int64"))
    end = ibis.literal(dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time()), type="timestamp")
    first = ibis.literal(window_start(as_of, 365), type="date")
    c = contacts.filter(contacts.sent_at < end)
    c = c.mutate(_sd=c.sent_at.date())
    c = c.filter(c._sd >= first)
    c = c.select(_kid=c.customer_id.cast("string"), _sd=c._sd, _ch=c.channel.cast("string"),
                 _bid=c.benefit.cast("string"))
    c = c.mutate(_k=ibis.row_number())
    d = days.select(_cd=days.cal_day, _until=days.response_until)
    c = c.join(d, c._sd == d._cd).drop("_cd")
    t = trades.filter((trades.trade_date >= first) & (trades.trade_date <= as_of))
    t = t.select(_rid=t.customer_id.cast("string"), _td=t.trade_date.cast("date"))
    answered = c.semi_join(t, [c._kid == t._rid, t._td >= c._sd, t._td <= c._until]).select(_ak=c._k, _a=ibis.literal(1))
    c = c.left_join(answered, c._k == answered._ak)
    c = c.mutate(_ans=c._a.fill_null(0).cast("int64"))
    k = kinds.select(_kb=kinds._bid, _kk=kinds._bkind)
    c = c.left_join(k, c._bid == k._kb)
    c = c.mutate(_kind=ibis.coalesce(c._kk, c._bid)).drop("_kb", "_kk")
    c = c.select("_kid", "_sd", "_ch", "_kind", "_ans")
    per = c.group_by(_pid=c._kid).agg(
        _r90=c._ans.max(where=c._sd >= ibis.literal(window_start(as_of, 90), type="date")),
        _f30=c._ans.count(where=(c._sd >= ibis.literal(window_start(as_of, 30), type="date")) & (c._ans == 0)),
    )
    ch = _best(c, "_ch", "best_channel")
    bk = _best(c, "_kind", "best_benefit_kind")
    j = base.left_join(per, base.customer_id == per._pid)
    j = j.left_join(ch, j.customer_id == ch._best_channel_id)
    j = j.left_join(bk, j.customer_id == bk._best_benefit_kind_id)
    return j.select(
        customer_id=j.customer_id,
        responded_90d=(j._r90.fill_null(0) > 0),
        best_channel=j.best_channel,
        best_benefit_kind=j.best_benefit_kind,
        contact_fatigue_30d=j._f30.fill_null(0).cast("int64"),
    )


def _summary(table: pa.Table) -> dict[str, tuple[str, str]]:
    n = max(table.num_rows, 1)
    out: dict[str, tuple[str, str]] = {}
    yes = sum(1 for v in table.column("responded_90d").to_pylist() if v)
    out["responded_90d"] = (OUTCOME_TAGS["responded_90d"][1], f"{yes:,} true ({yes / n:.1%})")
    for name in ("best_channel", "best_benefit_kind"):
        counts = Counter(v for v in table.column(name).to_pylist() if v is not None)
        text = ", ".join(f"{k} {v:,}" for k, v in counts.most_common(5)) or "none"
        out[name] = (OUTCOME_TAGS[name][1], f"{text}; null {n - sum(counts.values()):,}")
    fat = [v for v in table.column("contact_fatigue_30d").to_pylist() if v is not None]
    tired = sum(1 for v in fat if v >= 3)
    out["contact_fatigue_30d"] = (OUTCOME_TAGS["contact_fatigue_30d"][1],
                                  f"max {max(fat, default=0)}, >= 3: {tired:,}, > 0: {sum(1 for v in fat if v > 0):,}")
    return out


def compute_feedback(ws: Workspace, con: BaseBackend, as_of: dt.date, progress: Progress | None = None) -> FeedbackResult:
    """Compute the outcome tags at ``as_of`` and store the ``feedback`` snapshot of that date.

    Raises
    ------
    WarehouseError
        Nothing loaded.
    CalendarError
        ``as_of`` outside the trading calendar.
    """
    from panhuo.calendar import calendar_for
    from panhuo.errors import CalendarError
    from panhuo.scores.store import ScoreStore
    from panhuo.tags.spec import day_table
    from panhuo.warehouse import Warehouse

    note = progress or (lambda _s, _d, _n: None)
    note("contacts", 0, 3)
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    cal = calendar_for(ws)
    if not cal.is_covered_year(as_of.year):
        raise CalendarError(f"{as_of.isoformat()} is outside the trading calendar ({cal.first_year}-{cal.last_year})")
    parts: list[ir.Table] = []
    if wh.has_table("contact_history"):
        h = wh.table(con, "contact_history")
        h = h.filter(h["group"] == "treated")
        parts.append(h.select(customer_id=h.customer_id.cast("string"), sent_at=h.sent_at.cast("timestamp"),
                              channel=h.channel.cast("string"), benefit=h.benefit.cast("string")))
    own = own_sends(ws, as_of)
    if own.num_rows:
        m = ibis.memtable(own)
        parts.append(m.select(customer_id=m.customer_id, sent_at=m.sent_at.cast("timestamp"), channel=m.channel,
                              benefit=m.benefit))
    contacts = (parts[0] if len(parts) == 1 else ibis.union(*parts, distinct=False)) if parts else None
    n_contacts = 0
    if contacts is not None:
        end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
        start = dt.datetime.combine(as_of - dt.timedelta(days=364), dt.time())
        n_contacts = int(contacts.filter((contacts.sent_at < end) & (contacts.sent_at >= start)).count().execute())
    note("outcome tags", 1, 3)
    expr = outcome_tags(wh.table(con, "customers"), contacts, wh.table(con, "trades"),
                        ibis.memtable(day_table(cal, as_of)), ibis.memtable(_benefit_kinds(ws)), as_of)
    table = con.to_pyarrow(expr).select(SCHEMA.names).cast(SCHEMA).sort_by("customer_id")
    note("store", 2, 3)
    record = {"load_id": wh.current_id, "contacts": n_contacts, "tags": {k: {"kind": v[0], "zh": v[1], "en": v[2]}
                                                                         for k, v in OUTCOME_TAGS.items()}}
    path, rows = ScoreStore.of(ws, FAMILY).write(as_of, table.to_batches(), SCHEMA, record)
    note("stored", 3, 3)
    return FeedbackResult(as_of, rows, n_contacts, path, _summary(table), table)
