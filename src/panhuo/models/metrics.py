"""Metrics of a probability forecast for a binary outcome, in plain numpy (no scikit-learn).

- :func:`roc_auc`: area under the ROC curve, the Mann-Whitney U statistic with average ranks for
  ties (so a constant forecast scores exactly 0.5);
- :func:`brier_score`: mean squared difference between the forecast and the 0/1 outcome
  (Brier 1950);
- :func:`log_loss`: mean negative log-likelihood (forecasts clipped to ``[eps, 1 - eps]``);
- :func:`reliability_table`: the reliability (calibration) table by quantile bin of the forecast
  (deciles by default): rows, mean forecast and observed rate per bin;
- :func:`calibration_report`: all of the above in one JSON-ready dict.

Every function validates its input: equal lengths, at least one row, outcomes 0 or 1, forecasts
finite and in ``[0, 1]``; a ``ValueError`` names the argument, the rule and the first bad value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from panhuo.models.base import as_float_array, check_finite

__all__ = ["brier_score", "calibration_report", "log_loss", "reliability_table", "roc_auc"]


def _check(y_true: Any, y_prob: Any) -> tuple[np.ndarray, np.ndarray]:
    y = as_float_array(y_true, "y_true")
    p = as_float_array(y_prob, "y_prob")
    if len(y) != len(p):
        raise ValueError(f"y_prob has {len(p)} values but y_true has {len(y)}: they must have equal lengths")
    if len(y) == 0:
        raise ValueError("y_true is empty: a metric needs at least one row")
    check_finite(y, "y_true")
    check_finite(p, "y_prob")
    bad = (y != 0) & (y != 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"y_true must be 0 or 1, got {float(y[i])!r} at position {i}")
    out = (p < 0) | (p > 1)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise ValueError(f"y_prob must be in [0, 1], got {float(p[i])!r} at position {i}")
    return y, p


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of their ranks (like ``scipy.stats.rankdata``)."""
    order = np.argsort(values, kind="mergesort")
    sorted_v = values[order]
    # start of each run of equal values
    starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]])
    ends = np.r_[starts[1:], len(values)]
    avg = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def roc_auc(y_true: Any, y_prob: Any) -> float:
    """Area under the ROC curve: P(forecast of a random positive > that of a random negative), ties 1/2.

    Raises
    ------
    ValueError
        Bad input, or only one class in ``y_true`` (the AUC is undefined).
    """
    y, p = _check(y_true, y_prob)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"y_true must hold both classes for an AUC, got {n_pos} positive and {n_neg} negative")
    ranks = _average_ranks(p)
    u = float(ranks[y == 1].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def brier_score(y_true: Any, y_prob: Any) -> float:
    """Mean of ``(y_prob - y_true)**2`` (0 is perfect; a constant forecast of the base rate gives its variance)."""
    y, p = _check(y_true, y_prob)
    return float(np.mean((p - y) ** 2))


def log_loss(y_true: Any, y_prob: Any, eps: float = 1e-15) -> float:
    """Mean of ``-(y log p + (1 - y) log(1 - p))``, ``p`` clipped to ``[eps, 1 - eps]``."""
    y, p = _check(y_true, y_prob)
    q = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(q) + (1.0 - y) * np.log1p(-q)))


def reliability_table(y_true: Any, y_prob: Any, bins: int = 10) -> list[dict[str, float | int]]:
    """The reliability table: rows sorted by forecast, cut into ``bins`` groups of (near) equal size.

    Returns one dict per non-empty bin, lowest forecasts first: ``bin`` (1-based), ``rows``,
    ``min_predicted``, ``max_predicted``, ``mean_predicted`` and ``observed_rate`` (share of
    outcomes equal to 1). A well-calibrated forecast has ``mean_predicted`` close to
    ``observed_rate`` in every bin. Equal forecasts may fall on both sides of a bin edge (the cut
    is by rank, so every bin has ``rows // bins`` or one more rows).
    """
    y, p = _check(y_true, y_prob)
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a whole number >= 1, got {bins!r}")
    order = np.argsort(p, kind="mergesort")
    out: list[dict[str, float | int]] = []
    for i, idx in enumerate(np.array_split(order, int(bins)), start=1):
        if len(idx) == 0:
            continue
        out.append({
            "bin": i,
            "rows": len(idx),
            "min_predicted": float(p[idx].min()),
            "max_predicted": float(p[idx].max()),
            "mean_predicted": float(p[idx].mean()),
            "observed_rate": float(y[idx].mean()),
        })
    return out


def calibration_report(y_true: Any, y_prob: Any, bins: int = 10) -> dict[str, Any]:
    """AUC, Brier score, log loss, base rate, mean forecast and the reliability table, JSON-ready.

    Keys: ``rows``, ``positives``, ``base_rate``, ``mean_predicted``, ``auc`` (None when
    ``y_true`` holds one class only), ``brier``, ``brier_base_rate`` (the Brier score of always
    forecasting the base rate, for reference), ``log_loss``, ``reliability`` (see
    :func:`reliability_table`).
    """
    y, p = _check(y_true, y_prob)
    positives = int(y.sum())
    base = positives / len(y)
    auc = roc_auc(y, p) if 0 < positives < len(y) else None
    return {
        "rows": len(y),
        "positives": positives,
        "base_rate": base,
        "mean_predicted": float(p.mean()),
        "auc": auc,
        "brier": brier_score(y, p),
        "brier_base_rate": base * (1.0 - base),
        "log_loss": log_loss(y, p),
        "reliability": reliability_table(y, p, bins),
    }
