"""panhuo (盘活): find a brokerage's sleeping and dormant accounts and bring them back to trading.

The pipeline, one package per stage:
``contract`` (ingest) -> ``status`` (account status) -> tags and segments -> playbooks ->
guardrails -> channels -> measurement -> learning. ``calendar`` answers every trading-day
question; ``engines`` connects Ibis to DuckDB or PySpark; ``warehouse`` keeps the loaded data.
"""

from __future__ import annotations

from panhuo.errors import (
    AccessDenied,
    CalendarError,
    ConfigError,
    ContractError,
    ContractIssue,
    LifecycleError,
    NotFittedError,
    PanhuoError,
    PlaybookError,
    SegmentError,
    StoreError,
    WarehouseError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "PanhuoError",
    "ConfigError",
    "ContractError",
    "ContractIssue",
    "CalendarError",
    "WarehouseError",
    "SegmentError",
    "StoreError",
    "AccessDenied",
    "PlaybookError",
    "LifecycleError",
    "NotFittedError",
]
