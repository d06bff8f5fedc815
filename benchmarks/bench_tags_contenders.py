"""The contenders of ``benchmarks/bench_tags.py``: all 60 tags by panhuo, hand-written DuckDB SQL and polars.

Every workload takes the context written by ``bench_tags.py`` and returns ``{"seconds", "rows"}``;
the clock starts after the imports and stops once the Parquet result is written. SQL and polars
implement the tag definitions of ``panhuo.tags`` (see each group module's docstring) with the same
literals, taken from panhuo's own helpers (:func:`literals`), and read the status snapshot at
``as_of`` (with ``status_since``) and the calendar's day table that the set-up wrote.

The SQL is written the way one would by hand for speed: every window is scoped to the dates it
needs (the past balances only up to ``as_of - 30 days``, trades to the 365-day window, app events
to the 90-day window plus one narrow scan of logins for ``last_login``), one conditional
aggregate per table, and the latest permission per channel picked by ``max`` of an encoded key.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

__all__ = ["WORKLOADS", "literals", "run_panhuo", "run_polars", "run_sql", "tags_sql"]

Ctx = dict[str, Any]
CHANNELS = ("app_push", "sms", "wechat", "call")
MARKETS = ("SH", "SZ", "BJ", "OTC")
ASSET_CLASSES = ("stock", "fund", "bond", "option", "other")


def literals(ctx: Ctx) -> dict[str, Any]:
    """Dates, bands and constants of the tag definitions at ``ctx['as_of']``, from panhuo's helpers."""
    from decimal import Decimal

    from panhuo.calendar import years_before
    from panhuo.contract.columns import _SURROUNDING_BLANKS
    from panhuo.contract.parse import decimal_to_fen
    from panhuo.contract.schema import ASSET_CLASSES as CLS
    from panhuo.contract.schema import CHANNELS as CH
    from panhuo.contract.schema import MARKETS as MK
    import calendar as gregorian

    from panhuo.calendar import calendar_for
    from panhuo.config import Workspace
    from panhuo.contract.schema import PERSONALISED
    from panhuo.status.summary import band_labels
    from panhuo.tags.assets import TREND_PERCENT
    from panhuo.tags.engagement import COMPLAINT, CONTENT_VIEW, LOGIN, PUSH_OPEN
    from panhuo.tags.profile import AGE_BANDS, AGE_TOP, ASSESSMENT_VALID_YEARS, anniversary_codes
    from panhuo.tags.spec import covered_days, window_start

    assert (CH, MK, CLS) == (CHANNELS, MARKETS, ASSET_CLASSES), "the contract's enums changed"
    d = dt.date.fromisoformat(ctx["as_of"])
    previous = calendar_for(Workspace.open(ctx["workspace"])).previous_trading_day(d)
    bounds = [Decimal(b) for b in ctx["asset_bands"]]
    return {
        "as_of": d,
        "end_ts": dt.datetime.combine(d + dt.timedelta(days=1), dt.time()),
        "ev_start_ts": dt.datetime.combine(d - dt.timedelta(days=89), dt.time()),
        "s30": window_start(d, 30), "s90": window_start(d, 90), "s365": window_start(d, 365),
        "ago": {n: d - dt.timedelta(days=n) for n in (30, 90, 365)},
        "valid_from": years_before(d, ASSESSMENT_VALID_YEARS),
        "bands": list(zip([decimal_to_fen(b) for b in bounds], band_labels(bounds), strict=False)),
        "band_top": band_labels(bounds)[-1],
        "age_bands": AGE_BANDS, "age_top": AGE_TOP, "pct": TREND_PERCENT, "blank": _SURROUNDING_BLANKS,
        "login": LOGIN, "view": CONTENT_VIEW, "push": PUSH_OPEN, "sessions": ctx["sessions_at_as_of"],
        "complaint": COMPLAINT, "personalised": PERSONALISED,
        # anniversaries: per year, the opening month*100+day codes celebrated in (previous trading day, as_of]
        "anniversary": anniversary_codes(covered_days(d, previous)),
        "as_of_md": d.month * 100 + d.day, "feb29_as": 229 if gregorian.isleap(d.year) else 228,
    }


def _duck(ctx: Ctx):  # -> duckdb.DuckDBPyConnection
    import duckdb

    cfg: dict[str, object] = {"memory_limit": ctx["duckdb"]["memory_limit"],
                              "temp_directory": ctx["duckdb"]["temp_directory"], "preserve_insertion_order": True}
    if ctx["duckdb"].get("threads"):
        cfg["threads"] = ctx["duckdb"]["threads"]
    return duckdb.connect(":memory:", config=cfg)


