"""The benchmark workloads, one function per contender, each run alone in a fresh subprocess.

Every workload takes the context written by ``benchmarks/run.py`` (paths, as-of date, DuckDB
settings from the workspace's ``panhuo.yaml``) and returns ``{"seconds": ..., "rows": ...}``.
The clock starts after the imports (interpreter start-up and ``import ibis`` are not timed, for
any contender) and stops once the result is fully written to disk.

INGEST
  ``ingest``      panhuo.contract.ingest.ingest, full validation, DuckDB engine
  ``copy``        the baseline: plain DuckDB ``COPY (SELECT * FROM <file>) TO <out>.parquet`` of
                  every table, read + write, no validation, same DuckDB settings

STATUS at one as-of date, all over the same ingested warehouse Parquet files; every contender but
the floor writes the full per-customer result (the columns of ``status_expr``) to one Parquet file
  ``floor``       plain DuckDB scan of the columns the rule needs (customers projection written
                  out, balances/trades columns aggregated so they are really read)
  ``ibis``        panhuo's ``status_expr`` on panhuo's DuckDB connection, ``con.to_parquet``
  ``ibis_batches`` the same expression written the way ``compute_status`` writes a snapshot
                  (``to_pyarrow_batches`` into a ``pyarrow.parquet.ParquetWriter``), for reference
  ``sql``         hand-written DuckDB SQL (``arg_max`` for the latest snapshot), ``COPY ... TO``
  ``polars``      polars lazy, streaming engine, ``sink_parquet``
  ``pandas``      pandas as an analyst writes it: ``read_parquet``, ``sort_values`` +
                  ``drop_duplicates``, ``groupby``, ``merge``, ``np.select``, ``to_parquet``

Thresholds and comparisons come from :class:`panhuo.config.StatusRules` (the workspace's
settings) through panhuo's own helpers (``to_fen``, ``dormant_cutoff``, ``new_empty_start``), so
all contenders implement the same rule with the same literals.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

__all__ = ["WORKLOADS", "duckdb_config"]

Ctx = dict[str, Any]


def duckdb_config(ctx: Ctx) -> dict[str, object]:
    """The configuration panhuo's ``engines.duckdb.connect`` uses, for plain ``duckdb.connect``."""
    cfg: dict[str, object] = {
        "memory_limit": ctx["duckdb"]["memory_limit"],
        "temp_directory": ctx["duckdb"]["temp_directory"],
        "preserve_insertion_order": True,
    }
    if ctx["duckdb"].get("threads"):
        cfg["threads"] = ctx["duckdb"]["threads"]
    return cfg


def _rules(ctx: Ctx):  # -> StatusRules
    from panhuo.config import StatusRules

    return StatusRules.model_validate(ctx["rules"])


def _literals(ctx: Ctx) -> dict[str, Any]:
    from panhuo.status.rules import dormant_cutoff, new_empty_start, to_fen

    rules = _rules(ctx)
    as_of = dt.date.fromisoformat(ctx["as_of"])
    return {
        "as_of": as_of,
        "cutoff": dormant_cutoff(as_of, rules),
        "empty_from": new_empty_start(as_of, rules),
        "max_cash": to_fen(rules.dormant_max_cash),
        "cash_op": rules.dormant_cash_comparison,
        "min_assets": to_fen(rules.effective_min_assets),
        "eff_op": rules.effective_comparison,
        "use_flag": rules.use_dormant_flag,
    }


# -- ingest -------------------------------------------------------------------------------------
def run_ingest(ctx: Ctx) -> dict[str, Any]:
    from panhuo.config import Workspace
    from panhuo.contract.ingest import ingest

    ws = Workspace.open(ctx["workspace"])
    t0 = time.perf_counter()
    plan = ingest(ws, Path(ctx["source"]))
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": sum(plan.rows.values()), "load_id": plan.manifest.load_id}


def run_copy(ctx: Ctx) -> dict[str, Any]:
    import duckdb

    out = Path(ctx["out"])
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    con = duckdb.connect(":memory:", config=duckdb_config(ctx))
    rows = 0
    for name, path in ctx["source_files"].items():
        reader = "read_csv($p, header = true)" if path.endswith(".csv") else "read_parquet($p)"
        # COPY returns the number of rows written
        rows += con.execute(
            f"COPY (SELECT * FROM {reader}) TO '{out / (name + '.parquet')}' (FORMAT parquet)", {"p": path}
        ).fetchone()[0]
    con.close()
    return {"seconds": time.perf_counter() - t0, "rows": rows}


