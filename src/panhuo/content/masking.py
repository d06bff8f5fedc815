"""Personal data in messages and previews, masked (PIPL: minimise what is shown), and money from fen.

- :func:`mask_phone`: ``13812341234`` -> ``138****1234`` (first 3 and last 4 digits at most; a
  number with fewer than 8 digits shows no digit at all);
- :func:`mask_name`: ``张三丰`` -> ``张**`` (first character and one ``*`` per further character);
- :func:`mask_id_number`: all but the first 3 and last 4 characters starred (8 or fewer: all starred);
- :func:`mask_email`: ``zhang.san@example.com`` -> ``z***@example.com``;
- :func:`format_fen`: ``123456`` -> ``1,234.56元``, exact integer arithmetic (no float).
"""

from __future__ import annotations

__all__ = ["format_fen", "mask_email", "mask_id_number", "mask_name", "mask_phone"]


def mask_phone(phone: object) -> str:
    """A phone number with every digit but the first 3 and the last 4 replaced by ``*``.

    Separators and a ``+86``/``86`` prefix are dropped first. Fewer than 8 digits: all stars.
    """
    if phone is None:
        return ""
    digits = "".join(c for c in str(phone) if c.isdigit() and c.isascii())
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if len(digits) < 8:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_name(name: object) -> str:
    """The first character of a name and one ``*`` for every further character (``张三`` -> ``张*``)."""
    if name is None:
        return ""
    text = str(name).strip()
    if not text:
        return ""
    return text[0] + "*" * (len(text) - 1)


def mask_id_number(value: object) -> str:
    """An identity document number with all but its first 3 and last 4 characters starred (short: all starred)."""
    if value is None:
        return ""
    s = str(value).strip()
    if len(s) <= 8:
        return "*" * len(s)
    return s[:3] + "*" * (len(s) - 7) + s[-4:]


def mask_email(value: object) -> str:
    """``zhang.san@example.com`` -> ``z***@example.com``."""
    if value is None:
        return ""
    s = str(value).strip()
    local, at, domain = s.partition("@")
    if not at:
        return mask_name(s)
    return (local[:1] + "***" if local else "") + "@" + domain


def format_fen(fen: object, unit: str = "元") -> str:
    """An amount in fen (int) as RMB with thousands separators and two decimals: ``-5`` -> ``-0.05元``."""
    if fen is None:
        return ""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"money must be an integer number of fen, got {fen!r}")
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan:,}.{cents:02d}{unit}"
