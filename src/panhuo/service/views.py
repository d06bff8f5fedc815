"""Read-side queries of the service: what the REST API answers, and what the web console can call too.

Every function here only reads (the warehouse's Parquet files, the operational store in the caller's
session) and returns plain dicts and lists ready for JSON or a template; the routers in
:mod:`panhuo.service.api` wrap them with roles and response models, and the console
(:mod:`panhuo.service.console`) may call them directly with the same session dependency
(:data:`panhuo.service.deps.ReadDb`). Personal data leaves this module masked unless the caller passes
``unmask=True`` (the API does so only for a compliance user with a recorded reason):

- phone numbers ``138****1234`` (:func:`panhuo.content.masking.mask_phone`);
- names ``张**`` (:func:`panhuo.content.masking.mask_name`);
- identity document numbers ``110***********1234`` (first 3 and last 4 characters);
- e-mail addresses ``z***@example.com``.

A customer's data: the profile row of the load in force (``customers``), the latest tag snapshot on or
before a date, the status history (the compact event log of :mod:`panhuo.status.history`), what was
queued and sent (``outbox``, ``contact_log``), what came back (``delivery_events``, ``opt_outs``), the
benefits issued (``benefit_ledger``) and advisor call tasks. One customer's rows are read from Parquet
with a filter on ``customer_id`` (row-group statistics skip the rest), so a lookup stays fast on a
million-customer warehouse. Segment counts and tiers run on the configured engine (a connection per
computation) and are cached until the tag snapshot, the scores or the segment/tier definitions change.
"""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from panhuo.content.masking import mask_email, mask_id_number, mask_name, mask_phone

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace

__all__ = [
    "EMAIL_COLUMNS",
    "ID_COLUMNS",
    "NAME_COLUMNS",
    "PHONE_COLUMNS",
    "audit_entries",
    "benefits",
    "call_tasks",
    "catalogue",
    "customer_advisor",
    "customer_view",
    "engine",
    "library",
    "mask_profile",
    "outbox_counts",
    "segment_detail",
    "segments",
    "tiers",
    "warm",
]

PHONE_COLUMNS = frozenset({"phone", "mobile", "phone_number", "mobile_phone", "tel"})
NAME_COLUMNS = frozenset({"name", "customer_name", "full_name", "real_name", "name_zh"})
ID_COLUMNS = frozenset({"id_number", "id_no", "id_card", "id_card_no", "cert_no", "certificate_no", "passport_no",
                        "identity_number"})
EMAIL_COLUMNS = frozenset({"email", "e_mail", "mail"})
CONTACT_LIMIT = 200  # newest rows of each list in a customer view


# ---------------------------------------------------------------- masking


def _masker(column: str) -> Callable[[object], str] | None:
    c = column.lower()
    if c in PHONE_COLUMNS:
        return mask_phone
    if c in NAME_COLUMNS:
        return mask_name
    if c in ID_COLUMNS:
        return mask_id_number
    if c in EMAIL_COLUMNS:
        return mask_email
    return None


