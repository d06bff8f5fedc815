"""The analytical store: every successful load as typed Parquet files, and the results derived from it.

Layout under ``<workspace>/warehouse``::

    CURRENT                      # the id of the load in force (replaced atomically: the commit point)
    loads/<load_id>/manifest.json  # load id, time, source, row counts, input checksums
    loads/<load_id>/<table>.parquet
    status/...                   # account status snapshots and transitions (panhuo.status)

A load is written into a hidden staging folder, fsynced, renamed into ``loads/`` and only then made
current by replacing ``CURRENT``. A process killed at any point leaves the previous load in force.
Both engines read the same Parquet files, so DuckDB and Spark see identical data.
"""

from __future__ import annotations

from panhuo.warehouse.store import LoadManifest, LoadTransaction, TableRecord, Warehouse

__all__ = ["Warehouse", "LoadManifest", "LoadTransaction", "TableRecord"]
