"""The segment expression language: tokenizer, recursive-descent parser and its small AST.

User text is never given to ``eval``, ``exec``, ``compile`` or Python's ``ast``: it is split into
tokens here, parsed into the frozen dataclasses below, type-checked and compiled to Ibis by
:mod:`panhuo.segments.compiler`. Anything outside the grammar is a :class:`SegmentError` that names
the file, line, column and token.

Grammar (lowest precedence first)::

    expr       := or
    or         := and  (("or" | "||") and)*
    and        := not  (("and" | "&&") not)*
    not        := ("not" | "!") not | comparison
    comparison := sum [ ("=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=") sum
                      | ["not"] "in" "[" literal ("," literal)* "]"
                      | ["not"] "between" sum "and" sum
                      | "is" ["not"] "null" ]
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := "-" unary | primary
    primary    := NUMBER | STRING | "true" | "false" | "null" | "date" "(" STRING ")"
                | NAME | FUNCTION "(" expr ("," expr)* ")" | "(" expr ")"

Numbers are ``123`` or ``123.45``; strings are ``'...'`` or ``"..."`` (any Unicode, ``\\`` escapes
the quote or a backslash). Keywords are case-insensitive, names are not. Comparisons do not chain.
Attribute access (``x.y``), indexing (``x[0]``), calling anything but a listed function and calling
the result of an expression are syntax errors.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal as TLiteral

from panhuo.segments.errors import Location, SegmentError

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Between",
    "Binary",
    "Call",
    "InList",
    "IsNull",
    "Lit",
    "Name",
    "Node",
    "Source",
    "Token",
    "Unary",
    "parse",
    "tokenize",
]

MAX_LENGTH = 20_000
MAX_DEPTH = 64

#: The only functions an expression may call: name -> (min args, max args or None for any).
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "days_since": (1, 1),
    "coalesce": (2, None),
    "lower": (1, 1),
    "upper": (1, 1),
    "abs": (1, 1),
    "least": (2, None),
    "greatest": (2, None),
    "startswith": (2, 2),
    "top_percent": (2, 2),
    "bottom_percent": (2, 2),
}

_KEYWORDS = {"and", "or", "not", "in", "between", "is", "null", "true", "false"}
_OPS = ("==", "!=", "<>", "<=", ">=", "&&", "||", "=", "<", ">", "+", "-", "*", "/", "(", ")", "[", "]", ",", "!")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?![0-9A-Za-z_.])")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Source:
    """Expression text and where it sits in a file, to turn text offsets into line and column.

    ``spans`` are ``(offset in text, line, col)`` for the start of each stretch of text that sits
    contiguously in the file (one per physical line); by default derived from the newlines in ``text``
    with the first line starting at ``line``/``col``.
    """

    text: str
    file: str = "<expression>"
    line: int = 1
    col: int = 1
    spans: tuple[tuple[int, int, int], ...] = field(default=())

    def locate(self, offset: int) -> Location:
        spans = self.spans or self._default_spans()
        start, line, col = spans[0]
        for s in spans:
            if s[0] <= offset:
                start, line, col = s
            else:
                break
        return Location(self.file, line, col + max(offset - start, 0))

    def _default_spans(self) -> tuple[tuple[int, int, int], ...]:
        spans = [(0, self.line, self.col)]
        for i, ch in enumerate(self.text):
            if ch == "\n":
                spans.append((i + 1, self.line + len(spans), 1))
        return tuple(spans)

    def error(self, reason: str, offset: int, token: str | None = None) -> SegmentError:
        return SegmentError(reason, self.locate(offset), token)


TokenKind = TLiteral["number", "string", "name", "keyword", "op", "end"]


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str  # as written (for strings: the decoded value)
    pos: int  # offset in the source text
    raw: str = ""  # for strings: the text as written, quotes included

    def show(self) -> str:
        return "end of expression" if self.kind == "end" else repr(self.raw or self.text)


def tokenize(src: Source) -> list[Token]:
    """Split ``src.text`` into tokens; the last one is ``end``. Raises SegmentError."""
    text = src.text
    if len(text) > MAX_LENGTH:
        raise src.error(f"expression longer than {MAX_LENGTH} characters", 0)
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch.isdigit():
            m = _NUMBER.match(text, i)
            if not m:
                j = i
                while j < n and (text[j].isalnum() or text[j] in "._"):
                    j += 1
                raise src.error(f"{text[i:j]!r} is not a number (write 123 or 123.45)", i, text[i:j])
            out.append(Token("number", m.group(), i))
            i = m.end()
            continue
        if ch in "'\"":
            j, buf = i + 1, []
            while j < n and text[j] != ch:
                if text[j] == "\\" and j + 1 < n and text[j + 1] in (ch, "\\"):
                    j += 1
                buf.append(text[j])
                j += 1
            if j >= n:
                raise src.error("unterminated string (a quote is missing)", i, text[i : i + 20])
            out.append(Token("string", "".join(buf), i, text[i : j + 1]))
            i = j + 1
            continue
        if ch.isascii() and (ch.isalpha() or ch == "_"):
            m = _NAME.match(text, i)
            assert m is not None
            word = m.group()
            kind: TokenKind = "keyword" if word.lower() in _KEYWORDS else "name"
            out.append(Token(kind, word.lower() if kind == "keyword" else word, i))
            i = m.end()
            continue
        if ch == ".":
            raise src.error("attribute access ('.') is not allowed", i, ".")
        for op in _OPS:
            if text.startswith(op, i):
                out.append(Token("op", op, i))
                i += len(op)
                break
        else:
            raise src.error(f"unexpected character {ch!r}", i, ch)
    out.append(Token("end", "", n))
    return out


# ----------------------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Node:
    pos: int  # offset of the node's main token (operator, name, literal) in the source
    tok: str  # that token as written


@dataclass(frozen=True)
class Lit(Node):
    """A literal: kind int|float (value Decimal), string (str), bool, date (dt.date) or null."""

    kind: str
    value: object


@dataclass(frozen=True)
class Name(Node):
    name: str


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "not" | "-"
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str  # and or = != < <= > >= + - * /
    left: Node
    right: Node


@dataclass(frozen=True)
class InList(Node):
    operand: Node
    items: tuple[Lit, ...]
    negated: bool


@dataclass(frozen=True)
class Between(Node):
    operand: Node
    low: Node
    high: Node
    negated: bool


@dataclass(frozen=True)
class IsNull(Node):
    operand: Node
    negated: bool


@dataclass(frozen=True)
class Call(Node):
    func: str
    args: tuple[Node, ...]


# -------------------------------------------------------------------------------------- parser

_CMP = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


class _Parser:
    def __init__(self, src: Source) -> None:
        self.src = src
        self.toks = tokenize(src)
        self.i = 0
        self.depth = 0

    # -- helpers
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def _is(self, kind: str, *texts: str) -> bool:
        t = self.tok
        return t.kind == kind and (not texts or t.text in texts)

    def _next(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def _fail(self, reason: str, tok: Token | None = None) -> SegmentError:
        t = tok or self.tok
        return self.src.error(reason, t.pos, None if t.kind == "end" else (t.raw or t.text))

    def _expect(self, kind: str, text: str, what: str) -> Token:
        if not self._is(kind, text):
            raise self._fail(f"expected {what}, found {self.tok.show()}")
        return self._next()

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self._fail(f"expression nested deeper than {MAX_DEPTH} levels")

    # -- grammar
    def parse(self) -> Node:
        if self._is("end"):
            raise self._fail("empty expression")
        node = self.expr()
        if not self._is("end"):
            raise self._fail(f"unexpected {self.tok.show()} after a complete expression")
        return node

    def expr(self) -> Node:
        self._enter()
        try:
            return self.or_()
        finally:
            self.depth -= 1

    def or_(self) -> Node:
        left = self.and_()
        while self._is("keyword", "or") or self._is("op", "||"):
            t = self._next()
            left = Binary(t.pos, t.text, "or", left, self.and_())
        return left

    def and_(self) -> Node:
        left = self.not_()
        while self._is("keyword", "and") or self._is("op", "&&"):
            t = self._next()
            left = Binary(t.pos, t.text, "and", left, self.not_())
        return left

    def not_(self) -> Node:
        if self._is("keyword", "not") or self._is("op", "!"):
            t = self._next()
            self._enter()
            try:
                return Unary(t.pos, t.text, "not", self.not_())
            finally:
                self.depth -= 1
        return self.comparison()

    def comparison(self) -> Node:
        left = self.sum_()
        t = self.tok
        if t.kind == "op" and t.text in _CMP:
            self._next()
            node: Node = Binary(t.pos, t.text, _CMP[t.text], left, self.sum_())
        elif self._is("keyword", "not") and self.toks[self.i + 1].kind == "keyword" and \
                self.toks[self.i + 1].text in ("in", "between"):
            self._next()
            node = self._in_or_between(left, negated=True)
        elif self._is("keyword", "in", "between"):
            node = self._in_or_between(left, negated=False)
        elif self._is("keyword", "is"):
            self._next()
            negated = self._is("keyword", "not")
            if negated:
                self._next()
            self._expect("keyword", "null", "'null' after 'is'")
            node = IsNull(t.pos, t.text, left, negated)
        else:
            return left
        nt = self.tok
        if (nt.kind == "op" and nt.text in _CMP) or self._is("keyword", "in", "between", "is"):
            raise self._fail("comparisons cannot be chained; join them with 'and'")
        return node

    def _in_or_between(self, left: Node, negated: bool) -> Node:
        t = self._next()
        if t.text == "between":
            low = self.sum_()
            self._expect("keyword", "and", "'and' in 'between x and y'")
            return Between(t.pos, t.text, left, low, self.sum_(), negated)
        self._expect("op", "[", "'[' to start the list after 'in'")
        items: list[Lit] = [self._list_item()]
        while self._is("op", ","):
            self._next()
            items.append(self._list_item())
        self._expect("op", "]", "',' or ']' in the list")
        return InList(t.pos, t.text, left, tuple(items), negated)

    def _list_item(self) -> Lit:
        node = self.unary()
        if not isinstance(node, Lit):
            raise self.src.error("a list after 'in' holds only literals (numbers, 'text', true/false, "
                                 "date('...'))", node.pos, node.tok)
        return node

    def sum_(self) -> Node:
        left = self.product()
        while self._is("op", "+", "-"):
            t = self._next()
            left = Binary(t.pos, t.text, t.text, left, self.product())
        return left

    def product(self) -> Node:
        left = self.unary()
        while self._is("op", "*", "/"):
            t = self._next()
            left = Binary(t.pos, t.text, t.text, left, self.unary())
        return left

    def unary(self) -> Node:
        if self._is("op", "-"):
            t = self._next()
            self._enter()
            try:
                operand = self.unary()
            finally:
                self.depth -= 1
            if isinstance(operand, Lit) and operand.kind in ("int", "float"):
                value = -operand.value  # type: ignore[operator]
                return Lit(t.pos, "-" + operand.tok, operand.kind, value)
            return Unary(t.pos, t.text, "-", operand)
        node = self.primary()
        t = self.tok
        if self._is("op", "("):
            raise self._fail("only these functions can be called: " + ", ".join(sorted(FUNCTIONS)))
        if self._is("op", "["):
            raise self._fail("indexing ('[') is not allowed; lists come only after 'in'")
        if t.kind in ("number", "string", "name"):
            raise self._fail(f"unexpected {t.show()}: an operator or 'and'/'or' is missing")
        return node

    def primary(self) -> Node:
        t = self.tok
        if t.kind == "number":
            self._next()
            return Lit(t.pos, t.text, "float" if "." in t.text else "int", Decimal(t.text))
        if t.kind == "string":
            self._next()
            return Lit(t.pos, t.raw, "string", t.text)
        if t.kind == "keyword" and t.text in ("true", "false"):
            self._next()
            return Lit(t.pos, t.text, "bool", t.text == "true")
        if t.kind == "keyword" and t.text == "null":
            self._next()
            return Lit(t.pos, t.text, "null", None)
        if t.kind == "name":
            self._next()
            if self._is("op", "("):
                return self._call(t)
            return Name(t.pos, t.text, t.text)
        if self._is("op", "("):
            self._next()
            node = self.expr()
            self._expect("op", ")", "')'")
            return node
        if self._is("op", "["):
            raise self._fail("a list '[...]' is only allowed after 'in'")
        if t.kind == "end":
            raise self._fail("the expression ends too early")
        raise self._fail(f"unexpected {t.show()}")

    def _call(self, name: Token) -> Node:
        func = name.text
        if func == "date":
            self._next()
            arg = self.tok
            if arg.kind != "string":
                raise self._fail("date(...) takes a date in quotes, e.g. date('2026-01-31')")
            self._next()
            self._expect("op", ")", "')' after the date")
            try:
                value = dt.date.fromisoformat(arg.text)
            except ValueError:
                raise self.src.error(f"{arg.raw} is not a date (write date('2026-01-31'))", arg.pos,
                                     arg.raw) from None
            return Lit(name.pos, f"date({arg.raw})", "date", value)
        if func not in FUNCTIONS:
            raise self.src.error(
                f"unknown function '{func}' (allowed: date, {', '.join(sorted(FUNCTIONS))})", name.pos, func
            )
        self._next()  # "("
        args: list[Node] = []
        if not self._is("op", ")"):
            args.append(self.expr())
            while self._is("op", ","):
                self._next()
                args.append(self.expr())
        self._expect("op", ")", "',' or ')' in the call")
        lo, hi = FUNCTIONS[func]
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = f"{lo}" if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")
            raise self.src.error(f"{func}() takes {want} argument(s), got {len(args)}", name.pos, func)
        return Call(name.pos, func, func, tuple(args))


def parse(text: str | Source) -> Node:
    """Parse an expression into its AST. Raises SegmentError (file, line, column, token)."""
    src = text if isinstance(text, Source) else Source(str(text))
    return _Parser(src).parse()
