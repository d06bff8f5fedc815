"""Outcomes: what every assigned customer did in the playbook's success window, from the warehouse.

For each assignment of a playbook's finished runs (treated, holdout, global control; read only through
:func:`panhuo.runs.models.assignment_rows`, so the run engine may store them as it likes), and for each row of a past campaign in the warehouse's optional
``contact_history`` table, this module computes with Ibis over the load in force:

* the **window**: the ``N`` trading days strictly after the run's as-of date (for a campaign row,
  the date of ``sent_at``), ``N`` = the playbook's ``method.success.within_trading_days`` (campaigns:
  ``window_days``, default 10). Trading days come from the workspace's trading calendar. The
  **pre-period** is the ``N`` trading days ending on the as-of date (the last trading day on or before
  it), the same length, for CUPED. A window is the span of dates from its first to its last trading
  day: an event on a non-trading day inside it (a weekend login) counts.
* ``login``: an ``app_events`` row with ``event = 'login'`` whose date (Asia/Shanghai wall time) is in
  the window; ``trade``: a ``trades`` row with ``trade_date`` in the window;
* ``deposit``: some ``balances`` snapshot in the window has more cash than the customer's last snapshot
  on or before the window's start (the run's as-of date). This is the simplest honest definition the
  contract allows (it has no cash-flow table): cash freed by a sale also counts, and a deposit spent
  on a purchase before the next snapshot does not;
* ``commission_fen``: the stock and fund commission (股基手续费) in the window, the sum of the
  ``trades.commission`` column (integer fen, exact) over ``asset_class in ('stock', 'fund')`` (the
  commission tags of ``panhuo.tags.trading`` sum the same column over every asset class). That column is
  what DESIGN.md section 7's rule
  (two-sided trading value x the customer's own net rate, with the minimum charge) charged trade by
  trade, so it is summed, not recomputed with a rate;
* ``back_to_effective``: some ``balances`` snapshot in the window has total assets (cash + securities +
  products) at or above the effective threshold of the status rule (``status.effective_min_assets``
  with ``status.effective_comparison``), i.e. the account is effective (有效户) again by the status
  rule's asset test on that day (the dormant/new-empty precedence is not re-checked);
* ``activated``: the account status history (``panhuo.status.history.transitions``) records a change
  from ``dormant`` to another status dated in the window: the dormant account was activated (by the
  customer's own application). A transition is dated on the first *computed* status date on which the
  new status shows, so status computed only monthly dates an activation late; when no status history
  is computed at all the column is null (unknown) and a playbook whose success event is ``activated``
  is refused with a clear error;
* the same six in the pre-period (``pre_*``), and ``success``/``pre_success`` = the playbook's
  success event; with ``tiers=True`` also ``tier``, the customer's tier (``panhuo.segments.tiers``) on
  the latest tag snapshot on or before the as-of date (null when no tags were stored by then).

Everything is set-based: the assignments go to the engine as one Arrow table joined to the
windows and to each source; nothing loops over assignments in Python (a million rows in seconds).

A window whose last day is after the data's last date (the latest trade, snapshot or app event of
the load) is **open**: its rows carry ``closed = False`` and ``days_remaining`` (trading days still to
come); the report never presents them as final.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from panhuo.contract.parse import decimal_to_fen
from panhuo.errors import PanhuoError
from panhuo.warehouse import Warehouse

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends import BaseBackend

    from panhuo.calendar.service import TradingCalendar
    from panhuo.config import Workspace

__all__ = [
    "MEASURED_EVENTS", "COMMISSION_CLASSES", "MeasureError", "Window", "Outcomes", "window_for", "data_end",
    "measure_rows", "playbook_outcomes", "campaign_outcomes", "fetch_raw", "rows_to_arrow",
]

MEASURED_EVENTS = ("login", "trade", "deposit", "back_to_effective", "activated")
COMMISSION_CLASSES = ("stock", "fund")
DEFAULT_CAMPAIGN_WINDOW = 10


class MeasureError(PanhuoError):
    """A measurement that cannot be made: no runs, an unknown campaign, an event not measured yet."""


@dataclass(frozen=True)
class Window:
    """The success window ``[start, end]`` and the pre-period ``[pre_start, pre_end]``, trading days.

    ``start``/``end`` are None when they fall beyond the years the trading calendar covers (such a
    window is necessarily still open).
    """

    as_of: dt.date
    days: int
    start: dt.date | None
    end: dt.date | None
    pre_start: dt.date
    pre_end: dt.date

    def remaining(self, cal: TradingCalendar, data_end: dt.date | None) -> int:
        """Trading days of the window still to come after ``data_end`` (0: the window is closed)."""
        if data_end is None or data_end <= self.as_of:
            return self.days
        if self.end is not None and data_end >= self.end:
            return 0
        return self.days - cal.trading_days_between(self.as_of, data_end)


def window_for(cal: TradingCalendar, as_of: dt.date, days: int) -> Window:
    """The ``days`` trading days after ``as_of`` and the ``days`` trading days ending on or before it."""
    from panhuo.errors import CalendarError

    if days < 1:
        raise MeasureError(f"a success window needs at least 1 trading day, got {days}")
    try:
        start: dt.date | None = cal.next_trading_day(as_of)
    except CalendarError:
        start = None
    try:
        end: dt.date | None = cal.add_trading_days(as_of, days)
    except CalendarError:
        end = None
    pre_end = as_of if cal.is_trading_day(as_of) else cal.previous_trading_day(as_of)
    pre_start = cal.add_trading_days(pre_end, -(days - 1)) if days > 1 else pre_end
    return Window(as_of, days, start, end, pre_start, pre_end)


def data_end(wh: Warehouse, con: BaseBackend) -> dt.date | None:
    """The data's last date: the latest trade, balance snapshot or app event of the load in force."""
    t = wh.table(con, "trades")
    b = wh.table(con, "balances")
    e = wh.table(con, "app_events")
    days = [t.trade_date.max().execute(), b.as_of.max().execute(), e.event_time.date().max().execute()]
    out = [_as_date(d) for d in days if d is not None and not _is_nat(d)]
    return max(out) if out else None


