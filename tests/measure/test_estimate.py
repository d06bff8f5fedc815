"""Estimators: exact small cases, properties (hypothesis), and CI coverage over seeded simulations."""

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


def test_simulation_coverage_and_cuped_narrows() -> None:
    tau = 0.05
    covered = covered_c = covered_comm = 0
    widths, widths_c = [], []
    reps = 200
    for seed in range(reps):
        rng = np.random.default_rng(seed)
        t, y, comm, x, prop, _ = _world(rng, 4000, tau)
        nt = int(t.sum())
        truth = tau * nt  # incremental conversions among the treated
        inc = increment_with_cuped(y[t], y[~t], x[t], x[~t], prop[t], prop[~t], n_treated=nt)
        covered += inc.plain.ci_low <= truth <= inc.plain.ci_high
        covered_c += inc.cuped.ci_low <= truth <= inc.cuped.ci_high
        widths.append(inc.plain.ci_high - inc.plain.ci_low)
        widths_c.append(inc.cuped.ci_high - inc.cuped.ci_low)
        truth_comm = tau * 100.0 * nt  # each conversion brings gamma(2, 50) commission, mean 100
        c = increment(comm[t], comm[~t], prop[t], prop[~t])
        covered_comm += c.ci_low <= truth_comm <= c.ci_high
    for hits in (covered, covered_c, covered_comm):
        assert 0.90 <= hits / reps <= 0.99, hits / reps
    assert np.mean(widths_c) < np.mean(widths)


def test_unweighted_estimate_is_biased_where_propensities_differ() -> None:
    """The IPW is not decoration: ignoring unequal propensities gives a clearly wrong answer here."""
    rng = np.random.default_rng(7)
    t, y, _, _, prop, _ = _world(rng, 40000, 0.0)
    weighted = increment(y[t], y[~t], prop[t], prop[~t])
    naive = increment(y[t], y[~t])
    assert weighted.ci_low <= 0 <= weighted.ci_high
    assert not (naive.ci_low <= 0 <= naive.ci_high)