# -- status -------------------------------------------------------------------------------------
def run_floor(ctx: Ctx) -> dict[str, Any]:
    import duckdb

    w = ctx["warehouse"]
    lit = _literals(ctx)
    t0 = time.perf_counter()
    con = duckdb.connect(":memory:", config=duckdb_config(ctx))
    rows = con.execute(
        f"COPY (SELECT customer_id, open_date, dormant_flag FROM read_parquet($c) WHERE open_date <= DATE "
        f"'{lit['as_of']}') TO '{ctx['out']}' (FORMAT parquet)",
        {"c": w["customers"]},
    ).fetchone()[0]
    con.execute(
        "SELECT max(customer_id), max(as_of), max(cash_fen), max(securities_value_fen), max(product_value_fen) "
        "FROM read_parquet($b)",
        {"b": w["balances"]},
    ).fetchall()
    con.execute("SELECT max(customer_id), max(trade_date) FROM read_parquet($t)", {"t": w["trades"]}).fetchall()
    con.close()
    return {"seconds": time.perf_counter() - t0, "rows": rows}


def _import_ibis_stack() -> None:
    """Import what the Ibis contenders use before the clock starts, as the others import theirs."""
    import ibis.backends.duckdb  # noqa: F401
    import panhuo.config  # noqa: F401
    import panhuo.engines.duckdb  # noqa: F401
    import panhuo.status.history  # noqa: F401
    import panhuo.status.rules  # noqa: F401
    import panhuo.warehouse  # noqa: F401


def _ibis_expr(ctx: Ctx):
    from panhuo.config import Workspace
    from panhuo.engines.duckdb import connect
    from panhuo.status.rules import status_expr
    from panhuo.warehouse import Warehouse

    ws = Workspace.open(ctx["workspace"])
    con = connect(ws.settings.engine.duckdb, ws.tmp_dir)
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    c, b, t = (wh.table(con, n) for n in ("customers", "balances", "trades"))
    expr = status_expr(c, b, t, dt.date.fromisoformat(ctx["as_of"]), ws.settings.status)
    return con, expr


def run_ibis(ctx: Ctx) -> dict[str, Any]:
    import pyarrow.parquet as pq

    _import_ibis_stack()
    t0 = time.perf_counter()
    con, expr = _ibis_expr(ctx)
    con.to_parquet(expr, ctx["out"])
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": pq.ParquetFile(ctx["out"]).metadata.num_rows}


def run_ibis_batches(ctx: Ctx) -> dict[str, Any]:
    from panhuo.status.history import SNAPSHOT_SCHEMA, _write_expr

    _import_ibis_stack()
    t0 = time.perf_counter()
    _con, expr = _ibis_expr(ctx)
    rows = _write_expr(expr, SNAPSHOT_SCHEMA, Path(ctx["out"]))
    return {"seconds": time.perf_counter() - t0, "rows": rows}