def _is_nat(v: Any) -> bool:
    try:
        return bool(v != v)  # NaT / NaN
    except (TypeError, ValueError):
        return False


def _as_date(v: Any) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    return v.to_pydatetime().date()  # pandas Timestamp


@dataclass
class Outcomes:
    """Per-row outcomes of one playbook or campaign, and the windows they were measured in.

    ``rows`` columns: run_id (campaigns: 0), customer_id, grp, arm, propensity (float, may be null for
    a campaign), as_of, window_end, closed, days_remaining, in_data (the customer is in the load's
    ``customers`` table; False: the outcomes are unknown, not zero), login, trade, deposit, commission_fen,
    pre_login, pre_trade, pre_deposit, pre_commission_fen, back_to_effective, pre_back_to_effective,
    success, pre_success.
    """

    kind: str  # "playbook" or "campaign"
    id: str
    event: str
    window_days: int
    data_end: dt.date | None
    rows: pa.Table
    runs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # caveats: no status history, no tags for a date, ...
    tier_names: dict[str, str] = field(default_factory=dict)  # tier id -> zh name (from the tier scheme)

    @property
    def open_windows(self) -> list[dict[str, Any]]:
        return [r for r in self.runs if not r["closed"]]


def _events(a: ir.Table, ev: ir.Table, name: str, value: ir.Value | None = None, *,
            commission: bool = False) -> ir.Table:
    """Per ``_row``: count of dated events ``ev`` (``_c``, ``_d``) in the window and the pre-period.

    With ``commission`` also the sum of ``ev._v`` in each (``commission_fen``, ``pre_commission_fen``).
    """
    j = a.join(ev, [a.customer_id == ev._c, ev._d >= a.p_start, ev._d <= a.w_end])
    inside = (j._d >= j.w_start) & (j._d <= j.w_end)
    before = (j._d >= j.p_start) & (j._d <= j.p_end)
    aggs = {name: j._d.count(where=inside), f"pre_{name}": j._d.count(where=before)}
    if commission:
        aggs.update(commission_fen=j._v.sum(where=inside), pre_commission_fen=j._v.sum(where=before))
    return j.group_by("_row").agg(**aggs)