# -- panhuo ---------------------------------------------------------------------------------------
def run_panhuo(ctx: Ctx) -> dict[str, Any]:
    import ibis.backends.duckdb  # noqa: F401  (imports before the clock, like the others)

    from panhuo.config import Workspace
    from panhuo.engines import connect
    from panhuo.tags import compute_tags

    ws = Workspace.open(ctx["workspace"])
    t0 = time.perf_counter()
    con = connect(ws.settings.engine, ws.tmp_dir)
    result = compute_tags(ws, con, dt.date.fromisoformat(ctx["as_of"]))
    return {"seconds": time.perf_counter() - t0, "rows": result.customers}


# -- hand-written SQL -----------------------------------------------------------------------------
def tags_sql(lit: dict[str, Any], columns: list[str]) -> str:
    """The query; ``$c $b $t $e $p $h $s $d`` are customers, balances, trades, app events, permissions,
    contact history, the status snapshot and the day table."""
    D = f"DATE '{lit['as_of']}'"
    S30, S90, S365 = (f"DATE '{lit[k]}'" for k in ("s30", "s90", "s365"))
    END, EV0 = f"TIMESTAMP '{lit['end_ts']}'", f"TIMESTAMP '{lit['ev_start_ts']}'"
    ago = {n: f"DATE '{v}'" for n, v in lit["ago"].items()}
    band = " ".join(f"WHEN total < {f} THEN '{lab}'" for f, lab in lit["bands"])
    age_band = " ".join(f"WHEN age < {b} THEN '{lab}'" for b, lab in lit["age_bands"])
    cls = ", ".join(f"sum(amount_fen) FILTER (WHERE asset_class = '{c}') AS cls_{c}" for c in ASSET_CLASSES)
    mkt = ", ".join(f"sum(amount_fen) FILTER (WHERE market = '{m}') AS mkt_{m}" for m in MARKETS)

    def pref(prefix: str, keys: tuple[str, ...]) -> str:
        vals = [f"coalesce({prefix}_{k}, 0)" for k in keys]
        top = f"greatest({', '.join(vals)})"
        return (f"CASE WHEN {top} <= 0 THEN NULL "
                + " ".join(f"WHEN {v} = {top} THEN '{k}'" for v, k in zip(vals, keys, strict=True)) + " END")

    perm = ", ".join(f"max(k) FILTER (WHERE channel = '{c}') AS k_{c}" for c in (*CHANNELS, lit["personalised"]))
    md = "(month(open_date) * 100 + day(open_date))"
    anniversary = " OR ".join(f"(year(open_date) < {y} AND {md} IN ({', '.join(map(str, codes))}))"
                              for y, codes in lit["anniversary"].items())
    kp = f"k_{lit['personalised']}"
    tenure_md = f"CASE WHEN {md} = 229 THEN {lit['feb29_as']} ELSE {md} END"
    consent = {c: f"coalesce(k_{c} IS NOT NULL AND k_{c} % 2 = 0, false)" for c in CHANNELS}
    phone = "(phone IS NOT NULL AND length(trim(phone, ' \t\n\r\v\f')) > 0)"
    tech = {"app_push": "app_user", "sms": phone, "wechat": "coalesce(wechat_bound, false)", "call": phone}
    pct = lit["pct"]
    return f"""
WITH c AS (
  SELECT customer_id, open_date, birth_year, province, branch_id, advisor_id, risk_level, risk_assessed_on,
         phone, app_user AS c_app_user, wechat_bound
  FROM read_parquet($c) WHERE open_date <= {D}
), bal AS (
  SELECT customer_id,
    {', '.join(f"arg_max(cash_fen + securities_value_fen + product_value_fen, as_of) FILTER (WHERE as_of <= {ago[n]}) AS ago{n}" for n in (30, 90, 365))}
  FROM read_parquet($b) WHERE as_of <= {ago[30]} GROUP BY customer_id
), trd AS (
  SELECT customer_id,
    count(*) FILTER (WHERE trade_date >= {S30}) AS n30, count(*) FILTER (WHERE trade_date >= {S90}) AS n90,
    count(*) AS n365,
    sum(amount_fen) FILTER (WHERE trade_date >= {S30}) AS a30, sum(amount_fen) FILTER (WHERE trade_date >= {S90}) AS a90,
    sum(amount_fen) AS a365,
    sum(commission_fen) FILTER (WHERE trade_date >= {S30}) AS c30,
    sum(commission_fen) FILTER (WHERE trade_date >= {S90}) AS c90, sum(commission_fen) AS c365,
    {cls}, {mkt}
  FROM read_parquet($t) WHERE trade_date BETWEEN {S365} AND {D} GROUP BY customer_id
), per_day AS (
  SELECT customer_id, CAST(event_time AS DATE) AS day,
    count(*) FILTER (WHERE event = '{lit['login']}') AS lg, count(*) FILTER (WHERE event = '{lit['view']}') AS cv,
    count(*) FILTER (WHERE event = '{lit['push']}') AS po,
    count(*) FILTER (WHERE event = '{lit['complaint']}') AS cp, count(*) AS n
  FROM read_parquet($e) WHERE event_time >= {EV0} AND event_time < {END} GROUP BY ALL
), eng AS (
  SELECT customer_id, sum(lg) FILTER (WHERE day >= {S30}) AS lg30, sum(lg) AS lg90,
    count(*) FILTER (WHERE day >= {S30} AND n > cp) AS ad30, count(*) FILTER (WHERE n > cp) AS ad90,
    sum(cv) FILTER (WHERE day >= {S30}) AS cv30, sum(po) FILTER (WHERE day >= {S30}) AS po30, sum(cp) AS cp90
  FROM per_day GROUP BY customer_id
), lastlogin AS (
  SELECT customer_id, CAST(max(event_time) AS DATE) AS last_login
  FROM read_parquet($e) WHERE event = '{lit['login']}' AND event_time < {END} GROUP BY customer_id
), perm AS (
  SELECT customer_id, {perm} FROM (
    SELECT customer_id, channel,
      (CASE WHEN updated_at IS NULL THEN 0 ELSE CAST(epoch(updated_at) AS BIGINT) + 1 END) * 2
        + CASE WHEN allowed THEN 0 ELSE 1 END AS k
    FROM read_parquet($p) WHERE updated_at IS NULL OR updated_at < {END})
  GROUP BY customer_id
), contacts AS (
  SELECT customer_id, CAST(sent_at AS DATE) AS sd FROM read_parquet($h) WHERE "group" = 'treated' AND sent_at < {END}
), lastc AS (SELECT customer_id, max(sd) AS lc FROM contacts GROUP BY customer_id
), w AS (
  SELECT w.customer_id, w.sd, d.response_until AS until FROM contacts w JOIN read_parquet($d) d ON d.cal_day = w.sd
  WHERE w.sd >= {S365}
), tdays AS (
  SELECT DISTINCT customer_id, trade_date FROM read_parquet($t) WHERE trade_date BETWEEN {S365} AND {D}
    AND customer_id IN (SELECT customer_id FROM w)
), resp AS (
  SELECT customer_id, count(*) FILTER (WHERE sd >= {S90}) AS k90, count(*) AS k365,
    count(*) FILTER (WHERE answered AND sd >= {S90}) AS r90, count(*) FILTER (WHERE answered) AS r365
  FROM (SELECT w.customer_id, w.sd, EXISTS (SELECT 1 FROM tdays t WHERE t.customer_id = w.customer_id
          AND t.trade_date BETWEEN w.sd AND w.until) AS answered FROM w)
  GROUP BY customer_id
), j AS (
  SELECT c.*, s.status, s.status_since, s.total_assets_fen AS total, s.cash_fen, s.product_value_fen,
    s.last_trade_date, bal.ago30, bal.ago90, bal.ago365, trd.* EXCLUDE (customer_id), eng.* EXCLUDE (customer_id),
    lastlogin.last_login, perm.* EXCLUDE (customer_id), lastc.lc, resp.* EXCLUDE (customer_id),
    {lit['sessions']} - dd.sessions AS tdays_since, {lit['sessions']} - ds.sessions AS tdays_in_status,
    coalesce(c.c_app_user, false) OR lastlogin.last_login IS NOT NULL AS app_user,
    {D} AS as_of, year({D}) - birth_year AS age
  FROM c LEFT JOIN read_parquet($s) s ON s.customer_id = c.customer_id
  LEFT JOIN bal ON bal.customer_id = c.customer_id LEFT JOIN trd ON trd.customer_id = c.customer_id
  LEFT JOIN eng ON eng.customer_id = c.customer_id LEFT JOIN lastlogin ON lastlogin.customer_id = c.customer_id
  LEFT JOIN perm ON perm.customer_id = c.customer_id LEFT JOIN lastc ON lastc.customer_id = c.customer_id
  LEFT JOIN resp ON resp.customer_id = c.customer_id
  LEFT JOIN read_parquet($d) dd ON dd.cal_day = s.last_trade_date
  LEFT JOIN read_parquet($d) ds ON ds.cal_day = s.status_since
), tags AS (
SELECT c.customer_id AS customer_id,
  total AS total_assets_fen, CASE {band} ELSE '{lit['band_top']}' END AS asset_band,
  ago30 AS total_assets_30d_ago_fen, ago90 AS total_assets_90d_ago_fen, ago365 AS total_assets_365d_ago_fen,
  CASE WHEN ago90 IS NULL THEN NULL WHEN total * 100 > ago90 * {100 + pct} THEN 'up'
       WHEN total * 100 < ago90 * {100 - pct} THEN 'down' ELSE 'flat' END AS asset_trend_90d,
  CASE WHEN total > 0 THEN cash_fen::DOUBLE / total::DOUBLE END AS cash_share,
  product_value_fen > 0 AS product_holder,
  last_trade_date, tdays_since AS trading_days_since_last_trade,
  {', '.join(f"coalesce(n{n}, 0) AS trade_count_{n}d" for n in (30, 90, 365))},
  {', '.join(f"coalesce(a{n}, 0) AS traded_amount_{n}d_fen" for n in (30, 90, 365))},
  {', '.join(f"coalesce(c{n}, 0) AS commission_{n}d_fen" for n in (30, 90, 365))},
  {pref('cls', ASSET_CLASSES)} AS preferred_asset_class, {pref('mkt', MARKETS)} AS preferred_market,
  CASE WHEN coalesce(a365, 0) > 0 THEN coalesce(c365, 0)::DOUBLE / a365::DOUBLE END AS net_commission_rate,
  last_login, coalesce(lg30, 0) AS logins_30d, coalesce(lg90, 0) AS logins_90d,
  coalesce(ad30, 0) AS active_days_30d, coalesce(ad90, 0) AS active_days_90d, coalesce(lg30, 0) > 0 AS monthly_active,
  coalesce(cv30, 0) AS content_views_30d, coalesce(po30, 0) AS push_opens_30d, app_user,
  coalesce(cp90, 0) AS complaints_90d,
  {', '.join(f"{consent[ch]} AS consent_{ch}" for ch in CHANNELS)},
  {', '.join(f"coalesce({consent[ch]} AND {tech[ch]}, false) AS reach_{ch}" for ch in CHANNELS)},
  coalesce({kp} IS NOT NULL AND {kp} % 2 = 1, false) AS refuses_personalised,
  date_diff('day', open_date, as_of) AS tenure_days,
  year(as_of) - year(open_date) - CASE WHEN {tenure_md} > {lit['as_of_md']} THEN 1 ELSE 0 END AS tenure_years,
  coalesce({anniversary}, false) AS anniversary_today, age,
  CASE WHEN age IS NULL THEN NULL {age_band} ELSE '{lit['age_top']}' END AS age_band,
  province, branch_id,
  nullif(regexp_replace(advisor_id, '{lit['blank']}', '', 'g'), '') IS NOT NULL AS advisor_served, risk_level,
  coalesce(risk_assessed_on IS NULL OR risk_assessed_on < DATE '{lit['valid_from']}' OR risk_assessed_on > as_of, true)
    AS assessment_expired,
  status, status_since,
  (year(as_of) * 12 + month(as_of)) - (year(status_since) * 12 + month(status_since))
    - CASE WHEN day(as_of) < day(status_since) THEN 1 ELSE 0 END AS months_in_status,
  tdays_in_status AS trading_days_in_status,
  coalesce(k90, 0) AS contacts_90d, coalesce(k365, 0) AS contacts_365d,
  coalesce(r90, 0) AS responses_90d, coalesce(r365, 0) AS responses_365d, lc AS last_contact_date
FROM j AS c)
SELECT {', '.join(f'"{col}"' for col in columns)} FROM tags
"""


def run_sql(ctx: Ctx) -> dict[str, Any]:
    lit = literals(ctx)
    w = ctx["warehouse"]
    t0 = time.perf_counter()
    con = _duck(ctx)
    params = {"c": w["customers"], "b": w["balances"], "t": w["trades"], "e": w["app_events"],
              "p": w["contact_permissions"], "h": w["contact_history"], "s": ctx["status"], "d": ctx["days"]}
    rows = con.execute(f"COPY ({tags_sql(lit, ctx['columns'])}) TO '{ctx['out']}' (FORMAT parquet)",
                       params).fetchone()[0]
    con.close()
    return {"seconds": time.perf_counter() - t0, "rows": rows}


# -- polars ---------------------------------------------------------------------------------------
def run_polars(ctx: Ctx) -> dict[str, Any]:
    import polars as pl  # noqa: F401
    import pyarrow.parquet as pq
    from bench_tags_polars import tags_lazy

    lit = literals(ctx)
    t0 = time.perf_counter()
    tags_lazy(ctx, lit).sink_parquet(ctx["out"], engine="streaming")
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": pq.ParquetFile(ctx["out"]).metadata.num_rows}


WORKLOADS = {"panhuo": run_panhuo, "sql": run_sql, "polars": run_polars}
