"""Reference parsers for one value at a time: the exact rules ingest applies, in plain Python.

Ingest runs the same rules as Ibis expressions over whole columns (``panhuo.contract.columns``);
these functions state the rules readably, serve single values (CLI options, playbooks), and are
the oracle the property-based tests compare the column expressions against.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

__all__ = [
    "MONEY_TEXT",
    "DATE_ISO",
    "DATE_COMPACT",
    "MAX_FEN",
    "parse_money",
    "parse_date",
    "fen_to_decimal",
    "decimal_to_fen",
    "format_fen",
]

#: a non-negative RMB amount with at most two decimals, up to 10^15 RMB
MONEY_TEXT = re.compile(r"^\+?([0-9]{1,15})(?:\.([0-9]{0,2})0*)?$")
ZERO_TEXT = re.compile(r"^[+-]?(0+(\.0*)?|\.0+)$")
#: anything that reads as a number at all (to tell "not a number" from "negative" or "too precise")
NUMBER_TEXT = re.compile(r"^[+-]?([0-9]+)(?:\.([0-9]*))?$")
DATE_ISO = re.compile(r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:[ T]00:00(?::00(?:\.0+)?)?)?$")
DATE_COMPACT = re.compile(r"^([0-9]{4})([0-9]{2})([0-9]{2})$")
MAX_FEN = 10**17 - 1
#: the white space ingest trims around a value (the same set as ``columns.clean_text``)
SURROUNDING_BLANKS = re.compile("^[ \t\r\n\u00a0\u3000]+|[ \t\r\n\u00a0\u3000]+$")


def _clean(text: str) -> str:
    return SURROUNDING_BLANKS.sub("", text)


def parse_money(text: str) -> int:
    """RMB text -> integer fen, exactly. Raises ``ValueError`` with the reason.

    >>> parse_money("12.30"), parse_money("7"), parse_money("0.05")
    (1230, 700, 5)
    """
    s = _clean(text)
    if ZERO_TEXT.match(s):
        return 0
    m = MONEY_TEXT.match(s)
    if m:
        frac = (m.group(2) or "") + "00"
        return int(m.group(1)) * 100 + int(frac[:2])
    n = NUMBER_TEXT.match(s)
    if not n:
        raise ValueError("is not a number")
    if s.startswith("-"):
        raise ValueError("is negative")
    if n.group(2) and len(n.group(2).rstrip("0")) > 2:
        raise ValueError("is not a whole number of fen (more than two decimals)")
    raise ValueError("is out of range")


def parse_date(text: str) -> dt.date:
    """``2024-01-31``, ``2024-1-31`` or ``20240131`` -> date. Raises ``ValueError``."""
    s = _clean(text)
    m = DATE_ISO.match(s) or DATE_COMPACT.match(s)
    if not m:
        raise ValueError("is not a date (use 2024-01-31 or 20240131)")
    y, mo, d = (int(g) for g in m.groups())
    if not 1900 <= y <= 2100:
        raise ValueError("is not a date between 1900 and 2100")
    try:
        return dt.date(y, mo, d)
    except ValueError:
        raise ValueError("is not a valid calendar date") from None


def fen_to_decimal(fen: int) -> Decimal:
    """Integer fen -> Decimal RMB with two places, exactly, for any integer (no context rounding)."""
    return Decimal(f"{int(fen)}E-2")


def decimal_to_fen(value: Decimal) -> int:
    """Decimal RMB -> integer fen; refuses more than two decimals."""
    try:
        q = value * 100
    except InvalidOperation as exc:  # pragma: no cover - Decimal arithmetic on NaN
        raise ValueError("is not a number") from exc
    if q != q.to_integral_value():
        raise ValueError("is not a whole number of fen (more than two decimals)")
    return int(q)


def format_fen(fen: int) -> str:
    """Integer fen -> RMB text with exactly two decimals (CSV money): ``-5`` -> ``"-0.05"``."""
    sign = "-" if fen < 0 else ""
    units, cents = divmod(abs(int(fen)), 100)
    return f"{sign}{units}.{cents:02d}"
