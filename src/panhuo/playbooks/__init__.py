"""Playbooks: the five-element YAML (schema, loader, rules), the lifecycle, and their store repository."""

from __future__ import annotations

from panhuo.playbooks.errors import LifecycleError, PlaybookError, PlaybookIssue
from panhuo.playbooks.lifecycle import ACTION_ROLES, STATES, TRANSITIONS, legal_transitions, next_state
from panhuo.playbooks.loader import LoadedPlaybook, content_hash, load_playbook, validate_playbook
from panhuo.playbooks.rules import DEFAULT_QUIET_HOURS, TRADING_SESSIONS, targets_dormant
from panhuo.playbooks.schema import PlaybookSpec

__all__ = [
    "ACTION_ROLES",
    "DEFAULT_QUIET_HOURS",
    "STATES",
    "TRADING_SESSIONS",
    "TRANSITIONS",
    "LifecycleError",
    "LoadedPlaybook",
    "PlaybookError",
    "PlaybookIssue",
    "PlaybookSpec",
    "content_hash",
    "legal_transitions",
    "load_playbook",
    "next_state",
    "targets_dormant",
    "validate_playbook",
]