def _balances(a: ir.Table, b: ir.Table, threshold_fen: int, comparison: str) -> ir.Table:
    """Per ``_row``, from one join of the snapshots up to the window's end: deposit, back to effective, and both
    in the pre-period (the module docstring's definitions, in a single pass)."""
    j = a.join(b, [a.customer_id == b._c, b._d <= a.w_end])
    ok = (j._total >= threshold_fen) if comparison == ">=" else (j._total > threshold_fen)
    inside = (j._d >= j.w_start) & (j._d <= j.w_end)
    before = (j._d >= j.p_start) & (j._d <= j.p_end)
    g = j.group_by("_row").agg(
        _base=j._cash.argmax(j._d, where=j._d <= j.as_of), _top=j._cash.max(where=inside),
        _pbase=j._cash.argmax(j._d, where=j._d <= j._pre_base), _ptop=j._cash.max(where=before),
        back_to_effective=j._d.count(where=ok & inside), pre_back_to_effective=j._d.count(where=ok & before),
    )
    return g.select("_row", "back_to_effective", "pre_back_to_effective",
                    deposit=(g._top > g._base).fill_null(False).cast("int64"),
                    pre_deposit=(g._ptop > g._pbase).fill_null(False).cast("int64"))


def _known(a: ir.Table, customers: ir.Table) -> ir.Table:
    """Per ``_row``: 1 when the customer is in the load's ``customers`` table."""
    c = customers.select(_c=customers.customer_id).distinct()
    j = a.join(c, a.customer_id == c._c)
    return j.group_by("_row").agg(in_data=j._c.count())


_ASSIGN_SCHEMA = pa.schema([("run_id", pa.int64()), ("customer_id", pa.string()), ("grp", pa.string()),
                            ("arm", pa.string()), ("propensity", pa.float64()), ("as_of", pa.date32())])


def _assignments(rows: list[dict[str, Any]] | pa.Table) -> pa.Table:
    """The assignments as an Arrow table of :data:`_ASSIGN_SCHEMA` plus ``_row`` (their order)."""
    if isinstance(rows, pa.Table):
        missing = [n for n in _ASSIGN_SCHEMA.names if n not in rows.column_names]
        if missing:
            raise MeasureError(f"assignments lack column(s) {', '.join(missing)}")
        t = pa.table({n: rows.column(n).cast(_ASSIGN_SCHEMA.field(n).type) for n in _ASSIGN_SCHEMA.names},
                     schema=_ASSIGN_SCHEMA)
    else:
        t = pa.Table.from_pylist([{n: r[n] for n in _ASSIGN_SCHEMA.names} for r in rows], schema=_ASSIGN_SCHEMA)
    if t.num_rows and t.column("as_of").null_count:
        raise MeasureError("an assignment has no as-of date: its window cannot be placed")
    return t.append_column("_row", pa.array(np.arange(t.num_rows, dtype=np.int64)))


def _windows_frame(windows: dict[dt.date, Window], remaining: dict[dt.date, int], beyond: dt.date) -> pa.Table:
    """One row per as-of date: the window's and the pre-period's bounds, whether it is closed."""
    days = sorted(windows)
    w = [windows[d] for d in days]
    return pa.table({
        "_as_of": pa.array(days, pa.date32()),
        "w_start": pa.array([x.start or beyond for x in w], pa.date32()),
        "w_end": pa.array([x.end or beyond for x in w], pa.date32()),
        "window_end": pa.array([x.end for x in w], pa.date32()),
        "p_start": pa.array([x.pre_start for x in w], pa.date32()),
        "p_end": pa.array([x.pre_end for x in w], pa.date32()),
        "_pre_base": pa.array([x.pre_start - dt.timedelta(days=1) for x in w], pa.date32()),
        "days_remaining": pa.array([remaining[d] for d in days], pa.int64()),
        "closed": pa.array([remaining[d] == 0 for d in days], pa.bool_()),
    })


