"""The data of the reactivation propensity model: the time split, features, labels and the leak check.

Time split (all in trading days of the one calendar; ``T`` is the training date, the last session on
or before ``--as-of``, and must not be after the last data date)::

    backtest anchor  Ab = T - 150   features: tags at Ab; labels in (Ab, Ab + 60] = (T-150, T-90]
    holdout anchor   Ah = T - 60    features: tags at Ah; labels in (Ah, Ah + 60] = (T-60, T]
    model anchor     Am = T - 90    features: tags at Am; labels in (Am, Am + 60] = (T-90, T-30]

The stored model is trained at ``Am`` and applied at ``T`` or later (90 trading days after its
anchor). Its out-of-time quality is measured by doing the same thing one step back: a model trained
at ``Ab`` (same options) is applied at ``Ah = Ab + 90``. Every outcome it was trained on ends at
``T - 90``, before the holdout features' date ``T - 60``; every holdout outcome lies strictly after
it. The holdout AUC, Brier score and reliability table are therefore an honest estimate of how the
stored model does on the customers it scores.

Population: customers whose ``status`` tag is ``sleeping`` at the anchor. Label 1 ("reactivated")
when, strictly after the anchor and up to the end of the window, the customer trades (any
``trades`` row) or is back to effective (a ``balances`` snapshot whose total assets meet the
effective rule of ``panhuo.yaml``; snapshots are month-ends in a typical export, so this reads the
month-ends inside the window).

Features: the stored tag snapshot at the anchor (computed, with the account status it needs, when
missing), minus tags that are constant on the population (``status``), redundant bands
(``asset_band``, ``age_band``), ``status_since`` and ``months_in_status`` (they depend on which
dates the status history was computed for: in a workspace whose first status date is the anchor,
``status_since`` is the anchor for everyone, a skew between training and scoring) and tags read
from *undated* customer attributes the export gives only as of the export day (``app_user``,
``reach_*``, ``advisor_served``, ``risk_level``): a customer who came back may have installed the
app or been given an advisor since the anchor, which the history cannot tell. Dates become days
before the anchor; booleans 0/1; strings category codes.

No leakage, checked in code every time features are read (:func:`check_no_leakage`): the snapshot
is exactly the anchor's and from the load in force, every date tag is on or before the anchor, and
the tags recomputed from the tables with every row after the anchor removed are equal to the stored
ones, feature by feature.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from panhuo.errors import LeakageError, WarehouseError
from panhuo.status.history import StatusStore, compute_status, load_status
from panhuo.status.rules import status_expr, to_fen
from panhuo.tags.catalogue import TAGS, tags_expr
from panhuo.tags.store import compute_tags, load_tags, tag_context, tag_snapshots
from panhuo.warehouse import Warehouse

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from panhuo.calendar import TradingCalendar
    from panhuo.config import Workspace

__all__ = [
    "EXCLUDED_TAGS",
    "HOLDOUT_OFFSET",
    "HORIZON",
    "MODEL_OFFSET",
    "POPULATION",
    "AnchorData",
    "LeakageError",
    "TimeSplit",
    "anchor_data",
    "categorical_names",
    "check_no_leakage",
    "data_range",
    "encode_features",
    "ensure_tags",
    "feature_columns",
    "labels",
    "time_split",
]

HORIZON = 60  # trading days in the label window
MODEL_OFFSET = 90  # trading days from the model anchor to the date it is applied
HOLDOUT_OFFSET = 60  # trading days from the holdout anchor to T (= HORIZON: the last full window)
POPULATION = "sleeping"

#: tags never used as features (see the module docstring for why)
EXCLUDED_TAGS: dict[str, str] = {
    "status": "constant on the population",
    "status_since": "depends on which dates the status was computed for, not only on the data",
    "months_in_status": "depends on which dates the status was computed for, not only on the data",
    "asset_band": "a band of total_assets",
    "age_band": "a band of age",
    "app_user": "undated customer attribute (customers.app_user)",
    "reach_app_push": "undated customer attribute (customers.app_user)",
    "reach_sms": "undated customer attribute (customers.phone)",
    "reach_wechat": "undated customer attribute (customers.wechat_bound)",
    "reach_call": "undated customer attribute (customers.phone)",
    "advisor_served": "undated customer attribute (customers.advisor_id)",
    "risk_level": "undated customer attribute (customers.risk_level)",
}

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class TimeSplit:
    """The anchors and label windows of one training run (see the module docstring)."""

    as_of: dt.date  # T: the last session on or before the requested date
    backtest_anchor: dt.date
    backtest_label_end: dt.date
    holdout_anchor: dt.date
    holdout_label_end: dt.date
    model_anchor: dt.date
    model_label_end: dt.date

    def to_dict(self) -> dict[str, str]:
        return {k: v.isoformat() for k, v in dataclasses.asdict(self).items()}


def data_range(ws: Workspace, con: BaseBackend) -> tuple[dt.date, dt.date]:
    """(first balance snapshot date, last date of any balance snapshot or trade) of the load in force.

    Raises
    ------
    WarehouseError
        Nothing loaded, or no balance snapshot at all.
    """
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    b = wh.table(con, "balances")
    t = wh.table(con, "trades")
    row = b.aggregate(first=b.as_of.min(), last=b.as_of.max()).to_pyarrow().to_pylist()[0]
    last_trade = t.aggregate(last=t.trade_date.max()).to_pyarrow().to_pylist()[0]["last"]
    if row["first"] is None:
        raise WarehouseError("no balance snapshots in the load in force: the propensity model needs them")
    last = max(d for d in (row["last"], last_trade) if d is not None)
    return row["first"], last


def time_split(cal: TradingCalendar, as_of: dt.date, first_data: dt.date, last_data: dt.date) -> TimeSplit:
    """The anchors for training at ``as_of``, checked against the data range.

    Raises
    ------
    WarehouseError
        ``as_of`` is after the last data date (the newest labels would be cut short), or the
        backtest anchor is before the first balance snapshot (the data does not reach far enough
        back).
    CalendarError
        An anchor falls outside the trading calendar.
    """
    t = cal.add_trading_days(as_of, 0)
    if t > last_data:
        raise WarehouseError(
            f"training at {as_of.isoformat()} needs outcomes up to {t.isoformat()}, but the data ends on "
            f"{last_data.isoformat()}: train at {last_data.isoformat()} or earlier"
        )
    holdout = cal.add_trading_days(t, -HOLDOUT_OFFSET)
    backtest = cal.add_trading_days(holdout, -MODEL_OFFSET)
    model = cal.add_trading_days(t, -MODEL_OFFSET)
    split = TimeSplit(
        as_of=t,
        backtest_anchor=backtest,
        backtest_label_end=cal.add_trading_days(backtest, HORIZON),
        holdout_anchor=holdout,
        holdout_label_end=cal.add_trading_days(holdout, HORIZON),
        model_anchor=model,
        model_label_end=cal.add_trading_days(model, HORIZON),
    )
    if backtest < first_data:
        raise WarehouseError(
            f"the data does not reach far enough back: training at {t.isoformat()} needs balances from "
            f"{backtest.isoformat()} ({HOLDOUT_OFFSET + MODEL_OFFSET} trading days earlier, the backtest "
            f"anchor), but the first balance snapshot is {first_data.isoformat()}"
        )
    # the split's own invariants: training outcomes end before the holdout features' date, every
    # window ends on or before T
    if not (split.backtest_label_end < split.holdout_anchor and split.holdout_label_end <= t
            and split.model_label_end <= t):
        raise LeakageError(f"inconsistent time split {split.to_dict()}")
    return split


# -- tags at an anchor -------------------------------------------------------------------
def _status_ok(ws: Workspace, day: dt.date, load_id: str) -> bool:
    entry = StatusStore.of(ws).manifest()["dates"].get(day.isoformat())
    return bool(entry and entry.get("snapshot") and entry.get("load_id") in (None, load_id))


def ensure_tags(ws: Workspace, con: BaseBackend, day: dt.date, note: Progress | None = None) -> None:
    """Compute the status (without backfill) and the tags at ``day`` unless stored from the load in force."""
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    load_id = wh.manifest().load_id
    snap = {s.as_of: s for s in tag_snapshots(ws)}.get(day)
    if snap is not None and snap.load_id == load_id and _status_ok(ws, day, load_id):
        return
    if not _status_ok(ws, day, load_id):
        if note:
            note(f"status {day.isoformat()}", 0, 1)
        compute_status(ws, con, day, backfill=False)
    if note:
        note(f"tags {day.isoformat()}", 0, 1)
    compute_tags(ws, con, day)


def feature_columns() -> list[tuple[str, str]]:
    """``(stored tag column, kind)`` of every tag used as a feature, in catalogue order."""
    return [(s.stored, s.kind) for s in TAGS if s.name not in EXCLUDED_TAGS]


def _feature_name(column: str, kind: str) -> str:
    return f"days_since_{column}" if kind == "date" else column


def encode_features(
    table: pa.Table, anchor: dt.date, levels: dict[str, list[str]] | None = None
) -> tuple[np.ndarray, list[str], dict[str, list[str]]]:
    """The feature matrix of a tag table: (float matrix, feature names, category levels per string feature).

    ``levels`` fixes the category codes (a stored model's); when None they are learnt from ``table``
    (sorted distinct values). A value not in ``levels`` becomes missing (NaN).
    """
    learnt = levels is None
    out_levels: dict[str, list[str]] = {} if learnt else dict(levels)
    cols: list[np.ndarray] = []
    names: list[str] = []
    anchor_np = np.datetime64(anchor, "D")
    for column, kind in feature_columns():
        arr = table.column(column)
        if kind == "date":
            days = arr.cast(pa.date32()).to_numpy(zero_copy_only=False)
            values = (anchor_np - days.astype("datetime64[D]")).astype("timedelta64[D]").astype(float)
            values[np.isnat(days)] = np.nan
        elif kind == "string":
            text = arr.cast(pa.string())
            if learnt:
                out_levels[column] = sorted(v for v in pc.unique(text).to_pylist() if v is not None)
            codes = pc.index_in(text, value_set=pa.array(out_levels.get(column, []), pa.string()))
            values = codes.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        elif kind == "bool":
            values = arr.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        else:  # money (fen), int, float
            values = arr.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        cols.append(np.asarray(values, dtype=float))
        names.append(_feature_name(column, kind))
    matrix = np.column_stack(cols) if cols else np.empty((table.num_rows, 0))
    return matrix, names, out_levels


def categorical_names() -> list[str]:
    return [c for c, kind in feature_columns() if kind == "string"]


# -- labels -----------------------------------------------------------------------------
def labels(ws: Workspace, con: BaseBackend, anchor: dt.date, end: dt.date, customer_ids: pa.Array) -> np.ndarray:
    """1 where the customer traded or was back to effective in ``(anchor, end]``, else 0 (in the given order)."""
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    rules = ws.settings.status
    lo, hi = ibis.literal(anchor, type="date"), ibis.literal(end, type="date")
    t = wh.table(con, "trades")
    t = t.filter((t.trade_date > lo) & (t.trade_date <= hi)).select(cid=t.customer_id.cast("string"))
    b = wh.table(con, "balances")
    b = b.filter((b.as_of > lo) & (b.as_of <= hi))
    total = b.cash_fen.fill_null(0) + b.securities_value_fen.fill_null(0) + b.product_value_fen.fill_null(0)
    op = operator.ge if rules.effective_comparison == ">=" else operator.gt
    effective = op(total, ibis.literal(to_fen(rules.effective_min_assets), "int64"))
    b = b.filter(effective).select(cid=b.customer_id.cast("string"))
    ids = ibis.union(t, b, distinct=True).to_pyarrow().column("cid")
    return pc.is_in(customer_ids, value_set=ids.combine_chunks()).to_numpy(zero_copy_only=False).astype(float)


# -- the leak check -----------------------------------------------------------------------
def _truncated_tags(ws: Workspace, con: BaseBackend, anchor: dt.date) -> pa.Table:
    """Every tag at ``anchor`` recomputed from the tables with each row after ``anchor`` removed."""
    ctx = tag_context(ws, con, anchor)
    day = ibis.literal(anchor, type="date")
    midnight = ibis.literal(dt.datetime.combine(anchor + dt.timedelta(days=1), dt.time()), type="timestamp")
    customers = ctx.customers.filter(ctx.customers.open_date <= day)
    balances = ctx.balances.filter(ctx.balances.as_of <= day)
    trades = ctx.trades.filter(ctx.trades.trade_date <= day)
    events = ctx.app_events.filter(ctx.app_events.event_time.cast("timestamp") < midnight)
    perm = ctx.contact_permissions
    perm = perm.filter(perm.updated_at.isnull() | (perm.updated_at.cast("timestamp") < midnight))
    contacts = ctx.contacts.filter(ctx.contacts.sent_at < midnight) if ctx.contacts is not None else None
    status = status_expr(customers, balances, trades, anchor, ws.settings.status)
    stored = load_status(ws, con, anchor)
    since = stored.select(_ssid=stored.customer_id, status_since=stored.status_since)
    status = status.left_join(since, status.customer_id == since._ssid).drop("_ssid")
    ctx = dataclasses.replace(ctx, customers=customers, balances=balances, trades=trades, app_events=events,
                              contact_permissions=perm, contacts=contacts, status=status)
    return tags_expr(ctx).to_pyarrow()


def check_no_leakage(ws: Workspace, con: BaseBackend, anchor: dt.date, stored: pa.Table) -> None:
    """Assert the features at ``anchor`` come only from data on or before it (see the module docstring).

    ``stored`` is the tag snapshot read for the anchor (with its ``as_of`` column).

    Raises
    ------
    LeakageError
        The snapshot is not the anchor's, a date tag is after the anchor, or a feature recomputed
        from the truncated tables differs from the stored one (the message names the features).
    """
    days = pc.unique(stored.column("as_of")).to_pylist()
    if days != [anchor]:
        raise LeakageError(f"features for anchor {anchor.isoformat()} were read from the tag snapshot of {days}")
    for column, kind in feature_columns():
        if kind == "date":
            latest = pc.max(stored.column(column)).as_py()
            if latest is not None and latest > anchor:
                raise LeakageError(f"tag {column} at {anchor.isoformat()} holds {latest.isoformat()}, after the anchor")
    fresh = _truncated_tags(ws, con, anchor)
    a = stored.sort_by("customer_id")
    b = fresh.sort_by("customer_id")
    if a.column("customer_id").to_pylist() != b.column("customer_id").to_pylist():
        raise LeakageError(f"the customers of the tag snapshot at {anchor.isoformat()} differ from those "
                           "opened on or before it")
    if a.column("status").to_pylist() != b.column("status").to_pylist():
        raise LeakageError(f"the stored status at {anchor.isoformat()} differs from the status recomputed "
                           "from data on or before it")
    xa, names, levels = encode_features(a, anchor)
    xb, _, _ = encode_features(b, anchor, levels)
    differ = [n for i, n in enumerate(names) if not np.array_equal(xa[:, i], xb[:, i], equal_nan=True)]
    if differ:
        raise LeakageError(f"features at {anchor.isoformat()} change when every row after it is removed: "
                           f"{', '.join(differ)}")


# -- one anchor's rows --------------------------------------------------------------------
@dataclass
class AnchorData:
    """The population at one anchor: tag rows (sleeping customers) and, when a window is given, labels."""

    anchor: dt.date
    table: pa.Table  # the tag rows of the population, sorted by customer_id
    label: np.ndarray | None
    label_end: dt.date | None

    @property
    def rows(self) -> int:
        return self.table.num_rows


def anchor_data(
    ws: Workspace,
    con: BaseBackend,
    anchor: dt.date,
    label_end: dt.date | None = None,
    note: Progress | None = None,
    check: bool = True,
) -> AnchorData:
    """Tags of the customers sleeping at ``anchor`` (computed when missing), leak-checked, with labels.

    Raises
    ------
    LeakageError
        See :func:`check_no_leakage` (only when ``check``).
    """
    ensure_tags(ws, con, anchor, note)
    t = load_tags(ws, con, anchor)
    full = t.to_pyarrow()
    if check:
        if note:
            note(f"leak check {anchor.isoformat()}", 0, 1)
        check_no_leakage(ws, con, anchor, full)
    rows = full.filter(pc.equal(full.column("status"), POPULATION)).sort_by("customer_id")
    y = None
    if label_end is not None:
        if note:
            note(f"labels {anchor.isoformat()}..{label_end.isoformat()}", 0, 1)
        y = labels(ws, con, anchor, label_end, rows.column("customer_id").combine_chunks())
    return AnchorData(anchor, rows, y, label_end)
