"""What the console's pages read: the warehouse through Ibis (one engine connection per app) and the store.

Every function here only reads. The analytic ones (status summary, reactivations, tiers, segment counts,
a customer's warehouse rows, the measured report) go through :class:`Analytics`, which holds one engine
connection for the app, serialises its use (a DuckDB connection is not shared between threads) and
caches each result until the warehouse changes (a new load, status, tags or finished run). They call
the same domain functions as the CLI (:func:`panhuo.status.summary.summarize`,
:func:`panhuo.segments.tiers.tier_summary`, :func:`panhuo.cli.report.make_report`, ...), so a page and
the command line never disagree. Personal data leave here masked (:mod:`panhuo.content.masking`).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import ibis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from panhuo.content.masking import format_fen, mask_phone

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace
    from panhuo.status.summary import StatusSummary

__all__ = [
    "Analytics",
    "CustomerView",
    "Dashboard",
    "Reactivation",
    "benefit_rows",
    "customer_view",
    "funnel_of",
    "runs",
    "tasks",
]

REACTIVATED_FROM = ("sleeping", "dormant")


class Analytics:
    """One engine connection per app, used by one thread at a time, and results cached per warehouse state."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._con: BaseBackend | None = None
        self._lock = threading.RLock()
        self._cache: dict[tuple[Any, ...], tuple[tuple[Any, ...], Any]] = {}

    def con(self) -> BaseBackend:
        from panhuo.engines import connect

        if self._con is None:
            self._con = connect(self.ws.settings.engine, self.ws.tmp_dir)
        return self._con

    def fingerprint(self, extra: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        """What the cached results depend on: the files a load, ``panhuo status`` or ``panhuo tags`` rewrite."""
        wh = self.ws.warehouse_dir
        marks = []
        for p in (wh / "CURRENT", wh / "status" / "manifest.json", wh / "tags", self.ws.root / "tiers.yaml",
                  self.ws.root / "segments", self.ws.root / "benefits"):
            try:
                marks.append(p.stat().st_mtime_ns)
            except OSError:
                marks.append(None)
        return (*marks, *extra)

    def cached(self, key: tuple[Any, ...], compute: Callable[[BaseBackend], Any], extra: tuple[Any, ...] = ()) -> Any:
        """``compute(con)`` under the lock, reused while :meth:`fingerprint` (plus ``extra``) is unchanged."""
        with self._lock:
            fp = self.fingerprint(extra)
            hit = self._cache.get(key)
            if hit is not None and hit[0] == fp:
                return hit[1]
            value = compute(self.con())
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = (fp, value)
            return value

    def run(self, compute: Callable[[BaseBackend], Any]) -> Any:
        """``compute(con)`` under the lock, not cached (a customer's rows, a count asked once)."""
        with self._lock:
            return compute(self.con())


# ---------------------------------------------------------------- 总览 dashboard


@dataclass(frozen=True)
class Reactivation:
    """Customers who became effective again from sleeping or dormant on one status date, and what they paid since."""

    date: dt.date
    customers: int
    commission_fen: int

    @property
    def commission(self) -> str:
        return format_fen(self.commission_fen)


@dataclass
class Dashboard:
    """The 总览 page: the status summary and the reactivations by status date."""

    summary: StatusSummary
    reactivations: list[Reactivation] = field(default_factory=list)
    has_trades: bool = True

    @property
    def reactivated(self) -> int:
        return sum(r.customers for r in self.reactivations)

    @property
    def reactivated_commission(self) -> str:
        return format_fen(sum(r.commission_fen for r in self.reactivations))


def _reactivations(ws: Workspace, con: BaseBackend, since: dt.date) -> tuple[list[Reactivation], bool]:
    """Per status date since ``since``: reactivated customers and their stock+fund+... commission on or after it."""
    from panhuo.status.history import transitions
    from panhuo.warehouse.store import Warehouse

    tr = transitions(ws, con, since=since)
    tr = tr.filter(tr.from_status.isin(list(REACTIVATED_FROM)) & (tr.to_status == "effective"))
    per_day = {r["date"]: int(r["n"]) for r in tr.group_by("date").agg(n=tr.count()).to_pyarrow().to_pylist()}
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    paid: dict[dt.date, int] = {}
    has_trades = wh.has_table("trades")
    if per_day and has_trades:
        trades = wh.table(con, "trades")
        first = tr.group_by(tr.customer_id.name("rid")).agg(since=tr.date.min())
        j = trades.join(first, trades.customer_id == first.rid)
        j = j.filter(j.trade_date >= j.since)
        rows = j.group_by("since").agg(fen=j.commission_fen.sum()).to_pyarrow().to_pylist()
        paid = {r["since"]: int(r["fen"] or 0) for r in rows}
    out = [Reactivation(d, n, paid.get(d, 0)) for d, n in sorted(per_day.items())]
    return out, has_trades


def dashboard(an: Analytics) -> Dashboard:
    """The status summary at the latest computed date and the reactivations of the year before it."""
    from panhuo.status.summary import summarize

    def compute(con: BaseBackend) -> Dashboard:
        summary = summarize(an.ws, con)
        since = summary.as_of - dt.timedelta(days=366)
        react, has_trades = _reactivations(an.ws, con, since)
        return Dashboard(summary, react, has_trades)

    return an.cached(("dashboard",), compute)  # type: ignore[no-any-return]


def report(an: Analytics, store_session: Session, playbook: str | None = None) -> dict[str, Any] | None:
    """The measured report (``panhuo.report/1``) of every playbook with a finished run (or one); None if none ran.

    Cached until a run finishes or the warehouse changes (the estimate reads the load's outcomes).
    """
    from panhuo.cli.report import make_report
    from panhuo.runs.models import Run

    done = store_session.execute(
        select(func.count(), func.max(Run.finished_at)).where(Run.state == "done")
        .where(Run.playbook_id == playbook if playbook else True)
    ).one()
    if not done[0]:
        return None
    return an.cached(("report", playbook), lambda _con: make_report(an.ws, playbook=playbook),  # type: ignore[no-any-return]
                     extra=(done[0], str(done[1])))


# ---------------------------------------------------------------- 分层 tiers and segments


def tiers(an: Analytics) -> tuple[Any, list[Any], dt.date | None]:
    """``(scheme, rows, as_of)``: customers, share and average assets per tier of the workspace's scheme."""
    from panhuo.segments.audience import audience
    from panhuo.segments.tiers import load_tiers, tier_summary

    def compute(con: BaseBackend) -> tuple[Any, list[Any], dt.date | None]:
        aud = audience(an.ws, con)
        own = an.ws.root / "tiers.yaml"
        scheme = load_tiers(own, aud.symbols, "tiers.yaml") if own.exists() else load_tiers(symbols=aud.symbols)
        return scheme, tier_summary(scheme, aud.table, aud.symbols, aud.as_of), aud.as_of

    return an.cached(("tiers",), compute)  # type: ignore[no-any-return]


def segments(an: Analytics) -> list[Any]:
    """The segment library (built in and the workspace's), sorted: workspace first, then by name."""
    from panhuo.segments.library import load_library

    lib = an.cached(("library",), lambda _con: load_library(an.ws.root))
    return sorted(lib.segments.values(), key=lambda s: (s.builtin, s.name))


def segment_count(an: Analytics, name: str) -> tuple[int, dt.date | None]:
    """Members of the segment ``name`` at the latest tags; SegmentError (unknown name, bad rule) otherwise."""
    from panhuo.segments.audience import audience

    def compute(con: BaseBackend) -> tuple[int, dt.date | None]:
        aud = audience(an.ws, con)
        return aud.count(name), aud.as_of

    return an.cached(("segment", name), compute)  # type: ignore[no-any-return]


# ---------------------------------------------------------------- 客户 customer timeline


@dataclass
class CustomerView:
    """One customer as the console shows it: profile (masked), status history, contacts, responses, benefits."""

    customer_id: str
    profile: dict[str, Any]
    status: dict[str, Any] | None
    history: list[dict[str, Any]]
    past_contacts: list[dict[str, Any]]
    messages: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    opt_outs: list[dict[str, Any]] = field(default_factory=list)
    benefits: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)


