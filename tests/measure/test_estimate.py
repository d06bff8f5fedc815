"""Estimators: exact small cases, properties (hypothesis), IPW bias check, and the fast run of validation/measurement.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panhuo.measure.estimate import cuped_adjust, hajek_mean, increment, increment_with_cuped

__all__: list[str] = []


def test_plain_increment_by_hand() -> None:
    yt = [1, 0, 1, 1]  # 0.75
    yh = [0, 1, 0, 0]  # 0.25
    est = increment(yt, yh)
    assert est.estimate == pytest.approx(0.5 * 4)
    # se of each mean: sqrt(sum (y-m)^2)/n * sqrt(n/(n-1)) = sqrt(0.75)/4 * sqrt(4/3) = 0.25
    se = np.sqrt(0.25**2 + 0.25**2)
    assert est.ci_low == pytest.approx((0.5 - 1.959963984540054 * se) * 4)
    assert est.ci_high == pytest.approx((0.5 + 1.959963984540054 * se) * 4)
    assert not est.significant  # the CI includes 0


def test_hajek_weights_by_propensity() -> None:
    # y=1 with propensity 0.5 (weight 2), y=0 with propensity 1 (weight 1): mean 2/3
    mean, _ = hajek_mean([1, 0], [0.5, 1.0])
    assert mean == pytest.approx(2 / 3)


def test_zero_holdout_or_treated_not_estimable() -> None:
    assert not increment([1, 0, 1], []).estimable
    assert "holdout" in (increment([1, 0, 1], []).reason or "")
    assert not increment([], [0, 1]).estimable
    inc = increment_with_cuped([1, 0], [], [0, 0], [])
    assert inc.plain.estimate is None and inc.cuped is None


def test_bad_propensity_refused() -> None:
    with pytest.raises(ValueError, match="propensity"):
        increment([1, 0], [0, 1], [0.0, 0.5], [0.5, 0.5])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 1), min_size=2, max_size=40), st.lists(st.integers(0, 1), min_size=2, max_size=40),
       st.floats(0.05, 1.0))
def test_properties(yt: list[int], yh: list[int], p: float) -> None:
    est = increment(yt, yh, [p] * len(yt), [1 - p + 0.01 if p < 0.99 else 0.5] * len(yh))
    assert est.ci_low <= est.estimate <= est.ci_high
    # equal propensities within a group: the Hajek mean is the plain mean
    assert est.estimate == pytest.approx((np.mean(yt) - np.mean(yh)) * len(yt))
    # swapping the groups negates the difference of the means
    back = increment(yh, yt, n_treated=len(yt))
    assert back.estimate == pytest.approx(-est.estimate)
    assert -1e-9 * len(yt) <= est.estimate + np.mean(yh) * len(yt) <= len(yt) * (1 + 1e-9)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=3, max_size=30), st.floats(-5, 5))
def test_cuped_removes_the_linear_part(x: list[float], slope: float) -> None:
    xa = np.asarray(x)
    adj, theta = cuped_adjust(slope * xa + 3.0, xa)
    if np.var(xa) > 1e-6:
        assert theta == pytest.approx(slope, abs=1e-6)
        assert np.allclose(adj, adj.mean(), atol=1e-6)
    assert adj.mean() == pytest.approx(slope * xa.mean() + 3.0, abs=1e-6)  # CUPED keeps the mean


def _world(rng: np.random.Generator, n: int, tau: float) -> tuple:
    """Customers with a pre-period activity x; treated with probability 0.8 (first half) or 0.5 (second)."""
    x = rng.binomial(1, 0.3, n)
    p_treat = np.where(np.arange(n) < n // 2, 0.8, 0.5)
    base = np.where(np.arange(n) < n // 2, 0.10, 0.20) + 0.25 * x  # the propensity is related to the outcome
    t = rng.random(n) < p_treat
    y = (rng.random(n) < base + tau * t).astype(float)
    comm = y * rng.gamma(2.0, 50.0, n)
    prop = np.where(t, p_treat, 1 - p_treat)
    return t, y, comm, x, prop, base


def _validation():
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "validation" / "measurement.py"
    spec = importlib.util.spec_from_file_location("validation_measurement", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclass looks its module up there
    spec.loader.exec_module(mod)
    return mod


def test_measurement_validation_fast() -> None:
    """The validation script runs (few replications) and its figures are sane; the 200+ run is the script's."""
    val = _validation()
    res = val.run(replications=12, customers=4000, seed=5)
    assert set(res.coverage) == {"conversions ipw", "conversions cuped", "commission ipw", "commission cuped"}
    for v in res.coverage.values():
        assert 0.6 <= v <= 1.0  # 12 draws of a 95% CI: fewer than 60% covering would be a real failure
    for v in res.width_ratio.values():
        assert 0.5 < v < 1.0  # the pre-period outcome predicts the outcome: CUPED narrows, but not to nothing
    lift, lift_comm = val.true_effects()
    assert lift == pytest.approx(0.5 * -0.01 + 0.3 * 0.04 + 0.2 * 0.08)
    assert val.main(["--replications", "3", "--customers", "2000"]) in (0, 1)


def test_unweighted_estimate_is_biased_where_propensities_differ() -> None:
    """The IPW is not decoration: ignoring unequal propensities gives a clearly wrong answer here."""
    rng = np.random.default_rng(7)
    t, y, _, _, prop, _ = _world(rng, 40000, 0.0)
    weighted = increment(y[t], y[~t], prop[t], prop[~t])
    naive = increment(y[t], y[~t])
    assert weighted.ci_low <= 0 <= weighted.ci_high
    assert not (naive.ci_low <= 0 <= naive.ci_high)