def _activations(ws: Workspace, con: BaseBackend, lo: dt.date, hi: dt.date) -> ir.Table | None:
    """Dated ``dormant -> another status`` transitions of the status history (None: no history computed)."""
    from panhuo.status.history import StatusStore, transitions

    if not StatusStore.of(ws).dates():
        return None
    ev = transitions(ws, con, lo, hi)
    ev = ev.filter((ev.from_status == "dormant") & ev.to_status.notnull() & (ev.to_status != "dormant"))
    return ev.select(_c=ev.customer_id, _d=ev.date.cast("date"))


def _tiers(ws: Workspace, con: BaseBackend, days: list[dt.date]) -> tuple[ir.Table | None, list[str], dict[str, str]]:
    """``(_c, _as_of, tier)`` for every as-of date whose tags are stored (the tier on that day), notes, tier names.

    The tier is the first matching tier of the workspace's scheme (``tiers.yaml``, else panhuo's) on
    the latest tag snapshot on or before the as-of date: the customer's tier when assigned.
    """
    from panhuo.errors import WarehouseError
    from panhuo.segments.audience import audience
    from panhuo.segments.errors import SegmentError
    from panhuo.segments.tiers import load_tiers, tier_expr

    parts: list[ir.Table] = []
    notes: list[str] = []
    names: dict[str, str] = {}
    own = ws.root / "tiers.yaml"
    for day in days:
        try:
            aud = audience(ws, con, day)
        except WarehouseError as exc:
            notes.append(f"no tier for assignments of {day.isoformat()}: {exc}")
            continue
        try:
            scheme = load_tiers(own, aud.symbols, "tiers.yaml") if own.exists() else load_tiers(symbols=aud.symbols)
            t = aud.table
            parts.append(t.select(_c=t.customer_id, _as_of=ibis.literal(day, type="date"),
                                  tier=tier_expr(scheme, t, aud.symbols, aud.as_of)))
        except SegmentError as exc:  # the stored tags lack what the scheme reads: no tier, said plainly
            notes.append(f"no tier for assignments of {day.isoformat()}: the tier scheme cannot be evaluated "
                         f"on the tags of {aud.as_of}: {exc}")
            continue
        names.update({t.id: t.zh for t in scheme.tiers})
    if not parts:
        return None, notes, names
    return ibis.union(*parts) if len(parts) > 1 else parts[0], notes, names


