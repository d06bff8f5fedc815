"""Errors of playbooks (all :class:`panhuo.errors.PanhuoError`).

::

    PanhuoError
      PlaybookError        # a playbook YAML: a list of PlaybookIssue (file, line, field path, reason)
      LifecycleError       # an illegal transition, an edit of a live or retired playbook, an unknown id

These belong in ``panhuo/errors.py`` with the rest of the hierarchy; they live here until that
file's owner moves them (the names stay the same).
"""

from __future__ import annotations

from dataclasses import dataclass

from panhuo.errors import PanhuoError

__all__ = ["LifecycleError", "PlaybookError", "PlaybookIssue"]


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
