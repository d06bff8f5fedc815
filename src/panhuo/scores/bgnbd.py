"""BG/NBD scores on trading days: P(alive) and expected trading days in the next 90 trading days.

``train_bgnbd`` fits :class:`panhuo.models.BetaGeoModel` on the trading-day summary of every
customer with a trade up to ``as_of`` (:mod:`panhuo.scores.summary`; the summary is collapsed to
distinct ``(x, t_x, T)`` rows on the engine before it reaches Python) and stores the parameters as a
model version. ``score_bgnbd`` scores every customer of the load in force and stores the dated
snapshot (:mod:`panhuo.scores.store`), columns:

- ``p_alive``: P(still trading | x, t_x, T) (FHL 2008 eq. 2); null for a customer who never traded;
- ``expected_trading_days_90``: expected trading days with a trade in the next 90 trading days
  (FHL 2005 eq. 10 with ``t = 90``, at most 90); null for a customer who never traded;
- ``bgnbd_frequency``, ``bgnbd_recency``, ``bgnbd_age``: the summary ``x``, ``t_x``, ``T`` in
  trading days (null for a customer who never traded).

The BG/NBD model gives P(alive) = 1 to a customer with a single trading day (``x = 0``): it assumes
dropout happens only right after a repeat purchase. Read such customers' ``p_alive`` with their
``bgnbd_age``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pyarrow as pa

from panhuo.calendar import calendar_for
from panhuo.errors import WarehouseError
from panhuo.models import BetaGeoModel
from panhuo.scores.store import ScoreStore, load_model, load_scores, save_model
from panhuo.scores.summary import collapsed_summary, trading_day_summary
from panhuo.warehouse import Warehouse

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace

__all__ = [
    "FAMILY",
    "HORIZON",
    "SCORE_SCHEMA",
    "ScoreResult",
    "TrainResult",
    "bgnbd_scores",
    "score_bgnbd",
    "train_bgnbd",
]

FAMILY = "bgnbd"
HORIZON = 90  # trading days
SCORE_SCHEMA = pa.schema([
    ("customer_id", pa.string()),
    ("p_alive", pa.float64()),
    ("expected_trading_days_90", pa.float64()),
    ("bgnbd_frequency", pa.int64()),
    ("bgnbd_recency", pa.int64()),
    ("bgnbd_age", pa.int64()),
])

Progress = Callable[[str, int, int], None]


@dataclass
class TrainResult:
    """A fitted and stored BG/NBD model version."""

    as_of: dt.date
    version: str
    params: dict[str, float]
    log_likelihood: float
    customers: int
    distinct_rows: int
    seconds: float
    model: BetaGeoModel = field(repr=False)


@dataclass
class ScoreResult:
    """A stored BG/NBD score snapshot."""

    as_of: dt.date
    family: str
    version: str
    params: dict[str, float]
    customers: int  # rows stored (every customer of the load in force)
    scored: int  # customers with a trade up to as_of (non-null scores)
    mean_p_alive: float | None
    path: Path
    meta_path: Path
    table: ir.Table = field(repr=False)  # load_scores(ws, con, as_of)


def _noop(_step: str, _done: int, _total: int) -> None:
    return None


def _summary(ws: Workspace, con: BaseBackend, as_of: dt.date) -> tuple[ir.Table, pa.Table]:
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    summary = trading_day_summary(wh.table(con, "trades"), calendar_for(ws), as_of)
    collapsed = collapsed_summary(summary)
    if collapsed.num_rows == 0:
        raise WarehouseError(
            f"no trades on or before {as_of.isoformat()} in the load in force: nothing to fit BG/NBD on"
        )
    return summary, collapsed


def _fit(collapsed: pa.Table) -> BetaGeoModel:
    c = {k: collapsed.column(k).to_numpy().astype(float) for k in ("frequency", "recency", "T", "n")}
    return BetaGeoModel().fit(c["frequency"], c["recency"], c["T"], weights=c["n"])


def _payload(model: BetaGeoModel, started: float) -> dict[str, Any]:
    from panhuo import __version__

    return {
        "model": "BetaGeoModel (BG/NBD, Fader, Hardie and Lee 2005)",
        "time_unit": "trading day",
        "params": dict(model.params_),
        "log_likelihood": model.log_likelihood_,
        "customers": model.n_customers_,
        "distinct_rows": model.n_rows_,
        "converged": bool(model.optimizer_.success),
        "iterations": int(model.optimizer_.nit),
        "seconds": round(time.perf_counter() - started, 3),
        "panhuo_version": __version__,
    }


def train_bgnbd(
    ws: Workspace, con: BaseBackend, as_of: dt.date, progress: Progress | None = None
) -> TrainResult:
    """Fit BG/NBD on the trading-day summary at ``as_of`` and store it as a new model version.

    Raises
    ------
    WarehouseError
        Nothing loaded, or no trade on or before ``as_of``.
    CalendarError
        ``as_of`` outside the trading calendar.
    """
    note = progress or _noop
    started = time.perf_counter()
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    note("trading-day summary", 0, 2)
    _, collapsed = _summary(ws, con, as_of)
    note("fit BG/NBD", 1, 2)
    model = _fit(collapsed)
    payload = _payload(model, started) | {"load_id": wh.current_id}
    version = save_model(ws, FAMILY, as_of, payload)
    note("stored", 2, 2)
    return TrainResult(as_of, version, dict(model.params_), model.log_likelihood_, model.n_customers_,
                       model.n_rows_, payload["seconds"], model)


def bgnbd_scores(model: BetaGeoModel, collapsed: pa.Table, horizon: int = HORIZON) -> pa.Table:
    """``p_alive`` and ``expected_trading_days_<horizon>`` for each distinct ``(frequency, recency, T)``."""
    x, tx, T = (collapsed.column(k).to_numpy().astype(float) for k in ("frequency", "recency", "T"))
    p_alive = model.conditional_probability_alive(x, tx, T)
    expected = model.conditional_expected_number_of_purchases_up_to_time(float(horizon), x, tx, T)
    expected = np.clip(np.nan_to_num(expected, nan=0.0, posinf=float(horizon)), 0.0, float(horizon))
    return pa.table({
        "frequency": collapsed.column("frequency"),
        "recency": collapsed.column("recency"),
        "T": collapsed.column("T"),
        "p_alive": pa.array(p_alive, type=pa.float64()),
        f"expected_trading_days_{horizon}": pa.array(expected, type=pa.float64()),
    })


def score_bgnbd(
    ws: Workspace,
    con: BaseBackend,
    as_of: dt.date,
    progress: Progress | None = None,
    model: str | None = None,
) -> ScoreResult:
    """Score every customer at ``as_of`` and store the dated snapshot (see the module docstring).

    Parameters
    ----------
    model
        ``None`` (default): fit on the data up to ``as_of`` and store that fit as a new model
        version; ``"latest"``: the newest stored version trained on data up to ``as_of``; or a
        version id (``bgnbd-2026-11-24-1a2b3c``).

    Raises
    ------
    WarehouseError
        Nothing loaded, no trade on or before ``as_of``, or no such trained model.
    """
    note = progress or _noop
    started = time.perf_counter()
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    note("trading-day summary", 0, 3)
    summary, collapsed = _summary(ws, con, as_of)
    if model is None:
        note("fit BG/NBD", 1, 3)
        fitted = _fit(collapsed)
        version = save_model(ws, FAMILY, as_of, _payload(fitted, started) | {"load_id": wh.current_id})
        stored = load_model(ws, FAMILY, version=version)
    else:
        stored = load_model(ws, FAMILY, as_of=as_of, version=None if model == "latest" else model)
        fitted = BetaGeoModel().set_params(**stored["params"])
    note("score customers", 2, 3)
    table = bgnbd_scores(fitted, collapsed)
    lookup = ibis.memtable(table.rename_columns(["sx", "stx", "sT", "p_alive", "expected_trading_days_90"]))
    s = summary.join(lookup, [summary.frequency == lookup.sx, summary.recency == lookup.stx, summary.T == lookup.sT])
    s = s.select(sid=s.customer_id, p_alive=s.p_alive, e90=s.expected_trading_days_90,
                 f=s.frequency, r=s.recency, a=s.T)
    customers = wh.table(con, "customers")
    j = customers.select("customer_id").left_join(s, customers.customer_id == s.sid)
    out = j.select(customer_id=j.customer_id, p_alive=j.p_alive, expected_trading_days_90=j.e90,
                   bgnbd_frequency=j.f, bgnbd_recency=j.r, bgnbd_age=j.a).order_by("customer_id")
    weights = collapsed.column("n").to_numpy()
    scored = int(weights.sum())
    mean_p = float(np.dot(weights, table.column("p_alive").to_numpy()) / scored) if scored else None
    meta = {
        "model_version": stored["version"],
        "model": stored["model"],
        "params": stored["params"],
        "trained_as_of": stored["as_of"],
        "time_unit": "trading day",
        "horizon_trading_days": HORIZON,
        "load_id": wh.current_id,
        "scored_customers": scored,
        "mean_p_alive": mean_p,
    }
    store = ScoreStore.of(ws, FAMILY)
    path, rows = store.write(as_of, out.to_pyarrow_batches(), SCORE_SCHEMA, meta)
    note("stored", 3, 3)
    return ScoreResult(as_of, FAMILY, stored["version"], dict(stored["params"]), rows, scored, mean_p, path,
                       store.root / f"{as_of.isoformat()}.json", load_scores(ws, con, as_of))
