"""PropensityModel (LightGBM wrapper): the estimator contract, determinism, storage; the numpy metrics."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

import panhuo.models.metrics as metrics_mod
import panhuo.models.propensity as propensity_mod
from panhuo.errors import NotFittedError
from panhuo.models.metrics import brier_score, calibration_report, log_loss, reliability_table, roc_auc
from panhuo.models.propensity import PropensityModel

NAMES = ["signal", "noise", "missing", "cat"]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """2,000 rows: the label depends on ``signal`` and category 2 of ``cat``; ``missing`` is 20% NaN."""
    rng = np.random.default_rng(7)
    n = 2000
    X = np.column_stack([rng.normal(size=n), rng.normal(size=n), rng.normal(size=n), rng.integers(0, 4, n)])
    X[rng.random(n) < 0.2, 2] = np.nan
    logit = 1.5 * X[:, 0] + 1.0 * (X[:, 3] == 2) - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def _fit(data, **options) -> PropensityModel:
    X, y = data
    return PropensityModel(n_estimators=30, **options).fit(X, y, NAMES, ["cat"])


# -- the estimator contract ---------------------------------------------------------------
def test_init_only_stores_options():
    m = PropensityModel(n_estimators=-3, learning_rate="fast")  # type: ignore[arg-type]
    assert m.n_estimators == -3 and m.learning_rate == "fast"
    assert not m.is_fitted


def test_unfitted_model_raises_not_fitted(data):
    m = PropensityModel()
    with pytest.raises(NotFittedError, match="not fitted"):
        m.predict_proba(data[0])
    with pytest.raises(NotFittedError):
        m.to_model_string()
    assert "not fitted" in repr(m)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_estimators": 0}, "n_estimators must be a whole number >= 1, got 0"),
        ({"num_leaves": 1.5}, "num_leaves must be a whole number >= 2, got 1.5"),
        ({"learning_rate": 0}, r"learning_rate must be a finite number > 0.0, got 0"),
        ({"feature_fraction": 1.2}, r"feature_fraction must be a finite number in \(0.0, 1\], got 1.2"),
        ({"lambda_l2": -1.0}, r"lambda_l2 must be a finite number >= 0.0, got -1.0"),
        ({"seed": -1}, "seed must be a whole number >= 0, got -1"),
        ({"num_threads": True}, "num_threads must be a whole number >= 1, got True"),
    ],
)
def test_fit_rejects_bad_options_naming_them(data, options, message):
    with pytest.raises(ValueError, match=message):
        PropensityModel(**options).fit(*data)


@pytest.mark.parametrize(
    ("X", "y", "kwargs", "message"),
    [
        (np.zeros(5), [0, 1, 0, 1, 0], {}, "X must be two-dimensional"),
        (np.zeros((4, 2)), [0, 1, 0], {}, "y has 3 values but X has 4 rows"),
        (np.zeros((4, 2)), [0, 1, 2, 1], {}, "y must be 0 or 1, got 2.0 at position 2"),
        (np.zeros((4, 2)), [1, 1, 1, 1], {}, "y must hold both classes"),
        (np.array([[0.0, np.inf], [1, 1]]), [0, 1], {}, "X must not hold infinity"),
        (np.zeros((2, 2)), [0, 1], {"feature_names": ["a"]}, "feature_names has 1 names but X has 2 columns"),
        (np.zeros((2, 2)), [0, 1], {"feature_names": ["a", "a"]}, r"feature_names must be unique.*'a'"),
        (np.zeros((2, 2)), [0, 1], {"feature_names": ["a", "b"], "categorical_features": ["c"]},
         r"categorical_features must name features, got unknown \['c'\]"),
        (np.array([[0.0, 1.5], [1, 1]]), [0, 1], {"feature_names": ["a", "b"], "categorical_features": ["b"]},
         "categorical feature 'b' must hold whole numbers >= 0 .* got 1.5 at row 0"),
    ],
)
def test_fit_rejects_bad_input_naming_the_argument(X, y, kwargs, message):
    with pytest.raises(ValueError, match=message):
        PropensityModel(n_estimators=2).fit(X, y, **kwargs)


def test_fit_sets_the_fitted_attributes(data):
    m = _fit(data)
    assert m.is_fitted and m.feature_names_ == NAMES and m.categorical_features_ == ["cat"]
    assert m.n_features_in_ == 4 and m.n_samples_ == 2000
    assert m.positive_rate_ == pytest.approx(data[1].mean())
    assert m.params_["objective"] == "binary" and m.params_["deterministic"] is True
    assert m.params_["num_threads"] == 1 and m.params_["n_estimators"] == 30
    assert "30 trees, 4 features, fitted on 2,000 rows" in repr(m)


def test_feature_importance_is_a_normalised_ranking(data):
    imp = _fit(data).feature_importance_
    assert set(imp) == set(NAMES) and sum(imp.values()) == pytest.approx(1.0)
    assert list(imp.values()) == sorted(imp.values(), reverse=True)
    assert next(iter(imp)) == "signal"


def test_predictions_are_probabilities_with_signal(data):
    X, y = data
    p = _fit(data).predict_proba(X)
    assert p.shape == (2000,) and ((p > 0) & (p < 1)).all()
    assert roc_auc(y, p) > 0.75


def test_predict_proba_checks_columns_and_reorders_a_dataframe(data):
    X, _ = data
    m = _fit(data)
    frame = pd.DataFrame(X, columns=NAMES)
    assert np.array_equal(m.predict_proba(frame[NAMES[::-1]]), m.predict_proba(X))
    with pytest.raises(ValueError, match="X has 3 columns but the model was fitted on 4"):
        m.predict_proba(X[:, :3])
    with pytest.raises(ValueError, match=r"X lacks the features \['cat'\]"):
        m.predict_proba(frame.drop(columns="cat"))


def test_dataframe_gives_the_feature_names(data):
    X, y = data
    m = PropensityModel(n_estimators=3).fit(pd.DataFrame(X, columns=NAMES), y)
    assert m.feature_names_ == NAMES


def test_set_params_points_to_from_model_string():
    with pytest.raises(TypeError, match="from_model_string"):
        PropensityModel().set_params(a=1.0)


# -- determinism and storage ----------------------------------------------------------------
def test_same_data_and_options_give_identical_models(data):
    a, b = _fit(data, feature_fraction=0.5, bagging_fraction=0.7), _fit(data, feature_fraction=0.5,
                                                                         bagging_fraction=0.7)
    assert a.to_model_string() == b.to_model_string()
    assert np.array_equal(a.predict_proba(data[0]), b.predict_proba(data[0]))


def test_the_seed_drives_the_random_streams(data):
    a = _fit(data, feature_fraction=0.5, bagging_fraction=0.7, seed=1)
    b = _fit(data, feature_fraction=0.5, bagging_fraction=0.7, seed=2)
    assert not np.array_equal(a.predict_proba(data[0]), b.predict_proba(data[0]))


def test_model_string_round_trip(data):
    m = _fit(data)
    back = PropensityModel.from_model_string(m.to_model_string(), m.params_, ["cat"], m.n_samples_, m.positive_rate_)
    assert np.array_equal(back.predict_proba(data[0]), m.predict_proba(data[0]))
    assert back.feature_names_ == NAMES and back.feature_importance_ == m.feature_importance_
    assert back.params_ == m.params_


# -- metrics ----------------------------------------------------------------------------------
def _pairwise_auc(y: np.ndarray, p: np.ndarray) -> float:
    pos, neg = p[y == 1], p[y == 0]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auc_equals_the_pairwise_definition_with_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 120)
    p = np.round(rng.random(120), 1)  # many ties
    assert roc_auc(y, p) == pytest.approx(_pairwise_auc(y, p), abs=1e-12)


def test_auc_of_perfect_reversed_and_constant_forecasts():
    y = np.array([0, 0, 1, 1])
    assert roc_auc(y, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc(y, [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert roc_auc(y, [0.5] * 4) == 0.5


def test_brier_and_log_loss_known_values():
    assert brier_score([1, 0], [0.8, 0.4]) == pytest.approx((0.04 + 0.16) / 2)
    assert log_loss([1, 0], [0.8, 0.4]) == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2)


def test_reliability_table_by_decile():
    p = np.linspace(0.0, 1.0, 100)
    y = (p > 0.5).astype(int)
    table = reliability_table(y, p)
    assert [r["bin"] for r in table] == list(range(1, 11)) and all(r["rows"] == 10 for r in table)
    assert table[0]["mean_predicted"] == pytest.approx(p[:10].mean()) and table[0]["observed_rate"] == 0.0
    assert table[-1]["observed_rate"] == 1.0 and table[-1]["max_predicted"] == 1.0
    assert len(reliability_table([0, 1, 1], [0.1, 0.2, 0.3], bins=10)) == 3  # empty bins are left out


def test_calibration_report_keys():
    rep = calibration_report([0, 1, 1, 0], [0.2, 0.7, 0.6, 0.1])
    assert rep["auc"] == 1.0 and rep["rows"] == 4 and rep["positives"] == 2 and rep["base_rate"] == 0.5
    assert rep["brier_base_rate"] == 0.25 and len(rep["reliability"]) == 4
    assert calibration_report([1, 1], [0.2, 0.7])["auc"] is None


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 1], [0.5], "y_prob has 1 values but y_true has 2"),
        ([], [], "y_true is empty"),
        ([0, 2], [0.1, 0.2], "y_true must be 0 or 1, got 2.0 at position 1"),
        ([0, 1], [0.1, 1.2], r"y_prob must be in \[0, 1\], got 1.2 at position 1"),
        ([0, 1], [0.1, np.nan], "y_prob must be finite"),
    ],
)
def test_metrics_reject_bad_input(y, p, message):
    with pytest.raises(ValueError, match=message):
        brier_score(y, p)


def test_auc_needs_both_classes():
    with pytest.raises(ValueError, match="y_true must hold both classes for an AUC, got 2 positive and 0 negative"):
        roc_auc([1, 1], [0.1, 0.2])


@pytest.mark.parametrize("module", [metrics_mod, propensity_mod])
def test_all_lists_public_names(module):
    for name in module.__all__:
        assert hasattr(module, name)