def measure_rows(ws: Workspace, con: BaseBackend, rows: list[dict[str, Any]] | pa.Table, days: int,
                 cal: TradingCalendar | None = None, *, tiers: bool = False, notes: list[str] | None = None,
                 tier_names: dict[str, str] | None = None,
                 ) -> tuple[pa.Table, dict[dt.date, Window], dt.date | None]:
    """Outcomes of ``rows`` (run_id, customer_id, grp, arm, propensity, as_of) in ``days``-trading-day windows.

    Set-based: the assignments go to the engine as one Arrow table and every outcome is one join of it
    with the load (trades, app events, balances, the status history) within the windows, aggregated
    per row; nothing loops over rows in Python. ``rows`` may be a list of dicts or an Arrow table.
    With ``tiers`` the customer's tier on the as-of date is added (null when no tags are stored then);
    caveats are appended to ``notes`` and tier display names put in ``tier_names`` when given.
    """
    from panhuo.calendar.service import calendar_for

    cal = cal or calendar_for(ws)
    notes = notes if notes is not None else []
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    end = data_end(wh, con)
    assign = _assignments(rows)
    as_ofs = sorted(d for d in pc.unique(assign.column("as_of")).to_pylist() if d is not None)
    windows = {d: window_for(cal, d, days) for d in as_ofs}
    remaining = {d: w.remaining(cal, end) for d, w in windows.items()}
    beyond = dt.date(cal.last_year + 1, 1, 1)  # a window past the calendar: no data can fall in it
    if not assign.num_rows:
        return _empty_outcomes(tiers), windows, end
    lo = min(w.pre_start for w in windows.values())
    hi = max(w.end or beyond for w in windows.values())
    wins = ibis.memtable(_windows_frame(windows, remaining, beyond))
    base = ibis.memtable(assign)
    a = base.join(wins, base.as_of == wins._as_of).drop("_as_of")

    t = wh.table(con, "trades")
    t = t.filter((t.trade_date >= lo) & (t.trade_date <= hi))
    t = t.select(_c=t.customer_id, _d=t.trade_date.cast("date"),
                 _v=ibis.ifelse(t.asset_class.isin(COMMISSION_CLASSES), t.commission_fen.cast("int64"), 0))
    e = wh.table(con, "app_events")
    e = e.filter(e.event == "login")
    e = e.select(_c=e.customer_id, _d=e.event_time.date())
    e = e.filter((e._d >= lo) & (e._d <= hi))
    b = wh.table(con, "balances")
    b = b.filter(b.as_of <= hi)
    b = b.select(_c=b.customer_id, _d=b.as_of.cast("date"), _cash=b.cash_fen.cast("int64"),
                 _total=(b.cash_fen.fill_null(0) + b.securities_value_fen.fill_null(0)
                         + b.product_value_fen.fill_null(0)).cast("int64"))
    rules = ws.settings.status
    threshold = decimal_to_fen(rules.effective_min_assets)

    parts = [
        _events(a, t, "trade", value=None, commission=True),
        _events(a, e, "login"),
        _balances(a, b, threshold, rules.effective_comparison),
        _known(a, wh.table(con, "customers")),
    ]
    act = _activations(ws, con, lo, hi)
    if act is not None:
        parts.append(_events(a, act, "activated"))
    else:
        notes.append("no account status history is computed (`panhuo status`): the 'activated' event is unknown")
    out = a.select("_row", "run_id", "customer_id", "grp", "arm", "propensity", "as_of", "window_end", "closed",
                   "days_remaining")
    if tiers:
        tt, tier_notes, names = _tiers(ws, con, as_ofs)
        notes.extend(tier_notes)
        if tier_names is not None:
            tier_names.update(names)
        if tt is not None:
            j = out.left_join(tt, [out.customer_id == tt._c, out.as_of == tt._as_of])
            out = j.select(*out.columns, tier=j.tier)
        else:
            out = out.mutate(tier=ibis.null("string"))
    for part in parts:
        j = out.left_join(part, out._row == part._row)
        out = j.select(*out.columns, *[j[c] for c in part.columns if c != "_row"])
    got = out.order_by("_row").to_pyarrow()
    return _finish(got, tiers, act is not None), windows, end


_FLAGS = ("login", "trade", "deposit", "pre_login", "pre_trade", "pre_deposit", "back_to_effective",
          "pre_back_to_effective", "activated", "pre_activated")
_OUT_SCHEMA = pa.schema([("run_id", pa.int64()), ("customer_id", pa.string()), ("grp", pa.string()),
                         ("arm", pa.string()), ("propensity", pa.float64()), ("as_of", pa.date32()),
                         ("window_end", pa.date32()), ("closed", pa.bool_()), ("days_remaining", pa.int64()),
                         ("in_data", pa.bool_()),
                         ("login", pa.bool_()), ("trade", pa.bool_()), ("deposit", pa.bool_()),
                         ("commission_fen", pa.int64()), ("pre_login", pa.bool_()), ("pre_trade", pa.bool_()),
                         ("pre_deposit", pa.bool_()), ("pre_commission_fen", pa.int64()),
                         ("back_to_effective", pa.bool_()), ("pre_back_to_effective", pa.bool_()),
                         ("activated", pa.bool_()), ("pre_activated", pa.bool_())])


