"""Errors of the operational store and of acting users (all :class:`panhuo.errors.PanhuoError`).

::

    PanhuoError
      StoreError           # the store cannot be opened or migrated, or a record is missing
      AccessDenied         # no acting user, an unknown or inactive user, or a missing role

These belong in ``panhuo/errors.py`` with the rest of the hierarchy; they live here until that
file's owner moves them (the names stay the same).
"""

from __future__ import annotations

from panhuo.errors import PanhuoError

__all__ = ["AccessDenied", "StoreError"]


class StoreError(PanhuoError):
    """The operational store cannot be opened or migrated, or a record it should hold is missing."""


class AccessDenied(PanhuoError):
    """The acting user is missing, unknown, inactive, or lacks the role an action needs."""
