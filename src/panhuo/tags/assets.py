"""Asset tags: total assets and band, assets 30/90/365 days ago and the 90-day trend, cash share, products.

The current values come from the stored status snapshot at ``as_of`` (``status_expr``: the latest
balance snapshot on or before ``as_of``, zeros when there is none), so ``total_assets`` is exactly the
total the account status was decided on. The past values need one pass over ``balances`` with three
filtered arg-max aggregates (the latest snapshot on or before each past date).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import ibis

from panhuo.contract.parse import decimal_to_fen
from panhuo.status.summary import band_labels
from panhuo.tags._join import attach
from panhuo.tags.spec import TagContext, TagSpec, date_lit

if TYPE_CHECKING:
    from decimal import Decimal

    import ibis.expr.types as ir

__all__ = ["AGO_DAYS", "SPECS", "TREND_PERCENT", "asset_band_expr", "extend"]

AGO_DAYS = (30, 90, 365)
TREND_PERCENT = 10

_G = "assets"
SPECS: tuple[TagSpec, ...] = (
    TagSpec("total_assets", _G, "money", "总资产", "total assets (cash + securities + products)",
            "latest balance snapshot on or before as_of (0 when none), as in the account status"),
    TagSpec("asset_band", _G, "string", "资产分层", "asset band",
            "total_assets against settings.asset_bands: <1k, 1k-10k, 10k-100k, 100k-1M, >=1M"),
    TagSpec("total_assets_30d_ago", _G, "money", "30天前总资产", "total assets 30 days ago",
            "latest balance snapshot on or before as_of - 30 days; null when none"),
    TagSpec("total_assets_90d_ago", _G, "money", "90天前总资产", "total assets 90 days ago",
            "latest balance snapshot on or before as_of - 90 days; null when none"),
    TagSpec("total_assets_365d_ago", _G, "money", "365天前总资产", "total assets 365 days ago",
            "latest balance snapshot on or before as_of - 365 days; null when none"),
    TagSpec("asset_trend_90d", _G, "string", "90天资产趋势", "asset trend over 90 days",
            "up if total_assets > 110% of total_assets_90d_ago, down if < 90%, else flat (exact integer "
            "comparison); null when there is no snapshot 90 days ago"),
    TagSpec("cash_share", _G, "float", "现金占比", "cash share of total assets",
            "cash / total_assets at the latest snapshot (0..1); null when total_assets is 0"),
    TagSpec("product_holder", _G, "bool", "持有理财产品", "holds products",
            "product value > 0 at the latest balance snapshot on or before as_of"),
)


def asset_band_expr(total_fen: ir.IntegerValue, bounds: list[Decimal]) -> ir.StringValue:
    """The band label of ``total_fen`` for the upper ``bounds`` in RMB (labels of ``band_labels``)."""
    labels = band_labels(bounds)
    if not bounds:
        return ibis.literal(labels[0])
    return ibis.cases(
        *[(total_fen < ibis.literal(decimal_to_fen(b), "int64"), labels[i]) for i, b in enumerate(bounds)],
        else_=labels[-1],
    )


def extend(ctx: TagContext, base: ir.Table) -> ir.Table:
    """Add the asset tags; ``base`` has the status columns (``_st_*``) already."""
    past = {n: date_lit(ctx.as_of - dt.timedelta(days=n)) for n in AGO_DAYS}
    # only the past values are read here (the current ones come from the status snapshot): scope the
    # scan to the latest past date instead of reading every snapshot up to as_of
    b = ctx.balances.filter(ctx.balances.as_of <= past[min(AGO_DAYS)])
    b = b.select(
        _bid=b.customer_id,
        _snap=b.as_of,
        _total=(b.cash_fen.cast("int64") + b.securities_value_fen.cast("int64") + b.product_value_fen.cast("int64")),
    )
    agg = b.group_by("_bid").agg(
        **{f"_ago{n}": b["_total"].argmax(b["_snap"], where=b["_snap"] <= d) for n, d in past.items()}
    )
    j = attach(base, agg, "_bid")
    total = j["_st_total"].cast("int64")
    ago90 = j["_ago90"].cast("int64")
    pct = TREND_PERCENT
    trend = ibis.cases(
        (ago90.isnull(), ibis.null("string")),
        (total * 100 > ago90 * (100 + pct), "up"),
        (total * 100 < ago90 * (100 - pct), "down"),
        else_="flat",
    )
    return j.mutate(
        total_assets_fen=total,
        asset_band=asset_band_expr(total, list(ctx.settings.asset_bands)),
        total_assets_30d_ago_fen=j["_ago30"].cast("int64"),
        total_assets_90d_ago_fen=ago90,
        total_assets_365d_ago_fen=j["_ago365"].cast("int64"),
        asset_trend_90d=trend,
        cash_share=ibis.ifelse(total > 0, j["_st_cash"].cast("float64") / total.cast("float64"), ibis.null("float64")),
        product_holder=j["_st_prod"].cast("int64") > 0,
    )
