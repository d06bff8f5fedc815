"""BG/NBD: the published CDNOW fit, recovery from simulated data, the gradient, predictions, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import panhuo.models.base as base_mod
import panhuo.models.bgnbd as bgnbd_mod
from panhuo.errors import NotFittedError
from panhuo.models import BetaGeoModel, collapse_summary, simulate_bgnbd
from panhuo.models.bgnbd import _loglik, _Prepared, check_summary

CDNOW = Path(__file__).resolve().parents[1] / "data" / "cdnow_customers_summary.csv"
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # FHL 2005, section 4
PUBLISHED_LL = -9582.4


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(CDNOW)


@pytest.fixture(scope="module")
def fitted(cdnow: pd.DataFrame) -> BetaGeoModel:
    return BetaGeoModel().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])


def test_cdnow_fixture_is_the_published_sample(cdnow):
    assert len(cdnow) == 2357
    assert cdnow["T"].max() == pytest.approx(38.86)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_cdnow_parameters_match_the_paper_within_1_percent(fitted, name):
    assert fitted.params_[name] == pytest.approx(PUBLISHED[name], rel=0.01)


def test_cdnow_log_likelihood_matches_the_paper(fitted, cdnow):
    assert fitted.log_likelihood_ == pytest.approx(PUBLISHED_LL, abs=0.1)
    assert fitted.log_likelihood(cdnow["frequency"], cdnow["recency"], cdnow["T"]) == pytest.approx(
        fitted.log_likelihood_, abs=1e-6
    )


def test_cdnow_published_conditional_expectation(fitted):
    # FHL 2005 section 5: x = 2, t_x = 30.43, T = 38.86 -> 1.226 purchases in the next 39 weeks
    got = fitted.conditional_expected_number_of_purchases_up_to_time(39, 2, 30.43, 38.86)
    assert got[0] == pytest.approx(1.226, abs=5e-4)


def test_weights_fit_the_same_as_repeated_rows(cdnow):
    c = collapse_summary(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert c.customers == len(cdnow) and len(c.weights) < len(cdnow)
    a = BetaGeoModel().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    b = BetaGeoModel().fit(c.frequency, c.recency, c.T, weights=c.weights)
    for k in PUBLISHED:
        assert a.params_[k] == pytest.approx(b.params_[k], rel=1e-6)
    assert b.log_likelihood_ == pytest.approx(a.log_likelihood_, abs=1e-6)
    assert b.n_customers_ == len(cdnow) and b.n_rows_ == len(c.weights)


def test_gradient_matches_finite_differences(cdnow):
    s = check_summary(cdnow["frequency"], cdnow["recency"], cdnow["T"], np.arange(len(cdnow)) % 3 + 1.0)
    d = _Prepared(s, 1.0)
    for theta in (np.log([0.5, 3.0, 1.5, 0.7]), np.log([2.0, 10.0, 0.3, 4.0])):
        _, g = _loglik(theta, d)
        h = 1e-6
        num = np.array([
            (_loglik(theta + h * e, d, grad=False)[0] - _loglik(theta - h * e, d, grad=False)[0]) / (2 * h)
            for e in np.eye(4)
        ])
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-4)


def test_gradient_is_zero_at_the_fit(fitted, cdnow):
    g = fitted.log_likelihood_gradient(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert np.abs(g).max() < 1e-2  # per 2,357 customers


@pytest.mark.slow
@pytest.mark.parametrize("true", [
    {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
    {"r": 1.5, "alpha": 80.0, "a": 1.8, "b": 6.0},
])
def test_recovers_known_parameters_from_simulated_data(true):
    rng = np.random.default_rng(7)
    T = rng.uniform(30, 120, 200_000) * (true["alpha"] / 10)
    s = simulate_bgnbd(**true, T=T, seed=rng)
    m = BetaGeoModel().fit(s.frequency, s.recency, s.T)
    for k, v in true.items():
        assert m.params_[k] == pytest.approx(v, rel=0.08), (k, m.params_)


def test_simulator_mean_matches_unconditional_expectation():
    true = {"r": 0.8, "alpha": 5.0, "a": 0.9, "b": 2.5}
    s = simulate_bgnbd(**true, T=np.full(400_000, 20.0), seed=3)
    expected = BetaGeoModel().set_params(**true).expected_number_of_purchases_up_to_time(20.0)[0]
    assert s.frequency.mean() == pytest.approx(expected, rel=0.01)
    assert ((s.recency <= s.T) & ((s.frequency > 0) | (s.recency == 0))).all()


def test_p_alive_is_one_without_repeat_transactions(fitted):
    # FHL 2008 eq. 2: dropout happens only right after a repeat transaction
    p = fitted.conditional_probability_alive([0, 0], [0, 0], [1.0, 38.86])
    np.testing.assert_array_equal(p, [1.0, 1.0])


def test_p_alive_decreases_with_age_and_rises_with_recency(fitted):
    T = np.linspace(31, 200, 50)
    p = fitted.conditional_probability_alive(np.full(50, 3), np.full(50, 30.0), T)
    assert (np.diff(p) < 0).all() and ((p > 0) & (p <= 1)).all()
    tx = np.linspace(1, 38, 40)
    q = fitted.conditional_probability_alive(np.full(40, 3), tx, np.full(40, 38.86))
    assert (np.diff(q) > 0).all()
    assert fitted.conditional_probability_alive(5, 38.86, 38.86)[0] == pytest.approx(1 / (1 + 0.793 / 6.426), rel=0.01)


def test_conditional_expectation_at_birth_equals_unconditional(fitted):
    t = np.array([1.0, 10.0, 39.0, 78.0])
    cond = fitted.conditional_expected_number_of_purchases_up_to_time(t, np.zeros(4), np.zeros(4), np.zeros(4))
    np.testing.assert_allclose(cond, fitted.expected_number_of_purchases_up_to_time(t), rtol=1e-10)
    assert (np.diff(cond) > 0).all()


def test_conditional_expectation_grows_with_frequency(fitted):
    e = fitted.conditional_expected_number_of_purchases_up_to_time(39, [1, 3, 6, 10], [38.0] * 4, [38.86] * 4)
    assert (np.diff(e) > 0).all()


def test_unfitted_model_raises_not_fitted():
    m = BetaGeoModel()
    assert "not fitted" in repr(m)
    with pytest.raises(NotFittedError, match="BetaGeoModel is not fitted"):
        m.conditional_probability_alive([1], [1.0], [2.0])
    with pytest.raises(ValueError):  # NotFittedError is a ValueError too
        m.log_likelihood([1], [1.0], [2.0])


def test_repr_shows_fitted_parameters(fitted):
    text = repr(fitted)
    assert "r=0.2426" in text and "alpha=4.414" in text and "2,357 customers" in text


@pytest.mark.parametrize(("args", "message"), [
    (([1, 2], [3.0, 1.0], [2.0, 2.0]), r"recency must be <= T, got recency 3.0 > T 2.0 at position 0"),
    (([1.5], [1.0], [2.0]), r"frequency must be a whole number .* 1.5"),
    (([-1], [0.0], [2.0]), r"frequency must be >= 0"),
    (([0], [1.0], [2.0]), r"recency must be 0 where frequency is 0"),
    (([1], [-1.0], [2.0]), r"recency must be >= 0"),
    (([1, 2], [1.0], [2.0, 3.0]), r"recency has 1 values but frequency has 2"),
    (([1], [np.nan], [2.0]), r"recency must be finite"),
    (([1], [1.0], ["x"]), r"T must be numeric"),
    (([], [], []), r"frequency is empty"),
])
def test_bad_summary_names_the_argument(args, message):
    with pytest.raises(ValueError, match=message):
        BetaGeoModel().fit(*args)


def test_bad_weights_and_options():
    with pytest.raises(ValueError, match="weights must be >= 0"):
        BetaGeoModel().fit([1], [1.0], [2.0], weights=[-1])
    with pytest.raises(ValueError, match="penalizer must be finite and >= 0, got -1"):
        BetaGeoModel(penalizer=-1).fit([1], [1.0], [2.0])
    with pytest.raises(ValueError, match="missing: \\['b'\\]"):
        BetaGeoModel().set_params(r=1, alpha=1, a=1)
    with pytest.raises(ValueError, match="alpha must be finite and > 0, got 0"):
        BetaGeoModel().set_params(r=1, alpha=0, a=1, b=1)


def test_penalizer_shrinks_parameters(cdnow):
    m = BetaGeoModel(penalizer=0.1).fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert m.params_["alpha"] < PUBLISHED["alpha"]
    assert m.log_likelihood_ < PUBLISHED_LL


@pytest.mark.parametrize("module", [base_mod, bgnbd_mod])
def test_all_lists_public_names(module):
    for name in module.__all__:
        assert hasattr(module, name)
