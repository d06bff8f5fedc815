"""Export a stored tag snapshot to Parquet or CSV with money as exact decimals.

Money columns leave as ``<name>`` (without ``_fen``) in ``decimal128(18, 2)`` (Parquet) or text with
two decimals (CSV), through :mod:`panhuo.warehouse.export`'s exact fen conversion (never via float). The file is
written to a temporary sibling and renamed into place.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from panhuo.tags.catalogue import TAGS
from panhuo.tags.store import load_tags
from panhuo.warehouse.export import MONEY_TYPE, check_export_path, write_export

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace

__all__ = ["EXPORT_SCHEMA", "export_tags"]

EXPORT_SCHEMA = pa.schema(
    [("customer_id", pa.string())]
    + [(s.name, MONEY_TYPE if s.kind == "money" else s.arrow_type) for s in TAGS]
    + [("as_of", pa.date32())]
)


def export_tags(ws: Workspace, con: BaseBackend, out: Path, as_of: dt.date | None = None) -> int:
    """Write the stored tags (latest snapshot on or before ``as_of``) to ``out`` (.parquet or .csv); returns rows.

    Raises
    ------
    ConfigError
        ``out`` is neither .parquet nor .csv.
    WarehouseError
        No tags stored on or before ``as_of``.
    """
    check_export_path(out)
    return write_export(load_tags(ws, con, as_of).order_by("customer_id"), Path(out), EXPORT_SCHEMA)
