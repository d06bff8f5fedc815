"""Profile tags: tenure, age band boundaries, advisor, risk assessment expiry (2 years)."""

from __future__ import annotations

import ibis

from panhuo.tags.profile import age_band_expr
from tests.status.conftest import D
from tests.tags.conftest import AS_OF


def test_tenure_age_and_place(tags) -> None:
    a = tags["a"]
    assert a["tenure_days"] == (AS_OF - D("2020-01-15")).days
    assert tags["b"]["tenure_days"] == 14
    assert (a["age"], a["age_band"], a["province"], a["branch_id"], a["risk_level"]) == (
        36, "35-44", "广东省", "B1", "C3")
    assert (tags["b"]["age"], tags["b"]["age_band"]) == (None, None)
    assert (tags["e"]["age_band"], tags["f"]["age_band"], tags["g"]["age_band"]) == ("<25", "25-34", ">=65")
    assert "d" not in tags  # opens after as_of


def test_age_band_edges() -> None:
    t = ibis.memtable({"x": [24, 25, 34, 35, 44, 45, 54, 55, 64, 65]})
    out = t.select(b=age_band_expr(t.x)).to_pyarrow().column("b").to_pylist()
    assert out == ["<25", "25-34", "25-34", "35-44", "35-44", "45-54", "45-54", "55-64", "55-64", ">=65"]


def test_advisor_served(tags) -> None:
    assert tags["a"]["advisor_served"] is True
    assert tags["f"]["advisor_served"] is False  # blank advisor id
    assert tags["b"]["advisor_served"] is False


def test_assessment_expires_after_two_years(tags) -> None:
    assert tags["a"]["assessment_expired"] is False
    assert tags["c"]["assessment_expired"] is False  # assessed exactly 2 years before as_of
    assert tags["e"]["assessment_expired"] is True  # one day older
    assert tags["b"]["assessment_expired"] is True  # never assessed
    assert tags["f"]["assessment_expired"] is True  # assessed after as_of: unknown at as_of
