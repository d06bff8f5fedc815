"""Money and date parsing: the column expressions agree with the reference parsers, for any input."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import ibis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panhuo.contract.columns import convert_columns
from panhuo.contract.parse import decimal_to_fen, fen_to_decimal, format_fen, parse_date, parse_money
from panhuo.contract.schema import TABLES

CASH = TABLES["balances"].column("cash")
AS_OF = TABLES["balances"].column("as_of")
_duck = ibis.duckdb.connect()

money_like = st.one_of(
    st.decimals(min_value=-10**6, max_value=10**16, allow_nan=False, allow_infinity=False).map(str),
    st.from_regex(r"\A[+-]?[0-9]{0,18}(\.[0-9]{0,4})?\Z", fullmatch=True),
    st.text(alphabet="0123456789.,+-eE ", max_size=12),
)
date_like = st.one_of(
    st.dates(min_value=dt.date(1890, 1, 1), max_value=dt.date(2110, 12, 31)).map(lambda d: d.isoformat()),
    st.dates().map(lambda d: d.strftime("%Y%m%d")),
    st.from_regex(r"\A[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}\Z", fullmatch=True),
    st.from_regex(r"\A[0-9]{8}\Z", fullmatch=True),
    st.text(alphabet="0123456789-/ T:", max_size=12),
)


def _column(values: list[str], col) -> list[tuple[object, str | None]]:
    t = ibis.memtable({"x": values}, schema={"x": "string"})
    wide, names = convert_columns(t, {"x": col})
    value, why = names["x"]
    out = _duck.to_pyarrow(wide.select(v=wide[value], w=wide[why]))
    return list(zip(out["v"].to_pylist(), out["w"].to_pylist(), strict=True))


def _reference(fn, text):
    try:
        return fn(text), None
    except ValueError as exc:
        return None, str(exc)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(money_like, min_size=1, max_size=40))
def test_money_column_matches_reference_parser(values):
    for text, (fen, why) in zip(values, _column(values, CASH), strict=True):
        ref_fen, ref_why = _reference(parse_money, text)
        if text.strip() == "":
            assert why == "is empty (required)"
            continue
        assert (why is None) == (ref_why is None), (text, why, ref_why)
        if ref_why is None:
            assert int(fen) == ref_fen, text
        else:
            assert why == ref_why, text


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(date_like, min_size=1, max_size=40))
def test_date_column_matches_reference_parser(values):
    for text, (value, why) in zip(values, _column(values, AS_OF), strict=True):
        ref, ref_why = _reference(parse_date, text)
        if text.strip() == "":
            continue
        assert (why is None) == (ref_why is None), (text, why, ref_why)
        if ref is not None:
            assert value == ref, text


@given(st.decimals(min_value=0, max_value=10**15 - 1, places=2, allow_nan=False))
def test_money_text_round_trip_is_exact(amount):
    text = f"{amount:.2f}"
    fen = parse_money(text)
    assert fen_to_decimal(fen) == amount
    assert format_fen(fen) == text
    assert decimal_to_fen(amount) == fen


@given(st.integers(min_value=-(10**17), max_value=10**17))
def test_fen_formatting_is_exact(fen):
    assert decimal_to_fen(Decimal(format_fen(fen))) == fen
    assert fen_to_decimal(fen) * 100 == fen


@pytest.mark.parametrize(
    ("text", "fen"),
    [("12.30", 1230), ("0.05", 5), ("7", 700), ("+5.5", 550), ("-0.00", 0), ("12.340", 1234), ("5.", 500)],
)
def test_money_examples(text, fen):
    assert parse_money(text) == fen


@pytest.mark.parametrize(
    ("text", "reason"),
    [("12.345", "more than two decimals"), ("-3", "negative"), ("12.3.4", "not a number"), ("1,234", "not a number"),
     ("abc", "not a number"), ("1234567890123456", "out of range")],
)
def test_money_refusals(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_money(text)


@pytest.mark.parametrize("text", ["2026-13-45", "2023-02-29", "20261345", "2026/01/01", "26-01-01"])
def test_date_refusals(text):
    with pytest.raises(ValueError):
        parse_date(text)


def test_dates_in_both_forms():
    assert parse_date("2024-02-29") == parse_date("20240229") == dt.date(2024, 2, 29)