def status_sql(lit: dict[str, Any]) -> str:
    """The hand-written query; ``$c``, ``$b``, ``$t`` are the three Parquet paths."""
    flag = "dormant_flag" if lit["use_flag"] else "NULL::BOOLEAN"
    return f"""
WITH b AS (
    SELECT customer_id,
           arg_max(cash_fen, as_of)             AS cash_fen,
           arg_max(securities_value_fen, as_of) AS securities_value_fen,
           arg_max(product_value_fen, as_of)    AS product_value_fen,
           bool_or(cash_fen + securities_value_fen + product_value_fen > 0) AS funded
    FROM read_parquet($b)
    WHERE as_of <= DATE '{lit['as_of']}'
    GROUP BY customer_id
), t AS (
    SELECT customer_id, max(trade_date) AS last_trade_date
    FROM read_parquet($t)
    WHERE trade_date <= DATE '{lit['as_of']}'
    GROUP BY customer_id
), base AS (
    SELECT c.customer_id, c.open_date, {flag} AS dormant_flag,
           coalesce(b.cash_fen, 0)             AS cash_fen,
           coalesce(b.securities_value_fen, 0) AS securities_value_fen,
           coalesce(b.product_value_fen, 0)    AS product_value_fen,
           coalesce(b.funded, false)           AS funded,
           t.last_trade_date
    FROM read_parquet($c) AS c
    LEFT JOIN b ON b.customer_id = c.customer_id
    LEFT JOIN t ON t.customer_id = c.customer_id
    WHERE c.open_date <= DATE '{lit['as_of']}'
)
SELECT customer_id,
       CASE
         WHEN coalesce(dormant_flag,
                       securities_value_fen = 0
                       AND cash_fen {lit['cash_op']} {lit['max_cash']}
                       AND (last_trade_date IS NULL OR last_trade_date <= DATE '{lit['cutoff']}')
                       AND open_date <= DATE '{lit['cutoff']}') THEN 'dormant'
         WHEN open_date >= DATE '{lit['empty_from']}' AND NOT funded AND last_trade_date IS NULL THEN 'new_empty'
         WHEN cash_fen + securities_value_fen + product_value_fen {lit['eff_op']} {lit['min_assets']} THEN 'effective'
         ELSE 'sleeping'
       END AS status,
       cash_fen, securities_value_fen, product_value_fen,
       cash_fen + securities_value_fen + product_value_fen AS total_assets_fen,
       last_trade_date
FROM base
"""


def run_sql(ctx: Ctx) -> dict[str, Any]:
    import duckdb

    w = ctx["warehouse"]
    lit = _literals(ctx)
    t0 = time.perf_counter()
    con = duckdb.connect(":memory:", config=duckdb_config(ctx))
    rows = con.execute(
        f"COPY ({status_sql(lit)}) TO '{ctx['out']}' (FORMAT parquet)",
        {"c": w["customers"], "b": w["balances"], "t": w["trades"]},
    ).fetchone()[0]
    con.close()
    return {"seconds": time.perf_counter() - t0, "rows": rows}


def run_polars(ctx: Ctx) -> dict[str, Any]:
    import operator

    import polars as pl
    import pyarrow.parquet as pq

    ops = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
    w = ctx["warehouse"]
    lit = _literals(ctx)
    d = lit["as_of"]
    t0 = time.perf_counter()
    cust = (
        pl.scan_parquet(w["customers"])
        .filter(pl.col("open_date") <= d)
        .select("customer_id", "open_date", "dormant_flag")
    )
    bal = (
        pl.scan_parquet(w["balances"])
        .filter(pl.col("as_of") <= d)
        .group_by("customer_id")
        .agg(
            pl.col("cash_fen").sort_by("as_of").last(),
            pl.col("securities_value_fen").sort_by("as_of").last(),
            pl.col("product_value_fen").sort_by("as_of").last(),
            ((pl.col("cash_fen") + pl.col("securities_value_fen") + pl.col("product_value_fen")) > 0)
            .any()
            .alias("funded"),
        )
    )
    trd = (
        pl.scan_parquet(w["trades"])
        .filter(pl.col("trade_date") <= d)
        .group_by("customer_id")
        .agg(pl.col("trade_date").max().alias("last_trade_date"))
    )
    money = ["cash_fen", "securities_value_fen", "product_value_fen"]
    base = (
        cust.join(bal, on="customer_id", how="left")
        .join(trd, on="customer_id", how="left")
        .with_columns(*[pl.col(m).fill_null(0) for m in money], pl.col("funded").fill_null(False))
        .with_columns(total_assets_fen=pl.sum_horizontal(money))
    )
    computed = (
        (pl.col("securities_value_fen") == 0)
        & ops[lit["cash_op"]](pl.col("cash_fen"), lit["max_cash"])
        & (pl.col("last_trade_date").is_null() | (pl.col("last_trade_date") <= lit["cutoff"]))
        & (pl.col("open_date") <= lit["cutoff"])
    )
    dormant = pl.coalesce(pl.col("dormant_flag"), computed) if lit["use_flag"] else computed
    new_empty = (pl.col("open_date") >= lit["empty_from"]) & ~pl.col("funded") & pl.col("last_trade_date").is_null()
    effective = ops[lit["eff_op"]](pl.col("total_assets_fen"), lit["min_assets"])
    status = (
        pl.when(dormant).then(pl.lit("dormant"))
        .when(new_empty).then(pl.lit("new_empty"))
        .when(effective).then(pl.lit("effective"))
        .otherwise(pl.lit("sleeping"))
    )
    result = base.select("customer_id", status.alias("status"), *money, "total_assets_fen", "last_trade_date")
    result.sink_parquet(ctx["out"], engine="streaming")
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": pq.ParquetFile(ctx["out"]).metadata.num_rows}


