"""Benefit catalogue errors: every issue names the file, line and field (``BenefitError``)."""

from __future__ import annotations

from panhuo.errors import ConfigError, PlaybookIssue

__all__ = ["BenefitError", "BenefitIssue"]

BenefitIssue = PlaybookIssue


class BenefitError(ConfigError):
    """The catalogue, or a playbook's use of it, is invalid; carries every issue found."""

    def __init__(self, issues: list[BenefitIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))
