"""Status history: dated snapshots, the compact transition log, ``status_since``, and backfill.

Layout under ``<workspace>/warehouse/status``::

    manifest.json                        # the commit point (replaced atomically)
    snapshots/<as_of>-<token>.parquet    # full status per customer at as_of (newest N kept)
    events/<yyyy-mm>-<token>.parquet     # the transition log, one file per month

The *event log* is the source of truth and is kept forever; it is compact because it holds only
changes: ``(customer_id, from_status, to_status, date)`` whenever a customer's status differs from
the previous computed date. ``from_status`` null means the customer was first counted that day
(opened), ``to_status`` null that the customer is no longer counted. On the earliest computed date
(the *baseline*) every customer enters with ``from_status`` null; those rows are not transitions
and :func:`transitions` leaves them out. ``status_since`` is the date of the customer's last event
on or before the as-of date (the baseline when nothing changed since).

Full snapshots (all money columns) are kept for the newest ``status.keep_snapshots`` computed
dates; older ones are deleted, their per-status counts stay in the manifest (the trend).

Computing a date ``d`` between computed dates ``prev < d < next`` (or recomputing ``d``) replaces
the events on ``d`` (diff against ``prev``) and on ``next`` (diff of ``next`` against ``d``); every
other day is unchanged, so the log stays consistent whatever order dates are computed in, and a
recompute is idempotent. Every file is new (a fresh token); the manifest is replaced atomically
and only then are unreferenced files removed, so a killed run leaves the previous state in force.
One writer at a time per workspace.

The first computation in a workspace backfills the month-end balance dates of the previous
12 months first (oldest first), so ``status_since`` and transitions are meaningful from day one.
Backfilled days use today's ``dormant_flag`` (the counter exports no history of it).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from panhuo._io import atomic_path, atomic_write_text
from panhuo.errors import WarehouseError
from panhuo.status.rules import STATUSES, status_expr
from panhuo.warehouse import Warehouse

if TYPE_CHECKING:
    from collections.abc import Callable

    import ibis.expr.types as ir
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace

__all__ = [
    "SNAPSHOT_SCHEMA",
    "EVENT_SCHEMA",
    "BACKFILL_MONTHS",
    "StatusResult",
    "StatusStore",
    "compute_status",
    "load_status",
    "transitions",
    "backfill_dates",
]

BACKFILL_MONTHS = 12

SNAPSHOT_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("status", pa.string()),
        ("cash_fen", pa.int64()),
        ("securities_value_fen", pa.int64()),
        ("product_value_fen", pa.int64()),
        ("total_assets_fen", pa.int64()),
        ("last_trade_date", pa.date32()),
    ]
)
EVENT_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("from_status", pa.string()),
        ("to_status", pa.string()),
        ("date", pa.date32()),
    ]
)


@dataclass
class StatusResult:
    """What one computation wrote: the snapshot, counts per status and the transitions of the day."""

    as_of: dt.date
    customers: int
    counts: dict[str, int]
    transitions: int
    snapshot: Path
    table: ir.Table = field(repr=False)  # load_status(as_of): the snapshot with status_since
    backfilled: list[dt.date] = field(default_factory=list)


def _iso(day: dt.date) -> str:
    return day.isoformat()


class StatusStore:
    """The files of the status history of one warehouse (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def of(cls, ws: Workspace) -> StatusStore:
        return cls(ws.warehouse_dir / "status")

    # -- manifest -----------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def manifest(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"version": 1, "dates": {}, "events": {}}
        except json.JSONDecodeError as exc:
            raise WarehouseError(f"{self.manifest_path}: damaged status manifest: {exc}") from exc
        return data

    def dates(self) -> list[dt.date]:
        return sorted(dt.date.fromisoformat(d) for d in self.manifest()["dates"])

    def _commit(self, manifest: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.manifest_path, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        self._collect_garbage(manifest)

    def _collect_garbage(self, manifest: dict[str, Any]) -> None:
        keep = {v["snapshot"] for v in manifest["dates"].values() if v.get("snapshot")}
        keep |= set(manifest["events"].values())
        for sub in ("snapshots", "events"):
            folder = self.root / sub
            if folder.is_dir():
                for p in folder.iterdir():
                    if f"{sub}/{p.name}" not in keep:
                        p.unlink(missing_ok=True)

    def new_file(self, sub: str, stem: str) -> str:
        (self.root / sub).mkdir(parents=True, exist_ok=True)
        return f"{sub}/{stem}-{secrets.token_hex(4)}.parquet"

    # -- reading --------------------------------------------------------------------
    def read(self, con: BaseBackend, rel: str) -> ir.Table:
        name = "panhuo_status_" + re.sub(r"\W", "_", Path(rel).stem)
        return con.read_parquet(str(self.root / rel), table_name=name)

    def events(self, con: BaseBackend, until: dt.date | None = None, manifest: dict[str, Any] | None = None) -> ir.Table:
        """The event log (every month up to ``until``'s month) as one Ibis table."""
        manifest = manifest or self.manifest()
        months = sorted(m for m in manifest["events"] if until is None or m <= until.strftime("%Y-%m"))
        if not months:
            return ibis.memtable(EVENT_SCHEMA.empty_table())
        parts = [self.read(con, manifest["events"][m]) for m in months]
        t = parts[0] if len(parts) == 1 else ibis.union(*parts)
        return t.select(
            "customer_id", "from_status", "to_status", date=t.date.cast("date")
        )

    def state_at(self, con: BaseBackend, day: dt.date, manifest: dict[str, Any]) -> ir.Table:
        """customer_id, status at a computed date: its snapshot, or rebuilt from the event log."""
        snap = manifest["dates"][_iso(day)].get("snapshot")
        if snap:
            t = self.read(con, snap)
            return t.select("customer_id", "status")
        ev = self.events(con, until=day, manifest=manifest)
        ev = ev.filter(ev.date <= ibis.literal(day, type="date"))
        last = ev.group_by(ev.customer_id.name("lid")).agg(last=ev.date.max())
        j = ev.join(last, [ev.customer_id == last.lid, ev.date == last.last])
        j = j.filter(j.to_status.notnull())
        return j.select(customer_id=j.customer_id, status=j.to_status)


# -- writing ------------------------------------------------------------------------
def _write_expr(expr: ir.Table, schema: pa.Schema, path: Path) -> int:
    """Stream ``expr`` into one Parquet file at ``path`` (atomically); returns the row count."""
    rows = 0
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, schema) as writer:
            for batch in expr.select(*schema.names).to_pyarrow_batches():
                table = pa.Table.from_batches([batch]).cast(schema)
                rows += table.num_rows
                writer.write_table(table)
    return rows


def _to_events(expr: ir.Table) -> pa.Table:
    return expr.select(*EVENT_SCHEMA.names).to_pyarrow().cast(EVENT_SCHEMA)


def _diff(before: ir.Table | None, after: ir.Table | None, day: dt.date) -> ir.Table | None:
    """Events on ``day``: customers whose status in ``after`` differs from ``before``."""
    lit = ibis.literal(day, type="date")
    if before is None and after is None:
        return None
    if before is None:
        assert after is not None
        return after.select(
            "customer_id", from_status=ibis.null("string"), to_status=after.status.cast("string"), date=lit
        )
    if after is None:
        return before.select(
            "customer_id", from_status=before.status.cast("string"), to_status=ibis.null("string"), date=lit
        )
    a = before.select(aid=before.customer_id, astat=before.status)
    b = after.select(bid=after.customer_id, bstat=after.status)
    j = a.outer_join(b, a.aid == b.bid)
    out = j.select(customer_id=ibis.coalesce(j.aid, j.bid), from_status=j.astat, to_status=j.bstat, date=lit)
    return out.filter(out.from_status.fill_null("") != out.to_status.fill_null(""))


def _rewrite_months(store: StatusStore, manifest: dict[str, Any], replaced: set[dt.date], new: pa.Table) -> None:
    """Replace the events on ``replaced`` days by ``new`` in the month files concerned."""
    months = {d.strftime("%Y-%m") for d in replaced}
    drop = pa.array(sorted(replaced), type=pa.date32())
    for month in sorted(months):
        parts = []
        if month in manifest["events"]:
            old = pq.read_table(store.root / manifest["events"][month]).cast(EVENT_SCHEMA)
            parts.append(old.filter(pc.invert(pc.is_in(old["date"], value_set=drop))))
        in_month = pc.equal(pc.strftime(new["date"], format="%Y-%m"), month) if new.num_rows else None
        if in_month is not None:
            parts.append(new.filter(in_month))
        table = pa.concat_tables(parts) if parts else EVENT_SCHEMA.empty_table()
        if table.num_rows == 0:
            manifest["events"].pop(month, None)
            continue
        table = table.sort_by([("date", "ascending"), ("customer_id", "ascending")])
        rel = store.new_file("events", month)
        with atomic_path(store.root / rel) as tmp:
            pq.write_table(table, tmp)
        manifest["events"][month] = rel


def _record(con: BaseBackend, ws: Workspace, store: StatusStore, day: dt.date, expr: ir.Table) -> tuple[int, int]:
    """Store the status ``expr`` computed for ``day``; returns (customers, events on day)."""
    manifest = store.manifest()
    dates = sorted(dt.date.fromisoformat(d) for d in manifest["dates"])
    prev = max((d for d in dates if d < day), default=None)
    nxt = min((d for d in dates if d > day), default=None)

    rel = store.new_file("snapshots", _iso(day))
    customers = _write_expr(expr, SNAPSHOT_SCHEMA, store.root / rel)
    snap = store.read(con, rel).select("customer_id", "status")

    before = store.state_at(con, prev, manifest) if prev else None
    ev_day = _diff(before, snap, day)
    new_events = [_to_events(ev_day)] if ev_day is not None else []
    replaced = {day}
    if nxt is not None:
        after = store.state_at(con, nxt, manifest)
        ev_next = _diff(snap, after, nxt)
        assert ev_next is not None
        next_events = _to_events(ev_next)
        new_events.append(next_events)
        replaced.add(nxt)
    events = pa.concat_tables(new_events) if new_events else EVENT_SCHEMA.empty_table()

    counts_t = snap.group_by("status").agg(n=snap.count()).to_pyarrow().to_pylist()
    counts = {s: 0 for s in STATUSES} | {r["status"]: int(r["n"]) for r in counts_t}

    _rewrite_months(store, manifest, replaced, events)
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    n_day = int(pc.sum(pc.equal(events["date"], pa.scalar(day, pa.date32()))).as_py() or 0)
    manifest["dates"][_iso(day)] = {
        "snapshot": rel,
        "customers": customers,
        "counts": counts,
        "events": n_day,
        "load_id": wh.current_id,
        "computed_at": dt.datetime.now().isoformat(timespec="seconds"),
    }
    if nxt is not None:
        manifest["dates"][_iso(nxt)]["events"] = next_events.num_rows
    keep = ws.settings.status.keep_snapshots
    for old in sorted(manifest["dates"], reverse=True)[keep:]:
        if old != _iso(day):  # the day just computed stays until the next computation
            manifest["dates"][old]["snapshot"] = None
    store._commit(manifest)
    return customers, n_day


def backfill_dates(balances: ir.Table, as_of: dt.date, months: int = BACKFILL_MONTHS) -> list[dt.date]:
    """The last balance snapshot date of each of the ``months`` calendar months before ``as_of``'s month."""
    first = dt.date(as_of.year, as_of.month, 1)
    y, m = divmod(first.year * 12 + first.month - 1 - months, 12)
    start = dt.date(y, m + 1, 1)
    b = balances.filter(
        (balances.as_of >= ibis.literal(start, type="date")) & (balances.as_of < ibis.literal(first, type="date"))
    )
    per = b.group_by(y=b.as_of.year(), m=b.as_of.month()).agg(last=b.as_of.max())
    rows = per.select(per.last.cast("date").name("last")).to_pyarrow().column("last").to_pylist()
    return sorted(rows)


def compute_status(
    ws: Workspace,
    con: BaseBackend,
    as_of: dt.date,
    backfill: bool = True,
    progress: Callable[[dt.date, int, int], None] | None = None,
) -> StatusResult:
    """Compute and store the status of every customer at ``as_of`` (see the module docstring).

    Parameters
    ----------
    ws
        The workspace (rules from ``ws.settings.status``; data from the load in force).
    con
        The Ibis backend to run on.
    as_of
        The date to compute; recomputing a date replaces it, an earlier date is slotted in.
    backfill
        On the first computation in this workspace, compute the previous 12 month-ends first.
    progress
        Called as ``progress(date, done, total)`` after each date is stored.

    Returns
    -------
    StatusResult

    Raises
    ------
    WarehouseError
        Nothing is loaded yet.
    """
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    customers = wh.table(con, "customers")
    balances = wh.table(con, "balances")
    trades = wh.table(con, "trades")
    store = StatusStore.of(ws)
    rules = ws.settings.status
    done: list[dt.date] = []
    todo = backfill_dates(balances, as_of) if backfill and not store.dates() else []
    note = progress or (lambda _d, _i, _n: None)
    for day in todo:
        _record(con, ws, store, day, status_expr(customers, balances, trades, day, rules))
        done.append(day)
        note(day, len(done), len(todo) + 1)
    n, _ = _record(con, ws, store, as_of, status_expr(customers, balances, trades, as_of, rules))
    note(as_of, len(todo) + 1, len(todo) + 1)
    entry = store.manifest()["dates"][_iso(as_of)]
    baseline = store.dates()[0]
    return StatusResult(
        as_of=as_of,
        customers=n,
        counts=dict(entry["counts"]),
        transitions=0 if as_of == baseline else int(entry["events"]),
        snapshot=store.root / entry["snapshot"],
        table=load_status(ws, con, as_of),
        backfilled=done,
    )


def load_status(ws: Workspace, con: BaseBackend, as_of: dt.date | None = None) -> ir.Table:
    """The latest stored status (on or before ``as_of`` when given), with ``status_since`` and ``as_of``.

    Columns: customer_id, status, cash_fen, securities_value_fen, product_value_fen, total_assets_fen,
    last_trade_date, status_since, as_of.

    Raises
    ------
    WarehouseError
        No status computed (on or before ``as_of``), or that snapshot is past retention.
    """
    store = StatusStore.of(ws)
    manifest = store.manifest()
    dates = sorted(dt.date.fromisoformat(d) for d in manifest["dates"])
    day = max((d for d in dates if as_of is None or d <= as_of), default=None)
    if day is None:
        when = f" on or before {as_of.isoformat()}" if as_of else ""
        raise WarehouseError(f"no account status computed{when}: run `panhuo status --as-of DATE` first")
    rel = manifest["dates"][_iso(day)].get("snapshot")
    if not rel:
        raise WarehouseError(
            f"the status snapshot of {day.isoformat()} is past retention (status.keep_snapshots); "
            f"recompute it with `panhuo status --as-of {day.isoformat()}`"
        )
    snap = store.read(con, rel)
    ev = store.events(con, until=day, manifest=manifest)
    ev = ev.filter(ev.date <= ibis.literal(day, type="date"))
    since = ev.group_by(ev.customer_id.name("sid")).agg(status_since=ev.date.max())
    j = snap.left_join(since, snap.customer_id == since.sid)
    return j.select(
        *[j[c] for c in SNAPSHOT_SCHEMA.names],
        status_since=j.status_since.cast("date"),
        as_of=ibis.literal(day, type="date"),
    )


def transitions(
    ws: Workspace, con: BaseBackend, since: dt.date | None = None, until: dt.date | None = None
) -> ir.Table:
    """Status changes ``(customer_id, from_status, to_status, date)`` with ``since <= date <= until``.

    ``from_status`` null: first counted (a new account); ``to_status`` null: no longer counted.
    Entries on the baseline (the earliest computed date) are not transitions and are left out.
    """
    store = StatusStore.of(ws)
    manifest = store.manifest()
    ev = store.events(con, until=until, manifest=manifest)
    dates = sorted(manifest["dates"])
    if dates:
        ev = ev.filter(ev.date > ibis.literal(dt.date.fromisoformat(dates[0]), type="date"))
    if since is not None:
        ev = ev.filter(ev.date >= ibis.literal(since, type="date"))
    if until is not None:
        ev = ev.filter(ev.date <= ibis.literal(until, type="date"))
    return ev
