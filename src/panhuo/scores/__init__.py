"""Scores per customer, stored as dated snapshots, one family per model (issue 4).

- ``bgnbd``: BG/NBD on trading days, ``p_alive`` and ``expected_trading_days_90``
  (:mod:`panhuo.scores.bgnbd`);
- ``propensity``: reactivation propensity (LightGBM on the tags of sleeping customers, strict time
  split), ``reactivation_propensity`` (:mod:`panhuo.scores.propensity`, data and time split in
  :mod:`panhuo.scores.propensity_data`);
- storage, model versions and :func:`load_scores` (every family joined on ``customer_id``):
  :mod:`panhuo.scores.store`;
- the trading-day summary expression: :mod:`panhuo.scores.summary`.
"""

from __future__ import annotations

from panhuo.scores.bgnbd import ScoreResult, TrainResult, score_bgnbd, train_bgnbd
from panhuo.scores.propensity import (
    PropensityScoreResult,
    PropensityTrainResult,
    list_propensity_models,
    load_propensity_model,
    propensity_report,
    score_propensity,
    train_propensity,
)
from panhuo.scores.propensity_data import LeakageError, TimeSplit, time_split
from panhuo.scores.store import ScoreStore, list_models, load_model, load_scores, save_model, score_dates
from panhuo.scores.summary import trading_day_summary

__all__ = [
    "LeakageError",
    "PropensityScoreResult",
    "PropensityTrainResult",
    "ScoreResult",
    "ScoreStore",
    "TimeSplit",
    "TrainResult",
    "list_models",
    "list_propensity_models",
    "load_model",
    "load_propensity_model",
    "load_scores",
    "propensity_report",
    "save_model",
    "score_bgnbd",
    "score_dates",
    "score_propensity",
    "time_split",
    "trading_day_summary",
    "train_bgnbd",
    "train_propensity",
]
