"""Content errors: a list of issues, each naming the file (or playbook), line and field or variable.

``ContentError`` is a :class:`panhuo.errors.PanhuoError`, so the CLI prints it and exits with code 2.
Issues reuse :class:`panhuo.errors.PlaybookIssue` (``file line N, field F: reason``).
"""

from __future__ import annotations

from panhuo.errors import PanhuoError, PlaybookIssue

__all__ = ["ContentError", "ContentIssue"]

ContentIssue = PlaybookIssue


class ContentError(PanhuoError):
    """A template cannot be used: forbidden wording, an unknown variable, a sandbox violation, a length rule."""

    def __init__(self, issues: list[ContentIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))
