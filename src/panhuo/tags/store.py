"""Compute the tags at an as-of date and keep them as dated snapshots; read them back.

Layout under ``<workspace>/warehouse/tags``::

    <YYYY-MM-DD>.parquet     # customer_id + one column per tag (money as int64 fen), one file per as-of date

Each file is written to a temporary sibling and renamed into place, so a reader sees the previous
snapshot or the new one, never a mix; a killed run leaves nothing behind but a temporary file that
the next run replaces. The file's Parquet metadata records the load id and status date it was
computed from, when, and the catalogue it holds. The newest ``tags.keep_snapshots`` dates are kept.

Tags need the account status of the same date computed from the same load (``panhuo status``):
the lifecycle tags and the current balances come from it, and it is never computed here.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import pyarrow as pa
import pyarrow.parquet as pq

from panhuo._io import atomic_path
from panhuo.calendar import calendar_for
from panhuo.errors import CalendarError, WarehouseError
from panhuo.status.history import StatusStore, load_status
from panhuo.tags.catalogue import TAG_SCHEMA, TAGS, tags_expr
from panhuo.tags.response import contact_rows
from panhuo.tags.spec import TagContext, day_table
from panhuo.warehouse import Warehouse

if TYPE_CHECKING:
    from collections.abc import Callable

    import ibis.expr.types as ir
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace

__all__ = [
    "TagResult",
    "TagSnapshot",
    "compute_tags",
    "customer_ranges",
    "load_tags",
    "tag_context",
    "tag_snapshots",
    "tags_dir",
]

_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.parquet$")
_META = b"panhuo.tags"


@dataclass
class TagSnapshot:
    """One stored tag snapshot and where it came from."""

    as_of: dt.date
    path: Path
    load_id: str | None
    customers: int | None
    computed_at: str | None


@dataclass
class TagResult:
    """What ``compute_tags`` wrote."""

    as_of: dt.date
    customers: int
    load_id: str
    path: Path
    seconds: float
    table: ir.Table = field(repr=False)  # load_tags(as_of)
    pruned: list[dt.date] = field(default_factory=list)


def tags_dir(ws: Workspace) -> Path:
    return ws.warehouse_dir / "tags"


def _status_entry(ws: Workspace, as_of: dt.date, load_id: str) -> dict[str, object]:
    entry = StatusStore.of(ws).manifest()["dates"].get(as_of.isoformat())
    if entry is None:
        raise WarehouseError(
            f"no account status computed for {as_of.isoformat()}: tags need it; "
            f"run `panhuo status --as-of {as_of.isoformat()}` first"
        )
    if entry.get("load_id") and entry["load_id"] != load_id:
        raise WarehouseError(
            f"the account status of {as_of.isoformat()} was computed from load {entry['load_id']}, but load "
            f"{load_id} is in force: run `panhuo status --as-of {as_of.isoformat()}` again first"
        )
    if not entry.get("snapshot"):
        raise WarehouseError(
            f"the status snapshot of {as_of.isoformat()} is past retention (status.keep_snapshots): "
            f"run `panhuo status --as-of {as_of.isoformat()}` again first"
        )
    return entry


def tag_context(
    ws: Workspace, con: BaseBackend, as_of: dt.date, extra_contacts: ir.Table | None = None
) -> TagContext:
    """Everything the tag expressions read at ``as_of`` (checks the status and the calendar first).

    Raises
    ------
    WarehouseError
        Nothing loaded, or no status for ``as_of`` from the load in force.
    CalendarError
        ``as_of`` is in a year the trading calendar does not cover.
    """
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    load_id = wh.manifest().load_id
    _status_entry(ws, as_of, load_id)
    cal = calendar_for(ws)
    if not cal.is_covered_year(as_of.year):
        raise CalendarError(
            f"{as_of.isoformat()} is outside the trading calendar ({cal.first_year}-{cal.last_year}); "
            "add the exchange's closures for that year to the calendar override file"
        )
    days = day_table(cal, as_of)
    try:
        previous = cal.previous_trading_day(as_of)
    except CalendarError:  # as_of on or before the calendar's first trading day
        previous = None
    history = wh.table(con, "contact_history") if wh.has_table("contact_history") else None
    return TagContext(
        as_of=as_of,
        settings=ws.settings,
        customers=wh.table(con, "customers"),
        balances=wh.table(con, "balances"),
        trades=wh.table(con, "trades"),
        app_events=wh.table(con, "app_events"),
        contact_permissions=wh.table(con, "contact_permissions"),
        status=load_status(ws, con, as_of),
        days=ibis.memtable(days),
        sessions_at_as_of=int(days["sessions"][-1].as_py()),
        contacts=contact_rows(history, extra_contacts),
        previous_session=previous,
    )


def _metadata(as_of: dt.date, load_id: str, customers: int) -> dict[bytes, bytes]:
    meta = {
        "as_of": as_of.isoformat(),
        "load_id": load_id,
        "customers": customers,
        "computed_at": dt.datetime.now().isoformat(timespec="seconds"),
        "tags": [s.name for s in TAGS],
    }
    return {_META: json.dumps(meta).encode("utf-8")}


def _prune(ws: Workspace, keep: int, just_written: dt.date) -> list[dt.date]:
    snaps = sorted(_dates(ws), reverse=True)
    gone = [d for d in snaps[keep:] if d != just_written]
    for d in gone:
        (tags_dir(ws) / f"{d.isoformat()}.parquet").unlink(missing_ok=True)
    return sorted(gone)


def compute_tags(
    ws: Workspace,
    con: BaseBackend,
    as_of: dt.date,
    progress: Callable[[str, int, int], None] | None = None,
    *,
    extra_contacts: ir.Table | None = None,
) -> TagResult:
    """Compute every tag of every customer at ``as_of`` and store the dated snapshot.

    Parameters
    ----------
    ws, con
        The workspace (data from the load in force) and the engine to run on.
    as_of
        The date; recomputing it replaces its snapshot.
    progress
        Called as ``progress(stage, done, total)``: ``("inputs", 1, 1)`` once the inputs are checked,
        then ``("tags", rows_written, customers)`` as the snapshot is written.
    extra_contacts
        Contacts to count besides ``contact_history`` (see :func:`panhuo.tags.response.contact_rows`).

    Raises
    ------
    WarehouseError
        Nothing loaded, or no status for ``as_of`` from the load in force (run ``panhuo status``).
    CalendarError
        ``as_of`` is outside the trading calendar.
    """
    t0 = time.perf_counter()
    note = progress or (lambda _s, _d, _n: None)
    ctx = tag_context(ws, con, as_of, extra_contacts)
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    load_id = wh.manifest().load_id
    entry = _status_entry(ws, as_of, load_id)
    total = int(entry.get("customers") or 0)  # type: ignore[call-overload]
    note("inputs", 1, 1)
    ranges = customer_ranges(ctx.customers, total, ws.settings.tags.batch_customers)
    path = tags_dir(ws) / f"{as_of.isoformat()}.parquet"
    rows = 0
    note("tags", 0, total)
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, TAG_SCHEMA) as writer:
        for low, high in ranges:
            expr = tags_expr(ctx.restrict(low, high) if len(ranges) > 1 else ctx)
            for batch in expr.to_pyarrow_batches():
                table = pa.Table.from_batches([batch]).select(TAG_SCHEMA.names).cast(TAG_SCHEMA)
                rows += table.num_rows
                writer.write_table(table)
                note("tags", rows, max(total, rows))
        writer.add_key_value_metadata(_metadata(as_of, load_id, rows))
    pruned = _prune(ws, ws.settings.tags.keep_snapshots, as_of)
    return TagResult(
        as_of=as_of,
        customers=rows,
        load_id=load_id,
        path=path,
        seconds=round(time.perf_counter() - t0, 3),
        table=load_tags(ws, con, as_of),
        pruned=pruned,
    )


def customer_ranges(customers: ir.Table, total: int, size: int) -> list[tuple[str | None, str | None]]:
    """Consecutive ``[low, high)`` customer-id ranges of about ``size`` customers each (None: open end).

    One range ``(None, None)`` when ``total <= size``. The cut points are every ``size``-th id in
    sorted order, found by the engine (one sort of the ids), so the ranges cover every id exactly once.
    Each range's tag query reads only its customers' rows, which bounds the engine's memory; on input
    sorted or clustered by customer (as exports usually are) the range filter also skips row groups.
    """
    if total <= size:
        return [(None, None)]
    parts = -(-total // size)
    step = -(-total // parts)
    ids = customers.select(cid=customers.customer_id).distinct()
    ranked = ids.mutate(rn=ibis.row_number().over(order_by=ids.cid))
    cuts = ranked.filter((ranked.rn > 0) & (ranked.rn % step == 0)).order_by("cid").cid
    points: list[str] = [v for v in cuts.to_pyarrow().to_pylist() if v is not None]
    bounds: list[str | None] = [None, *points, None]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _dates(ws: Workspace) -> list[dt.date]:
    folder = tags_dir(ws)
    if not folder.is_dir():
        return []
    return sorted(dt.date.fromisoformat(m.group(1)) for p in folder.iterdir() if (m := _FILE.match(p.name)))


def tag_snapshots(ws: Workspace) -> list[TagSnapshot]:
    """Every stored tag snapshot, oldest first, with the load it was computed from."""
    out = []
    for day in _dates(ws):
        path = tags_dir(ws) / f"{day.isoformat()}.parquet"
        meta = pq.read_metadata(path).metadata or {}
        info = json.loads(meta.get(_META, b"{}"))
        out.append(TagSnapshot(day, path, info.get("load_id"), info.get("customers"), info.get("computed_at")))
    return out


def load_tags(ws: Workspace, con: BaseBackend, as_of: dt.date | None = None) -> ir.Table:
    """The latest stored tag snapshot on or before ``as_of`` (default: the latest), plus its ``as_of``.

    Columns: customer_id, one per tag (money tags stay ``<name>_fen``, int64), as_of (date).

    Raises
    ------
    WarehouseError
        No tags stored on or before ``as_of``.
    """
    day = max((d for d in _dates(ws) if as_of is None or d <= as_of), default=None)
    if day is None:
        when = f" on or before {as_of.isoformat()}" if as_of else ""
        raise WarehouseError(f"no tags computed{when}: run `panhuo tags --as-of DATE` first")
    path = tags_dir(ws) / f"{day.isoformat()}.parquet"
    # the name changes whenever the file does, so an engine never serves a replaced file's cache
    name = f"panhuo_tags_{day.strftime('%Y%m%d')}_{path.stat().st_mtime_ns}"
    t = con.read_parquet(str(path), table_name=name)
    return t.mutate(as_of=ibis.literal(day, type="date"))
