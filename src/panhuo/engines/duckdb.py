"""DuckDB connection for Ibis: embedded, in memory, spilling to the workspace's tmp folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import ibis

if TYPE_CHECKING:
    from ibis.backends.duckdb import Backend

    from panhuo.config import DuckDBSettings

__all__ = ["connect"]


def connect(settings: DuckDBSettings, tmp_dir: Path) -> Backend:
    temp = Path(settings.temp_directory) if settings.temp_directory else tmp_dir / "duckdb"
    temp.mkdir(parents=True, exist_ok=True)
    config: dict[str, object] = {
        "memory_limit": settings.memory_limit,
        "temp_directory": str(temp),
        # Analytics never rely on output order (exports sort); keeping order makes DuckDB buffer results
        # and ran 10M-customer tags out of memory. CSV reading turns it on for the one statement that
        # numbers rows (panhuo.contract.readers).
        "preserve_insertion_order": False,
    }
    if settings.threads:
        config["threads"] = settings.threads
    return ibis.duckdb.connect(":memory:", **config)
