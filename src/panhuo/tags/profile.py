"""Profile tags from ``customers``: tenure, age and age band, province, branch, advisor, risk level,
whether the risk assessment (适当性评估) has expired.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis

from panhuo.calendar import years_before
from panhuo.contract.columns import clean_text
from panhuo.tags.spec import TagContext, TagSpec, date_lit

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["AGE_BANDS", "ASSESSMENT_VALID_YEARS", "SPECS", "age_band_expr", "extend"]

#: (upper bound exclusive, label); the last band is open
AGE_BANDS: tuple[tuple[int, str], ...] = ((25, "<25"), (35, "25-34"), (45, "35-44"), (55, "45-54"), (65, "55-64"))
AGE_TOP = ">=65"
ASSESSMENT_VALID_YEARS = 2

_G = "profile"
SPECS: tuple[TagSpec, ...] = (
    TagSpec("tenure_days", _G, "int", "开户天数", "days since the account was opened",
            "as_of - open_date in calendar days (0 on the opening day)"),
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


def extend(ctx: TagContext, base: ir.Table) -> ir.Table:
    """Add the profile tags; ``base`` has the customer columns ``_c_*``."""
    age = (ibis.literal(ctx.as_of.year, "int64") - base["_c_birth_year"].cast("int64")).cast("int64")
    valid_from = date_lit(years_before(ctx.as_of, ASSESSMENT_VALID_YEARS))
    assessed = base["_c_assessed"].cast("date")
    advisor = base["_c_advisor"]
    return base.mutate(
        tenure_days=ctx.day.delta(base["_c_open"].cast("date"), unit="day").cast("int64"),
        age=age,
        age_band=age_band_expr(age),
        province=base["_c_province"].cast("string"),
        branch_id=base["_c_branch"].cast("string"),
        advisor_served=clean_text(advisor).notnull(),
        risk_level=base["_c_risk"].cast("string"),
        assessment_expired=(assessed.isnull() | (assessed < valid_from) | (assessed > ctx.day)).fill_null(True),
    )