def _empty_outcomes(tiers: bool) -> pa.Table:
    schema = _OUT_SCHEMA.append(pa.field("tier", pa.string())) if tiers else _OUT_SCHEMA
    return schema.empty_table()


def _finish(got: pa.Table, tiers: bool, activation_known: bool) -> pa.Table:
    """The engine's result in the documented columns: counts to flags, nulls (no event) to 0/False."""
    cols: dict[str, pa.Array] = {}
    for f in _OUT_SCHEMA:
        name = f.name
        if name == "in_data":
            col = pc.greater(pc.fill_null(got.column("in_data").cast(pa.int64()), 0), 0)
        elif name in ("activated", "pre_activated") and not activation_known:
            col = pa.nulls(got.num_rows, pa.bool_())  # unknown, not "did not happen"
        elif name in _FLAGS:
            col = pc.greater(pc.fill_null(got.column(name).cast(pa.int64()), 0), 0)
        elif name in ("commission_fen", "pre_commission_fen"):
            col = pc.fill_null(got.column(name).cast(pa.int64()), 0)
        else:
            col = got.column(name).cast(f.type)
        cols[name] = col
    schema = _OUT_SCHEMA
    if tiers:
        cols["tier"] = got.column("tier").cast(pa.string())
        schema = schema.append(pa.field("tier", pa.string()))
    return pa.table(cols, schema=schema)


def _with_success(t: pa.Table, event: str) -> pa.Table:
    if event not in MEASURED_EVENTS:
        raise MeasureError(f"success event {event!r} is not measured yet: panhuo measures "
                           f"{', '.join(MEASURED_EVENTS)}")
    if t.num_rows and t.column(event).null_count == t.num_rows:
        raise MeasureError(f"success event {event!r} cannot be measured: no account status history is computed "
                           "(run `panhuo status --as-of DATE` over the window's dates first)")
    t = t.append_column("success", t[event])
    return t.append_column("pre_success", t[f"pre_{event}"])


def _run_summaries(t: pa.Table, windows: dict[dt.date, Window], keyed: dict[int, dt.date]) -> list[dict[str, Any]]:
    """One line per (run, as-of date): the window, whether it is closed, how many assignments (set-based)."""
    run = t.column("run_id").to_numpy(zero_copy_only=False).astype(np.int64)
    day = t.column("as_of").cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
    _, first, count = np.unique(run * 1_000_000 + day, return_index=True, return_counts=True)  # (run, date)
    heads = t.select(["run_id", "as_of", "closed", "days_remaining"]).take(pa.array(first)).to_pylist()
    seen: dict[tuple[int, dt.date], dict[str, Any]] = {}
    for r, n in zip(heads, count.tolist(), strict=True):  # closed/remaining depend on the date alone
        w = windows[r["as_of"]]
        seen[(r["run_id"], r["as_of"])] = {"run_id": r["run_id"], "as_of": r["as_of"], "window_start": w.start,
                                          "window_end": w.end, "closed": r["closed"],
                                          "days_remaining": r["days_remaining"], "assignments": n}
    for run_id, as_of in keyed.items():  # runs without assignments still show
        if not any(k[0] == run_id for k in seen):
            w = windows.get(as_of)
            seen[(run_id, as_of)] = {"run_id": run_id, "as_of": as_of, "window_start": w and w.start,
                                     "window_end": w and w.end, "closed": None, "days_remaining": None,
                                     "assignments": 0}
    return sorted(seen.values(), key=lambda r: (r["as_of"], r["run_id"]))


def fetch_raw(session: Any, stmt: Any) -> list[tuple[Any, ...]]:
    """All rows of a SELECT as plain DBAPI tuples on the session's own connection (its transaction).

    For the million-row reads of measurement: the statement is compiled once with its parameters
    inlined and fetched through the driver's cursor, skipping per-row result processing (several
    times faster than ORM/Core rows; the selected columns are plain ints, floats and strings).
    """
    conn = session.connection()
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cur = conn.connection.dbapi_connection.cursor()
    try:
        cur.execute(sql)
        return list(cur.fetchall())
    finally:
        cur.close()