_PROFILE = ("open_date", "branch_id", "advisor_id", "risk_level", "risk_assessed_on", "province", "city",
            "phone", "app_user", "wechat_bound")


def _warehouse_part(ws: Workspace, con: BaseBackend, cid: str) -> dict[str, Any] | None:
    from panhuo.status.history import StatusStore, load_status
    from panhuo.warehouse.store import Warehouse

    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    if wh.current_id is None:
        return None
    cust = wh.table(con, "customers")
    rows = cust.filter(cust.customer_id == ibis.literal(cid, "string")).limit(1).to_pyarrow().to_pylist()
    if not rows:
        return None
    row = rows[0]
    profile = {k: row.get(k) for k in _PROFILE if k in row}
    profile["phone"] = mask_phone(profile.get("phone")) if profile.get("phone") else ""
    out: dict[str, Any] = {"profile": profile, "status": None, "history": [], "past": []}
    store = StatusStore.of(ws)
    if store.dates():
        snap = load_status(ws, con)
        s = snap.filter(snap.customer_id == ibis.literal(cid, "string")).to_pyarrow().to_pylist()
        if s:
            r = s[0]
            out["status"] = {"status": r["status"], "as_of": r["as_of"], "since": r.get("status_since"),
                             "total_assets": format_fen(int(r["total_assets_fen"])),
                             "cash": format_fen(int(r["cash_fen"])),
                             "last_trade_date": r.get("last_trade_date")}
        ev = store.events(con, manifest=store.manifest())
        ev = ev.filter(ev.customer_id == ibis.literal(cid, "string")).order_by(ibis.desc("date"))
        out["history"] = ev.select("date", "from_status", "to_status").to_pyarrow().to_pylist()
    if wh.has_table("contact_history"):
        ch = wh.table(con, "contact_history")
        ch = ch.filter(ch.customer_id == ibis.literal(cid, "string")).order_by(ibis.desc("sent_at")).limit(200)
        cols = [c for c in ("campaign_id", "sent_at", "channel", "benefit", "group") if c in ch.columns]
        out["past"] = ch.select(*cols).to_pyarrow().to_pylist()
    return out


