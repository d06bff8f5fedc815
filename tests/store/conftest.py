"""Store fixtures (see tests/store/_pg.py)."""

from __future__ import annotations

from tests.store._pg import pg_database, pg_url, store_url  # noqa: F401  (fixtures)

__all__: list[str] = []
