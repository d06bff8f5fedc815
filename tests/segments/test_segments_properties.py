"""Property tests: random valid expressions evaluate on DuckDB exactly as a reference evaluation in
Python (three-valued logic, money in fen, division by zero is null); random junk raises nothing but
SegmentError; parsing and checking never reach eval, exec or compile.

The generator builds each expression together with its reference meaning; it does not use
panhuo's parser, so the two are independent.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panhuo.segments.compiler import check, compile_expr
from panhuo.segments.errors import SegmentError
from panhuo.segments.expr import parse
from panhuo.segments.symbols import BUILTIN

__all__: list[str] = []

AS_OF = dt.date(2026, 1, 31)
ROWS: list[dict[str, Any]] = [
    {"customer_id": "r0", "m_fen": 1_000_000, "n": 3, "f": 0.5, "b": True, "s": "广东", "d": dt.date(2026, 1, 1)},
    {"customer_id": "r1", "m_fen": 999_999, "n": -2, "f": 0.0, "b": False, "s": "ab", "d": dt.date(2025, 6, 30)},
    {"customer_id": "r2", "m_fen": None, "n": None, "f": None, "b": None, "s": None, "d": None},
    {"customer_id": "r3", "m_fen": 0, "n": 0, "f": -1.25, "b": True, "s": "AB", "d": dt.date(2026, 1, 31)},
    {"customer_id": "r4", "m_fen": 123_456_789, "n": 40, "f": 2.5, "b": None, "s": "", "d": dt.date(2024, 2, 29)},
]
Ref = Callable[[dict[str, Any]], Any]
Expr = tuple[str, Ref, bool]  # text, reference, contains a column


@pytest.fixture(scope="module")
def data():
    schema = pa.schema([("customer_id", pa.string()), ("m_fen", pa.int64()), ("n", pa.int64()),
                        ("f", pa.float64()), ("b", pa.bool_()), ("s", pa.string()), ("d", pa.date32())])
    con = ibis.duckdb.connect()
    return con, ibis.memtable(pa.Table.from_pylist(ROWS, schema=schema))


# ------------------------------------------------------------------ three-valued reference logic
def _and(a: Any, b: Any) -> Any:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _or(a: Any, b: Any) -> Any:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def _not(a: Any) -> Any:
    return None if a is None else not a


_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda x, y: x == y, "!=": lambda x, y: x != y, "<": lambda x, y: x < y,
    "<=": lambda x, y: x <= y, ">": lambda x, y: x > y, ">=": lambda x, y: x >= y,
}


def _cmp(op: str, a: Ref, b: Ref) -> Ref:
    def f(r: dict[str, Any]) -> Any:
        x, y = a(r), b(r)
        return None if x is None or y is None else _CMP[op](x, y)
    return f


# -------------------------------------------------------------------------------- strategies
ints = st.integers(-50, 50)
decs = st.decimals(min_value=Decimal(-50), max_value=Decimal(50), places=2, allow_nan=False)


def _num_lit() -> st.SearchStrategy[Expr]:
    return st.one_of(
        ints.map(lambda v: (str(v), lambda r, v=v: v, False)),
        decs.map(lambda v: (str(v), lambda r, v=v: float(v), False)),
    )


num_cols = st.sampled_from([("n", lambda r: r["n"], True), ("f", lambda r: r["f"], True)])


def _arith(op: str, a: Expr, b: Expr) -> Expr:
    fa, fb = a[1], b[1]

    def f(r: dict[str, Any]) -> Any:
        x, y = fa(r), fb(r)
        if x is None or y is None:
            return None
        if op == "/":
            return None if y == 0 else x / y
        return x + y if op == "+" else x - y if op == "-" else x * y
    return (f"({a[0]} {op} {b[0]})", f, True)


def _coalesce(a: Expr, b: Expr) -> Expr:
    return (f"coalesce({a[0]}, {b[0]})", lambda r: a[1](r) if a[1](r) is not None else b[1](r), True)


def _abs(a: Expr) -> Expr:
    return (f"abs({a[0]})", lambda r: None if a[1](r) is None else abs(a[1](r)), True)


num_expr = st.recursive(
    st.one_of(num_cols, num_cols, _num_lit()),
    lambda inner: st.one_of(
        st.builds(_arith, st.sampled_from(["+", "-", "*", "/"]), num_cols, inner),
        st.builds(_arith, st.sampled_from(["+", "-", "*", "/"]), inner, num_cols),
        st.builds(_coalesce, num_cols, inner),
        st.builds(_abs, num_cols),
    ),
    max_leaves=4,
)


def _num_cmp(op: str, a: Expr, b: Expr) -> Expr:
    return (f"{a[0]} {op} {b[0]}", _cmp(op, a[1], b[1]), True)


def _money_cmp(op: str, amount: Decimal) -> Expr:
    fen = int(amount * 100)
    return (f"m {op} {amount}", _cmp(op, lambda r: r["m_fen"], lambda r, fen=fen: fen), True)


money_amounts = st.decimals(min_value=Decimal(-100), max_value=Decimal(2000000), places=2, allow_nan=False)


def _money_between(lo: Decimal, hi: Decimal) -> Expr:
    a, b = int(lo * 100), int(hi * 100)
    return (f"m between {lo} and {hi}",
            lambda r: _and(_cmp(">=", lambda r: r["m_fen"], lambda r: a)(r), _cmp("<=", lambda r: r["m_fen"],
                                                                                   lambda r: b)(r)), True)


def _in(values: list[str], negated: bool) -> Expr:
    items = ", ".join("'" + v + "'" for v in values)
    def f(r: dict[str, Any]) -> Any:
        if r["s"] is None:
            return None
        return (r["s"] not in values) if negated else (r["s"] in values)
    return (f"s {'not in' if negated else 'in'} [{items}]", f, True)


def _days(op: str, k: int) -> Expr:
    return (f"days_since(d) {op} {k}", _cmp(op, lambda r: None if r["d"] is None else (AS_OF - r["d"]).days,
                                            lambda r: k), True)


def _date_cmp(op: str, day: dt.date) -> Expr:
    return (f"d {op} date('{day.isoformat()}')", _cmp(op, lambda r: r["d"], lambda r: day), True)


def _is_null(col: str, negated: bool) -> Expr:
    key = "m_fen" if col == "m" else col
    return (f"{col} is {'not ' if negated else ''}null",
            lambda r: (r[key] is not None) if negated else (r[key] is None), True)


strings = st.sampled_from(["广东", "ab", "AB", "", "x"])
cmp_ops = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])

bool_leaf = st.one_of(
    st.builds(_num_cmp, cmp_ops, num_expr, num_expr),
    st.builds(_money_cmp, cmp_ops, money_amounts),
    st.builds(lambda lo, hi: _money_between(min(lo, hi), max(lo, hi)), money_amounts, money_amounts),
    st.builds(_in, st.lists(strings, min_size=1, max_size=3), st.booleans()),
    st.builds(lambda op, v: (f"lower(s) {op} '{v}'", _cmp(op, lambda r: None if r["s"] is None else r["s"].lower(),
                                                         lambda r: v), True), cmp_ops, strings),
    st.builds(_days, cmp_ops, st.integers(-10, 800)),
    st.builds(_date_cmp, cmp_ops, st.dates(dt.date(2024, 1, 1), dt.date(2026, 12, 31))),
    st.builds(_is_null, st.sampled_from(["m", "n", "f", "b", "s", "d"]), st.booleans()),
    st.just(("b", lambda r: r["b"], True)),
    st.builds(lambda v: (f"b = {'true' if v else 'false'}", _cmp("=", lambda r: r["b"], lambda r: v), True),
              st.booleans()),
)


def _bool_op(op: str, a: Expr, b: Expr) -> Expr:
    fn = _and if op in ("and", "&&") else _or
    return (f"({a[0]} {op} {b[0]})", lambda r: fn(a[1](r), b[1](r)), True)


bool_expr = st.recursive(
    bool_leaf,
    lambda inner: st.one_of(
        st.builds(_bool_op, st.sampled_from(["and", "or", "&&", "||"]), inner, inner),
        st.builds(lambda a, kw: (f"{kw} ({a[0]})", lambda r: _not(a[1](r)), True), inner,
                  st.sampled_from(["not", "!"])),
    ),
    max_leaves=6,
)


def _same(x: Any, y: Any) -> bool:
    if x is None or y is None:
        return x is None and y is None
    return bool(x) == bool(y)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(expr=bool_expr)
def test_random_expressions_match_the_reference(data, expr: Expr) -> None:
    con, table = data
    text, ref, _ = expr
    value, kind = compile_expr(text, table, as_of=AS_OF)
    assert kind == "bool"
    query = table.select("customer_id", r=value).order_by("customer_id")
    got = con.to_pyarrow(query).column("r").to_pylist()
    want = [ref(r) for r in ROWS]
    assert all(_same(g, w) for g, w in zip(got, want, strict=True)), (text, got, want)


_ALPHABET = st.sampled_from(list("abnfmsd_0123456789 .,()[]'\"=!<>+-*/&|@#\\\n\t广东") +
                            ["and", "or", "not", "in", "between", "is", "null", "true", "date(", "coalesce(",
                             "__class__", "__import__", "lambda", "eval("])


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.one_of(st.text(max_size=60), st.lists(_ALPHABET, max_size=25).map(" ".join),
                      st.lists(_ALPHABET, max_size=25).map("".join)))
def test_junk_raises_only_segment_error(data, junk: str) -> None:
    _, table = data
    try:
        compile_expr(junk, table, as_of=AS_OF)
    except SegmentError:
        pass


@contextlib.contextmanager
def _tripwires():
    """eval, exec and compile replaced by tripwires while parsing and checking."""
    saved = {n: getattr(builtins, n) for n in ("eval", "exec", "compile")}

    def trip(*_: Any, **__: Any) -> None:
        raise AssertionError("the segment language must never evaluate Python")

    for n in saved:
        setattr(builtins, n, trip)
    try:
        yield
    finally:
        for n, f in saved.items():
            setattr(builtins, n, f)


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(bool_expr.map(lambda e: e[0]), st.lists(_ALPHABET, max_size=25).map(" ".join)))
def test_parser_never_calls_eval_exec_or_compile(text: str) -> None:
    outcome: BaseException | None = None
    with _tripwires():
        try:
            check(text, BUILTIN)
        except SegmentError:
            pass
        except BaseException as exc:  # noqa: BLE001 - re-raised below, outside the tripwires
            outcome = exc
    if outcome is not None:
        raise outcome


def test_code_payloads_are_refused_and_have_no_effect(tmp_path) -> None:
    marker = tmp_path / "pwned"
    for payload in (f"__import__('os').system('touch {marker}')",
                    "().__class__.__base__.__subclasses__()",
                    f"open('{marker}', 'w')",
                    "exec('1')", "lambda: 1", "[x for x in (1,)]", "{'a': 1}"):
        with pytest.raises(SegmentError):
            parse(payload)
    assert not marker.exists()