def rows_to_arrow(rows: list[tuple[Any, ...]], fields: list[tuple[str, pa.DataType]]) -> pa.Table:
    """DBAPI tuples as an Arrow table of the given columns (converted in C, not column by column in Python)."""
    st = pa.struct(fields)
    if not rows:
        return pa.schema(fields).empty_table()
    return pa.Table.from_struct_array(pa.array(rows, type=st))


def _playbook_assignments(ws: Workspace, playbook_id: str) -> tuple[str, int, dict[int, dt.date], pa.Table]:
    """The success event, window, runs (id -> as-of) and assignments (Arrow) of a playbook's finished runs."""
    from sqlalchemy import select

    from panhuo.runs.models import Run, assignment_rows
    from panhuo.store import open_store
    from panhuo.store.models import Playbook, PlaybookVersion

    store = open_store(ws)
    try:
        with store.session() as s:
            if s.get(Playbook, playbook_id) is None:
                raise MeasureError(f"no playbook {playbook_id!r} in the store (see `panhuo playbook list`)")
            runs = s.execute(select(Run).where(Run.playbook_id == playbook_id, Run.state == "done")
                             .order_by(Run.as_of, Run.id)).scalars().all()
            if not runs:
                raise MeasureError(f"playbook {playbook_id!r} has no finished runs yet: nothing to measure "
                                   f"(run it with `panhuo run {playbook_id}`)")
            success: dict[tuple[str, int], tuple[str, int]] = {}
            for r in runs:
                v = s.get(PlaybookVersion, (playbook_id, r.playbook_version))
                spec = ((v.parsed if v else {}) or {}).get("method", {}).get("success", {})
                success[(playbook_id, r.playbook_version)] = (spec.get("event", "trade"),
                                                              int(spec.get("within_trading_days", 10)))
            kinds = set(success.values())
            if len(kinds) > 1:
                raise MeasureError(f"playbook {playbook_id!r} changed its success event or window between versions "
                                   f"({sorted(kinds)}): measuring them together would mix two definitions")
            event, days = kinds.pop()
            as_of = {r.id: r.as_of for r in runs}
            got = fetch_raw(s, assignment_rows(list(as_of)))
    finally:
        store.dispose()
    got_t = rows_to_arrow(got, [("run_id", pa.int64()), ("customer_id", pa.string()), ("grp", pa.string()),
                                ("arm", pa.string()), ("propensity", pa.float64()), ("seed", pa.string())])
    run_ids = got_t.column("run_id")
    order = sorted(as_of)
    idx = pc.index_in(run_ids, value_set=pa.array(order, pa.int64()))
    dates = pc.take(pa.array([as_of[r] for r in order], pa.date32()), idx)
    table = pa.table({"run_id": run_ids, "customer_id": got_t.column("customer_id"), "grp": got_t.column("grp"),
                      "arm": got_t.column("arm"), "propensity": got_t.column("propensity"), "as_of": dates},
                     schema=_ASSIGN_SCHEMA)
    return event, days, as_of, table


def playbook_outcomes(ws: Workspace, con: BaseBackend, playbook_id: str, *, tiers: bool = False) -> Outcomes:
    """Outcomes of every assignment of every finished run of ``playbook_id``; MeasureError when it has none.

    With ``tiers`` each row also carries the customer's tier on the run's as-of date (``tier``).
    """
    event, days, as_of, rows = _playbook_assignments(ws, playbook_id)
    if event not in MEASURED_EVENTS:
        raise MeasureError(f"playbook {playbook_id!r}: success event {event!r} is not measured yet: panhuo measures "
                           f"{', '.join(MEASURED_EVENTS)}")
    from panhuo.calendar.service import calendar_for

    cal = calendar_for(ws)
    notes: list[str] = []
    names: dict[str, str] = {}
    table, windows, end = measure_rows(ws, con, rows, days, cal, tiers=tiers, notes=notes, tier_names=names)
    for d in set(as_of.values()):
        windows.setdefault(d, window_for(cal, d, days))
    table = _with_success(table, event)
    return Outcomes("playbook", playbook_id, event, days, end, table, _run_summaries(table, windows, as_of),
                    notes=notes, tier_names=names)


