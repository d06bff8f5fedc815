"""Response-history tags (过程数据): contacts and responses over 90/365 days, last contact date.

A *contact* is a treated row of ``contact_history`` (past campaigns run outside panhuo) with
``sent_at`` on or before ``as_of``, plus whatever :func:`contact_rows` is given as ``extra``: the
hook through which the measurement stage adds panhuo's own sends once they exist. A contact is
*answered* (a response) when the customer trades on the day it was sent or within the
``RESPONSE_TRADING_DAYS`` trading days after it (trades on or before ``as_of`` only, so a recent
contact can still become a response later). Holdout rows are not contacts.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import ibis

from panhuo.errors import ConfigError
from panhuo.tags._join import attach
from panhuo.tags.spec import RESPONSE_TRADING_DAYS, TagContext, TagSpec

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["CONTACT_COLUMNS", "SPECS", "WINDOWS", "contact_rows", "extend"]

#: the columns a contacts table has (extra columns are ignored)
CONTACT_COLUMNS: dict[str, str] = {"customer_id": "string", "sent_at": "timestamp"}
WINDOWS = (90, 365)

_G = "response"
SPECS: tuple[TagSpec, ...] = (
    *(
        TagSpec(f"contacts_{n}d", _G, "int", f"近{n}天触达次数", f"contacts in the last {n} days",
                f"treated contacts (contact_history and panhuo sends) with sent_at in [as_of - {n - 1} days, as_of]")
        for n in WINDOWS
    ),
    *(
        TagSpec(f"responses_{n}d", _G, "int", f"近{n}天响应次数", f"responses in the last {n} days",
                f"contacts_{n}d followed by a trade on the day sent or within {RESPONSE_TRADING_DAYS} trading days")
        for n in WINDOWS
    ),
    TagSpec("last_contact_date", _G, "date", "最近触达日期", "last contact date",
            "date of the latest treated contact on or before as_of; null when none"),
)


def contact_rows(contact_history: ir.Table | None, extra: ir.Table | None = None) -> ir.Table | None:
    """Every contact as ``(customer_id, sent_at)``: treated ``contact_history`` rows, then ``extra``.

    ``extra`` is the hook for panhuo's own sends (the measurement stage): any table with a
    ``customer_id`` (string) and a ``sent_at`` (timestamp, Asia/Shanghai wall time) column, one row
    per message delivered to the customer (holdout customers must not be in it).

    Raises
    ------
    ConfigError
        ``extra`` lacks one of the columns.
    """
    parts: list[ir.Table] = []
    if contact_history is not None:
        ch = contact_history.filter(contact_history["group"] == "treated")
        parts.append(ch.select(customer_id=ch.customer_id.cast("string"), sent_at=ch.sent_at.cast("timestamp")))
    if extra is not None:
        missing = [c for c in CONTACT_COLUMNS if c not in extra.columns]
        if missing:
            raise ConfigError(f"extra contacts: missing column(s) {', '.join(missing)} (need customer_id, sent_at)")
        parts.append(extra.select(customer_id=extra.customer_id.cast("string"), sent_at=extra.sent_at.cast("timestamp")))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else ibis.union(*parts, distinct=False)


def extend(ctx: TagContext, base: ir.Table) -> ir.Table:
    """Add the response tags (zeros and nulls when there are no contacts)."""
    if ctx.contacts is None:
        return base.mutate(
            **{f"contacts_{n}d": ibis.literal(0, "int64") for n in WINDOWS},
            **{f"responses_{n}d": ibis.literal(0, "int64") for n in WINDOWS},
            last_contact_date=ibis.null("date"),
        )
    end = ibis.literal(dt.datetime.combine(ctx.as_of + dt.timedelta(days=1), dt.time()), type="timestamp")
    c = ctx.contacts.filter(ctx.contacts.sent_at < end)
    c = c.select(_kid=c.customer_id, _sd=c.sent_at.date())
    last = c.group_by("_kid").agg(_lc=c["_sd"].max())

    w = c.filter(c["_sd"] >= ctx.start(max(WINDOWS)))
    days = ctx.days.select(_cd=ctx.days.cal_day, _until=ctx.days.response_until)
    w = w.join(days, w["_sd"] == days["_cd"]).drop("_cd")
    t = ctx.trades.filter((ctx.trades.trade_date >= ctx.start(max(WINDOWS))) & (ctx.trades.trade_date <= ctx.day))
    t = t.select(_rid=t.customer_id, _td=t.trade_date)
    answered = w.semi_join(t, [w["_kid"] == t["_rid"], t["_td"] >= w["_sd"], t["_td"] <= w["_until"]])

    def counts(tbl: ir.Table, prefix: str) -> ir.Table:
        aggs = {f"_{prefix}{n}": tbl["_sd"].count(where=None if n == max(WINDOWS) else tbl["_sd"] >= ctx.start(n))
                for n in WINDOWS}
        return tbl.group_by(tbl["_kid"].name(f"_{prefix}id")).agg(**aggs)

    j = attach(attach(attach(base, last, "_kid"), counts(w, "k"), "_kid"), counts(answered, "r"), "_rid")
    return j.mutate(
        **{f"contacts_{n}d": j[f"_k{n}"].fill_null(0).cast("int64") for n in WINDOWS},
        **{f"responses_{n}d": j[f"_r{n}"].fill_null(0).cast("int64") for n in WINDOWS},
        last_contact_date=j["_lc"].cast("date"),
    )
