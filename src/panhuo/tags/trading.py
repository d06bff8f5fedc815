"""Trading tags: last trade, trading days since, counts, traded amount and commission over 30/90/365 days,
preferred asset class and market, net commission rate.

Every windowed number comes from ONE pass over the trades of the 365-day window (conditional
aggregates), never a scan of the whole history: the 30- and 90-day figures are filtered sums of
the same group-by, and so are the per-asset-class and per-market amounts the preferences are
picked from. ``last_trade_date`` is the status snapshot's (the same rule over the same load), and
the trading days since it come from a join with the calendar's day table (:func:`day_table`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis

from panhuo.contract.schema import ASSET_CLASSES, MARKETS
from panhuo.tags._join import attach
from panhuo.tags.spec import TagContext, TagSpec

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["SPECS", "WINDOWS", "extend", "preferred"]

WINDOWS = (30, 90, 365)

_G = "trading"


def _windowed(name: str, kind: str, zh: str, en: str, how: str) -> tuple[TagSpec, ...]:
    return tuple(
        TagSpec(f"{name}_{n}d", _G, kind, f"近{n}天{zh}", f"{en} in the last {n} days",  # type: ignore[arg-type]
                f"{how} with trade_date in [as_of - {n - 1} days, as_of]")
        for n in WINDOWS
    )


SPECS: tuple[TagSpec, ...] = (
    TagSpec("last_trade_date", _G, "date", "最近交易日期", "last trade date",
            "latest trade_date on or before as_of (from the status snapshot); null when never traded"),
    TagSpec("trading_days_since_last_trade", _G, "int", "距最近交易的交易日数", "trading days since the last trade",
            "trading days in (last_trade_date, as_of] by the trading calendar; null when never traded "
            "(or last traded before the calendar's first covered year)"),
    *_windowed("trade_count", "int", "交易笔数", "number of trades", "count of trades"),
    *_windowed("traded_amount", "money", "成交金额", "traded amount", "sum of amount"),
    *_windowed("commission", "money", "佣金", "commission paid", "sum of commission"),
    TagSpec("preferred_asset_class", _G, "string", "偏好品种", "preferred asset class",
            "asset class with the largest traded amount over 365 days (ties: stock, fund, bond, option, other); "
            "null when nothing was traded"),
    TagSpec("preferred_market", _G, "string", "偏好市场", "preferred market",
            "market with the largest traded amount over 365 days (ties: SH, SZ, BJ, OTC); null when nothing was traded"),
    TagSpec("net_commission_rate", _G, "float", "净佣金率", "net commission rate",
            "commission_365d / traded_amount_365d, the customer's own rate; null when no traded amount"),
)


def preferred(amounts: dict[str, ir.IntegerValue]) -> ir.StringValue:
    """The key with the largest amount (the first in ``amounts`` order on a tie); null when all are 0."""
    top = ibis.greatest(*amounts.values())
    return ibis.cases(
        (top <= 0, ibis.null("string")),
        *[(v == top, k) for k, v in amounts.items()],
        else_=ibis.null("string"),
    )


def extend(ctx: TagContext, base: ir.Table) -> ir.Table:
    """Add the trading tags; ``base`` has the status columns (``_st_*``) already."""
    t = ctx.trades
    t = t.filter((t.trade_date >= ctx.start(max(WINDOWS))) & (t.trade_date <= ctx.day))
    t = t.select(
        _tid=t.customer_id,
        _d=t.trade_date,
        _amt=t.amount_fen.cast("int64"),
        _com=t.commission_fen.cast("int64"),
        _cls=t.asset_class,
        _mkt=t.market,
    )
    aggs: dict[str, ir.Value] = {}
    for n in WINDOWS:
        inside = None if n == max(WINDOWS) else t["_d"] >= ctx.start(n)
        aggs[f"_n{n}"] = t["_d"].count(where=inside)
        aggs[f"_a{n}"] = t["_amt"].sum(where=inside)
        aggs[f"_c{n}"] = t["_com"].sum(where=inside)
    for c in ASSET_CLASSES:
        aggs[f"_cls_{c}"] = t["_amt"].sum(where=t["_cls"] == c)
    for m in MARKETS:
        aggs[f"_mkt_{m}"] = t["_amt"].sum(where=t["_mkt"] == m)
    agg = t.group_by("_tid").agg(**aggs)

    days = ctx.days.select(_ld=ctx.days.cal_day, _ls=ctx.days.sessions)
    j = attach(base, agg, "_tid")
    j = j.left_join(days, j["_st_last_trade"] == days["_ld"]).drop("_ld")

    def z(col: str) -> ir.IntegerValue:
        return j[col].fill_null(0).cast("int64")

    out: dict[str, ir.Value] = {
        "last_trade_date": j["_st_last_trade"].cast("date"),
        "trading_days_since_last_trade": (ibis.literal(ctx.sessions_at_as_of, "int64") - j["_ls"]).cast("int64"),
    }
    for n in WINDOWS:
        out[f"trade_count_{n}d"] = z(f"_n{n}")
    for n in WINDOWS:
        out[f"traded_amount_{n}d_fen"] = z(f"_a{n}")
    for n in WINDOWS:
        out[f"commission_{n}d_fen"] = z(f"_c{n}")
    out["preferred_asset_class"] = preferred({c: z(f"_cls_{c}") for c in ASSET_CLASSES})
    out["preferred_market"] = preferred({m: z(f"_mkt_{m}") for m in MARKETS})
    amount = z("_a365")
    out["net_commission_rate"] = ibis.ifelse(
        amount > 0, z("_c365").cast("float64") / amount.cast("float64"), ibis.null("float64")
    )
    return j.mutate(**out)
