"""Scores per customer, stored as dated snapshots, one family per model (issue 4).

- ``bgnbd``: BG/NBD on trading days, ``p_alive`` and ``expected_trading_days_90``
  (:mod:`panhuo.scores.bgnbd`);
- storage, model versions and :func:`load_scores` (every family joined on ``customer_id``):
  :mod:`panhuo.scores.store`;
- the trading-day summary expression: :mod:`panhuo.scores.summary`.
"""

from __future__ import annotations

from panhuo.scores.bgnbd import ScoreResult, TrainResult, score_bgnbd, train_bgnbd
from panhuo.scores.store import ScoreStore, list_models, load_model, load_scores, save_model, score_dates
from panhuo.scores.summary import trading_day_summary

__all__ = [
    "ScoreResult",
    "ScoreStore",
    "TrainResult",
    "list_models",
    "load_model",
    "load_scores",
    "save_model",
    "score_bgnbd",
    "score_dates",
    "trading_day_summary",
    "train_bgnbd",
]
