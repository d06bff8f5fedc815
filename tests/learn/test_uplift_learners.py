"""T- and X-learners and the Qini/AUUC metrics on data with a known heterogeneous effect (no workspace)."""

from __future__ import annotations

import numpy as np
import pytest

from panhuo.learn.uplift import MIN_ROWS, UpliftError, fit_arm, gain_curve, uplift_metrics

__all__: list[str] = []


def _world(n: int, seed: int, propensity: str = "equal") -> dict[str, np.ndarray]:
    """x0 drives the effect: +25pp for x0 > 0.5, -10pp (harmed) for x0 < -0.5; x1 drives the baseline only."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    base = 1 / (1 + np.exp(-(-1.0 + 0.8 * x[:, 1])))
    tau = np.where(x[:, 0] > 0.5, 0.25, np.where(x[:, 0] < -0.5, -0.10, 0.0))
    tau = np.clip(base + tau, 0, 1) - base
    p_treat = np.full(n, 0.5) if propensity == "equal" else np.where(x[:, 1] > 0, 0.8, 0.3)
    t = rng.random(n) < p_treat
    y = (rng.random(n) < base + t * tau).astype(float)
    prop = np.where(t, p_treat, 1 - p_treat)  # probability of the group actually assigned
    return {"x": x, "t": t, "y": y, "prop": prop, "tau": tau}


@pytest.mark.parametrize("learner", ["t", "x"])
def test_learners_rank_the_responsive_customers_first(learner: str) -> None:
    w = _world(6000, 1, "tiered")
    m = fit_arm(learner, w["x"], w["t"], w["y"], w["prop"], rounds=60, seed=3, threads=1)
    fresh = _world(4000, 2, "tiered")
    pred = m.predict(fresh["x"])
    assert np.corrcoef(pred, fresh["tau"])[0, 1] > 0.5
    # the top 20% by prediction hold far more of the true effect than a random 20% would
    top = np.argsort(-pred)[: len(pred) // 5]
    assert fresh["tau"][top].sum() > 2.5 * 0.2 * fresh["tau"].sum()
    met = uplift_metrics(pred, fresh["t"], fresh["y"], 1 / fresh["prop"])
    assert met["qini"] > 0.01
    assert met["auuc"] > met["auuc_random"]


def test_the_x_learner_uses_the_logged_constant_propensity_or_models_it() -> None:
    w = _world(2000, 5, "equal")
    m = fit_arm("x", w["x"], w["t"], w["y"], w["prop"], rounds=20, threads=1)
    assert m.e_const == pytest.approx(0.5) and m.e_model is None
    w = _world(2000, 5, "tiered")
    m = fit_arm("x", w["x"], w["t"], w["y"], w["prop"], rounds=20, threads=1)
    assert m.e_const is None and m.e_model is not None
    e = m.e_model.predict(w["x"])
    assert e[w["x"][:, 1] > 0.3].mean() > 0.65 and e[w["x"][:, 1] < -0.3].mean() < 0.45


def test_gain_curve_by_hand() -> None:
    # scores 4,3,2,1: treated responder, control non-responder, treated non-responder, control responder
    score = np.array([4.0, 3.0, 2.0, 1.0])
    t = np.array([True, False, True, False])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    phi, g = gain_curve(score, t, y)
    assert phi.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    # top 1: no control yet -> 0; top 2: (1 - 0) * 0.5; top 3: (0.5 - 0) * 0.75; all: (0.5 - 0.5) * 1
    assert g.tolist() == pytest.approx([0.0, 0.0, 0.5, 0.375, 0.0])
    met = uplift_metrics(score, t, y)
    auuc = 0.25 * (0 + 0) / 2 + 0.25 * (0 + 0.5) / 2 + 0.25 * (0.5 + 0.375) / 2 + 0.25 * (0.375 + 0) / 2
    assert met["auuc"] == pytest.approx(auuc)
    assert met["ate"] == pytest.approx(0.0) and met["qini"] == pytest.approx(auuc)


def test_tied_scores_are_one_point_of_the_curve() -> None:
    phi, g = gain_curve(np.ones(4), np.array([True, False, True, False]), np.array([1.0, 0.0, 0.0, 0.0]))
    assert phi.tolist() == [0.0, 1.0] and g[-1] == pytest.approx(0.5)


def test_weights_undo_unequal_propensities() -> None:
    w = _world(20000, 7, "tiered")
    phi, g = gain_curve(np.zeros(len(w["y"])), w["t"], w["y"], 1 / w["prop"])
    naive = w["y"][w["t"]].mean() - w["y"][~w["t"]].mean()
    assert abs(g[-1] - w["tau"].mean()) < 0.02  # the weighted average effect is the true one
    assert abs(naive - w["tau"].mean()) > 0.04  # the unweighted one is confounded by the tiers


def test_bad_input_is_a_clear_error() -> None:
    w = _world(200, 1)
    with pytest.raises(UpliftError, match="unknown learner"):
        fit_arm("s", w["x"], w["t"], w["y"])
    with pytest.raises(UpliftError, match=r"propensity must be in \(0, 1\]"):
        fit_arm("t", w["x"], w["t"], w["y"], np.zeros(200))
    with pytest.raises(UpliftError, match="differ in length"):
        fit_arm("t", w["x"], w["t"][:-1], w["y"])
    few = np.zeros(200, dtype=bool)
    few[: MIN_ROWS - 1] = True
    with pytest.raises(UpliftError, match=f"{MIN_ROWS - 1} treated row"):
        fit_arm("t", w["x"], few, w["y"])
    with pytest.raises(UpliftError, match="both treated and control"):
        uplift_metrics(np.ones(3), np.ones(3, dtype=bool), np.ones(3))
