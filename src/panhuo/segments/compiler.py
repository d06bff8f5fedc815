"""Type-check a parsed expression against a symbol table, then compile it to an Ibis expression.

Semantics (the same on every engine):

- ``null`` is SQL's: a comparison with a missing value is unknown, ``and``/``or``/``not`` use
  three-valued logic, and a rule that is unknown for a customer does not select the customer.
  ``x = null`` is refused (write ``x is null``).
- Money is written in RMB and compiled to the fen column exactly: a constant amount
  (``10000``, ``2 * 5000.50``) becomes an integer of fen through ``Decimal``; more than two decimals
  is an error. Money compares with money or a constant amount; ``money * number`` and
  ``money / number`` are money, ``money / money`` is a plain number.
- ``/`` is true division; dividing by zero gives null.
- ``days_since(d)`` is the number of days from ``d`` to the as-of date.
- ``top_percent(x, p)`` is true for the customers whose ``x`` is in the top ``p`` percent of the table
  the rule is evaluated on (``x >=`` its ``1 - p/100`` quantile over every row with a value; customers
  tied at the cut are all in; a missing ``x`` is never in); ``bottom_percent(x, p)`` likewise from the
  bottom. ``p`` is a constant in (0, 100]. "Top 20% by predicted uplift": ``top_percent(uplift, 20)``.
  The cut is computed over the whole table, whatever else the rule says, so
  ``status = 'sleeping' and top_percent(uplift, 20)`` is the sleeping customers among the top 20%.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

import ibis

from panhuo.segments.errors import SegmentError
from panhuo.segments.expr import (
    Between,
    Binary,
    Call,
    InList,
    IsNull,
    Lit,
    Name,
    Node,
    Source,
    Unary,
    parse,
)
from panhuo.segments.symbols import SymbolTable, builtin_symbols, symbols_for_table

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["Typed", "check", "compile_expr", "compile_rule", "names_used"]

_CMP = ("=", "!=", "<", "<=", ">", ">=")
_NUM = ("int", "float")
_MAX_CONST = Decimal(10) ** 15  # fen of it still fit int64 with room


@dataclass(frozen=True)
class Typed:
    """The kind of an expression; ``const`` is the exact value of a constant number expression."""

    kind: str  # money int float bool date string null
    const: Decimal | None = None


def _show(node: Node) -> str:
    return f"'{node.name}'" if isinstance(node, Name) else node.tok if isinstance(node, Lit) else f"'{node.tok}'"


_SHOW_KIND = {"int": "number", "float": "number", "string": "text", "bool": "true/false"}


def _describe(node: Node, t: Typed) -> str:
    return f"{_SHOW_KIND.get(t.kind, t.kind)} {_show(node)}"


def _fen(value: Decimal) -> int | None:
    q = value * 100
    return int(q) if q == q.to_integral_value() else None


class _Checker:
    def __init__(self, symbols: SymbolTable, src: Source) -> None:
        self.symbols = symbols
        self.src = src
        self.types: dict[int, Typed] = {}

    def err(self, reason: str, node: Node) -> SegmentError:
        return self.src.error(reason, node.pos, node.name if isinstance(node, Name) else node.tok)

    def check(self, node: Node) -> Typed:
        t = self._check(node)
        self.types[id(node)] = t
        return t

    def _const(self, node: Node, kind: str, value: Decimal) -> Typed:
        if abs(value) > _MAX_CONST:
            raise self.err("number too large", node)
        return Typed(kind, value)

    def _money_ok(self, node: Node, t: Typed) -> None:
        """``t`` (a number) is used as an amount of money: it must be a constant with at most 2 decimals."""
        if t.const is None:
            raise self.err(f"money can only be combined with money or an amount in RMB, not with "
                           f"{_describe(node, t)}", node)
        if _fen(t.const) is None:
            raise self.err(f"an amount of money has at most two decimals: {t.const}", node)

    def _unify(self, a: Node, ta: Typed, b: Node, tb: Typed, what: str) -> str:
        """The common kind of two operands of a comparison (or coalesce); raises when there is none."""
        if ta.kind == "null" or tb.kind == "null":
            raise self.err(f"{what} with null is never true; write 'x is null' or 'x is not null'",
                           b if tb.kind == "null" else a)
        if ta.kind in _NUM and tb.kind in _NUM:
            return "float" if "float" in (ta.kind, tb.kind) else "int"
        if ta.kind == "money" and tb.kind in _NUM:
            self._money_ok(b, tb)
            return "money"
        if tb.kind == "money" and ta.kind in _NUM:
            self._money_ok(a, ta)
            return "money"
        if ta.kind == tb.kind:
            return ta.kind
        hint = " (write dates as date('2026-01-31'))" if "date" in (ta.kind, tb.kind) else ""
        raise self.err(f"cannot compare {_describe(a, ta)} with {_describe(b, tb)}{hint}", b)

    def _enum(self, name: Node, lit: Node) -> None:
        if not (isinstance(name, Name) and isinstance(lit, Lit) and lit.kind == "string"):
            return
        sym = self.symbols.get(name.name)
        if sym and sym.values and lit.value not in sym.values:
            close = difflib.get_close_matches(str(lit.value), sym.values, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise self.err(f"{lit.tok} is not a value of {name.name} ({', '.join(sym.values)}){hint}", lit)

    def _bool(self, node: Node, t: Typed, op: str) -> None:
        if t.kind != "bool":
            raise self.err(f"'{op}' needs true/false on both sides; {_describe(node, t)} is not", node)

    def _check(self, node: Node) -> Typed:
        if isinstance(node, Lit):
            if node.kind in _NUM:
                return self._const(node, node.kind, node.value)  # type: ignore[arg-type]
            return Typed(node.kind)
        if isinstance(node, Name):
            sym = self.symbols.get(node.name)
            if sym is None:
                close = difflib.get_close_matches(node.name, list(self.symbols), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise self.err(f"unknown tag '{node.name}'{hint}", node)
            return Typed(sym.kind)
        if isinstance(node, Unary):
            t = self.check(node.operand)
            if node.op == "not":
                self._bool(node.operand, t, node.tok)
                return Typed("bool")
            if t.kind not in (*_NUM, "money"):
                raise self.err(f"'-' needs a number, not {_describe(node.operand, t)}", node)
            return self._const(node, t.kind, -t.const) if t.const is not None else Typed(t.kind)
        if isinstance(node, Binary):
            return self._binary(node)
        if isinstance(node, InList):
            t = self.check(node.operand)
            for item in node.items:
                ti = self.check(item)
                self._unify(node.operand, t, item, ti, "comparing")
                self._enum(node.operand, item)
            if t.kind == "bool":
                raise self.err("'in' needs numbers, money, text or dates, not true/false", node)
            return Typed("bool")
        if isinstance(node, Between):
            t = self.check(node.operand)
            for bound in (node.low, node.high):
                kind = self._unify(node.operand, t, bound, self.check(bound), "comparing")
                if kind in ("bool", "null"):
                    raise self.err(f"'between' cannot order {kind} values", node)
            return Typed("bool")
        if isinstance(node, IsNull):
            self.check(node.operand)
            return Typed("bool")
        if isinstance(node, Call):
            return self._call(node)
        raise self.err("unsupported expression", node)  # pragma: no cover - the parser makes no others

    def _binary(self, node: Binary) -> Typed:
        ta, tb = self.check(node.left), self.check(node.right)
        a, b, op = node.left, node.right, node.op
        if op in ("and", "or"):
            self._bool(a, ta, node.tok)
            self._bool(b, tb, node.tok)
            return Typed("bool")
        if op in _CMP:
            kind = self._unify(a, ta, b, tb, "comparing")
            if kind == "bool" and op not in ("=", "!="):
                raise self.err(f"true/false values cannot be ordered with '{node.tok}'", node)
            self._enum(a, b)
            self._enum(b, a)
            return Typed("bool")
        # arithmetic
        for side, t in ((a, ta), (b, tb)):
            if t.kind not in (*_NUM, "money"):
                raise self.err(f"'{node.tok}' needs numbers or money, not {_describe(side, t)}", side)
        if ta.kind in _NUM and tb.kind in _NUM:
            kind = "float" if "float" in (ta.kind, tb.kind) or op == "/" else "int"
            folded = _fold(op, ta.const, tb.const)
            return self._const(node, kind, folded) if folded is not None else Typed(kind)
        if op in ("+", "-"):
            if ta.kind != "money":
                self._money_ok(a, ta)
            if tb.kind != "money":
                self._money_ok(b, tb)
            return Typed("money")
        if op == "*":
            if ta.kind == tb.kind == "money":
                raise self.err("money cannot be multiplied by money", node)
            return Typed("money")
        if ta.kind == "money":  # "/"
            return Typed("float" if tb.kind == "money" else "money")
        raise self.err(f"a number cannot be divided by money ({_describe(b, tb)})", node)

    def _call(self, node: Call) -> Typed:
        ts = [self.check(arg) for arg in node.args]
        f, args = node.func, node.args
        if f == "days_since":
            if ts[0].kind != "date":
                raise self.err(f"days_since() needs a date, not {_describe(args[0], ts[0])}", args[0])
            return Typed("int")
        if f in ("lower", "upper"):
            if ts[0].kind != "string":
                raise self.err(f"{f}() needs text, not {_describe(args[0], ts[0])}", args[0])
            return Typed("string")
        if f == "abs":
            if ts[0].kind not in (*_NUM, "money"):
                raise self.err(f"abs() needs a number, not {_describe(args[0], ts[0])}", args[0])
            return Typed(ts[0].kind, abs(ts[0].const) if ts[0].const is not None else None)
        if f in ("top_percent", "bottom_percent"):
            if ts[0].kind not in (*_NUM, "money") or ts[0].const is not None:
                raise self.err(f"{f}() ranks a tag or score that is a number or money, not "
                               f"{_describe(args[0], ts[0])}", args[0])
            if ts[1].kind not in _NUM or ts[1].const is None or not (0 < ts[1].const <= 100):
                raise self.err(f"{f}() needs a constant percentage in (0, 100] as its second argument, not "
                               f"{_describe(args[1], ts[1])}", args[1])
            return Typed("bool")
        if f == "startswith":
            for arg, t in zip(args, ts, strict=True):
                if t.kind != "string":
                    raise self.err(f"startswith() needs text, not {_describe(arg, t)}", arg)
            return Typed("bool")
        # coalesce, least, greatest: one common kind
        real = [(a, t) for a, t in zip(args, ts, strict=True) if t.kind != "null"]
        if f != "coalesce" and len(real) != len(args):
            raise self.err(f"{f}() does not take null", node)
        if not real:
            raise self.err(f"{f}() needs at least one value that is not null", node)
        kind = real[0][1].kind
        for a, t in real[1:]:
            kind = self._unify(real[0][0], Typed(kind), a, t, f"{f}() mixing")
        if kind == "money":
            for a, t in real:
                if t.kind != "money":
                    self._money_ok(a, t)
        return Typed(kind)


def _fold(op: str, a: Decimal | None, b: Decimal | None) -> Decimal | None:
    if a is None or b is None:
        return None
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b == 0:
            return None
        q = a / b
        return q if q * b == a else None  # only exact quotients are folded
    except InvalidOperation:  # pragma: no cover - only NaN/inf arithmetic
        return None


def names_used(node: Node) -> set[str]:
    """Every tag or score name the expression refers to."""
    if isinstance(node, Name):
        return {node.name}
    out: set[str] = set()
    for child in _children(node):
        out |= names_used(child)
    return out


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, InList):
        return (node.operand, *node.items)
    if isinstance(node, Between):
        return (node.operand, node.low, node.high)
    if isinstance(node, IsNull):
        return (node.operand,)
    if isinstance(node, Call):
        return node.args
    return ()


def check(text: str | Source, symbols: SymbolTable | None = None, want: str | None = None) -> str:
    """Parse and type-check an expression; returns its kind. ``want="bool"`` requires a rule."""
    src = text if isinstance(text, Source) else Source(str(text))
    node = parse(src)
    checker = _Checker(builtin_symbols() if symbols is None else symbols, src)
    t = checker.check(node)
    _want(checker, node, t, want)
    return t.kind


def _want(checker: _Checker, node: Node, t: Typed, want: str | None) -> None:
    if want is None or t.kind == want or (want == "float" and t.kind == "int"):
        return
    if want == "bool":
        raise checker.err(f"a rule must be true or false, but this is {_describe(node, t)}", node)
    raise checker.err(f"the expression is {t.kind}, but the kind given is {want}", node)


class _Compiler:
    def __init__(self, table: ir.Table, checker: _Checker, as_of: dt.date | None) -> None:
        self.t = table
        self.ch = checker
        self.types = checker.types
        self.as_of = as_of
        self.columns = set(table.columns)

    def kind(self, node: Node) -> Typed:
        return self.types[id(node)]

    def money(self, node: Node) -> ir.Value:
        t = self.kind(node)
        if t.kind == "money":
            return self.c(node)
        assert t.const is not None
        return ibis.literal(_fen(t.const), type="int64")

    def c(self, node: Node) -> ir.Value:
        t = self.kind(node)
        if t.kind in _NUM and t.const is not None:
            return ibis.literal(int(t.const), type="int64") if t.kind == "int" else ibis.literal(
                float(t.const), type="float64")
        if isinstance(node, Lit):
            if node.kind == "null":
                return ibis.null()
            types = {"string": "string", "bool": "boolean", "date": "date"}
            return ibis.literal(node.value, type=types[node.kind])
        if isinstance(node, Name):
            sym = self.ch.symbols[node.name]
            if sym.column not in self.columns:
                raise self.ch.err(f"tag '{node.name}' is not in this data (column {sym.column} missing)", node)
            col = self.t[sym.column]
            return col.date() if sym.kind == "date" and col.type().is_timestamp() else col
        if isinstance(node, Unary):
            return ~self.c(node.operand) if node.op == "not" else -self.c(node.operand)
        if isinstance(node, Binary):
            return self._binary(node)
        if isinstance(node, InList):
            money = self.kind(node.operand).kind == "money"
            values = [(_fen(i.value) if money else _py(i, self.kind(node.operand).kind)) for i in node.items]
            x = self.c(node.operand)
            return x.notin(values) if node.negated else x.isin(values)
        if isinstance(node, Between):
            money = "money" in (self.kind(node.operand).kind, self.kind(node.low).kind, self.kind(node.high).kind)
            f = self.money if money else self.c
            e = f(node.operand).between(f(node.low), f(node.high))
            return ~e if node.negated else e
        if isinstance(node, IsNull):
            x = self.c(node.operand)
            return x.notnull() if node.negated else x.isnull()
        assert isinstance(node, Call)
        return self._call(node)

    def _binary(self, node: Binary) -> ir.Value:
        op, a, b = node.op, node.left, node.right
        ka, kb = self.kind(a).kind, self.kind(b).kind
        if op == "and":
            return self.c(a) & self.c(b)
        if op == "or":
            return self.c(a) | self.c(b)
        money = "money" in (ka, kb)
        if op in _CMP or (money and op in ("+", "-")):
            x, y = (self.money(a), self.money(b)) if money else (self.c(a), self.c(b))
        else:
            x, y = self.c(a), self.c(b)
        if op == "=":
            return x == y
        if op == "!=":
            return x != y
        if op == "<":
            return x < y
        if op == "<=":
            return x <= y
        if op == ">":
            return x > y
        if op == ">=":
            return x >= y
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        return x / y.nullif(0)

    def _call(self, node: Call) -> ir.Value:
        f, args = node.func, node.args
        if f == "days_since":
            day = self.as_of if self.as_of is not None else dt.date.today()
            return ibis.literal(day, type="date").delta(self.c(args[0]), unit="day")
        if f == "lower":
            return self.c(args[0]).lower()
        if f == "upper":
            return self.c(args[0]).upper()
        if f == "abs":
            return self.c(args[0]).abs()
        if f == "startswith":
            return self.c(args[0]).startswith(self.c(args[1]))
        if f in ("top_percent", "bottom_percent"):
            x = self.c(args[0])
            share = float(self.kind(args[1]).const) / 100.0  # type: ignore[arg-type]
            if f == "top_percent":
                return x >= x.quantile(1.0 - share)
            return x <= x.quantile(share)
        money = self.kind(node).kind == "money"
        vals = [self.money(a) if money and self.kind(a).kind != "null" else self.c(a) for a in args]
        if f == "coalesce":
            return ibis.coalesce(*vals)
        return ibis.least(*vals) if f == "least" else ibis.greatest(*vals)


def _py(item: Lit, kind: str) -> object:
    if item.kind in _NUM:
        return float(item.value) if kind == "float" or item.kind == "float" else int(item.value)  # type: ignore[arg-type]
    return item.value


def compile_expr(
    text: str | Source,
    table: ir.Table,
    symbols: SymbolTable | None = None,
    *,
    as_of: dt.date | None = None,
    want: str | None = None,
) -> tuple[ir.Value, str]:
    """Parse, check and compile an expression over ``table``; returns ``(ibis value, kind)``.

    Parameters
    ----------
    text
        The expression, or a :class:`Source` that places it in a file (for error locations).
    table
        The Ibis table of tags and scores (one row per customer).
    symbols
        Names usable in the expression (default: derived from ``table``).
    as_of
        The date ``days_since`` counts to (default: today).
    want
        Require this kind (``"bool"`` for a rule).

    Raises
    ------
    SegmentError
        Syntax, unknown tag or function, type mismatch, or a tag missing from ``table``.
    """
    src = text if isinstance(text, Source) else Source(str(text))
    node = parse(src)
    checker = _Checker(symbols_for_table(table) if symbols is None else symbols, src)
    t = checker.check(node)
    _want(checker, node, t, want)
    value = _Compiler(table, checker, as_of).c(node)
    if t.kind in _NUM and t.const is not None:
        value = value.name("value")
    return value, t.kind


def compile_rule(
    text: str | Source, table: ir.Table, symbols: SymbolTable | None = None, *, as_of: dt.date | None = None
) -> ir.BooleanValue:
    """A rule compiled to a boolean that is never null (unknown counts as not selected)."""
    value, _ = compile_expr(text, table, symbols, as_of=as_of, want="bool")
    return value.fill_null(False)  # type: ignore[union-attr]
