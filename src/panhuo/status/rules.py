"""The account-status rule (DESIGN.md section 2) as one portable Ibis expression.

Per customer opened on or before ``as_of``:

* balances: the latest snapshot on or before ``as_of`` (no snapshot: zeros), money in int64 fen;
* ``dormant`` (休眠户): securities value 0, cash ``<=`` (or ``<``) the ceiling, no trade in the
  last N years and open at least that long. "The last N years" is the window
  ``(as_of - N calendar years, as_of]``: a last trade exactly on the cut-off day is outside it.
  29 February minus N years is 28 February. Where ``customers.dormant_flag`` is not null and
  ``use_dormant_flag`` is set, the counter's flag decides (both ways);
* ``new_empty`` (新开空户): opened in the ``new_empty_days`` days ending on ``as_of`` (inclusive,
  so with 30 days an account opened 29 days before ``as_of`` counts, 30 days before does not)
  and never funded: no snapshot with total assets > 0 and no trade up to ``as_of``;
* ``effective`` (有效户): total assets ``>=`` (or ``>``) the threshold; otherwise ``sleeping`` (沉睡户).

Precedence: dormant > new_empty > effective > sleeping. Every threshold is a literal computed in
Python from :class:`panhuo.config.StatusRules`; the expression never branches on the engine.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ibis

from panhuo.calendar.service import years_before
from panhuo.contract.parse import decimal_to_fen as to_fen

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from panhuo.config import StatusRules

__all__ = [
    "STATUSES",
    "STATUS_ZH",
    "to_fen",
    "years_before",
    "dormant_cutoff",
    "new_empty_start",
    "status_expr",
]

STATUSES: tuple[str, ...] = ("effective", "sleeping", "dormant", "new_empty")
STATUS_ZH: dict[str, str] = {"effective": "有效户", "sleeping": "沉睡户", "dormant": "休眠户", "new_empty": "新开空户"}

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


def dormant_cutoff(as_of: dt.date, rules: StatusRules) -> dt.date:
    """The last day that lies outside "the last N years" before ``as_of``."""
    return years_before(as_of, rules.dormant_no_trade_years)


def new_empty_start(as_of: dt.date, rules: StatusRules) -> dt.date:
    """The first open date that still counts as "opened within the last N days" (as_of inclusive)."""
    return as_of - dt.timedelta(days=rules.new_empty_days - 1)


def _date(day: dt.date) -> ir.DateScalar:
    return ibis.literal(day, type="date")


def status_expr(
    customers: ir.Table,
    balances: ir.Table,
    trades: ir.Table,
    as_of: dt.date,
    rules: StatusRules,
) -> ir.Table:
    """Status per customer at ``as_of``.

    Parameters
    ----------
    customers, balances, trades
        Stored contract tables (``Warehouse.table``): money columns in fen, dates as dates.
    as_of
        The date the status is computed for.
    rules
        Thresholds and comparison operators.

    Returns
    -------
    ibis.Table
        customer_id, status, cash_fen, securities_value_fen, product_value_fen, total_assets_fen
        (int64) and last_trade_date (date, null when the customer never traded up to ``as_of``).
    """
    d = _date(as_of)
    cutoff = _date(dormant_cutoff(as_of, rules))
    empty_from = _date(new_empty_start(as_of, rules))

    cust = customers.filter(customers.open_date <= d).select(
        "customer_id", "open_date", dormant_flag=customers.dormant_flag.cast("boolean")
    )

    b = balances.filter(balances.as_of <= d).select(
        "customer_id",
        snap=balances.as_of,
        cash=balances.cash_fen,
        sec=balances.securities_value_fen,
        prod=balances.product_value_fen,
    )
    # The latest snapshot per customer in one aggregation: (customer_id, as_of) is a unique key
    # (checked at ingest), so the arg-max by date is exactly that snapshot's values (DuckDB arg_max,
    # Spark max_by). A self-join of balances on its per-customer maximum date cost ~1.6x here.
    latest = b.group_by(b.customer_id.name("bid")).agg(
        cash=b.cash.argmax(b.snap),
        sec=b.sec.argmax(b.snap),
        prod=b.prod.argmax(b.snap),
        funded=(b.cash + b.sec + b.prod > 0).any(),
    )

    t = trades.filter(trades.trade_date <= d)
    last_trade = t.group_by(t.customer_id.name("tid")).agg(last_trade_date=t.trade_date.max())

    j = cust.left_join(latest, cust.customer_id == latest.bid).left_join(
        last_trade, cust.customer_id == last_trade.tid
    )
    base = j.select(
        customer_id=j.customer_id,
        open_date=j.open_date,
        dormant_flag=j.dormant_flag,
        cash_fen=j.cash.fill_null(0),
        securities_value_fen=j.sec.fill_null(0),
        product_value_fen=j.prod.fill_null(0),
        funded=j.funded.fill_null(False),
        last_trade_date=j.last_trade_date,
    )
    base = base.mutate(total_assets_fen=base.cash_fen + base.securities_value_fen + base.product_value_fen)

    cash_ok = _OPS[rules.dormant_cash_comparison](base.cash_fen, ibis.literal(to_fen(rules.dormant_max_cash), "int64"))
    no_recent_trade = base.last_trade_date.isnull() | (base.last_trade_date <= cutoff)
    computed_dormant = (base.securities_value_fen == 0) & cash_ok & no_recent_trade & (base.open_date <= cutoff)
    if rules.use_dormant_flag:
        dormant = ibis.ifelse(base.dormant_flag.notnull(), base.dormant_flag, computed_dormant)
    else:
        dormant = computed_dormant
    new_empty = (base.open_date >= empty_from) & ~base.funded & base.last_trade_date.isnull()
    effective = _OPS[rules.effective_comparison](
        base.total_assets_fen, ibis.literal(to_fen(rules.effective_min_assets), "int64")
    )
    status = ibis.cases(
        (dormant, "dormant"),
        (new_empty, "new_empty"),
        (effective, "effective"),
        else_="sleeping",
    )
    return base.select(
        "customer_id",
        status=status,
        cash_fen=base.cash_fen,
        securities_value_fen=base.securities_value_fen,
        product_value_fen=base.product_value_fen,
        total_assets_fen=base.total_assets_fen,
        last_trade_date=base.last_trade_date,
    )
