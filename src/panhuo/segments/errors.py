"""The segment language's errors, re-exported from the one hierarchy in :mod:`panhuo.errors`.

Messages read ``segments/vip.yaml line 4, col 17: unknown tag 'total_asset' (did you mean total_assets?)``.
"""

from __future__ import annotations

from panhuo.errors import Location, SegmentError

__all__ = ["Location", "SegmentError"]
