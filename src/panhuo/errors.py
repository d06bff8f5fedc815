"""The one error hierarchy of panhuo.

::

    PanhuoError
      ConfigError          # panhuo.yaml or a command option: file, field, reason
        SegmentError       # a segment, tier or custom tag: file, line, column, token
      ContractError        # input data: a list of ContractIssue (file, row, column, reason)
      CalendarError        # a date outside the years the trading calendar covers
      WarehouseError       # the analytical store: nothing loaded yet, a broken load
      StoreError           # the operational store cannot be opened or migrated, a record is missing
      AccessDenied         # no acting user, an unknown or inactive user, or a missing role
      PlaybookError        # a playbook YAML: a list of PlaybookIssue (file, line, field path, reason)
      LifecycleError       # an illegal playbook transition or edit, an unknown playbook
      LeakageError         # a model feature depends on data after its anchor date
      DeliveryError        # delivery cannot start or go on: a missing credential variable, a lease held
      NotFittedError(PanhuoError, ValueError)

Messages say where and what, e.g.
``customers.csv row 1284, column risk_level: "C7" is not one of C1..C5``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "PanhuoError",
    "ConfigError",
    "Location",
    "SegmentError",
    "ContractIssue",
    "ContractError",
    "CalendarError",
    "WarehouseError",
    "StoreError",
    "AccessDenied",
    "PlaybookIssue",
    "PlaybookError",
    "LifecycleError",
    "LeakageError",
    "DeliveryError",
    "NotFittedError",
]


class PanhuoError(Exception):
    """Base of every error panhuo raises on purpose."""


class ConfigError(PanhuoError):
    """Invalid settings or command options."""


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


class StoreError(PanhuoError):
    """The operational store cannot be opened or migrated, or a record it should hold is missing."""


class AccessDenied(PanhuoError):
    """The acting user is missing, unknown, inactive, or lacks the role an action needs."""


@dataclass(frozen=True)
class PlaybookIssue:
    """One problem in a playbook file: ``file line N, field a.b[0].c: reason``."""

    file: str
    line: int | None
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f" line {self.line}"
        if self.field:
            where += f", field {self.field}"
        return f"{where}: {self.reason}"


class PlaybookError(PanhuoError):
    """A playbook is invalid; carries every issue found."""

    def __init__(self, issues: list[PlaybookIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class LifecycleError(PanhuoError):
    """A lifecycle transition or edit that the playbook's state does not allow, or an unknown playbook."""


class LeakageError(PanhuoError):
    """A feature depends on data after its anchor date (a bug in a tag expression): nothing is trained."""


class DeliveryError(PanhuoError):
    """Delivery cannot start or go on: a credential variable is not set, another worker holds the lease."""


class NotFittedError(PanhuoError, ValueError):
    """A model was used before ``fit``."""
