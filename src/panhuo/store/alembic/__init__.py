"""Alembic migrations of the operational store, shipped inside the package (run by ``store.upgrade``)."""

from __future__ import annotations

__all__: list[str] = []
