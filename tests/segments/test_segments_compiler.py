"""Type checking and compilation to Ibis, evaluated on DuckDB over a tiny hand-built table."""

from __future__ import annotations

import datetime as dt

import ibis
import pyarrow as pa
import pytest

from panhuo.segments.compiler import check, compile_expr, compile_rule
from panhuo.segments.errors import SegmentError
from panhuo.segments.symbols import symbols_for_table

__all__: list[str] = []

AS_OF = dt.date(2026, 1, 31)


@pytest.fixture(scope="module")
def table() -> ibis.Table:
    return ibis.memtable(pa.table({
        "customer_id": ["a", "b", "c", "d"],
        "total_assets_fen": pa.array([999_999, 1_000_000, None, 1_000_001], pa.int64()),
        "total_assets_90d_ago_fen": pa.array([2_000_000, 0, 5, 1_000_001], pa.int64()),
        "age": pa.array([25, 40, None, 70], pa.int64()),
        "cash_share": [0.5, 0.0, None, 1.0],
        "app_user": [True, False, None, True],
        "province": ["广东", "北京", None, "广东"],
        "status": ["sleeping", "effective", "dormant", "sleeping"],
        "last_login": pa.array([dt.date(2026, 1, 1), None, dt.date(2025, 1, 31), dt.date(2026, 1, 31)]),
    }))


def run(table: ibis.Table, text: str) -> list:
    value, _ = compile_expr(text, table, as_of=AS_OF)
    return table.select("customer_id", r=value).order_by("customer_id").to_pyarrow().column("r").to_pylist()


def test_money_in_rmb_compiles_exactly_to_fen(table: ibis.Table) -> None:
    assert run(table, "total_assets >= 10000") == [False, True, None, True]
    assert run(table, "total_assets > 10000.00") == [False, False, None, True]
    assert run(table, "total_assets = 9999.99") == [True, False, None, False]
    assert run(table, "total_assets between 9999.99 and 10000") == [True, True, None, False]
    assert run(table, "total_assets in [10000, 10000.01]") == [False, True, None, True]


def test_money_literal_value_is_fen(table: ibis.Table) -> None:
    value, kind = compile_expr("total_assets >= 10000.5", table)
    assert kind == "bool"
    assert "1000050" in ibis.to_sql(table.filter(value))


def test_money_arithmetic(table: ibis.Table) -> None:
    assert run(table, "total_assets - total_assets_90d_ago < -5000") == [True, False, None, False]
    assert run(table, "total_assets * 2 >= 20000") == [False, True, None, True]
    assert run(table, "total_assets / total_assets_90d_ago > 1") == [False, None, None, False]
    assert run(table, "total_assets >= 2 * 5000") == [False, True, None, True]


def test_more_than_two_decimals_is_refused(table: ibis.Table) -> None:
    with pytest.raises(SegmentError, match="at most two decimals: 10000.001"):
        compile_rule("total_assets >= 10000.001", table)


def test_three_valued_logic_and_rule_never_null(table: ibis.Table) -> None:
    assert run(table, "app_user and age > 30") == [False, False, None, True]
    assert run(table, "app_user or age > 30") == [True, True, None, True]
    rule = compile_rule("app_user and age > 30", table)
    assert table.select(r=rule).to_pyarrow().column("r").to_pylist() == [False, False, False, True]


def test_strings_dates_functions(table: ibis.Table) -> None:
    assert run(table, "province = '广东'") == [True, False, None, True]
    assert run(table, "startswith(province, '广')") == [True, False, None, True]
    assert run(table, "lower(status) in ['sleeping']") == [True, False, False, True]
    assert run(table, "days_since(last_login) >= 30") == [True, None, True, False]
    assert run(table, "last_login < date('2026-01-01')") == [False, None, True, False]
    assert run(table, "coalesce(age, 0) = 0") == [False, False, True, False]
    assert run(table, "province is null") == [False, False, True, False]
    assert run(table, "age / 0 is null") == [True, True, True, True]
    assert run(table, "greatest(age, 30) = 30") == [True, False, True, False]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("total_asset > 1", "unknown tag 'total_asset' (did you mean total_assets?)"),
        ("province > 5", "cannot compare text 'province' with number 5"),
        ("age and app_user", "'and' needs true/false on both sides; number 'age' is not"),
        ("not age", "'not' needs true/false"),
        ("age", "a rule must be true or false"),
        ("status = 'sleepng'", "did you mean 'sleeping'"),
        ("age = null", "write 'x is null'"),
        ("total_assets > age", "money can only be combined with money or an amount in RMB"),
        ("total_assets * total_assets > 1", "money cannot be multiplied by money"),
        ("1 / total_assets > 1", "cannot be divided by money"),
        ("last_login > '2026-01-01'", "write dates as date('2026-01-31')"),
        ("app_user < true", "cannot be ordered"),
        ("days_since(age) > 1", "days_since() needs a date"),
        ("lower(age) = 'x'", "lower() needs text"),
        ("province + 1 > 2", "'+' needs numbers or money"),
        ("age > 99999999999999999999", "number too large"),
        ("app_user in [true]", "'in' needs numbers"),
    ],
)
def test_type_errors(table: ibis.Table, text: str, needle: str) -> None:
    with pytest.raises(SegmentError) as info:
        compile_rule(text, table)
    assert needle in str(info.value)
    assert str(info.value).startswith("<expression> line 1, col ")


def test_tag_known_but_missing_from_data(table: ibis.Table) -> None:
    from panhuo.segments.symbols import builtin_symbols

    symbols = builtin_symbols().with_symbols(symbols_for_table(table).values())
    with pytest.raises(SegmentError, match="tag 'p_alive' is not in this data"):
        compile_rule("p_alive > 0.5", table, symbols)


def test_symbols_from_table_money_by_fen_suffix(table: ibis.Table) -> None:
    sym = symbols_for_table(table)
    assert sym["total_assets"].kind == "money" and sym["total_assets"].column == "total_assets_fen"
    assert sym["age"].kind == "int" and sym["last_login"].kind == "date" and sym["app_user"].kind == "bool"
    assert "total_assets_fen" not in sym


def test_check_without_data_uses_the_builtin_catalogue() -> None:
    assert check("status = 'sleeping' and p_alive >= 0.5", want="bool") == "bool"
    assert check("total_assets - total_assets_90d_ago") == "money"
