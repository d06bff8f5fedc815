"""SMS rules: the brokerage signature 【...】, the unsubscribe text 回T退订, length and segments.

Length is counted in characters (Unicode code points; a Chinese character, an ASCII letter, a digit
and a punctuation mark each count 1), *including* the signature and the unsubscribe text, as the
carriers bill it. A message of up to ``single`` (70) characters is one segment; a longer one is sent
concatenated, ``multi`` (67) characters per segment.

:func:`finalise_sms` puts the signature at the front and the unsubscribe text at the end when the
template left them out, and refuses text that carries another 【signature】.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SmsLength", "SmsRules", "finalise_sms", "sms_length", "sms_segments"]

_SIGNATURE = re.compile(r"【([^【】]*)】")


@dataclass(frozen=True)
class SmsRules:
    """The brokerage's SMS settings (from ``content`` in ``panhuo.yaml``)."""

    signature: str = "盘活证券"
    unsubscribe: str = "回T退订"
    single: int = 70
    multi: int = 67
    max_segments: int = 3

    @property
    def bracketed(self) -> str:
        return f"【{self.signature}】"


@dataclass(frozen=True)
class SmsLength:
    """Characters and segments of a final SMS text, and whether it is within ``max_segments``."""

    chars: int
    segments: int
    max_segments: int

    @property
    def ok(self) -> bool:
        return self.segments <= self.max_segments


def sms_length(text: str) -> int:
    """Characters as billed: every code point counts 1 (line breaks too)."""
    return len(text)


def sms_segments(chars: int, single: int = 70, multi: int = 67) -> int:
    """Segments for ``chars`` characters: 0 for an empty text, 1 up to ``single``, else ceil(chars / multi)."""
    if chars < 0 or single < 1 or multi < 1:
        raise ValueError("characters and segment sizes must be positive")
    if chars == 0:
        return 0
    if chars <= single:
        return 1
    return -(-chars // multi)


def finalise_sms(text: str, rules: SmsRules) -> str:
    """The text as sent: signature in front and 回T退订 at the end unless already there.

    Raises
    ------
    ValueError
        The text carries a signature other than the brokerage's.
    """
    body = text.strip()
    for m in _SIGNATURE.finditer(body):
        if m.group(1).strip() != rules.signature:
            raise ValueError(f"the SMS carries the signature {m.group(0)!r}, not the brokerage's {rules.bracketed!r}")
    if rules.bracketed not in body:
        body = rules.bracketed + body
    if rules.unsubscribe not in body:
        body = body.rstrip() + rules.unsubscribe
    return body


def measure(text: str, rules: SmsRules) -> SmsLength:
    """Length and segments of a final SMS text under ``rules``."""
    n = sms_length(text)
    return SmsLength(n, sms_segments(n, rules.single, rules.multi), rules.max_segments)


__all__ += ["measure"]
