"""Reactivation propensity: a LightGBM binary classifier wrapped in panhuo's estimator contract.

``PropensityModel(...)`` only stores its options; :meth:`PropensityModel.fit` validates the
feature matrix and the 0/1 labels and sets the fitted attributes (``params_``, ``feature_names_``,
``categorical_features_``, ``feature_importance_``, ``booster_``, ...); using it before ``fit``
raises :class:`panhuo.errors.NotFittedError`. :meth:`to_model_string` and
:meth:`from_model_string` round-trip a fitted model through LightGBM's text format (how the score
stage stores it).

Determinism: the same data and options give the same trees and the same predictions, bit for
bit, on the same LightGBM version: every random stream is seeded from ``seed``
(``seed``, ``bagging_seed``, ``feature_fraction_seed``, ``data_random_seed``), ``deterministic``
is on, the histogram layout is fixed (``force_row_wise``) and ``num_threads`` is fixed (default 1;
results may differ between thread counts). Row subsampling (bagging) is off by default.

The features are a float matrix (NaN for missing). A categorical feature holds non-negative whole
numbers (category codes; NaN for missing); LightGBM splits it by category sets, not by order.

References
----------
Ke, G. et al. (2017), "LightGBM: A Highly Efficient Gradient Boosting Decision Tree", NeurIPS 30.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from panhuo.models.base import BaseModel

__all__ = ["PropensityModel"]

_INT_OPTIONS = {"n_estimators": 1, "num_leaves": 2, "min_child_samples": 1, "num_threads": 1, "max_bin": 2}
_FLOAT_OPTIONS = {"learning_rate": (0.0, False), "feature_fraction": (0.0, False), "bagging_fraction": (0.0, False),
                  "lambda_l2": (0.0, True)}


def _as_matrix(X: Any, name: str = "X") -> tuple[np.ndarray, list[str] | None]:
    """``X`` as a 2-d float array, and its column names when it is a DataFrame."""
    names = None
    if hasattr(X, "columns") and hasattr(X, "to_numpy"):
        names = [str(c) for c in X.columns]
        X = X.to_numpy(dtype=float, na_value=np.nan)
    try:
        arr = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric (category codes for categorical features): {exc}") from exc
    if arr.ndim != 2:
        raise ValueError(f"{name} must be two-dimensional (rows x features), got shape {arr.shape}")
    if np.isinf(arr).any():
        i, j = (int(v[0]) for v in np.nonzero(np.isinf(arr)))
        raise ValueError(f"{name} must not hold infinity (NaN is a missing value), got {float(arr[i, j])!r} at row {i}, column {j}")
    return arr, names


class PropensityModel(BaseModel):
    """Gradient-boosted trees (LightGBM) for P(label = 1 | features), deterministic.

    Parameters
    ----------
    n_estimators
        Boosting rounds (trees), ``>= 1``.
    learning_rate
        Shrinkage per tree, ``> 0``.
    num_leaves
        Leaves per tree, ``>= 2``.
    min_child_samples
        Rows per leaf at least (LightGBM ``min_data_in_leaf``), ``>= 1``.
    feature_fraction
        Share of features tried per tree, in ``(0, 1]``.
    bagging_fraction
        Share of rows per tree, in ``(0, 1]`` (1: no bagging).
    lambda_l2
        L2 penalty on leaf values, ``>= 0``.
    max_bin
        Histogram bins per feature, ``>= 2``.
    seed
        Seed of every random stream.
    num_threads
        Threads LightGBM uses (fixed, so results do not depend on the machine), ``>= 1``.

    Attributes
    ----------
    params_ : dict
        The LightGBM parameters the model was trained with.
    feature_names_ : list of str
    categorical_features_ : list of str
        The features split as categories.
    n_features_in_ : int
    n_samples_ : int
        Training rows.
    positive_rate_ : float
        Share of training rows with label 1.
    feature_importance_ : dict
        Total gain of the splits on each feature, normalised to sum to 1 (0 for an unused
        feature), largest first.
    booster_ : lightgbm.Booster
    """

    def __init__(
        self,
        n_estimators: int = 100,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 40,
        feature_fraction: float = 0.8,
        bagging_fraction: float = 1.0,
        lambda_l2: float = 1.0,
        max_bin: int = 63,
        seed: int = 0,
        num_threads: int = 1,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.lambda_l2 = lambda_l2
        self.max_bin = max_bin
        self.seed = seed
        self.num_threads = num_threads

    # -- options ------------------------------------------------------------------------
    def _lgb_params(self) -> dict[str, Any]:
        """The validated options as LightGBM parameters (ValueError naming the option otherwise)."""
        for name, low in _INT_OPTIONS.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(f"{name} must be a whole number >= {low}, got {v!r}")
        for name, (low, closed) in _FLOAT_OPTIONS.items():
            v = getattr(self, name)
            ok = isinstance(v, (int, float, np.floating)) and not isinstance(v, bool) and np.isfinite(v)
            ok = ok and (v >= low if closed else v > low)
            if name in ("feature_fraction", "bagging_fraction"):
                ok = ok and v <= 1
            if not ok:
                rule = f">= {low}" if closed else (f"in ({low}, 1]" if "fraction" in name else f"> {low}")
                raise ValueError(f"{name} must be a finite number {rule}, got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a whole number >= 0, got {self.seed!r}")
        seed = int(self.seed)
        return {
            "objective": "binary",
            "boosting": "gbdt",
            "learning_rate": float(self.learning_rate),
            "num_leaves": int(self.num_leaves),
            "min_data_in_leaf": int(self.min_child_samples),
            "feature_fraction": float(self.feature_fraction),
            "bagging_fraction": float(self.bagging_fraction),
            "bagging_freq": 1 if self.bagging_fraction < 1 else 0,
            "lambda_l2": float(self.lambda_l2),
            "max_bin": int(self.max_bin),
            "seed": seed,
            "bagging_seed": seed + 1,
            "feature_fraction_seed": seed + 2,
            "data_random_seed": seed + 3,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": int(self.num_threads),
            "verbosity": -1,
        }

    def _repr_options(self) -> str:
        return f"n_estimators={self.n_estimators}, learning_rate={self.learning_rate}, seed={self.seed}"

    def set_params(self, **params: float) -> PropensityModel:
        """Not supported: a tree model is restored with :meth:`from_model_string`."""
        raise TypeError("PropensityModel has no closed-form parameters: restore a stored model with "
                        "PropensityModel.from_model_string(text, ...)")

    # -- fitting ------------------------------------------------------------------------
    def fit(
        self,
        X: Any,
        y: Any,
        feature_names: Sequence[str] | None = None,
        categorical_features: Sequence[str] = (),
    ) -> PropensityModel:
        """Train on a feature matrix and 0/1 labels.

        Parameters
        ----------
        X
            Rows x features, numeric (NaN for missing); a pandas DataFrame gives the feature names.
        y
            One label per row, 0 or 1; both values must occur.
        feature_names
            One unique name per column (default: the DataFrame's columns, else ``f0, f1, ...``).
        categorical_features
            Names of the columns holding category codes (whole numbers >= 0 or NaN).

        Raises
        ------
        ValueError
            An option or the input breaks a rule (the message names which, the rule and the value).
        """
        import lightgbm as lgb

        params = self._lgb_params()
        arr, df_names = _as_matrix(X)
        names = self._check_names(feature_names if feature_names is not None else df_names, arr.shape[1])
        cats = list(categorical_features)
        unknown = [c for c in cats if c not in names]
        if unknown:
            raise ValueError(f"categorical_features must name features, got unknown {unknown}")
        for c in cats:
            col = arr[:, names.index(c)]
            bad = ~np.isnan(col) & ((col < 0) | (col != np.round(col)))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(f"categorical feature {c!r} must hold whole numbers >= 0 (category codes) or NaN, "
                                 f"got {float(col[i])!r} at row {i}")
        labels = np.asarray(y, dtype=float).reshape(-1) if np.ndim(y) else np.asarray([y], dtype=float)
        if len(labels) != arr.shape[0]:
            raise ValueError(f"y has {len(labels)} values but X has {arr.shape[0]} rows: they must have equal lengths")
        bad = ~np.isin(labels, (0.0, 1.0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"y must be 0 or 1, got {float(labels[i])!r} at position {i}")
        positives = int(labels.sum())
        if positives in (0, len(labels)):
            raise ValueError(f"y must hold both classes to train on, got {positives} positive of {len(labels)} rows")
        data = lgb.Dataset(arr, label=labels, feature_name=names, categorical_feature=cats or "auto",
                           params={k: params[k] for k in ("max_bin", "verbosity", "data_random_seed",
                                                           "min_data_in_leaf")},
                           free_raw_data=True)
        booster = lgb.train(params, data, num_boost_round=int(self.n_estimators))
        self.params_ = params | {"n_estimators": int(self.n_estimators)}
        self._set_fitted(booster, names, cats, arr.shape[0], positives / len(labels))
        return self

    @staticmethod
    def _check_names(names: Sequence[str] | None, n: int) -> list[str]:
        if names is None:
            return [f"f{i}" for i in range(n)]
        out = [str(s) for s in names]
        if len(out) != n:
            raise ValueError(f"feature_names has {len(out)} names but X has {n} columns")
        dup = sorted({s for s in out if out.count(s) > 1})
        if dup:
            raise ValueError(f"feature_names must be unique, got duplicates {dup}")
        return out

    def _set_fitted(self, booster: Any, names: list[str], cats: list[str], rows: int, rate: float) -> None:
        self.booster_ = booster
        self.feature_names_ = names
        self.categorical_features_ = cats
        self.n_features_in_ = len(names)
        self.n_samples_ = rows
        self.positive_rate_ = rate
        gain = np.asarray(booster.feature_importance(importance_type="gain"), dtype=float)
        total = float(gain.sum())
        share = gain / total if total > 0 else np.zeros_like(gain)
        order = sorted(range(len(names)), key=lambda i: (-share[i], names[i]))
        self.feature_importance_ = {names[i]: float(share[i]) for i in order}

    # -- predictions ----------------------------------------------------------------------
    def predict_proba(self, X: Any) -> np.ndarray:
        """P(label = 1) per row, a 1-d array (unlike scikit-learn's two columns).

        ``X`` has the training columns in the training order (a DataFrame is reordered by name).
        """
        self._check_fitted()
        if hasattr(X, "columns") and hasattr(X, "to_numpy"):
            missing = [c for c in self.feature_names_ if c not in X.columns]
            if missing:
                raise ValueError(f"X lacks the features {missing}")
            X = X[self.feature_names_]
        arr, _ = _as_matrix(X)
        if arr.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {arr.shape[1]} columns but the model was fitted on {self.n_features_in_}")
        p = self.booster_.predict(arr, num_threads=int(self.params_.get("num_threads", 1)))
        return np.asarray(p, dtype=float)

    # -- storage --------------------------------------------------------------------------
    def to_model_string(self) -> str:
        """The fitted trees in LightGBM's text format (feature names included)."""
        self._check_fitted()
        return str(self.booster_.model_to_string())

    @classmethod
    def from_model_string(
        cls,
        text: str,
        params: dict[str, Any],
        categorical_features: Sequence[str] = (),
        n_samples: int = 0,
        positive_rate: float = float("nan"),
    ) -> PropensityModel:
        """A fitted model from :meth:`to_model_string` text and the ``params_`` it was trained with."""
        import lightgbm as lgb

        booster = lgb.Booster(model_str=text)
        model = cls(**{k: params[k] for k in ("n_estimators", "seed", "num_threads") if k in params})
        model.params_ = dict(params)
        names = [str(n) for n in booster.feature_name()]
        model._set_fitted(booster, names, list(categorical_features), int(n_samples), float(positive_rate))
        return model

    def __repr__(self) -> str:
        if not self.is_fitted:
            return f"<panhuo PropensityModel: not fitted, {self._repr_options()}>"
        top = ", ".join(f"{k} {v:.0%}" for k, v in list(self.feature_importance_.items())[:3])
        return (f"<panhuo PropensityModel: {self.params_['n_estimators']} trees, {self.n_features_in_} features, "
                f"fitted on {self.n_samples_:,} rows (positive rate {self.positive_rate_:.3f}); top: {top}>")
