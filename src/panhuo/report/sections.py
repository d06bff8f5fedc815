"""The data behind the overview's later sections: tiers (分层), score distributions, propensity.

Everything here is computed from what is stored (the tag snapshot, the score snapshots, the status
snapshot) with plain Ibis, so it runs on any engine; the chart geometry is in
:mod:`panhuo.report.charts`. Each ``*_section`` function returns None when its inputs are not
stored yet, and the page then leaves that section out.

- :class:`TierSection`: the tier scheme and its summary rows (``panhuo.segments.tiers.tier_summary``),
  computed by the caller (the demo prints the same rows) or here by :func:`tier_section`;
- :class:`ScoreSection`: P(alive) in ten bins and expected trading days (next 90) in a few bins,
  each by account status, from :func:`panhuo.scores.load_scores` joined with the status snapshot;
- :class:`PropensitySection`: metrics, decile calibration and feature importance read from the
  propensity report dict (tolerant of the exact key names; see :func:`propensity_section`).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ibis

from panhuo.errors import WarehouseError

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace
    from panhuo.segments.tiers import TierRow, TierScheme

__all__ = [
    "E90_EDGES",
    "NEVER",
    "P_ALIVE_BINS",
    "Calibration",
    "PropensitySection",
    "ScoreSection",
    "TierSection",
    "propensity_section",
    "score_section",
    "tier_section",
]

P_ALIVE_BINS = 10
#: expected trading days in the next 90: bins [e_i, e_i+1), the last closed at 90
E90_EDGES: tuple[float, ...] = (0, 1, 2, 5, 10, 20, 45, 90)
#: the bin label of a customer who never traded (no score)
NEVER = "never"


@dataclass(frozen=True)
class TierSection:
    """The tier scheme and its summary rows (in scheme order)."""

    scheme: TierScheme
    rows: list[TierRow]


@dataclass(frozen=True)
class ScoreSection:
    """Counts per (bin label, status) for P(alive) and expected trading days; bins in order."""

    as_of: dt.date | None
    p_alive_bins: list[str]
    p_alive: dict[tuple[str, str], int]
    e90_bins: list[str]
    e90: dict[tuple[str, str], int]
    scored: int
    customers: int
    mean_p_alive: dict[str, float]  # per status, over scored customers


@dataclass(frozen=True)
class Calibration:
    """One decile: mean predicted probability and observed rate (0..1), customers in it."""

    decile: int
    predicted: float
    observed: float
    customers: int | None


@dataclass(frozen=True)
class PropensitySection:
    """What the overview shows of the propensity report."""

    metrics: list[tuple[str, str]]
    calibration: list[Calibration]
    importance: list[tuple[str, float]]
    version: str | None = None
    notes: list[str] = field(default_factory=list)


def tier_section(ws: Workspace, con: BaseBackend, as_of: dt.date | None) -> TierSection | None:
    """Tiers from the stored tags (+ scores) at ``as_of``; None when no tags are stored."""
    from panhuo.segments.audience import audience
    from panhuo.segments.tiers import load_tiers, tier_summary

    try:
        aud = audience(ws, con, as_of)
    except WarehouseError:
        return None
    own = ws.root / "tiers.yaml"  # the same choice as `panhuo segments tiers`
    scheme = load_tiers(own, aud.symbols, "tiers.yaml") if own.exists() else load_tiers(symbols=aud.symbols)
    return TierSection(scheme, tier_summary(scheme, aud.table, aud.symbols, aud.as_of))


def _p_alive_labels() -> list[str]:
    step = 1 / P_ALIVE_BINS
    return [f"{i * step:.1f}-{(i + 1) * step:.1f}" for i in range(P_ALIVE_BINS)]


def _e90_labels() -> list[str]:
    e = E90_EDGES
    return [f"{e[i]:g}-{e[i + 1]:g}" for i in range(len(e) - 1)]


def score_section(ws: Workspace, con: BaseBackend, as_of: dt.date) -> ScoreSection | None:
    """Score distributions by status at ``as_of`` (one aggregate query); None without stored scores."""
    from panhuo.scores import load_scores
    from panhuo.status.history import load_status

    try:
        scores = load_scores(ws, con, as_of)
    except WarehouseError:
        return None
    if "p_alive" not in scores.columns or "expected_trading_days_90" not in scores.columns:
        return None
    status = load_status(ws, con, as_of)
    st = status.select(_sid=status.customer_id, _status=status.status)
    sc = scores.select(_cid=scores.customer_id, _p=scores.p_alive, _e=scores.expected_trading_days_90)
    j = st.left_join(sc, st._sid == sc._cid)
    pa_labels, e_labels = _p_alive_labels(), _e90_labels()
    p = j._p
    p_bin = ibis.cases(
        (p.isnull(), NEVER),
        *[(p < (i + 1) / P_ALIVE_BINS, pa_labels[i]) for i in range(P_ALIVE_BINS - 1)],
        else_=pa_labels[-1],
    )
    e = j._e
    e_bin = ibis.cases(
        (e.isnull(), NEVER),
        *[(e < E90_EDGES[i + 1], e_labels[i]) for i in range(len(e_labels) - 1)],
        else_=e_labels[-1],
    )
    g = j.select(status=j._status, pb=p_bin, eb=e_bin, p=p)
    rows = g.group_by(["status", "pb", "eb"]).agg(n=g.count(), ps=g.p.sum()).to_pyarrow().to_pylist()
    p_counts: dict[tuple[str, str], int] = {}
    e_counts: dict[tuple[str, str], int] = {}
    sums: dict[str, list[float]] = {}
    customers = scored = 0
    for r in rows:
        n = int(r["n"])
        customers += n
        p_counts[(r["pb"], r["status"])] = p_counts.get((r["pb"], r["status"]), 0) + n
        e_counts[(r["eb"], r["status"])] = e_counts.get((r["eb"], r["status"]), 0) + n
        if r["pb"] != NEVER:
            scored += n
            acc = sums.setdefault(r["status"], [0.0, 0])
            acc[0] += float(r["ps"] or 0.0)
            acc[1] += n
    means = {s: v[0] / v[1] for s, v in sums.items() if v[1]}
    return ScoreSection(as_of, pa_labels, p_counts, e_labels, e_counts, scored, customers, means)


# -- the propensity report ------------------------------------------------------------------------
def _first(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if k in d and d[k] is not None:
            return d[k]
    return None


def _number(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _metric_text(v: Any) -> str:
    n = _number(v)
    if n is None or isinstance(v, bool):
        return str(v)
    return f"{int(n):,}" if float(n).is_integer() and abs(n) >= 10 else f"{n:.3f}"


def _calibration(raw: Any) -> list[Calibration]:
    if isinstance(raw, dict) and not any(isinstance(v, (int, float)) for v in raw.values()):
        raw = _first(raw, "rows", "deciles", "table")
    out: list[Calibration] = []
    for i, r in enumerate(raw or []):
        if not isinstance(r, dict):
            continue
        pred = _number(_first(r, "predicted", "mean_predicted", "pred", "avg_predicted", "predicted_rate",
                              "mean_score"))
        obs = _number(_first(r, "observed", "observed_rate", "actual", "rate", "positive_rate", "mean_observed"))
        if pred is None or obs is None:
            continue
        dec = _first(r, "decile", "bin", "bucket")
        n = _number(_first(r, "customers", "rows", "n", "count", "size"))
        out.append(Calibration(int(dec) if _number(dec) is not None else i + 1, pred, obs,
                               None if n is None else int(n)))
    return out


def _importance(raw: Any) -> list[tuple[str, float]]:
    pairs: list[tuple[str, float]] = []
    if isinstance(raw, dict):
        pairs = [(str(k), v) for k, v in ((k, _number(v)) for k, v in raw.items()) if v is not None]
    elif isinstance(raw, list):
        for r in raw:
            if isinstance(r, dict):
                name = _first(r, "feature", "name", "tag")
                if name is not None and r.get("zh"):
                    name = f"{r['zh']} {name}"
                val = _number(_first(r, "importance", "gain", "value", "split"))
            elif isinstance(r, (list, tuple)) and len(r) == 2:
                name, val = r[0], _number(r[1])
            else:
                continue
            if name is not None and val is not None:
                pairs.append((str(name), val))
    return sorted(pairs, key=lambda kv: -kv[1])


def propensity_section(report: dict[str, Any] | None, top: int = 15) -> PropensitySection | None:
    """The overview's view of a propensity report; None when there is none or it holds nothing to show.

    Reads ``metrics`` (name -> number), ``calibration`` (a list of deciles, each with a predicted
    and an observed rate) and ``feature_importance`` (feature -> importance, or a list of
    ``{feature, importance}``); a few common spellings of these keys are accepted.
    """
    if not report:
        return None
    metrics_raw = _first(report, "metrics", "holdout", "evaluation") or {}
    metrics = [(str(k), _metric_text(v)) for k, v in metrics_raw.items()
               if not isinstance(v, (dict, list))] if isinstance(metrics_raw, dict) else []
    calibration = _calibration(_first(report, "calibration", "deciles", "decile_calibration", "calibration_table"))
    importance = _importance(_first(report, "feature_importance", "importance", "features"))[:top]
    if not (metrics or calibration or importance):
        return None
    version = _first(report, "model_version", "version")
    return PropensitySection(metrics, calibration, importance, None if version is None else str(version))
