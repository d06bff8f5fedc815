"""The playbook lifecycle: states, the only legal transitions, and who may make them.

::

    draft --submit--> in_review --approve--> approved --activate--> live --pause--> paused
      ^                  |                                           ^               |
      +-----reject-------+                                           +---activate----+
    retire: draft | approved | live | paused --> retired (final)
    edit (a new version): draft | in_review | approved | paused --> draft   (never live or retired)

Approval is four-eyes: a user with the compliance role who is not the author of the version under
review. Roles per action are in :data:`ACTION_ROLES`. This module is pure; the store side (rows,
audit log) is :mod:`panhuo.playbooks.repository`.
"""

from __future__ import annotations

from panhuo.playbooks.errors import LifecycleError

__all__ = [
    "ACTION_ROLES",
    "EDITABLE_STATES",
    "FINAL_STATES",
    "STATES",
    "TRANSITIONS",
    "check_editable",
    "legal_transitions",
    "next_state",
]

STATES: tuple[str, ...] = ("draft", "in_review", "approved", "live", "paused", "retired")
FINAL_STATES: frozenset[str] = frozenset({"retired"})
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "submit": (frozenset({"draft"}), "in_review"),
    "approve": (frozenset({"in_review"}), "approved"),
    "reject": (frozenset({"in_review"}), "draft"),
    "activate": (frozenset({"approved", "paused"}), "live"),
    "pause": (frozenset({"live"}), "paused"),
    "retire": (frozenset({"draft", "approved", "live", "paused"}), "retired"),
}
EDITABLE_STATES: frozenset[str] = frozenset({"draft", "in_review", "approved", "paused"})
ACTION_ROLES: dict[str, tuple[str, ...]] = {
    "edit": ("operator", "admin"),
    "submit": ("operator", "admin"),
    "approve": ("compliance",),
    "reject": ("compliance",),
    "activate": ("operator", "admin"),
    "pause": ("operator", "compliance", "admin"),
    "retire": ("operator", "compliance", "admin"),
}


def next_state(state: str, action: str) -> str:
    """The state after ``action``; LifecycleError when the action is unknown or not allowed from ``state``."""
    if action not in TRANSITIONS:
        raise LifecycleError(f"unknown lifecycle action {action!r}: one of {', '.join(TRANSITIONS)}")
    sources, target = TRANSITIONS[action]
    if state not in sources:
        allowed = " or ".join(sorted(sources))
        raise LifecycleError(f"cannot {action} a playbook that is {state} ({action} needs {allowed})")
    return target


def check_editable(state: str) -> None:
    """LifecycleError unless a new version may be added in ``state``."""
    if state == "live":
        raise LifecycleError("cannot edit a live playbook: pause it first (the live version keeps its approval)")
    if state not in EDITABLE_STATES:
        raise LifecycleError(f"cannot edit a playbook that is {state}")


def legal_transitions() -> set[tuple[str, str, str]]:
    """Every legal ``(from, action, to)``."""
    return {(s, a, t) for a, (sources, t) in TRANSITIONS.items() for s in sources}
