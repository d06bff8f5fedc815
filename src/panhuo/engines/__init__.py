"""Engines: the Ibis backend every analytic runs on, one setting apart (``engine.name``).

``duckdb`` (default, embedded) or ``spark`` (PySpark local, a cluster master URL, or Spark Connect).
Expressions never branch on the engine; this package only opens connections.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from panhuo.config import EngineSettings

__all__ = ["connect"]


def connect(settings: EngineSettings, tmp_dir: Path) -> BaseBackend:
    """Open the configured engine. ``tmp_dir`` is where it may spill to disk."""
    if settings.name == "duckdb":
        from panhuo.engines.duckdb import connect as _duck

        return _duck(settings.duckdb, tmp_dir)
    from panhuo.engines.spark import connect as _spark

    return _spark(settings.spark, tmp_dir)