def _campaign_rows(got: pa.Table) -> pa.Table:
    """contact_history rows (customer_id, sent, grp, propensity, benefit) as assignments, vectorised.

    The arm of a treated row is its benefit (none: the default arm); a row's propensity is the logged
    chance of being treated for a treated row and one minus it otherwise, or, when not logged, the
    share of the row's group in the campaign.
    """
    n = got.num_rows
    grp = got.column("grp").combine_chunks()
    counts = pc.value_counts(grp)
    shares = {v.as_py(): c.as_py() / n for v, c in zip(counts.field("values"), counts.field("counts"), strict=True)}
    share = pc.take(pa.array([shares[g] for g in shares.keys()], pa.float64()),
                    pc.index_in(grp, value_set=pa.array(list(shares), pa.string())))
    treated = pc.equal(grp, "treated")
    logged = got.column("propensity").combine_chunks().cast(pa.float64())
    own = pc.if_else(treated, logged, pc.subtract(1.0, logged))
    prop = pc.if_else(pc.is_null(logged), share, own)
    benefit = got.column("benefit").combine_chunks().cast(pa.string())
    has = pc.and_(treated, pc.fill_null(pc.not_equal(benefit, ""), False))
    arm = pc.if_else(has, benefit, pa.nulls(n, pa.string()))
    sent = got.column("sent").combine_chunks()
    as_of = sent.cast(pa.date32()) if pa.types.is_timestamp(sent.type) else sent.cast(pa.date32())
    return pa.table({"run_id": pa.array(np.zeros(n, dtype=np.int64)), "customer_id": got.column("customer_id"),
                     "grp": grp, "arm": arm, "propensity": prop, "as_of": as_of}, schema=_ASSIGN_SCHEMA)


def campaign_outcomes(ws: Workspace, con: BaseBackend, campaign_id: str, *, window_days: int = DEFAULT_CAMPAIGN_WINDOW,
                      event: str = "trade", tiers: bool = False) -> Outcomes:
    """Outcomes of a past campaign's ``contact_history`` rows; the window starts after each row's sent date.

    contact_history's ``propensity`` is the chance of being treated (DESIGN.md section 3): a holdout row's
    weight uses ``1 - propensity``, the probability of its own group. A null propensity is taken as
    the row's group share within the campaign (a simple random split).
    """
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    if not wh.has_table("contact_history"):
        raise MeasureError("the load in force has no contact_history table: no past campaign to measure")
    h = wh.table(con, "contact_history")
    h = h.filter(h.campaign_id == campaign_id)
    got = h.select(customer_id=h.customer_id, sent=h.sent_at, grp=h["group"], propensity=h.propensity,
                   benefit=h.benefit).to_pyarrow()
    if not got.num_rows:
        known = wh.table(con, "contact_history").campaign_id.nunique().execute()
        raise MeasureError(f"unknown campaign {campaign_id!r}: contact_history has no row for it "
                           f"({known} campaign(s) known)")
    rows = _campaign_rows(got)
    if event not in MEASURED_EVENTS:
        raise MeasureError(f"success event {event!r} is not measured yet: panhuo measures {', '.join(MEASURED_EVENTS)}")
    from panhuo.calendar.service import calendar_for

    cal = calendar_for(ws)
    notes: list[str] = []
    names: dict[str, str] = {}
    table, windows, end = measure_rows(ws, con, rows, window_days, cal, tiers=tiers, notes=notes, tier_names=names)
    table = _with_success(table, event)
    runs = [{**r, "run_id": None} for r in _run_summaries(table, windows, {})]
    return Outcomes("campaign", campaign_id, event, window_days, end, table, runs, notes=notes, tier_names=names)