def run_pandas(ctx: Ctx) -> dict[str, Any]:
    import operator

    import numpy as np
    import pandas as pd

    ops = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
    w = ctx["warehouse"]
    lit = _literals(ctx)
    as_of = pd.Timestamp(lit["as_of"])
    cutoff = pd.Timestamp(lit["cutoff"])
    empty_from = pd.Timestamp(lit["empty_from"])
    t0 = time.perf_counter()

    customers = pd.read_parquet(w["customers"], columns=["customer_id", "open_date", "dormant_flag"])
    balances = pd.read_parquet(
        w["balances"], columns=["customer_id", "as_of", "cash_fen", "securities_value_fen", "product_value_fen"]
    )
    trades = pd.read_parquet(w["trades"], columns=["customer_id", "trade_date"])
    customers["open_date"] = pd.to_datetime(customers["open_date"])
    balances["as_of"] = pd.to_datetime(balances["as_of"])
    trades["trade_date"] = pd.to_datetime(trades["trade_date"])

    customers = customers[customers["open_date"] <= as_of]
    balances = balances[balances["as_of"] <= as_of].copy()
    balances["total"] = balances["cash_fen"] + balances["securities_value_fen"] + balances["product_value_fen"]
    funded = (balances.groupby("customer_id")["total"].max() > 0).rename("funded")
    latest = balances.sort_values(["customer_id", "as_of"]).drop_duplicates("customer_id", keep="last")
    latest = latest[["customer_id", "cash_fen", "securities_value_fen", "product_value_fen"]]
    last_trade = trades[trades["trade_date"] <= as_of].groupby("customer_id")["trade_date"].max()
    last_trade = last_trade.rename("last_trade_date")

    df = customers.merge(latest, on="customer_id", how="left")
    df = df.merge(funded, left_on="customer_id", right_index=True, how="left")
    df = df.merge(last_trade, left_on="customer_id", right_index=True, how="left")
    money = ["cash_fen", "securities_value_fen", "product_value_fen"]
    df[money] = df[money].fillna(0).astype("int64")
    df["funded"] = df["funded"].fillna(False).astype(bool)
    df["total_assets_fen"] = df["cash_fen"] + df["securities_value_fen"] + df["product_value_fen"]

    no_recent_trade = df["last_trade_date"].isna() | (df["last_trade_date"] <= cutoff)
    computed = (
        (df["securities_value_fen"] == 0)
        & ops[lit["cash_op"]](df["cash_fen"], lit["max_cash"])
        & no_recent_trade
        & (df["open_date"] <= cutoff)
    )
    if lit["use_flag"]:
        flag = df["dormant_flag"]
        dormant = np.where(flag.notna(), flag.fillna(False).astype(bool), computed)
    else:
        dormant = computed.to_numpy()
    new_empty = (df["open_date"] >= empty_from) & ~df["funded"] & df["last_trade_date"].isna()
    effective = ops[lit["eff_op"]](df["total_assets_fen"], lit["min_assets"])
    df["status"] = np.select([dormant, new_empty, effective], ["dormant", "new_empty", "effective"], "sleeping")
    df["last_trade_date"] = df["last_trade_date"].dt.date
    out = df[["customer_id", "status", *money, "total_assets_fen", "last_trade_date"]]
    out.to_parquet(ctx["out"], index=False)
    return {"seconds": time.perf_counter() - t0, "rows": len(out)}


WORKLOADS = {
    "ingest": run_ingest,
    "copy": run_copy,
    "floor": run_floor,
    "ibis": run_ibis,
    "ibis_batches": run_ibis_batches,
    "sql": run_sql,
    "polars": run_polars,
    "pandas": run_pandas,
}
