"""The error of the segment language and its YAML files, and where in a source an error sits.

``SegmentError`` is a :class:`~panhuo.errors.ConfigError` (the CLI reports it as a clear message,
exit code 2). Its message reads ``segments/vip.yaml line 4, col 17: unknown tag 'total_asset'
(did you mean total_assets?)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from panhuo.errors import ConfigError

__all__ = ["Location", "SegmentError"]


@dataclass(frozen=True)
class Location:
    """A place in a source: ``file`` (shown as given), 1-based ``line`` and ``col``."""

    file: str = "<expression>"
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file} line {self.line}, col {self.col}"


class SegmentError(ConfigError):
    """A segment, tier or custom-tag definition (or expression) that cannot be used.

    Attributes
    ----------
    reason : str
        What is wrong, without the location.
    location : Location | None
        Where (file, line, column); ``None`` when it concerns no single place.
    token : str | None
        The offending token's text, when there is one.
    """

    def __init__(self, reason: str, location: Location | None = None, token: str | None = None) -> None:
        self.reason = reason
        self.location = location
        self.token = token
        super().__init__(f"{location}: {reason}" if location is not None else reason)
