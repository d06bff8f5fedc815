"""Export the stored status to Parquet or CSV with money in RMB, exactly (see :mod:`panhuo.warehouse.export`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from panhuo.contract.parse import fen_to_decimal
from panhuo.contract.parse import format_fen as fen_text
from panhuo.status.history import load_status
from panhuo.warehouse.export import MONEY_TYPE, check_export_path, fen_array_to_decimal, write_export

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace

__all__ = [
    "MONEY_TYPE",
    "EXPORT_SCHEMA",
    "fen_to_decimal",
    "fen_text",
    "fen_array_to_decimal",
    "export_status",
]

_MONEY = ("cash", "securities_value", "product_value", "total_assets")

EXPORT_SCHEMA = pa.schema(
    [("customer_id", pa.string()), ("status", pa.string())]
    + [(m, MONEY_TYPE) for m in _MONEY]
    + [("last_trade_date", pa.date32()), ("status_since", pa.date32())]
)


def export_status(ws: Workspace, con: BaseBackend, out: Path, as_of: dt.date | None = None) -> int:
    """Write the stored status (at ``as_of``, default latest) to ``out`` (.parquet or .csv); returns rows."""
    check_export_path(out)
    return write_export(load_status(ws, con, as_of).order_by("customer_id"), Path(out), EXPORT_SCHEMA)
