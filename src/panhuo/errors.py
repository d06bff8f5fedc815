"""The one error hierarchy of panhuo.

::

    PanhuoError
      ConfigError          # panhuo.yaml or a command option: file, field, reason
      ContractError        # input data: a list of ContractIssue (file, row, column, reason)
      CalendarError        # a date outside the years the trading calendar covers
      WarehouseError       # the analytical store: nothing loaded yet, a broken load
      NotFittedError(PanhuoError, ValueError)

Messages say where and what, e.g.
``customers.csv row 1284, column risk_level: "C7" is not one of C1..C5``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "PanhuoError",
    "ConfigError",
    "ContractIssue",
    "ContractError",
    "CalendarError",
    "WarehouseError",
    "NotFittedError",
]


class PanhuoError(Exception):
    """Base of every error panhuo raises on purpose."""


class ConfigError(PanhuoError):
    """Invalid settings or command options."""


@dataclass(frozen=True)
class ContractIssue:
    """One way an input file breaks the data contract.

    ``row`` is the 1-based data row (the header is not counted); ``None`` when the
    issue concerns the whole file or column (a missing column, an unreadable file).
    ``line`` is the physical line in a CSV file where it is known.
    """

    file: str
    row: int | None
    column: str | None
    reason: str
    value: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f" row {self.row}"
            if self.line is not None:
                where += f" (line {self.line})"
        if self.column is not None:
            where += f", column {self.column}"
        if self.value is not None:
            return f"{where}: {self.value!r} {self.reason}"
        return f"{where}: {self.reason}"


class ContractError(PanhuoError):
    """Input data breaks the contract; carries every issue found (up to the limit)."""

    def __init__(self, issues: list[ContractIssue], truncated: bool = False) -> None:
        self.issues = list(issues)
        self.truncated = truncated
        head = "; ".join(str(i) for i in self.issues[:5])
        more = len(self.issues) - 5
        if more > 0 or truncated:
            head += f"; ... ({len(self.issues)}{'+' if truncated else ''} issues in all)"
        super().__init__(head)


class CalendarError(PanhuoError):
    """A trading-day question the calendar cannot answer reliably."""


class WarehouseError(PanhuoError):
    """The analytical store is missing data a command needs, or is damaged."""


class NotFittedError(PanhuoError, ValueError):
    """A model was used before ``fit``."""