def mask_profile(row: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``row`` with every personal field masked, and the names of the fields that were masked."""
    out, masked = {}, []
    for k, v in row.items():
        m = _masker(k)
        if m is not None and v is not None:
            out[k], _ = m(v), masked.append(k)
        else:
            out[k] = v
    return out, masked


# ---------------------------------------------------------------- Parquet helpers


def _jsonable(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, float) and v != v:  # NaN
        return None
    if isinstance(v, bytes):
        return v.hex()
    if hasattr(v, "as_tuple"):  # Decimal
        return str(v)
    return v


_meta_lock = threading.Lock()
_meta_cache: OrderedDict[tuple[str, int, int], tuple[Any, list[tuple[Any, Any] | None]]] = OrderedDict()


def _parquet_meta(path: Path) -> tuple[Any, list[tuple[Any, Any] | None]]:
    """A Parquet file's footer and the (min, max) ``customer_id`` of each row group (None: no statistics),
    read once per version of the file."""
    import pyarrow.parquet as pq

    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    with _meta_lock:
        if key in _meta_cache:
            _meta_cache.move_to_end(key)
            return _meta_cache[key]
    md = pq.read_metadata(path)
    col = md.schema.to_arrow_schema().get_field_index("customer_id")
    ranges: list[tuple[Any, Any] | None] = []
    for i in range(md.num_row_groups):
        stats = md.row_group(i).column(col).statistics if col >= 0 else None
        ranges.append((stats.min, stats.max) if stats is not None and stats.has_min_max else None)
    ranges = _Ranges(ranges)
    with _meta_lock:
        _meta_cache[key] = (md, ranges)
        while len(_meta_cache) > 64:
            _meta_cache.popitem(last=False)
    return md, ranges


INDEX_ROW_GROUP = 1024  # rows per row group of a lookup copy (one customer's read decodes one group: keep it small)
_INDEX_MIN_ROWS = 50_000  # smaller files are read as they are
_index_lock = threading.Lock()


def _lookup_copy(ws: Workspace, paths: Path | list[Path]) -> list[Path]:
    """The files to read one customer's rows from: small files themselves, else one copy of ``paths``
    (together) sorted by ``customer_id`` with row groups of :data:`INDEX_ROW_GROUP` rows under
    ``<workspace>/tmp/service-index/``, made once per version of the files. A tag snapshot is one row group of
    every customer and the status event log a file per month: reading them as they are for one customer would
    decode all of them. Copies of older versions are deleted; a copy is written to a temporary name and renamed."""
    import hashlib

    files = paths if isinstance(paths, list) else [paths]
    metas = [_parquet_meta(f)[0] for f in files]
    if sum(md.num_rows for md in metas) < _INDEX_MIN_ROWS:
        return files
    if len(files) == 1 and max((metas[0].row_group(i).num_rows for i in range(metas[0].num_row_groups)),
                               default=0) <= 4 * INDEX_ROW_GROUP:
        return files
    stats = [(str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files]
    stem = f"{files[0].parent.name}-{files[0].stem}" if len(files) == 1 else f"{files[0].parent.name}-all"
    digest = hashlib.sha256(repr((stats, INDEX_ROW_GROUP)).encode()).hexdigest()[:16]
    folder = Path(ws.tmp_dir) / "service-index"
    target = folder / f"{stem}-{digest}.parquet"
    if target.exists():
        return [target]
    with _index_lock:
        if target.exists():
            return [target]
        import duckdb

        folder.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{threading.get_ident()}.tmp")
        con = duckdb.connect()
        try:
            duck = ws.settings.engine.duckdb
            con.execute("SET threads = 2")
            con.execute("SET enable_progress_bar = false")
            con.execute("SET preserve_insertion_order = false")
            con.execute("SET memory_limit = ?", [duck.memory_limit])
            con.execute("SET temp_directory = ?", [duck.temp_directory or str(Path(ws.tmp_dir) / "duckdb")])
            src = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
            dst = str(tmp).replace("'", "''")
            con.execute(f"COPY (SELECT * FROM read_parquet([{src}], union_by_name = true) ORDER BY customer_id) "
                        f"TO '{dst}' (FORMAT parquet, ROW_GROUP_SIZE {INDEX_ROW_GROUP})")
        finally:
            con.close()
        tmp.replace(target)
        for old in folder.glob(f"{stem}-*.parquet"):
            if old != target:
                old.unlink(missing_ok=True)
    return [target]


def _rows_of(ws: Workspace, path: Path | list[Path], customer_id: str,
             columns: list[str] | None = None) -> list[dict[str, Any]]:
    """The rows of one customer in one or more Parquet files: only the row groups whose ``customer_id`` range
    holds the id are read (from the file's lookup copy when its row groups are large)."""
    import pyarrow.parquet as pq

    out: list[dict[str, Any]] = []
    for p in _lookup_copy(ws, path):
        md, ranges = _parquet_meta(p)
        groups = _groups_of(ranges, customer_id)
        if not groups:
            continue
        cols = None if columns is None else list(dict.fromkeys(["customer_id", *columns]))
        t = pq.ParquetFile(p, metadata=md).read_row_groups(groups, columns=cols, use_threads=False)
        t = t.filter(pc.equal(t["customer_id"].cast(pa.string()), customer_id))
        if columns is not None:
            t = t.select(columns)
        out.extend({k: _jsonable(v) for k, v in r.items()} for r in t.to_pylist())
    return out


def warm(ws: Workspace) -> None:
    """Make the lookup copies of the customers table, the newest tag snapshot and the status event log now, and
    delete the other copies (``panhuo serve`` calls this in the background at start, so the first customer asked
    for is fast and copies of replaced files do not pile up)."""
    from panhuo.status.history import StatusStore

    files = [f for f in (_customers_file(ws), _tags_file(ws, None)) if f is not None]
    st = StatusStore.of(ws)
    keep: set[Path] = set()
    for f in files:
        if f.exists():
            keep.update(_lookup_copy(ws, f))
    events = [st.root / rel for _m, rel in sorted(st.manifest().get("events", {}).items())]
    if events and all(f.exists() for f in events):
        keep.update(_lookup_copy(ws, events))
    folder = Path(ws.tmp_dir) / "service-index"
    if folder.is_dir():  # copies of snapshots and loads no longer in force (rebuilt on demand if asked for)
        for old in folder.glob("*.parquet"):
            if old not in keep:
                old.unlink(missing_ok=True)


class _Ranges(list):  # type: ignore[type-arg]
    """Row groups' (min, max) ``customer_id``; ``bounds``: the same as two lists when the groups are in ascending,
    non-overlapping text order (a lookup copy is sorted by ``customer_id``), so one id's groups are found by
    bisection; None otherwise."""

    bounds: tuple[list[Any], list[Any]] | None = None

    def __init__(self, ranges: list[tuple[Any, Any] | None]) -> None:
        super().__init__(ranges)
        los: list[Any] = []
        his: list[Any] = []
        for r in ranges:
            if r is None or not isinstance(r[0], str) or not isinstance(r[1], str) or (his and r[0] < his[-1]):
                return
            los.append(r[0])
            his.append(r[1])
        self.bounds = (los, his)


def _groups_of(ranges: list[tuple[Any, Any] | None], customer_id: str) -> list[int]:
    """The row groups whose ``customer_id`` range may hold ``customer_id``."""
    bounds = getattr(ranges, "bounds", None)
    if bounds is None:
        return [i for i, r in enumerate(ranges) if r is None or _between(r, customer_id)]
    los, his = bounds
    out = []
    i = bisect.bisect_left(his, customer_id)
    while i < len(los) and los[i] <= customer_id:
        out.append(i)
        i += 1
    return out


def _between(r: tuple[Any, Any], customer_id: str) -> bool:
    lo, hi = r
    if isinstance(lo, bytes):
        lo, hi = lo.decode("utf-8", "replace"), hi.decode("utf-8", "replace")
    try:
        return bool(lo <= customer_id <= hi)
    except TypeError:  # a non-text id column: read the group
        return True


def _customers_file(ws: Workspace) -> Path | None:
    from panhuo.errors import WarehouseError
    from panhuo.warehouse import Warehouse

    try:
        wh = Warehouse(ws.warehouse_dir)
        return wh.table_path("customers") if wh.has_table("customers") else None
    except WarehouseError:
        return None


def _tags_file(ws: Workspace, as_of: dt.date | None) -> Path | None:
    from panhuo.tags.store import tag_snapshots

    snaps = [s for s in tag_snapshots(ws) if as_of is None or s.as_of <= as_of]
    return snaps[-1].path if snaps else None


def customer_advisor(ws: Workspace, customer_id: str) -> str | None | bool:
    """The customer's ``advisor_id`` in the load in force (None: no advisor); False when there is no such customer."""
    path = _customers_file(ws)
    if path is None:
        return False
    names = _parquet_meta(path)[0].schema.to_arrow_schema().names
    rows = _rows_of(ws, path, customer_id, [c for c in ("customer_id", "advisor_id") if c in names])
    if not rows:
        return False
    v = rows[0].get("advisor_id")
    return None if v is None else str(v)


def _status_history(ws: Workspace, customer_id: str) -> list[dict[str, Any]]:
    from panhuo.status.history import StatusStore

    st = StatusStore.of(ws)
    manifest = st.manifest()
    files = [st.root / rel for _m, rel in sorted(manifest.get("events", {}).items())]
    files = [f for f in files if f.exists()]
    if not files:
        return []
    dates = sorted(manifest.get("dates", {}))
    baseline = dates[0] if dates else None
    rows = _rows_of(ws, files, customer_id, ["from_status", "to_status", "date"])
    for r in rows:
        r["baseline"] = r["date"] == baseline
    return sorted(rows, key=lambda r: r["date"])


# ---------------------------------------------------------------- one customer


def _iso(v: dt.datetime | dt.date | None) -> str | None:
    return None if v is None else v.isoformat()


def _in_chunks(values: list[Any], size: int = 2000) -> list[list[Any]]:
    return [values[i:i + size] for i in range(0, len(values), size)] or [[]]


def _store_rows(session: Session, customer_id: str) -> dict[str, list[dict[str, Any]]]:
    """One customer's rows of the store, each read through an index: the outbox by the idempotency keys the
    customer's messages have in every run (``sha256(playbook, customer, run key)``, a unique index; the outbox
    has no index on ``customer_id``), receipts and call tasks by those messages' ids, benefits by (run,
    customer), contact_log and opt-outs by customer. SMS replies carry no message id and are found by
    customer."""
    from panhuo.benefits.models import IssuedBenefit
    from panhuo.delivery.events import DeliveryEvent, OptOut
    from panhuo.delivery.models import CallTask
    from panhuo.runs.models import ContactLog, OutboxMessage, Run
    from panhuo.runs.outbox import idempotency_key

    # plain rows on the session's connection (the same columns, types and transaction; no ORM objects built:
    # a third of the customer view's CPU went to loading entities that are only turned into dicts)
    conn = session.connection()
    runs = conn.execute(select(Run.id, Run.playbook_id, Run.run_key)).all()
    keys = [idempotency_key(pid, customer_id, rk) for _rid, pid, rk in runs]
    run_ids = [rid for rid, _p, _k in runs]
    found = [m for chunk in _in_chunks(keys) for m in conn.execute(
        select(OutboxMessage.__table__).where(OutboxMessage.idempotency_key.in_(chunk),
                                    OutboxMessage.customer_id == customer_id))]
    found.sort(key=lambda m: m.id, reverse=True)
    out: dict[str, list[dict[str, Any]]] = {}
    out["messages"] = [{"id": m.id, "run_id": m.run_id, "playbook_id": m.playbook_id, "channel": m.channel,
                        "arm": m.arm, "benefit_id": m.benefit_id, "status": m.status, "content": m.content,
                        "send_after": _iso(m.send_after), "sent_at": _iso(m.sent_at),
                        "receipt_status": m.receipt_status, "receipt_at": _iso(m.receipt_at),
                        "last_error": m.last_error} for m in found[:CONTACT_LIMIT]]
    ids = [m.id for m in found]
    log = conn.execute(select(ContactLog.__table__).where(ContactLog.customer_id == customer_id)
                       .order_by(ContactLog.sent_at.desc()).limit(CONTACT_LIMIT))
    out["contacts"] = [{"channel": c.channel, "sent_at": _iso(c.sent_at), "playbook_id": c.playbook_id} for c in log]
    events = [e for chunk in _in_chunks(ids) for e in conn.execute(
        select(DeliveryEvent.__table__).where(DeliveryEvent.outbox_id.in_(chunk)))]
    events += conn.execute(select(DeliveryEvent.__table__).where(DeliveryEvent.outbox_id.is_(None),
                                                                 DeliveryEvent.customer_id == customer_id)).all()
    events.sort(key=lambda e: e.id, reverse=True)
    out["responses"] = [{"event": e.event, "channel": e.channel, "outbox_id": e.outbox_id, "at": _iso(e.at),
                         "received_at": _iso(e.received_at)} for e in events[:CONTACT_LIMIT]]
    opts = conn.execute(select(OptOut.__table__).where(OptOut.customer_id == customer_id).order_by(OptOut.id))
    out["opt_outs"] = [{"channel": o.channel, "source": o.source, "text": o.text, "at": _iso(o.at)} for o in opts]
    issued = [b for chunk in _in_chunks(run_ids) for b in conn.execute(
        select(IssuedBenefit.__table__).where(IssuedBenefit.run_id.in_(chunk),
                                              IssuedBenefit.customer_id == customer_id))]
    issued.sort(key=lambda b: b.issued_at, reverse=True)
    out["benefits"] = [{"run_id": b.run_id, "benefit_id": b.benefit_id, "unit_cost_fen": b.unit_cost_fen,
                        "issued_at": _iso(b.issued_at)} for b in issued[:CONTACT_LIMIT]]
    calls = [t for chunk in _in_chunks(ids) for t in conn.execute(
        select(CallTask.__table__).where(CallTask.outbox_id.in_(chunk)))]
    calls.sort(key=lambda t: t.id, reverse=True)
    out["call_tasks"] = [_task(t) for t in calls[:CONTACT_LIMIT]]
    return out


def customer_view(ws: Workspace, session: Session, customer_id: str, *, as_of: dt.date | None = None,
                  unmask: bool = False) -> dict[str, Any] | None:
    """Everything about one customer (None when the warehouse and the tags do not know the id).

    Keys: ``customer_id``, ``profile`` (the ``customers`` row, masked unless ``unmask``), ``masked``
    (field names masked), ``tags`` (the snapshot on or before ``as_of``, with ``as_of``), ``status``
    (status, status_since), ``status_history``, ``messages``, ``contacts``, ``responses``, ``opt_outs``,
    ``benefits``, ``call_tasks``.
    """
    cust_file = _customers_file(ws)
    profile_rows = _rows_of(ws, cust_file, customer_id) if cust_file is not None else []
    tags_file = _tags_file(ws, as_of)
    tag_rows = _rows_of(ws, tags_file, customer_id) if tags_file is not None else []
    if not profile_rows and not tag_rows:
        return None
    profile = profile_rows[0] if profile_rows else {"customer_id": customer_id}
    masked: list[str] = []
    if not unmask:
        profile, masked = mask_profile(profile)
    tags: dict[str, Any] = {}
    if tag_rows:
        tags = dict(tag_rows[0])
        tags.pop("customer_id", None)
        tags["as_of"] = tags_file.stem if tags_file is not None else None
        tags, tag_masked = mask_profile(tags) if not unmask else (tags, [])
        masked += [f"tags.{k}" for k in tag_masked]
    status = {"status": tags.get("status"), "status_since": tags.get("status_since"), "as_of": tags.get("as_of")}
    return {"customer_id": customer_id, "profile": profile, "masked": masked, "unmasked": unmask, "tags": tags,
            "status": status, "status_history": _status_history(ws, customer_id), **_store_rows(session, customer_id)}


# ---------------------------------------------------------------- segments and tiers

_cache_lock = threading.Lock()
_cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_CACHE_SIZE = 256


def engine(ws: Workspace) -> BaseBackend:
    """A new connection to the configured engine for ``ws``; the caller disconnects it (segment counts and tiers
    are cached, so a connection is opened only when the tags or definitions changed)."""
    from panhuo.engines import connect

    return connect(ws.settings.engine, ws.tmp_dir)


def _disconnect(con: Any) -> None:
    try:
        con.disconnect()
    except Exception:  # noqa: BLE001  (an engine without disconnect, or already closed)
        pass


def _fingerprint(ws: Workspace) -> tuple[Any, ...]:
    """Changes whenever something a segment count or a tier summary reads changes."""
    parts: list[Any] = [str(ws.root)]
    for folder in (ws.warehouse_dir / "tags", ws.warehouse_dir / "scores", ws.root / "segments", ws.root / "tags"):
        if folder.is_dir():
            parts.extend((p.name, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file())
    tiers_file = ws.root / "tiers.yaml"
    if tiers_file.exists():
        parts.append(("tiers.yaml", tiers_file.stat().st_mtime_ns))
    return tuple(parts)


def _cached(key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    value = compute()
    with _cache_lock:
        _cache[key] = value
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return value


def _files_key(*folders: Path) -> tuple[Any, ...]:
    out: list[Any] = []
    for folder in folders:
        if folder.is_dir():
            out.extend((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.glob("*.y*ml")))
    return tuple(out)


def library(ws: Workspace) -> Any:
    """The workspace's segment library (:func:`panhuo.segments.library.load_library`), parsed once per change of
    ``segments/`` or ``tags/``."""
    from panhuo.segments.library import load_library

    return _cached(("library", str(ws.root), _files_key(ws.root / "segments", ws.root / "tags")),
                   lambda: load_library(ws.root))


def catalogue(ws: Workspace) -> Any:
    """The benefit catalogue (:func:`panhuo.benefits.load_catalogue`), parsed once per change of ``benefits/``."""
    from panhuo.benefits import load_catalogue

    return _cached(("catalogue", str(ws.root), _files_key(ws.root / "benefits")), lambda: load_catalogue(ws))


def _audience(ws: Workspace, as_of: dt.date | None, con: Any) -> Any:
    from panhuo.segments.audience import audience

    return audience(ws, con, as_of)


def segments(ws: Workspace) -> list[dict[str, Any]]:
    """Every segment (built-in and the workspace's): name, zh, en, rule text, cap, where defined."""
    lib = library(ws)
    return [{"name": s.name, "zh": s.zh, "en": s.en, "description": s.description or "",
             "rule": " ".join(s.rule.text.split()), "exclude": [e.text for e in s.exclude], "cap": s.cap,
             "builtin": s.builtin, "defined_in": str(s.location)}
            for s in sorted(lib.segments.values(), key=lambda s: (s.builtin, s.name))]


def segment_detail(ws: Workspace, name: str, as_of: dt.date | None = None) -> dict[str, Any]:
    """One segment's definition and member count on the tag snapshot on or before ``as_of``
    (SegmentError for an unknown name, WarehouseError without tags)."""
    seg = library(ws).segment(name)  # SegmentError naming close matches

    def compute() -> tuple[int, str | None]:
        con = engine(ws)
        try:
            aud = _audience(ws, as_of, con)
            return aud.count(name), aud.as_of.isoformat() if aud.as_of else None
        finally:
            _disconnect(con)

    count, snap = _cached(("segment", name, as_of, _fingerprint(ws)), compute)
    info = next(s for s in segments(ws) if s["name"] == seg.name)
    return {**info, "customers": count, "as_of": snap}


def tiers(ws: Workspace, as_of: dt.date | None = None) -> dict[str, Any]:
    """The tier summary (分层): per tier customers, share and average total assets (RMB text, exact)."""

    def compute() -> dict[str, Any]:
        con = engine(ws)
        try:
            return _tier_rows(ws, _audience(ws, as_of, con))
        finally:
            _disconnect(con)

    return _cached(("tiers", as_of, _fingerprint(ws)), compute)  # type: ignore[no-any-return]


def _tier_rows(ws: Workspace, aud: Any) -> dict[str, Any]:
    """The workspace's ``tiers.yaml`` (else panhuo's scheme) summarised over ``aud`` (as ``panhuo segments tiers``)."""
    from panhuo.segments.tiers import load_tiers, tier_summary

    own = ws.root / "tiers.yaml"
    scheme = load_tiers(own, aud.symbols, "tiers.yaml") if own.exists() else load_tiers(symbols=aud.symbols)
    rows = tier_summary(scheme, aud.table, aud.symbols, aud.as_of)
    return {"as_of": aud.as_of.isoformat() if aud.as_of else None, "scheme": scheme.file,
            "total": sum(r.customers for r in rows),
            "tiers": [{"id": r.id, "zh": r.zh, "en": r.en, "customers": r.customers, "share": r.share,
                       "avg_total_assets_rmb": None if r.avg_total_assets is None else str(r.avg_total_assets)}
                      for r in rows]}


def export_segment_csv(ws: Workspace, name: str, columns: list[str], as_of: dt.date | None, out: Path) -> int:
    """Write a segment's members (customer_id and ``columns``; money in RMB, phones masked) as CSV to ``out``
    through :func:`panhuo.segments.export.export_segment` (what ``panhuo segments export`` writes)."""
    from panhuo.segments.export import export_segment

    library(ws).segment(name)
    blocked = [c for c in columns if _masker(c) is not None and c.lower() not in PHONE_COLUMNS]
    if blocked:
        from panhuo.segments.errors import SegmentError

        raise SegmentError(f"columns: {', '.join(blocked)} are personal data and are never exported")
    con = engine(ws)
    try:
        return export_segment(_audience(ws, as_of, con), name, out, columns)
    finally:
        _disconnect(con)


# ---------------------------------------------------------------- benefits, tasks, audit, outbox


def benefits(ws: Workspace, session: Session, benefit_id: str | None = None) -> list[dict[str, Any]]:
    """Catalogue items with their limits against what runs issued (``panhuo benefits stock``); money in fen."""
    from panhuo.benefits.ledger import usage
    from panhuo.store.models import now_shanghai

    cat = catalogue(ws)
    rows = usage(session, benefit_id, catalogue=cat)
    if benefit_id is not None and not rows:
        cat.get(benefit_id)  # BenefitError naming the unknown id
    today = now_shanghai().date()
    out = []
    for u in rows:
        item = cat.items.get(u.benefit_id) if u.benefit_id in cat else None
        if item is None:
            state = "not_in_catalogue"
        elif u.units_left == 0:
            state = "exhausted"
        elif not item.valid.contains(today):
            state = "not_valid_today"
        else:
            state = "ok"
        out.append({
            "id": u.benefit_id, "kind": item.kind if item else None, "name_zh": item.name.zh if item else None,
            "name_en": item.name.en if item else None, "risk": item.risk_label if item else None,
            "unit_cost_fen": u.unit_cost_fen, "stock": u.stock, "issued": u.issued,
            "stock_left": u.remaining_stock, "budget_fen": u.budget_fen, "spent_fen": u.spent_fen,
            "budget_left_fen": u.remaining_budget_fen, "units_left": u.units_left,
            "valid_from": _iso(item.valid.valid_from) if item else None,
            "valid_to": _iso(item.valid.valid_to) if item else None,
            "defined_in": cat.origin[u.benefit_id][0] if item else None, "state": state,
        })
    return out


def _task(t: Any) -> dict[str, Any]:
    return {"id": t.id, "playbook_id": t.playbook_id, "customer_id": t.customer_id, "advisor_id": t.advisor_id,
            "due_date": t.due_date.isoformat(), "script": t.script, "created_at": _iso(t.created_at),
            "outcome": t.outcome, "outcome_at": _iso(t.outcome_at), "outcome_by": t.outcome_by, "note": t.note}


def call_tasks(session: Session, *, advisor: str | None = None, open_only: bool = False,
               limit: int = 200) -> list[dict[str, Any]]:
    """Advisor call tasks, oldest due first (as ``panhuo calls list``); ``advisor`` narrows to one advisor."""
    from panhuo.delivery.models import CallTask

    q = select(CallTask).order_by(CallTask.due_date, CallTask.id).limit(limit)
    if advisor is not None:
        q = q.where(CallTask.advisor_id == advisor)
    if open_only:
        q = q.where(CallTask.outcome.is_(None))
    return [_task(t) for t in session.execute(q).scalars()]


def audit_entries(session: Session, *, entity: str | None = None, entity_id: str | None = None,
                  actor: str | None = None, action: str | None = None, limit: int = 100,
                  before_seq: int | None = None) -> list[dict[str, Any]]:
    """Audit log entries, newest first; ``before_seq`` pages back."""
    from panhuo.store.models import AuditEntry

    q = select(AuditEntry)
    for col, v in ((AuditEntry.entity, entity), (AuditEntry.entity_id, entity_id), (AuditEntry.actor, actor),
                   (AuditEntry.action, action)):
        if v is not None:
            q = q.where(col == v)
    if before_seq is not None:
        q = q.where(AuditEntry.seq < before_seq)
    q = q.order_by(AuditEntry.seq.desc()).limit(limit)
    return [{"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action, "entity": e.entity,
             "entity_id": e.entity_id, "before": e.before, "after": e.after, "hash": e.hash}
            for e in session.execute(q).scalars()]


def outbox_counts(session: Session) -> dict[str, int]:
    """Outbox rows by status."""
    from panhuo.runs.models import OutboxMessage

    rows = session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
    return {str(s): int(n) for s, n in rows}
