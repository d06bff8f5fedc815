"""The status summary a person reads: counts and shares, active share, branches, asset bands, transitions.

Every number is an Ibis aggregation over the stored snapshot (``load_status``) and the load in force;
counts are exact integers, shares are floats for display only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

import ibis

from panhuo.status.history import StatusStore, load_status, transitions
from panhuo.status.rules import STATUSES, to_fen
from panhuo.warehouse import Warehouse

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace

__all__ = [
    "ACTIVE_DAYS",
    "TOP_BRANCHES",
    "BranchRow",
    "BandRow",
    "TransitionCount",
    "TrendPoint",
    "StatusSummary",
    "band_labels",
    "summarize",
]

ACTIVE_DAYS = 30
TOP_BRANCHES = 15


@dataclass(frozen=True)
class BranchRow:
    branch_id: str | None
    customers: int
    effective: int

    @property
    def effective_share(self) -> float:
        return self.effective / self.customers if self.customers else 0.0


@dataclass(frozen=True)
class BandRow:
    label: str
    customers: int
    share: float


@dataclass(frozen=True)
class TransitionCount:
    from_status: str | None
    to_status: str | None
    customers: int


@dataclass(frozen=True)
class TrendPoint:
    date: dt.date
    counts: dict[str, int]


@dataclass
class StatusSummary:
    """Status at one as-of date, as printed by ``panhuo status`` and drawn by the HTML overview."""

    as_of: dt.date
    customers: int
    counts: dict[str, int]
    active_customers: int | None  # None when the load has no app_events
    branches: list[BranchRow] = field(default_factory=list)
    bands: list[BandRow] = field(default_factory=list)
    transitions: list[TransitionCount] = field(default_factory=list)
    trend: list[TrendPoint] = field(default_factory=list)

    def share(self, status: str) -> float:
        return self.counts.get(status, 0) / self.customers if self.customers else 0.0

    @property
    def effective_share(self) -> float:
        return self.share("effective")

    @property
    def active_share(self) -> float | None:
        """Active share (app MAU / customers): a login in the 30 days up to as_of."""
        if self.active_customers is None:
            return None
        return self.active_customers / self.customers if self.customers else 0.0

    @property
    def transitions_total(self) -> int:
        return sum(t.customers for t in self.transitions)


def _short(v: Decimal) -> str:
    for unit, suffix in ((Decimal(1_000_000), "M"), (Decimal(1000), "k")):
        if v >= unit and v % unit == 0:
            return f"{v // unit}{suffix}"
    return format(v.normalize(), "f")


def band_labels(bounds: list[Decimal]) -> list[str]:
    """``[1000, 10000]`` -> ``["<1k", "1k-10k", ">=10k"]``."""
    if not bounds:
        return ["all"]
    labels = [f"<{_short(bounds[0])}"]
    labels += [f"{_short(a)}-{_short(b)}" for a, b in zip(bounds, bounds[1:], strict=False)]
    labels.append(f">={_short(bounds[-1])}")
    return labels


def _bands(snap: ir.Table, bounds: list[Decimal], total: int) -> list[BandRow]:
    labels = band_labels(bounds)
    if bounds:
        idx = ibis.cases(
            *[(snap.total_assets_fen < ibis.literal(to_fen(b), "int64"), i) for i, b in enumerate(bounds)],
            else_=len(bounds),
        )
    else:
        idx = ibis.literal(0)
    t = snap.mutate(band=idx.cast("int64"))
    rows = t.group_by("band").agg(n=t.count()).to_pyarrow().to_pylist()
    got = {int(r["band"]): int(r["n"]) for r in rows}
    return [BandRow(lab, got.get(i, 0), got.get(i, 0) / total if total else 0.0) for i, lab in enumerate(labels)]


def _active(con: BaseBackend, wh: Warehouse, snap: ir.Table, as_of: dt.date) -> int | None:
    if not wh.has_table("app_events"):
        return None
    ev = wh.table(con, "app_events")
    day = ev.event_time.cast("timestamp").date()
    start = as_of - dt.timedelta(days=ACTIVE_DAYS - 1)
    ev = ev.filter(
        (ev.event == "login")
        & (day >= ibis.literal(start, type="date"))
        & (day <= ibis.literal(as_of, type="date"))
    )
    ids = ev.select(aid=ev.customer_id).distinct()
    j = snap.join(ids, snap.customer_id == ids.aid)
    return int(j.count().to_pyarrow().as_py())


def summarize(ws: Workspace, con: BaseBackend, as_of: dt.date | None = None) -> StatusSummary:
    """Summarise the stored status at ``as_of`` (default: the latest computed date)."""
    snap = load_status(ws, con, as_of)
    day: dt.date = snap.select("as_of").limit(1).to_pyarrow().column(0)[0].as_py()
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)

    counts_rows = snap.group_by("status").agg(n=snap.count()).to_pyarrow().to_pylist()
    counts = {s: 0 for s in STATUSES} | {r["status"]: int(r["n"]) for r in counts_rows}
    total = sum(counts.values())

    cust = wh.table(con, "customers")
    cust = cust.select(cid=cust.customer_id, branch_id=cust.branch_id)
    j = snap.left_join(cust, snap.customer_id == cust.cid)
    g = j.group_by("branch_id").agg(customers=j.count(), effective=(j.status == "effective").ifelse(1, 0).sum())
    # nulls sort differently per engine: put the unknown branch last explicitly
    by_branch = g.order_by([ibis.desc("customers"), g.branch_id.isnull(), g.branch_id]).limit(TOP_BRANCHES)
    branches = [
        BranchRow(r["branch_id"], int(r["customers"]), int(r["effective"] or 0))
        for r in by_branch.to_pyarrow().to_pylist()
    ]

    tr = transitions(ws, con, since=day, until=day)
    tr_rows = (
        tr.group_by(["from_status", "to_status"])
        .agg(n=tr.count())
        .order_by([ibis.desc("n"), "from_status", "to_status"])
        .to_pyarrow()
        .to_pylist()
    )
    manifest = StatusStore.of(ws).manifest()
    trend = [
        TrendPoint(dt.date.fromisoformat(d), {s: int(v["counts"].get(s, 0)) for s in STATUSES})
        for d, v in sorted(manifest["dates"].items())
        if d <= day.isoformat()
    ]
    return StatusSummary(
        as_of=day,
        customers=total,
        counts=counts,
        active_customers=_active(con, wh, snap, day),
        branches=branches,
        bands=_bands(snap, list(ws.settings.asset_bands), total),
        transitions=[TransitionCount(r["from_status"], r["to_status"], int(r["n"])) for r in tr_rows],
        trend=trend,
    )
