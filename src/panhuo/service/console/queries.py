"""What the console's pages read beyond the API's read side (:mod:`panhuo.service.views`, used for customers,
segments, tiers, benefits and call tasks): the 总览 dashboard, ad-hoc rule counts of the segment explorer,
the measured report and the runs.

Every function here only reads. The analytic ones (status summary, reactivations, the report) go through
:class:`Analytics`, which holds one engine connection for the app, serialises its use (a DuckDB connection
is not shared between threads) and caches each result until the warehouse changes (a new load, status or
tags) or, for the report, a run finishes. They call the same domain functions as the CLI
(:func:`panhuo.status.summary.summarize`, :func:`panhuo.status.history.transitions`,
:func:`panhuo.measure.report.make_report`), so a page and the command line never disagree.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from panhuo.content.masking import format_fen

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace
    from panhuo.status.summary import StatusSummary

__all__ = ["Analytics", "Dashboard", "Reactivation", "RuleCount", "dashboard", "funnel_of", "money", "report", "rmb",
           "rule_count", "runs"]

REACTIVATED_FROM = ("sleeping", "dormant")


class Analytics:
    """One engine connection per app, used by one thread at a time, and results cached per warehouse state.

    The cache is checked under a short lock; a missing value is computed under a lock of its own key (two
    requests for the same page compute it once, other pages are not held up), and only the computations
    that use the shared connection (``uses_con``) also take the connection's lock.
    """

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._con: BaseBackend | None = None
        self._con_lock = threading.RLock()
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[Any, ...], threading.Lock] = {}
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
        for p in (wh / "CURRENT", wh / "status" / "manifest.json", wh / "tags", wh / "scores",
                  self.ws.root / "tiers.yaml", self.ws.root / "segments", self.ws.root / "tags",
                  self.ws.root / "benefits"):
            try:
                marks.append(p.stat().st_mtime_ns)
            except OSError:
                marks.append(None)
        return (*marks, *extra)

    def _hit(self, key: tuple[Any, ...], fp: tuple[Any, ...]) -> tuple[bool, Any]:
        with self._lock:
            hit = self._cache.get(key)
            return (True, hit[1]) if hit is not None and hit[0] == fp else (False, None)

    def cached(self, key: tuple[Any, ...], compute: Callable[[BaseBackend], Any], extra: tuple[Any, ...] = (),
               *, uses_con: bool = True) -> Any:
        """``compute(con)``, reused while :meth:`fingerprint` (plus ``extra``) is unchanged."""
        fp = self.fingerprint(extra)
        found, value = self._hit(key, fp)
        if found:
            return value
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            found, value = self._hit(key, fp)  # computed meanwhile by another request
            if found:
                return value
            if uses_con:
                with self._con_lock:
                    value = compute(self.con())
            else:
                value = compute(None)  # type: ignore[arg-type]
            with self._lock:
                if len(self._cache) > 256:
                    self._cache.clear()
                self._cache[key] = (fp, value)
            return value


# ---------------------------------------------------------------- 总览 dashboard


@dataclass(frozen=True)
class Reactivation:
    """Customers who became effective again from sleeping or dormant (first time in the year) on one status date,
    and the commission of their trades since."""

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
    """Customers who went from sleeping or dormant to effective on or after ``since``, by the status date of their
    first such change, with the commission (every asset class, exact fen) of their trades on or after that date."""
    from panhuo.status.history import transitions
    from panhuo.warehouse.store import Warehouse

    tr = transitions(ws, con, since=since)
    tr = tr.filter(tr.from_status.isin(list(REACTIVATED_FROM)) & (tr.to_status == "effective"))
    first = tr.group_by(tr.customer_id.name("rid")).agg(since=tr.date.min())
    per_day = {r["since"]: int(r["n"]) for r in first.group_by("since").agg(n=first.count()).to_pyarrow().to_pylist()}
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    paid: dict[dt.date, int] = {}
    has_trades = wh.has_table("trades")
    if per_day and has_trades:
        trades = wh.table(con, "trades")
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
    from panhuo.measure.report import make_report
    from panhuo.runs.models import Run

    q = select(func.count(), func.max(Run.finished_at)).where(Run.state == "done")
    if playbook:
        q = q.where(Run.playbook_id == playbook)
    done = store_session.execute(q).one()
    if not done[0]:
        return None
    return an.cached(("report", playbook), lambda _con: make_report(an.ws, playbook=playbook),  # type: ignore[no-any-return]
                     extra=(done[0], str(done[1])), uses_con=False)  # make_report opens its own connection


# ---------------------------------------------------------------- 分层 segment explorer


@dataclass(frozen=True)
class RuleCount:
    """An ad-hoc rule over the latest tags: members, their share, and members per account status."""

    rule: str
    customers: int
    total: int
    by_status: dict[str, int]
    as_of: dt.date | None

    @property
    def share(self) -> float | None:
        return self.customers / self.total if self.total else None


def rule_count(an: Analytics, rule: str) -> RuleCount:
    """Count the customers a rule of the segment language selects (SegmentError naming line, column and token)."""
    from panhuo.segments.audience import audience
    from panhuo.segments.compiler import compile_rule

    def compute(con: BaseBackend) -> RuleCount:
        aud = audience(an.ws, con)
        t = aud.table
        total = int(t.count().execute())
        hit = t.filter(compile_rule(rule, t, aud.symbols, as_of=aud.as_of))
        rows = hit.group_by("status").agg(n=hit.count()).to_pyarrow().to_pylist() if "status" in t.columns else []
        by_status = {str(r["status"]): int(r["n"]) for r in rows}
        n = sum(by_status.values()) if rows else int(hit.count().execute())
        return RuleCount(rule, n, total, by_status, aud.as_of)

    return an.cached(("rule", rule), compute)  # type: ignore[no-any-return]


# ---------------------------------------------------------------- 运行 runs


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


def money(fen: int | None) -> str:
    """Integer fen as RMB for the templates (exact)."""
    return "" if fen is None else format_fen(int(fen))


def rmb(value: float | Decimal | None) -> str:
    """An RMB amount from the report (already rounded to the fen) with separators."""
    if value is None:
        return "—"
    return f"{Decimal(str(value)).quantize(Decimal('0.01')):,}元"
