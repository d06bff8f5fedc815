"""The tokenizer and parser: the grammar, positions, and every way user text is refused."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from panhuo.segments.errors import SegmentError
from panhuo.segments.expr import Between, Binary, Call, InList, IsNull, Lit, Name, Source, Unary, parse

__all__: list[str] = []


def test_precedence_or_below_and_below_not() -> None:
    node = parse("a or not b and c")
    assert isinstance(node, Binary) and node.op == "or"
    assert isinstance(node.right, Binary) and node.right.op == "and"
    assert isinstance(node.right.left, Unary) and node.right.left.op == "not"


def test_symbolic_operators_mean_the_keywords() -> None:
    a, b = parse("x && !y || z"), parse("x and not y or z")
    assert type(a) is type(b) and a.op == b.op == "or"  # type: ignore[attr-defined]


def test_arithmetic_binds_tighter_than_comparison() -> None:
    node = parse("a + b * 2 >= 10")
    assert isinstance(node, Binary) and node.op == ">="
    assert isinstance(node.left, Binary) and node.left.op == "+"
    assert isinstance(node.left.right, Binary) and node.left.right.op == "*"


def test_literals() -> None:
    node = parse("x in [1, -2.50, '广东', \"a'b\", true, date('2026-01-31')]")
    assert isinstance(node, InList)
    values = [i.value for i in node.items]
    assert values == [Decimal(1), Decimal("-2.50"), "广东", "a'b", True, dt.date(2026, 1, 31)]


def test_not_in_between_is_null() -> None:
    assert parse("x not in [1]").negated  # type: ignore[attr-defined]
    b = parse("x not between 1 and 2 + 3")
    assert isinstance(b, Between) and b.negated and isinstance(b.high, Binary)
    assert isinstance(parse("x is not null"), IsNull)


def test_keywords_are_case_insensitive_names_are_not() -> None:
    node = parse("Age > 3 AND x IS NULL")
    assert isinstance(node, Binary) and node.op == "and"
    assert isinstance(node.left, Binary) and isinstance(node.left.left, Name) and node.left.left.name == "Age"


def test_whitelisted_call() -> None:
    node = parse("coalesce(a, 0)")
    assert isinstance(node, Call) and node.func == "coalesce" and len(node.args) == 2


def test_escaped_quote_in_string() -> None:
    node = parse(r"s = 'it\'s'")
    assert isinstance(node, Binary) and isinstance(node.right, Lit) and node.right.value == "it's"


@pytest.mark.parametrize(
    ("text", "col", "needle"),
    [
        ("x.__class__", 2, "attribute access"),
        ("().__class__.__bases__[0]", 3, "attribute access"),
        ("open('/etc/passwd')", 1, "unknown function 'open'"),
        ("__import__('os')", 1, "unknown function '__import__'"),
        ("eval('1')", 1, "unknown function 'eval'"),
        ("(age)(1)", 6, "only these functions can be called"),
        ("lower(s)(1)", 9, "only these functions can be called"),
        ("age[0] > 1", 4, "indexing"),
        ("[1, 2]", 1, "only allowed after 'in'"),
        ("a > ", 5, "ends too early"),
        ("a > 1 b", 7, "operator or 'and'/'or' is missing"),
        ("1 < age < 3", 9, "cannot be chained"),
        ("'abc", 1, "unterminated string"),
        ("a @ b", 3, "unexpected character '@'"),
        ("a > 1.", 5, "is not a number"),
        ("x in [a]", 7, "only literals"),
        ("date(2026)", 6, "date in quotes"),
        ("d > date('2026-02-30')", 10, "is not a date"),
        ("days_since()", 1, "takes 1 argument"),
        ("", 1, "empty expression"),
        ("x is 3", 6, "'null' after 'is'"),
        ("a between 1 or 2", 13, "'and' in 'between"),
    ],
)
def test_refused_with_position(text: str, col: int, needle: str) -> None:
    with pytest.raises(SegmentError) as info:
        parse(text)
    assert needle in str(info.value)
    assert info.value.location is not None and info.value.location.col == col


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(SegmentError, match="nested deeper"):
        parse("(" * 5000 + "a" + ")" * 5000)
    with pytest.raises(SegmentError, match="nested deeper"):
        parse("not " * 1000 + "a")


def test_source_places_errors_in_the_file() -> None:
    src = Source("status = 'sleeping'\n  and total_asset > 3", "segments/vip.yaml", line=4, col=7,
                 spans=((0, 4, 7), (20, 5, 1)))
    with pytest.raises(SegmentError) as info:
        parse(Source(src.text.replace("total_asset", "total_asset.x"), src.file, spans=src.spans))
    assert str(info.value).startswith("segments/vip.yaml line 5, col 18: attribute access")
    from panhuo.segments.compiler import check

    with pytest.raises(SegmentError) as info2:
        check(src, want="bool")
    assert str(info2.value).startswith("segments/vip.yaml line 5, col 7: unknown tag 'total_asset'")
    assert "did you mean total_assets?" in str(info2.value)
    assert info2.value.token == "total_asset"
