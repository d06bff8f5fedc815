"""The operational store's errors, re-exported from the one hierarchy in :mod:`panhuo.errors`."""

from __future__ import annotations

from panhuo.errors import AccessDenied, StoreError

__all__ = ["AccessDenied", "StoreError"]
