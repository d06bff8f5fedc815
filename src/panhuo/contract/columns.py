"""Column conversions as Ibis expressions: raw input column -> (stored value, reason it is refused).

Each converter yields the stored value and a string column that is null when the value is
acceptable and otherwise says why not ("is not a number", "is negative", ...). The rules are
those of ``panhuo.contract.parse``; expressions never branch on the engine, so DuckDB and PySpark
convert identically. Values are made safe *before* any cast (an invalid text is replaced by a
harmless literal and flagged), so no engine raises mid-query, ANSI mode or not.

Converters work in *stages*: each stage adds columns computed from the previous stage's columns,
and stages are separated by ``Table.view()`` so that an intermediate (the trimmed text, a regex
match) is computed once per row instead of being inlined into every expression that uses it.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

import ibis
import ibis.expr.datatypes as dt

from panhuo.contract.schema import Column

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["convert_columns", "clean_text", "TRUE_WORDS", "FALSE_WORDS"]

_NULL = ibis.null(dt.string)

TRUE_WORDS = ("true", "t", "1", "y", "yes", "是", "真")
FALSE_WORDS = ("false", "f", "0", "n", "no", "否", "假")

_MONEY = r"^[0-9]{1,15}(\.[0-9]{0,2})?$"
_MONEY_NORM = r"^\+?([0-9]+(\.[0-9]{0,2})?)0*$"
_NUMBER = r"^[+-]?[0-9]+(\.[0-9]*)?$"
_NEGATIVE = r"^-[0-9]+(\.[0-9]*)?$"
_ZERO = r"^[+-]?(0+(\.0*)?|\.0+)$"
_TOO_PRECISE = r"^[+-]?[0-9]+\.[0-9]{2}[0-9]*[1-9][0-9]*$"
_DATE = r"^([0-9]{4})-?([0-9]{1,2})-?([0-9]{1,2})([ T]00:00(:00(\.0+)?)?)?$"
_DATE_SHAPE = r"^([0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([ T]00:00(:00(\.0+)?)?)?|[0-9]{8})$"
_TS = (
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})([ T]([0-9]{2}):([0-9]{2})(:([0-9]{2})(\.[0-9]{1,9})?)?)?"
    r"(\+08:?00)?$"
)
_INT = r"^[+-]?[0-9]{1,9}(\.0*)?$"
_FLOAT = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$"

Stage = Generator[None, None, tuple["ir.Value", "ir.StringValue"]]


class _Layers:
    """The table being converted; ``put`` adds a column to the next layer, ``seal`` closes it."""

    def __init__(self, table: ir.Table) -> None:
        self.t = table
        self.pending: dict[str, ir.Value] = {}

    def put(self, name: str, expr: ir.Value) -> None:
        self.pending[name] = expr

    def __getitem__(self, name: str) -> ir.Value:
        return self.t[name]

    def seal(self) -> None:
        if self.pending:
            self.t = self.t.mutate(**self.pending).view()
            self.pending = {}


_BLANK = "[ \t\r\n\u00a0\u3000]"  # white space, no-break space and the ideographic (full-width) space
_SURROUNDING_BLANKS = f"^{_BLANK}+|{_BLANK}+$"


def clean_text(raw: ir.Value) -> ir.StringValue:
    """Text with surrounding white space (also full-width) removed; empty text is null.

    A regular expression rather than ``strip()``: the characters ``strip()`` passes to Spark's TRIM
    include ``\v\f``, which Spark reads as the letters v and f ("fund" became "und").
    """
    return raw.cast(dt.string).re_replace(_SURROUNDING_BLANKS, "").nullif("")


def _when(*pairs: tuple[ir.BooleanValue, str]) -> ir.StringValue:
    return ibis.cases(*[(cond.fill_null(False), ibis.literal(reason)) for cond, reason in pairs], else_=_NULL)


def _int(s: ir.StringValue) -> ir.IntegerValue:
    return s.cast(dt.int64)


def _days_in_month(y: ir.IntegerValue, m: ir.IntegerValue) -> ir.IntegerValue:
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    return ibis.cases((m == 2, ibis.ifelse(leap, 29, 28)), (m.isin([4, 6, 9, 11]), 30), else_=31)


# -- converters: generators that put columns, yield to let the layer seal, and return --------
def _text(L: _Layers, p: str, src: str, strip: bool = True) -> Stage:
    L.put(p + "v", clean_text(L[src]))
    yield
    return L[p + "v"], _NULL


def _money(L: _Layers, p: str, src: str) -> Stage:
    t = L[src].type()
    if t.is_integer():
        raw = L[src]
        return raw.cast(dt.int64) * 100, _when((raw < 0, "is negative"))
    if t.is_decimal():
        raw = L[src]
        scaled = raw * 100
        bad = scaled != scaled.floor()
        return (ibis.ifelse(bad, ibis.null(dt.int64), scaled.floor().cast(dt.int64)),
                _when((raw < 0, "is negative"), (bad, "is not a whole number of fen (more than two decimals)")))
    if t.is_floating():
        L.put(p + "x", L[src].cast(dt.float64) * 100)
        yield
        x = L[p + "x"]
        finite = ~(x.isnan() | x.isinf())
        L.put(p + "ok", finite.fill_null(True) & (x.abs() < 1e17).fill_null(True))
        yield
        ok, x = L[p + "ok"], L[p + "x"]
        safe = ibis.ifelse(ok, x, 0.0)
        L.put(p + "r", safe.round(0))
        yield
        r, x, ok = L[p + "r"], L[p + "x"], L[p + "ok"]
        off = (ibis.ifelse(ok, x, 0.0) - r).abs() > (r.abs() * 1e-12 + 1e-6)
        return (ibis.ifelse(ok & ~off, r.cast(dt.int64), ibis.null(dt.int64)),
                _when((~ok & ~(x.isnan() | x.isinf()), "is out of range"), (~ok, "is not a number"),
                      (x < 0, "is negative"), (off, "is not a whole number of fen (more than two decimals)")))
    if not t.is_string():
        return ibis.null(dt.int64), ibis.literal(f"has type {t} where money is expected")
    L.put(p + "s", clean_text(L[src]))
    yield
    s = L[p + "s"]
    L.put(p + "n", ibis.ifelse(s.re_search(_ZERO), "0", s.re_extract(_MONEY_NORM, 1)))
    yield
    n = L[p + "n"]
    L.put(p + "ok", n.re_search(_MONEY).fill_null(False))
    yield
    s, n, ok = L[p + "s"], L[p + "n"], L[p + "ok"]
    safe = ibis.ifelse(ok, n, "0")
    whole = safe.re_extract(r"^([0-9]+)", 1)
    frac = (safe.re_extract(r"\.([0-9]*)$", 1).fill_null("") + "00").substr(0, 2)
    fen = ibis.ifelse(ok, _int(whole) * 100 + _int(frac), ibis.null(dt.int64))
    reason = ibis.cases(
        (s.isnull() | ok, _NULL),
        (s.re_search(_NEGATIVE), ibis.literal("is negative")),
        (s.re_search(_TOO_PRECISE), ibis.literal("is not a whole number of fen (more than two decimals)")),
        (s.re_search(_NUMBER), ibis.literal("is out of range")),
        else_=ibis.literal("is not a number"),
    )
    return fen, reason


def _ymd_valid(y: ir.IntegerValue, m: ir.IntegerValue, d: ir.IntegerValue) -> ir.BooleanValue:
    return y.between(1900, 2100) & m.between(1, 12) & (d >= 1) & (d <= _days_in_month(y, m))


def _date(L: _Layers, p: str, src: str) -> Stage:
    t = L[src].type()
    if t.is_date():
        return L[src], _NULL
    if t.is_timestamp():
        return L[src].date(), _NULL
    if not (t.is_string() or t.is_integer()):
        return ibis.null(dt.date), ibis.literal(f"has type {t} where a date is expected")
    L.put(p + "s", clean_text(L[src]))
    yield
    s = L[p + "s"]
    L.put(p + "ok", s.re_search(_DATE_SHAPE).fill_null(False))
    yield
    ok, s = L[p + "ok"], L[p + "s"]
    safe = ibis.ifelse(ok, s, "2000-01-01")
    for i, part in ((1, "y"), (2, "m"), (3, "d")):
        L.put(p + part, _int(safe.re_extract(_DATE, i)))
    yield
    y, m, d, ok = L[p + "y"], L[p + "m"], L[p + "d"], L[p + "ok"]
    L.put(p + "valid", ok & _ymd_valid(y, m, d))
    yield
    s, ok, valid = L[p + "s"], L[p + "ok"], L[p + "valid"]
    y, m, d = L[p + "y"], L[p + "m"], L[p + "d"]
    value = ibis.ifelse(valid, ibis.date(ibis.ifelse(valid, y, 2000), ibis.ifelse(valid, m, 1),
                                         ibis.ifelse(valid, d, 1)), ibis.null(dt.date))
    reason = ibis.cases(
        (s.isnull() | valid, _NULL),
        (ok, ibis.literal("is not a valid calendar date")),
        else_=ibis.literal("is not a date (use 2024-01-31 or 20240131)"),
    )
    return value, reason


def _timestamp(L: _Layers, p: str, src: str) -> Stage:
    t = L[src].type()
    if t.is_timestamp() or t.is_date():
        return L[src].cast(dt.Timestamp(scale=6)), _NULL
    if not t.is_string():
        return ibis.null(dt.timestamp), ibis.literal(f"has type {t} where a date-time is expected")
    L.put(p + "s", clean_text(L[src]))
    yield
    s = L[p + "s"]
    L.put(p + "ok", s.re_search(_TS).fill_null(False))
    yield
    ok, s = L[p + "ok"], L[p + "s"]
    safe = ibis.ifelse(ok, s, "2000-01-01 00:00:00")
    for i, part in ((1, "y"), (2, "m"), (3, "d"), (5, "hh"), (6, "mi"), (8, "ss")):
        L.put(p + part, _int(safe.re_extract(_TS, i).nullif("").fill_null("0")))
    yield
    y, m, d, hh, mi, ss = (L[p + k] for k in ("y", "m", "d", "hh", "mi", "ss"))
    ok = L[p + "ok"]
    L.put(p + "valid", ok & _ymd_valid(y, m, d) & (hh <= 23) & (mi <= 59) & (ss <= 59))
    yield
    s, ok, valid = L[p + "s"], L[p + "ok"], L[p + "valid"]
    y, m, d, hh, mi, ss = (L[p + k] for k in ("y", "m", "d", "hh", "mi", "ss"))

    def pad(v: ir.IntegerValue, width: int) -> ir.StringValue:
        return ibis.ifelse(valid, v, 0).cast(dt.string).lpad(width, "0")

    # A canonical "YYYY-MM-DD HH:MM:SS" built from validated parts casts the same on every engine.
    canon = (pad(y, 4) + "-" + pad(m, 2) + "-" + pad(d, 2) + " " + pad(hh, 2) + ":" + pad(mi, 2) + ":" + pad(ss, 2))
    value = ibis.ifelse(valid, ibis.ifelse(valid, canon, "2000-01-01 00:00:00").cast(dt.timestamp),
                        ibis.null(dt.timestamp))
    reason = ibis.cases(
        (s.isnull() | valid, _NULL),
        (ok, ibis.literal("is not a valid date-time")),
        else_=ibis.literal("is not a date-time (use 2024-01-31 09:30:00, Asia/Shanghai time)"),
    )
    return value, reason


def _enum(col: Column) -> object:
    def run(L: _Layers, p: str, src: str) -> Stage:
        L.put(p + "s", clean_text(L[src]).lower())
        yield
        s = L[p + "s"]
        spellings = {v.lower(): v for v in col.values}
        spellings.update({k.lower(): v for k, v in col.aliases.items()})
        value = s.cases(*[(k, v) for k, v in spellings.items()], else_=ibis.null(dt.string))
        reason = ibis.ifelse(s.notnull() & ~s.isin(list(spellings)),
                             ibis.literal("is not one of " + ", ".join(col.values)), _NULL)
        return value, reason

    return run


def _bool(L: _Layers, p: str, src: str) -> Stage:
    t = L[src].type()
    words = "is not true/false (use 1/0, true/false, 是/否)"
    if t.is_boolean():
        return L[src], _NULL
    if t.is_integer():
        raw = L[src]
        return ibis.ifelse(raw.isin([0, 1]), raw == 1, ibis.null(dt.boolean)), _when((~raw.isin([0, 1]), words))
    L.put(p + "s", clean_text(L[src]).lower())
    yield
    s = L[p + "s"]
    value = ibis.cases((s.isin(TRUE_WORDS), True), (s.isin(FALSE_WORDS), False), else_=ibis.null(dt.boolean))
    return value, ibis.ifelse(s.notnull() & ~s.isin(TRUE_WORDS + FALSE_WORDS), ibis.literal(words), _NULL)


def _bounds(col: Column, value: ir.NumericValue, default_min: int | None) -> list[tuple[ir.BooleanValue, str]]:
    lo = col.min_value if col.min_value is not None else default_min
    out = []
    if lo is not None:
        out.append((value < lo, "is negative" if lo == 0 and col.max_value is None else f"is outside {lo}..{col.max_value}"))
    if col.max_value is not None:
        out.append((value > col.max_value, f"is outside {lo}..{col.max_value}"))
    return out


def _integer(col: Column) -> object:
    def run(L: _Layers, p: str, src: str) -> Stage:
        t = L[src].type()
        if t.is_integer():
            value, bad = L[src].cast(dt.int64), ibis.literal(False)
        elif t.is_floating() or t.is_decimal():
            raw = L[src]
            bad = raw != raw.floor()
            value = ibis.ifelse(bad, ibis.null(dt.int64), raw.floor().cast(dt.int64))
        else:
            L.put(p + "s", clean_text(L[src]))
            yield
            s = L[p + "s"]
            L.put(p + "ok", s.re_search(_INT))
            yield
            s, ok = L[p + "s"], L[p + "ok"].fill_null(False)
            value = ibis.ifelse(ok, _int(ibis.ifelse(ok, s, "0").re_extract(r"^([+-]?[0-9]+)", 1)), ibis.null(dt.int64))
            bad = s.notnull() & ~ok
        return value, _when((bad, "is not a whole number"), *_bounds(col, value, None))

    return run


def _number(col: Column) -> object:
    def run(L: _Layers, p: str, src: str) -> Stage:
        t = L[src].type()
        if t.is_numeric():
            value, bad = L[src].cast(dt.float64), ibis.literal(False)
        else:
            L.put(p + "s", clean_text(L[src]))
            yield
            s = L[p + "s"]
            L.put(p + "ok", s.re_search(_FLOAT).fill_null(False))
            yield
            s, ok = L[p + "s"], L[p + "ok"]
            value = ibis.ifelse(ok, ibis.ifelse(ok, s, "0").cast(dt.float64), ibis.null(dt.float64))
            bad = s.notnull() & ~ok
        return value, _when((bad, "is not a number"), (value.isnan() | value.isinf(), "is not a finite number"),
                            *_bounds(col, value, 0))

    return run


def _converter(col: Column):
    return {
        "id": _text, "text": _text, "json": _text, "money": _money, "date": _date, "timestamp": _timestamp,
        "bool": _bool,
    }.get(col.kind) or {"enum": _enum, "int": _integer, "number": _number}[col.kind](col)


def convert_columns(raw: ir.Table, columns: dict[str, Column]) -> tuple[ir.Table, dict[str, tuple[str, str]]]:
    """Convert ``{raw column name: contract Column}`` in stages.

    Returns the widened table and, per raw column, the names of its value and reason columns.
    """
    L = _Layers(raw)
    gens: dict[str, Stage] = {}
    prefix: dict[str, str] = {}
    for i, (src, col) in enumerate(columns.items()):
        prefix[src] = f"__pnh{i}_"
        gens[src] = _converter(col)(L, prefix[src], src)
    while gens:
        for src, g in list(gens.items()):
            try:
                next(g)
            except StopIteration as stop:
                value, reason = stop.value  # built on the current layer: store them in the next one
                L.put(prefix[src] + "v0", value)
                L.put(prefix[src] + "w0", reason)
                del gens[src]
        L.seal()
    out: dict[str, tuple[str, str]] = {}
    for src, col in columns.items():
        p = prefix[src]
        value, reason = L[p + "v0"], L[p + "w0"]
        if not col.nullable:
            reason = ibis.ifelse(value.isnull() & reason.isnull(), ibis.literal("is empty (required)"), reason)
        L.put(p + "why", reason)
        out[src] = (p + "v0", p + "why")
    L.seal()
    return L.t, out