def customer_view(an: Analytics, s: Session, customer_id: str) -> CustomerView | None:
    """Everything the console shows about one customer (None when the current load has no such customer)."""
    from panhuo.benefits.models import IssuedBenefit
    from panhuo.delivery.events import DeliveryEvent, OptOut
    from panhuo.delivery.models import CallTask
    from panhuo.runs.models import OutboxMessage

    cid = customer_id.strip()
    part = an.run(lambda con: _warehouse_part(an.ws, con, cid))
    if part is None:
        return None
    view = CustomerView(cid, part["profile"], part["status"], part["history"], part["past"])
    msgs = s.execute(select(OutboxMessage).where(OutboxMessage.customer_id == cid)
                     .order_by(OutboxMessage.send_after.desc()).limit(200)).scalars()
    view.messages = [{"id": m.id, "run_id": m.run_id, "playbook_id": m.playbook_id, "channel": m.channel,
                      "arm": m.arm, "benefit_id": m.benefit_id, "status": m.status, "send_after": m.send_after,
                      "sent_at": m.sent_at, "receipt": m.receipt_status, "content": m.content} for m in msgs]
    evs = s.execute(select(DeliveryEvent).where(DeliveryEvent.customer_id == cid)
                    .order_by(DeliveryEvent.received_at.desc()).limit(200)).scalars()
    view.events = [{"event": e.event, "channel": e.channel, "at": e.at or e.received_at, "outbox_id": e.outbox_id}
                   for e in evs]
    view.opt_outs = [{"channel": o.channel, "source": o.source}
                     for o in s.execute(select(OptOut).where(OptOut.customer_id == cid)).scalars()]
    ben = s.execute(select(IssuedBenefit).where(IssuedBenefit.customer_id == cid)
                    .order_by(IssuedBenefit.issued_at.desc())).scalars()
    view.benefits = [{"run_id": b.run_id, "benefit_id": b.benefit_id, "cost": format_fen(int(b.unit_cost_fen)),
                      "issued_at": b.issued_at} for b in ben]
    view.tasks = [_task(t) for t in s.execute(select(CallTask).where(CallTask.customer_id == cid)
                                             .order_by(CallTask.due_date.desc())).scalars()]
    return view


