"""Playbook errors, re-exported from the one hierarchy in :mod:`panhuo.errors`."""

from __future__ import annotations

from panhuo.errors import LifecycleError, PlaybookError, PlaybookIssue

__all__ = ["LifecycleError", "PlaybookError", "PlaybookIssue"]
