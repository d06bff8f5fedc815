"""The polars contender of ``benchmarks/bench_tags.py``: all 60 tags as one lazy query (see ``tags_lazy``).

The same definitions and literals as the SQL contender (``bench_tags_contenders.literals``), written
as polars lazy frames: conditional aggregates per table, windows scoped to the dates they need.
"""

from __future__ import annotations

from typing import Any

import polars as pl

__all__ = ["tags_lazy"]

CHANNELS = ("app_push", "sms", "wechat", "call")
MARKETS = ("SH", "SZ", "BJ", "OTC")
ASSET_CLASSES = ("stock", "fund", "bond", "option", "other")


def _cases(pairs: list[tuple[pl.Expr, Any]], otherwise: Any) -> pl.Expr:
    expr: Any = pl
    for cond, value in pairs:
        expr = expr.when(cond).then(pl.lit(value))
    return expr.otherwise(pl.lit(otherwise))


def _preferred(values: dict[str, pl.Expr]) -> pl.Expr:
    top = pl.max_horizontal(*values.values())
    pairs = [(top <= 0, None)] + [(v == top, k) for k, v in values.items()]
    return _cases(pairs, None).cast(pl.String)


def tags_lazy(ctx: dict[str, Any], lit: dict[str, Any]) -> pl.LazyFrame:
    """Every tag of every customer opened on or before ``as_of``, columns in ``ctx['columns']`` order."""
    w = ctx["warehouse"]
    d, s30, s90, s365 = lit["as_of"], lit["s30"], lit["s90"], lit["s365"]
    end = lit["end_ts"]
    col = pl.col

    c = pl.scan_parquet(w["customers"]).filter(col("open_date") <= d).select(
        "customer_id", "open_date", "birth_year", "province", "branch_id", "advisor_id", "risk_level",
        "risk_assessed_on", "phone", col("app_user").alias("c_app_user"), "wechat_bound")
    st = pl.scan_parquet(ctx["status"]).select(
        "customer_id", "status", "status_since", col("total_assets_fen").alias("total"), "cash_fen",
        "product_value_fen", "last_trade_date")

    ago = lit["ago"]
    bal = (pl.scan_parquet(w["balances"]).filter(col("as_of") <= ago[30])
           .with_columns(t=col("cash_fen") + col("securities_value_fen") + col("product_value_fen"))
           .group_by("customer_id")
           .agg(*[col("t").filter(col("as_of") <= ago[n]).sort_by(col("as_of").filter(col("as_of") <= ago[n]))
                  .last().alias(f"ago{n}") for n in (30, 90, 365)]))

    t = pl.scan_parquet(w["trades"]).filter((col("trade_date") >= s365) & (col("trade_date") <= d))
    in30, in90 = col("trade_date") >= s30, col("trade_date") >= s90
    trd = t.group_by("customer_id").agg(
        col("trade_date").filter(in30).count().alias("n30"), col("trade_date").filter(in90).count().alias("n90"),
        col("trade_date").count().alias("n365"),
        col("amount_fen").filter(in30).sum().alias("a30"), col("amount_fen").filter(in90).sum().alias("a90"),
        col("amount_fen").sum().alias("a365"),
        col("commission_fen").filter(in30).sum().alias("c30"), col("commission_fen").filter(in90).sum().alias("c90"),
        col("commission_fen").sum().alias("c365"),
        *[col("amount_fen").filter(col("asset_class") == k).sum().alias(f"cls_{k}") for k in ASSET_CLASSES],
        *[col("amount_fen").filter(col("market") == k).sum().alias(f"mkt_{k}") for k in MARKETS],
    )

    ev = pl.scan_parquet(w["app_events"])
    per_day = (ev.filter((col("event_time") >= lit["ev_start_ts"]) & (col("event_time") < end))
               .with_columns(day=col("event_time").dt.date())
               .group_by("customer_id", "day")
               .agg((col("event") == lit["login"]).sum().alias("lg"), (col("event") == lit["view"]).sum().alias("cv"),
                    (col("event") == lit["push"]).sum().alias("po"),
                    (col("event") == lit["complaint"]).sum().alias("cp"), pl.len().alias("n")))
    r30 = col("day") >= s30
    active = col("n") > col("cp")  # complaints are not app activity
    eng = per_day.group_by("customer_id").agg(
        col("lg").filter(r30).sum().alias("lg30"), col("lg").sum().alias("lg90"),
        col("day").filter(r30 & active).count().alias("ad30"), col("day").filter(active).count().alias("ad90"),
        col("cv").filter(r30).sum().alias("cv30"), col("po").filter(r30).sum().alias("po30"),
        col("cp").sum().alias("cp90"))
    last_login = (ev.filter((col("event") == lit["login"]) & (col("event_time") < end))
                  .group_by("customer_id").agg(col("event_time").max().dt.date().alias("last_login")))

    p = pl.scan_parquet(w["contact_permissions"]).filter(col("updated_at").is_null() | (col("updated_at") < end))
    key = (pl.when(col("updated_at").is_null()).then(0).otherwise(col("updated_at").dt.epoch("s") + 1) * 2
           + pl.when(col("allowed")).then(0).otherwise(1))
    perm = (p.with_columns(k=key.cast(pl.Int64)).group_by("customer_id")
            .agg(*[col("k").filter(col("channel") == ch).max().alias(f"k_{ch}")
                   for ch in (*CHANNELS, lit["personalised"])]))

    days = pl.scan_parquet(ctx["days"])
    contacts = (pl.scan_parquet(w["contact_history"])
                .filter((col("group") == "treated") & (col("sent_at") < end))
                .select("customer_id", col("sent_at").dt.date().alias("sd")))
    lastc = contacts.group_by("customer_id").agg(col("sd").max().alias("lc"))
    cw = (contacts.filter(col("sd") >= s365)
          .join(days.select(col("cal_day").alias("sd"), col("response_until").alias("until")), on="sd")
          .with_row_index("rid"))
    tdays = t.select("customer_id", "trade_date").unique()
    answered = (cw.join(tdays, on="customer_id")
                .filter((col("trade_date") >= col("sd")) & (col("trade_date") <= col("until")))
                .select("rid").unique())
    cw = cw.join(answered.with_columns(answered=pl.lit(True)), on="rid", how="left").with_columns(
        col("answered").fill_null(False))
    q90 = col("sd") >= s90
    resp = cw.group_by("customer_id").agg(
        col("sd").filter(q90).count().alias("k90"), col("sd").count().alias("k365"),
        col("sd").filter(q90 & col("answered")).count().alias("r90"),
        col("sd").filter(col("answered")).count().alias("r365"))

    j = c
    for other in (st, bal, trd, eng, last_login, perm, lastc, resp):
        j = j.join(other, on="customer_id", how="left")
    j = j.join(days.select(col("cal_day").alias("last_trade_date"), col("sessions").alias("ls")),
               on="last_trade_date", how="left")
    j = j.join(days.select(col("cal_day").alias("status_since"), col("sessions").alias("ss")),
               on="status_since", how="left")

    def z(name: str) -> pl.Expr:
        return col(name).fill_null(0).cast(pl.Int64)

    total, ago90 = col("total").cast(pl.Int64), col("ago90").cast(pl.Int64)
    pct = lit["pct"]
    age = (pl.lit(d.year) - col("birth_year")).cast(pl.Int64)
    app_user = col("c_app_user").fill_null(False) | col("last_login").is_not_null()
    consent = {ch: (col(f"k_{ch}").is_not_null() & ((col(f"k_{ch}") % 2) == 0)).fill_null(False) for ch in CHANNELS}
    phone = col("phone").is_not_null() & (col("phone").str.strip_chars(" \t\n\r\v\f").str.len_chars() > 0)
    tech = {"app_push": app_user, "sms": phone, "wechat": col("wechat_bound").fill_null(False), "call": phone}
    since = col("status_since")
    assessed = col("risk_assessed_on")
    opened = col("open_date")
    md = opened.dt.month().cast(pl.Int64) * 100 + opened.dt.day().cast(pl.Int64)
    anniversary = pl.lit(False)
    for y, codes in lit["anniversary"].items():
        anniversary = anniversary | ((opened.dt.year() < y) & md.is_in(codes))
    tenure_md = pl.when(md == 229).then(pl.lit(lit["feb29_as"], pl.Int64)).otherwise(md)
    kp = col(f"k_{lit['personalised']}")
    out = {
        "total_assets_fen": total,
        "asset_band": _cases([(total < f, lab) for f, lab in lit["bands"]], lit["band_top"]),
        "total_assets_30d_ago_fen": col("ago30").cast(pl.Int64), "total_assets_90d_ago_fen": ago90,
        "total_assets_365d_ago_fen": col("ago365").cast(pl.Int64),
        "asset_trend_90d": _cases([(ago90.is_null(), None), (total * 100 > ago90 * (100 + pct), "up"),
                                   (total * 100 < ago90 * (100 - pct), "down")], "flat").cast(pl.String),
        "cash_share": pl.when(total > 0).then(col("cash_fen").cast(pl.Float64) / total.cast(pl.Float64)),
        "product_holder": col("product_value_fen") > 0,
        "last_trade_date": col("last_trade_date"),
        "trading_days_since_last_trade": (pl.lit(lit["sessions"]) - col("ls")).cast(pl.Int64),
        **{f"trade_count_{n}d": z(f"n{n}") for n in (30, 90, 365)},
        **{f"traded_amount_{n}d_fen": z(f"a{n}") for n in (30, 90, 365)},
        **{f"commission_{n}d_fen": z(f"c{n}") for n in (30, 90, 365)},
        "preferred_asset_class": _preferred({k: z(f"cls_{k}") for k in ASSET_CLASSES}),
        "preferred_market": _preferred({k: z(f"mkt_{k}") for k in MARKETS}),
        "net_commission_rate": pl.when(z("a365") > 0).then(z("c365").cast(pl.Float64) / z("a365").cast(pl.Float64)),
        "last_login": col("last_login"),
        "logins_30d": z("lg30"), "logins_90d": z("lg90"), "active_days_30d": z("ad30"), "active_days_90d": z("ad90"),
        "monthly_active": z("lg30") > 0, "content_views_30d": z("cv30"), "push_opens_30d": z("po30"),
        "app_user": app_user, "complaints_90d": z("cp90"),
        **{f"consent_{ch}": consent[ch] for ch in CHANNELS},
        **{f"reach_{ch}": (consent[ch] & tech[ch]).fill_null(False) for ch in CHANNELS},
        "refuses_personalised": (kp.is_not_null() & ((kp % 2) == 1)).fill_null(False),
        "tenure_days": (pl.lit(d) - col("open_date")).dt.total_days().cast(pl.Int64),
        "tenure_years": (pl.lit(d.year) - opened.dt.year().cast(pl.Int64)
                         - pl.when(tenure_md > lit["as_of_md"]).then(1).otherwise(0)).cast(pl.Int64),
        "anniversary_today": anniversary.fill_null(False),
        "age": age,
        "age_band": _cases([(age.is_null(), None)] + [(age < b, lab) for b, lab in lit["age_bands"]],
                           lit["age_top"]).cast(pl.String),
        "province": col("province"), "branch_id": col("branch_id"),
        "advisor_served": col("advisor_id").str.replace_all(lit["blank"], "").replace("", None).is_not_null(),
        "risk_level": col("risk_level"),
        "assessment_expired": (assessed.is_null() | (assessed < lit["valid_from"]) | (assessed > d)).fill_null(True),
        "status": col("status"), "status_since": since,
        "months_in_status": ((d.year * 12 + d.month) - (since.dt.year().cast(pl.Int64) * 12 + since.dt.month())
                             - pl.when(pl.lit(d.day) < since.dt.day()).then(1).otherwise(0)).cast(pl.Int64),
        "trading_days_in_status": (pl.lit(lit["sessions"]) - col("ss")).cast(pl.Int64),
        "contacts_90d": z("k90"), "contacts_365d": z("k365"), "responses_90d": z("r90"), "responses_365d": z("r365"),
        "last_contact_date": col("lc"),
    }
    return j.select("customer_id", *[out[name].alias(name) for name in ctx["columns"] if name != "customer_id"])