# ---------------------------------------------------------------- 运行 runs, 权益 benefits, 任务 tasks


def funnel_of(run: Any) -> tuple[list[tuple[str, int]], dict[str, int], str | None]:
    """A stored run's ``(stages, reasons, error)`` from its ``funnel`` JSON (empty when it has none)."""
    f = run.funnel if isinstance(run.funnel, dict) else {}
    stages = [(str(k), int(v)) for k, v in (f.get("stages") or [])]
    reasons = {str(k): int(v) for k, v in (f.get("reasons") or {}).items()}
    return stages, reasons, f.get("error")


def runs(s: Session, playbook_id: str | None = None, limit: int = 200) -> list[Any]:
    """The latest runs (newest first), optionally of one playbook."""
    from panhuo.runs.models import Run

    q = select(Run).order_by(Run.started_at.desc(), Run.id.desc()).limit(limit)
    if playbook_id:
        q = q.where(Run.playbook_id == playbook_id)
    return list(s.execute(q).scalars())


def benefit_rows(ws: Workspace, s: Session) -> list[dict[str, Any]]:
    """The catalogue against the ledger: limits, issued, spent and what is left (money formatted exactly)."""
    from panhuo.benefits import load_catalogue
    from panhuo.benefits.ledger import usage
    from panhuo.store.models import now_shanghai

    cat = load_catalogue(ws)
    today = now_shanghai().date()
    out = []
    for u in usage(s, catalogue=cat):
        item = cat.items.get(u.benefit_id)
        if item is None:
            state = "不在目录中"
        elif u.units_left == 0:
            state = "已用尽"
        elif not item.valid.contains(today):
            state = f"{today} 不在有效期内"
        else:
            state = "可用"
        out.append({
            "id": u.benefit_id,
            "name": item.name.zh if item is not None else "",
            "kind": item.kind if item is not None else "",
            "risk": f"R{item.risk}" if item is not None and item.risk is not None else "",
            "unit_cost": "" if u.unit_cost_fen is None else format_fen(u.unit_cost_fen),
            "stock": "不限" if u.stock is None else f"{u.stock:,}",
            "issued": f"{u.issued:,}",
            "stock_left": "不限" if u.remaining_stock is None else f"{u.remaining_stock:,}",
            "budget": "不限" if u.budget_fen is None else format_fen(u.budget_fen),
            "spent": format_fen(u.spent_fen),
            "budget_left": "不限" if u.remaining_budget_fen is None else format_fen(u.remaining_budget_fen),
            "used_share": (u.issued / u.stock) if u.stock else None,
            "valid": (f"{item.valid.valid_from} — {item.valid.valid_to or '长期'}" if item is not None else ""),
            "state": state,
        })
    return out


def _task(t: Any) -> dict[str, Any]:
    return {"id": t.id, "playbook_id": t.playbook_id, "customer_id": t.customer_id, "advisor_id": t.advisor_id,
            "due_date": t.due_date, "script": t.script, "outcome": t.outcome, "outcome_at": t.outcome_at,
            "outcome_by": t.outcome_by, "note": t.note}


def tasks(s: Session, advisor_id: str | None, *, all_advisors: bool, limit: int = 500) -> list[dict[str, Any]]:
    """Call tasks, open first then by due date: one advisor's (``advisor_id``) or, for supervisors, everyone's."""
    from panhuo.delivery.models import CallTask

    q = select(CallTask).order_by(CallTask.outcome.is_not(None), CallTask.due_date, CallTask.id).limit(limit)
    if not all_advisors:
        q = q.where(CallTask.advisor_id == advisor_id)
    return [_task(t) for t in s.execute(q).scalars()]


def money(fen: int | None) -> str:
    """Integer fen as RMB for the templates (exact)."""
    return "" if fen is None else format_fen(int(fen))


def rmb(value: float | Decimal | None) -> str:
    """An RMB amount from the report (already rounded to the fen) with separators."""
    if value is None:
        return "—"
    return f"{Decimal(str(value)).quantize(Decimal('0.01')):,}元"
