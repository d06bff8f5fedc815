"""Migration scripts, one file per revision, oldest first (``0001_...``)."""

from __future__ import annotations

__all__: list[str] = []
