"""The wording check: marketing text must not promise returns or no loss (DESIGN.md section 7).

:func:`find_forbidden` looks for every phrase of a list (``content.forbidden_phrases`` in
``panhuo.yaml``, default :data:`DEFAULT_FORBIDDEN`) in a text and reports the phrase with its
1-based line and column in the original text.

Normalisation, applied to the text and the phrases alike before matching, so that padding a phrase
does not get it past review:

- Unicode NFKC: full-width letters, digits and the ideographic space become their ASCII forms
  (``ｒｉｓｋ`` -> ``risk``, U+3000 -> space) and compatibility forms fold;
- letters are lower-cased;
- whitespace, zero-width characters (U+200B-U+200D, U+2060, U+FEFF, U+00AD) and separator
  punctuation (``· ・ . , 、 - _ * | / ~ '"`` and their full-width forms) are dropped, so
  ``保 本``, ``保　本``, ``保·本`` and ``保\u200b本`` all match ``保本``.

Traditional characters are not converted; the default list names the common traditional forms
(保證收益, 無風險, 零風險, 穩賺) explicitly.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["DEFAULT_FORBIDDEN", "WordingHit", "find_forbidden", "normalise"]

DEFAULT_FORBIDDEN: tuple[str, ...] = (
    "保本", "保底", "稳赚", "稳赚不赔", "只赚不赔", "保证收益", "保证盈利", "保收益", "承诺收益", "无风险",
    "零风险", "没有风险", "不会亏", "不亏损", "绝不亏", "收益翻倍", "翻倍收益", "稳赢", "包赚", "刚性兑付",
    "刚兑", "保證收益", "無風險", "零風險", "穩賺",
)

_DROP = frozenset(
    " \t\r\n\v\f\u00a0\u200b\u200c\u200d\u2060\ufeff\u00ad"
    "·・.,、-_*|/~'\"`\u2027\u2022\u30fb\u2010\u2011\u2012\u2013\u2014\u2015\u3002\uff61"
)


@functools.lru_cache(maxsize=65536)
def _norm_char(ch: str) -> str:
    out = unicodedata.normalize("NFKC", ch).lower()
    return "".join(c for c in out if c not in _DROP and not c.isspace())


class _Table(dict[int, str]):
    """``str.translate`` table of :func:`_norm_char`, filled on first sight of each character."""

    def __missing__(self, code: int) -> str:
        out = self[code] = _norm_char(chr(code))
        return out


_TABLE = _Table()


def normalise(text: str) -> str:
    """The matching form of ``text`` (see the module docstring)."""
    return text.translate(_TABLE)


@dataclass(frozen=True)
class WordingHit:
    """A forbidden ``phrase`` found at 1-based ``line`` and ``col`` of the text (``start``: its offset);
    ``found`` as written."""

    phrase: str
    line: int
    col: int
    found: str
    start: int = 0

    def __str__(self) -> str:
        shown = f" (written {self.found!r})" if normalise(self.found) != self.found else ""
        return f"forbidden wording {self.phrase!r}{shown} at line {self.line}, col {self.col}"


@functools.lru_cache(maxsize=64)
def _wanted(phrases: tuple[str, ...]) -> Sequence[tuple[str, str]]:
    return [(p, normalise(p)) for p in dict.fromkeys(phrases) if normalise(p)]


def find_forbidden(text: str, phrases: Iterable[str] = DEFAULT_FORBIDDEN) -> list[WordingHit]:
    """Every occurrence of a forbidden phrase in ``text``, in order; overlapping phrases each reported once
    per position (``稳赚不赔`` reports both ``稳赚`` and ``稳赚不赔``)."""
    wanted = _wanted(tuple(phrases))
    quick = text.translate(_TABLE)  # the same normal form, without positions: most texts stop here
    if not any(key in quick for _, key in wanted):
        return []
    norm: list[str] = []
    origin: list[int] = []  # index in text of each normalised character
    for i, ch in enumerate(text):
        for c in _norm_char(ch):
            norm.append(c)
            origin.append(i)
    flat = "".join(norm)
    hits: list[WordingHit] = []
    for phrase, key in wanted:
        start = flat.find(key)
        while start != -1:
            a, b = origin[start], origin[start + len(key) - 1]
            line = text.count("\n", 0, a) + 1
            col = a - (text.rfind("\n", 0, a) + 1) + 1
            hits.append(WordingHit(phrase, line, col, text[a : b + 1], a))
            start = flat.find(key, start + 1)
    hits.sort(key=lambda h: (h.line, h.col, h.phrase))
    return hits
