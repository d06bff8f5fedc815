"""Reactivation propensity (唤醒倾向): P(a sleeping customer trades or is back to effective within 60 trading days).

``train_propensity(ws, con, as_of)`` builds the strict time split of
:mod:`panhuo.scores.propensity_data` (backtest anchor ``T-150``, holdout anchor ``T-60``, model
anchor ``T-90`` trading days; the training outcomes of the backtest end at ``T-90``, before the
holdout features' date), measures the out-of-time AUC, Brier score and decile reliability table on
the holdout, trains the stored model at ``T-90`` and stores it as a new version::

    <workspace>/models/propensity/<version>/model.txt    # LightGBM text model
    <workspace>/models/propensity/<version>/model.json   # features, category levels, params, metrics,
                                                         # feature importance, anchors, load id

The version folder is written under a hidden temporary name, fsynced and renamed into place (a
reader sees a whole version or none). ``score_propensity(ws, con, as_of)`` scores the customers
sleeping at ``as_of`` from the tags at ``as_of`` with the newest version trained on data up to
``as_of`` and stores the score family ``propensity`` (:mod:`panhuo.scores.store`): every customer
of the tag snapshot, ``reactivation_propensity`` (null for customers not sleeping at ``as_of``),
the model version in the snapshot's JSON. :func:`propensity_report` gives the numbers for the
HTML overview.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from panhuo._io import fsync_dir, fsync_tree
from panhuo.calendar import calendar_for
from panhuo.errors import WarehouseError
from panhuo.models.metrics import calibration_report
from panhuo.models.propensity import PropensityModel
from panhuo.scores.propensity_data import (
    EXCLUDED_TAGS,
    HORIZON,
    MODEL_OFFSET,
    POPULATION,
    AnchorData,
    anchor_data,
    categorical_names,
    data_range,
    encode_features,
    time_split,
)
from panhuo.scores.store import ScoreStore, load_scores, models_dir
from panhuo.warehouse import Warehouse

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace

__all__ = [
    "FAMILY",
    "MIN_ROWS",
    "SCORE_COLUMN",
    "SCORE_SCHEMA",
    "PropensityScoreResult",
    "PropensityTrainResult",
    "list_propensity_models",
    "load_propensity_model",
    "propensity_report",
    "score_propensity",
    "train_propensity",
]

FAMILY = "propensity"
SCORE_COLUMN = "reactivation_propensity"
SCORE_SCHEMA = pa.schema([("customer_id", pa.string()), (SCORE_COLUMN, pa.float64())])
MIN_ROWS = 50  # sleeping customers at least at each training anchor, with both outcomes present
MODEL_FILE = "model.txt"
META_FILE = "model.json"

Progress = Callable[[str, int, int], None]


@dataclass
class PropensityTrainResult:
    """A trained and stored propensity model version and its out-of-time metrics."""

    as_of: dt.date
    version: str
    path: Path  # the version folder
    anchors: dict[str, str]
    holdout: dict[str, Any]  # calibration_report on the holdout (auc, brier, reliability, ...)
    train: dict[str, Any]  # the same, in sample, for the stored model
    feature_importance: dict[str, float]
    seconds: float
    model: PropensityModel = field(repr=False)


@dataclass
class PropensityScoreResult:
    """A stored propensity score snapshot."""

    as_of: dt.date
    family: str
    version: str
    customers: int  # rows stored (every customer of the tag snapshot)
    scored: int  # customers sleeping at as_of (non-null scores)
    mean_propensity: float | None
    path: Path
    meta_path: Path
    table: ir.Table = field(repr=False)  # load_scores(ws, con, as_of)


def _noop(_step: str, _done: int, _total: int) -> None:
    return None


def _check_rows(data: AnchorData, role: str) -> np.ndarray:
    assert data.label is not None
    pos = int(data.label.sum())
    if data.rows < MIN_ROWS or pos == 0 or pos == data.rows:
        raise WarehouseError(
            f"too little to {role} on at {data.anchor.isoformat()}: {data.rows} customers {POPULATION} there "
            f"({pos} reactivated by {data.label_end.isoformat() if data.label_end else '?'}); "
            f"the propensity model needs at least {MIN_ROWS} with both outcomes"
        )
    return data.label


def _model_dir(ws: Workspace) -> Path:
    return models_dir(ws) / FAMILY


def _save(ws: Workspace, version: str, model: PropensityModel, meta: dict[str, Any]) -> Path:
    """Write the version folder atomically: a hidden temporary folder, fsynced, renamed into place."""
    root = _model_dir(ws)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{version}.{secrets.token_hex(4)}.tmp"
    final = root / version
    try:
        tmp.mkdir()
        (tmp / MODEL_FILE).write_text(model.to_model_string(), encoding="utf-8")
        (tmp / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                                     encoding="utf-8")
        fsync_tree(tmp)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(root)
    return final


def train_propensity(
    ws: Workspace,
    con: BaseBackend,
    as_of: dt.date,
    progress: Progress | None = None,
    options: dict[str, Any] | None = None,
    check_leakage: bool = True,
) -> PropensityTrainResult:
    """Train the propensity model at ``as_of`` on the strict time split and store it as a new version.

    Computes (and stores) the account status and the tags at the three anchors when they are
    missing. Nothing is stored when any step fails.

    Parameters
    ----------
    options
        :class:`panhuo.models.PropensityModel` options (default: its defaults).
    check_leakage
        Run :func:`panhuo.scores.propensity_data.check_no_leakage` at every anchor (recomputes the
        tags from truncated tables: one more tag query per anchor).

    Raises
    ------
    WarehouseError
        Nothing loaded; ``as_of`` after the last data date; the data does not reach back to the
        backtest anchor (``T-150`` trading days); too few sleeping customers or one outcome only.
    LeakageError
        A feature depends on data after its anchor.
    CalendarError
        An anchor outside the trading calendar.
    """
    note = progress or _noop
    started = time.perf_counter()
    opts = dict(options or {})
    PropensityModel(**opts)._lgb_params()  # bad options fail before any work
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    load_id = wh.manifest().load_id
    total = 6
    note("data range", 0, total)
    first, last = data_range(ws, con)
    split = time_split(calendar_for(ws), as_of, first, last)

    def step(done: int) -> Progress:
        return lambda s, _d, _n: note(s, done, total)

    # oldest anchor first, so a status date computed here is never slotted in before another one
    backtest = anchor_data(ws, con, split.backtest_anchor, split.backtest_label_end, step(1), check_leakage)
    train = anchor_data(ws, con, split.model_anchor, split.model_label_end, step(2), check_leakage)
    holdout = anchor_data(ws, con, split.holdout_anchor, split.holdout_label_end, step(3), check_leakage)
    yb, yh, ym = _check_rows(backtest, "train"), _check_rows(holdout, "evaluate"), _check_rows(train, "train")
    cats = categorical_names()

    note("backtest model and holdout metrics", 4, total)
    xb, names, levels_b = encode_features(backtest.table, backtest.anchor)
    xh, _, _ = encode_features(holdout.table, holdout.anchor, levels_b)
    backtest_model = PropensityModel(**opts).fit(xb, yb, names, cats)
    holdout_report = calibration_report(yh, backtest_model.predict_proba(xh))

    note("fit the model", 5, total)
    xm, _, levels = encode_features(train.table, train.anchor)
    model = PropensityModel(**opts).fit(xm, ym, names, cats)
    train_report = calibration_report(ym, model.predict_proba(xm))

    from panhuo import __version__

    version = f"{FAMILY}-{split.as_of.isoformat()}-{secrets.token_hex(3)}"
    seconds = round(time.perf_counter() - started, 3)
    meta = {
        "family": FAMILY,
        "version": version,
        "as_of": split.as_of.isoformat(),
        "trained_at": dt.datetime.now().isoformat(timespec="seconds"),
        "model": "PropensityModel (LightGBM binary classifier)",
        "lightgbm_version": _lgb_version(),
        "panhuo_version": __version__,
        "target": (f"{POPULATION} at the anchor, then a trade or back to effective within the next "
                   f"{HORIZON} trading days"),
        "horizon_trading_days": HORIZON,
        "applied_trading_days_after_anchor": MODEL_OFFSET,
        "anchors": split.to_dict(),
        "load_id": load_id,
        "features": names,
        "categorical_features": cats,
        "category_levels": levels,
        "excluded_tags": EXCLUDED_TAGS,
        "params": model.params_,
        "train_rows": {"backtest": backtest.rows, "holdout": holdout.rows, "model": train.rows},
        "metrics": {"holdout": holdout_report, "train": train_report},
        "feature_importance": model.feature_importance_,
        "backtest_feature_importance": backtest_model.feature_importance_,
        "leakage_checked": check_leakage,
        "seconds": seconds,
    }
    path = _save(ws, version, model, meta)
    note("stored", total, total)
    return PropensityTrainResult(split.as_of, version, path, split.to_dict(), holdout_report, train_report,
                                 dict(model.feature_importance_), seconds, model)


def _lgb_version() -> str:
    import lightgbm as lgb

    return str(lgb.__version__)


# -- stored versions ----------------------------------------------------------------------
def list_propensity_models(ws: Workspace) -> list[dict[str, Any]]:
    """The metadata of every stored version, oldest training date first (then oldest training time).

    Hidden temporary folders (an interrupted save) are skipped.
    """
    root = _model_dir(ws)
    out = []
    for p in sorted(root.glob(f"*/{META_FILE}")) if root.is_dir() else []:
        if p.parent.name.startswith("."):
            continue
        try:
            out.append(json.loads(p.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise WarehouseError(f"{p}: damaged model metadata: {exc}") from exc
    return sorted(out, key=lambda m: (m["as_of"], m["trained_at"], m["version"]))


def load_propensity_model(
    ws: Workspace, as_of: dt.date | None = None, version: str | None = None
) -> tuple[PropensityModel, dict[str, Any]]:
    """A stored version (``version``, else the newest trained on data up to ``as_of``) and its metadata.

    Raises
    ------
    WarehouseError
        No such version, or none trained on data up to ``as_of``.
    """
    models = list_propensity_models(ws)
    if version is not None:
        chosen = next((m for m in models if m["version"] == version), None)
        if chosen is None:
            raise WarehouseError(f"no {FAMILY} model version {version!r} in {_model_dir(ws)}")
    else:
        usable = [m for m in models if as_of is None or dt.date.fromisoformat(m["as_of"]) <= as_of]
        if not usable:
            when = f" on data up to {as_of.isoformat()}" if as_of else ""
            raise WarehouseError(f"no {FAMILY} model trained{when}: run `panhuo scores train --as-of DATE` first")
        chosen = usable[-1]
    text = (_model_dir(ws) / chosen["version"] / MODEL_FILE).read_text(encoding="utf-8")
    rows = chosen.get("train_rows", {}).get("model", 0)
    rate = chosen.get("metrics", {}).get("train", {}).get("base_rate", float("nan"))
    model = PropensityModel.from_model_string(text, chosen["params"], chosen["categorical_features"], rows, rate)
    if model.feature_names_ != chosen["features"]:
        raise WarehouseError(f"{_model_dir(ws) / chosen['version']}: the model's features differ from its metadata")
    return model, chosen


# -- scoring --------------------------------------------------------------------------------
def score_propensity(
    ws: Workspace,
    con: BaseBackend,
    as_of: dt.date,
    progress: Progress | None = None,
    model: str = "latest",
) -> PropensityScoreResult:
    """Score the customers sleeping at ``as_of`` and store the ``propensity`` snapshot of that date.

    Computes (and stores) the status and the tags at ``as_of`` when they are missing.

    Parameters
    ----------
    model
        ``"latest"``: the newest version trained on data up to ``as_of``; or a version id
        (``propensity-2026-11-24-1a2b3c``).

    Raises
    ------
    WarehouseError
        Nothing loaded, or no such trained model.
    """
    note = progress or _noop
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    note("model", 0, 3)
    fitted, meta = load_propensity_model(ws, as_of=as_of, version=None if model == "latest" else model)
    data = anchor_data(ws, con, as_of, None, lambda s, _d, _n: note(s, 1, 3), check=False)
    note("score customers", 2, 3)
    x, _, _ = encode_features(data.table, as_of, meta["category_levels"])
    p = fitted.predict_proba(x)
    from panhuo.tags.store import load_tags

    everyone = load_tags(ws, con, as_of).select("customer_id").to_pyarrow()
    scored = pa.table({"customer_id": data.table.column("customer_id"), SCORE_COLUMN: pa.array(p, pa.float64())})
    table = everyone.join(scored, "customer_id", join_type="left outer").select(SCORE_SCHEMA.names)
    table = table.cast(SCORE_SCHEMA).sort_by("customer_id")
    mean = float(p.mean()) if len(p) else None
    record = {
        "model_version": meta["version"],
        "model": meta["model"],
        "trained_as_of": meta["as_of"],
        "target": meta["target"],
        "horizon_trading_days": HORIZON,
        "population": POPULATION,
        "load_id": wh.current_id,
        "scored_customers": len(p),
        "mean_reactivation_propensity": mean,
        "holdout_auc": meta["metrics"]["holdout"]["auc"],
    }
    store = ScoreStore.of(ws, FAMILY)
    path, rows = store.write(as_of, table.to_batches(), SCORE_SCHEMA, record)
    note("stored", 3, 3)
    return PropensityScoreResult(as_of, FAMILY, meta["version"], rows, len(p), mean, path,
                                 store.root / f"{as_of.isoformat()}.json", load_scores(ws, con, as_of))


# -- report ---------------------------------------------------------------------------------
def propensity_report(ws: Workspace, version: str | None = None, top: int | None = None) -> dict[str, Any]:
    """The numbers of a stored model for the HTML overview (newest version unless ``version``).

    Returns
    -------
    dict
        JSON-ready::

            {
              "version": "propensity-2026-11-24-1a2b3c",
              "trained_as_of": "2026-11-24",
              "load_id": "...",
              "target": "sleeping at the anchor, then a trade or back to effective within ...",
              "horizon_trading_days": 60,
              "anchors": {"as_of", "backtest_anchor", "backtest_label_end", "holdout_anchor",
                          "holdout_label_end", "model_anchor", "model_label_end"},  # ISO dates
              "holdout": {"rows", "positives", "base_rate", "mean_predicted", "auc",
                          "brier", "brier_base_rate", "log_loss"},   # out of time (backtest model)
              "train": {... the same keys ...},                      # in sample (stored model)
              "calibration": [                                       # holdout, by predicted decile
                {"bin": 1, "rows", "min_predicted", "max_predicted", "mean_predicted",
                 "observed_rate"}, ...                               # lowest forecasts first
              ],
              "feature_importance": [                                # stored model, largest first
                {"feature": "days_since_last_trade_date", "importance": 0.23,  # share of total gain
                 "tag": "last_trade_date", "zh": "...", "en": "..."}, ...
              ],
            }

    Raises
    ------
    WarehouseError
        No model stored (or no such version).
    """
    models = list_propensity_models(ws)
    if version is not None:
        meta = next((m for m in models if m["version"] == version), None)
        if meta is None:
            raise WarehouseError(f"no {FAMILY} model version {version!r} in {_model_dir(ws)}")
    elif models:
        meta = models[-1]
    else:
        raise WarehouseError(f"no {FAMILY} model trained: run `panhuo scores train --as-of DATE` first")
    from panhuo.tags.catalogue import tag_spec

    def summary(m: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in m.items() if k != "reliability"}

    importance = []
    ranked = sorted(meta["feature_importance"].items(), key=lambda kv: (-kv[1], kv[0]))  # JSON keys are sorted
    for name, share in ranked[:top]:
        tag = name.removeprefix("days_since_")
        spec = tag_spec(tag)
        importance.append({"feature": name, "importance": share, "tag": spec.name, "zh": spec.zh, "en": spec.en})
    return {
        "version": meta["version"],
        "trained_as_of": meta["as_of"],
        "load_id": meta.get("load_id"),
        "target": meta["target"],
        "horizon_trading_days": meta["horizon_trading_days"],
        "anchors": meta["anchors"],
        "holdout": summary(meta["metrics"]["holdout"]),
        "train": summary(meta["metrics"]["train"]),
        "calibration": meta["metrics"]["holdout"]["reliability"],
        "feature_importance": importance,
    }
