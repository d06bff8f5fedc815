"""Profile tags from ``customers``: tenure, age and age band, province, branch, advisor, risk level,
whether the risk assessment (适当性评估) has expired, and the account-opening anniversary (开户周年).

Anniversaries: the opening date's month and day in a later year; an account opened on 29 February
has its anniversary on 28 February in a year without one. ``anniversary_today`` is true when an
anniversary falls in ``(previous trading day, as_of]`` (:meth:`TagContext.covered_days`), so one on a
weekend or holiday is celebrated on the next trading day, and never twice. ``tenure_years`` counts
the anniversaries passed (the same 29 February rule), so it goes up on the anniversary itself.
Both are plain comparisons of the opening date's parts with literals: no calendar join.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import calendar as _gregorian
import datetime as dt

import ibis

from panhuo.calendar import years_before
from panhuo.contract.columns import clean_text
from panhuo.tags.spec import TagContext, TagSpec, date_lit

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["AGE_BANDS", "ASSESSMENT_VALID_YEARS", "SPECS", "age_band_expr", "anniversary_codes", "anniversary_expr",
           "extend", "tenure_years_expr"]

#: (upper bound exclusive, label); the last band is open
AGE_BANDS: tuple[tuple[int, str], ...] = ((25, "<25"), (35, "25-34"), (45, "35-44"), (55, "45-54"), (65, "55-64"))
AGE_TOP = ">=65"
ASSESSMENT_VALID_YEARS = 2

_G = "profile"
SPECS: tuple[TagSpec, ...] = (
    TagSpec("tenure_days", _G, "int", "开户天数", "days since the account was opened",
            "as_of - open_date in calendar days (0 on the opening day)"),
    TagSpec("tenure_years", _G, "int", "开户年数", "whole years since the account was opened",
            "account-opening anniversaries passed by as_of (29 Feb counts on 28 Feb in a year without one)"),
    TagSpec("anniversary_today", _G, "bool", "开户周年日", "account-opening anniversary today",
            "open_date's month and day in a later year (29 Feb -> 28 Feb in a non-leap year) falls in "
            "(previous trading day, as_of]: an anniversary on a weekend or holiday counts on the next "
            "trading day"),
    TagSpec("age", _G, "int", "年龄", "age in years", "year of as_of - birth_year; null when unknown"),
    TagSpec("age_band", _G, "string", "年龄段", "age band", "<25, 25-34, 35-44, 45-54, 55-64, >=65; null when unknown"),
    TagSpec("province", _G, "string", "省份", "province", "customers.province"),
    TagSpec("branch_id", _G, "string", "营业部", "branch", "customers.branch_id"),
    TagSpec("advisor_served", _G, "bool", "有客户经理服务", "served by an advisor", "customers.advisor_id is set"),
    TagSpec("risk_level", _G, "string", "风险承受能力", "risk tolerance level (C1..C5)", "customers.risk_level"),
    TagSpec("assessment_expired", _G, "bool", "风险测评过期", "risk assessment expired",
            "risk_assessed_on missing, after as_of, or before the same date 2 years before as_of"),
)


def age_band_expr(age: ir.IntegerValue) -> ir.StringValue:
    return ibis.cases(
        (age.isnull(), ibis.null("string")),
        *[(age < bound, label) for bound, label in AGE_BANDS],
        else_=AGE_TOP,
    )


def _md(month: int, day: int) -> int:
    return month * 100 + day


def anniversary_codes(days: list[dt.date]) -> dict[int, list[int]]:
    """Per year of ``days``, the opening ``month * 100 + day`` codes whose anniversary is one of them.

    28 February of a year without a 29th also stands for accounts opened on 29 February.
    """
    by_year: dict[int, set[int]] = {}
    for d in days:
        codes = by_year.setdefault(d.year, set())
        codes.add(_md(d.month, d.day))
        if (d.month, d.day) == (2, 28) and not _gregorian.isleap(d.year):
            codes.add(_md(2, 29))
    return {y: sorted(c) for y, c in sorted(by_year.items())}


def tenure_years_expr(open_date: ir.DateValue, as_of: dt.date) -> ir.IntegerValue:
    """Anniversaries of ``open_date`` passed by ``as_of`` (negative before the opening; 29 Feb -> 28 Feb)."""
    md = open_date.month().cast("int64") * 100 + open_date.day().cast("int64")
    if not _gregorian.isleap(as_of.year):
        md = ibis.ifelse(md == _md(2, 29), _md(2, 28), md)
    before = ibis.ifelse(md > _md(as_of.month, as_of.day), 1, 0)
    return (ibis.literal(as_of.year, "int64") - open_date.year().cast("int64") - before).cast("int64")


def anniversary_expr(open_date: ir.DateValue, days: list[dt.date]) -> ir.BooleanValue:
    """Whether an anniversary of ``open_date`` (a later year; 29 Feb -> 28 Feb) is one of ``days``."""
    md = open_date.month().cast("int64") * 100 + open_date.day().cast("int64")
    year = open_date.year().cast("int64")
    conds = [(year < y) & md.isin(codes) for y, codes in anniversary_codes(days).items()]
    out = conds[0]
    for c in conds[1:]:
        out = out | c
    return out.fill_null(False)


def extend(ctx: TagContext, base: ir.Table) -> ir.Table:
    """Add the profile tags; ``base`` has the customer columns ``_c_*``."""
    age = (ibis.literal(ctx.as_of.year, "int64") - base["_c_birth_year"].cast("int64")).cast("int64")
    valid_from = date_lit(years_before(ctx.as_of, ASSESSMENT_VALID_YEARS))
    assessed = base["_c_assessed"].cast("date")
    advisor = base["_c_advisor"]
    return base.mutate(
        tenure_days=ctx.day.delta(base["_c_open"].cast("date"), unit="day").cast("int64"),
        tenure_years=tenure_years_expr(base["_c_open"].cast("date"), ctx.as_of),
        anniversary_today=anniversary_expr(base["_c_open"].cast("date"), ctx.covered_days()),
        age=age,
        age_band=age_band_expr(age),
        province=base["_c_province"].cast("string"),
        branch_id=base["_c_branch"].cast("string"),
        advisor_served=clean_text(advisor).notnull(),
        risk_level=base["_c_risk"].cast("string"),
        assessment_expired=(assessed.isnull() | (assessed < valid_from) | (assessed > ctx.day)).fill_null(True),
    )
