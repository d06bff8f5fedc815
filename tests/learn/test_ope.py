"""Off-policy evaluation: IPS, self-normalised IPS and doubly robust against hand computations and a known truth."""

from __future__ import annotations

import numpy as np
import pytest

from panhuo.learn.ope import CONTROL, OPEError, Policy, doubly_robust, evaluate_policy, ips, parse_policy, snips
from panhuo.measure.estimate import Z95

__all__: list[str] = []


def test_ips_and_snips_by_hand() -> None:
    y = np.array([1.0, 0.0, 1.0, 0.0])
    match = np.array([1.0, 1.0, 0.0, 1.0])
    p = np.array([0.5, 0.25, 0.5, 0.5])
    e = ips(y, match, p)
    terms = np.array([2.0, 0.0, 0.0, 0.0])
    assert e.estimate == pytest.approx(0.5)
    assert e.se == pytest.approx(terms.std(ddof=1) / 2)
    assert e.ci_low == pytest.approx(0.5 - Z95 * e.se) and e.ci_high == pytest.approx(0.5 + Z95 * e.se)
    s = snips(y, match, p)
    w = np.array([2.0, 4.0, 0.0, 2.0])
    assert s.estimate == pytest.approx(2.0 / 8.0)
    se = np.sqrt((w**2 * (y - 0.25) ** 2).sum()) / 8.0 * np.sqrt(3 / 2)
    assert s.se == pytest.approx(se)


def test_doubly_robust_by_hand() -> None:
    y = np.array([1.0, 0.0, 1.0])
    match = np.array([1.0, 0.0, 1.0])
    p = np.array([0.5, 0.5, 0.25])
    ql = np.array([0.4, 0.3, 0.2])
    qp = np.array([0.4, 0.6, 0.2])
    terms = qp + match / p * (y - ql)  # 0.4 + 1.2, 0.6, 0.2 + 3.2
    assert doubly_robust(y, match, p, ql, qp).estimate == pytest.approx(terms.mean())


def test_nothing_matching_is_not_estimable_not_zero() -> None:
    e = ips([1.0, 0.0], [0.0, 0.0], [0.5, 0.5])
    assert not e.estimable and "no logged action" in (e.reason or "")
    assert not snips([1.0, 0.0], [0.0, 0.0], [0.5, 0.5]).estimable


def _logged(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    x = rng.normal(size=n)
    p_treat = np.where(x > 0, 0.8, 0.3)
    t = rng.random(n) < p_treat
    base = np.where(x > 0, 0.2, 0.1)
    tau = np.where(x > 1, 0.2, np.where(x < -1, -0.05, 0.02))
    y = (rng.random(n) < base + t * tau).astype(float)
    return {"x": x, "t": t, "y": y, "prop": np.where(t, p_treat, 1 - p_treat), "base": base, "tau": tau}


def test_estimates_cover_a_known_policys_value() -> None:
    """Policy 'treat when x > 1': truth = mean(base + 1{x>1} tau); covered in >= 90% of 60 replications."""
    rng = np.random.default_rng(11)
    hits = {"ips": 0, "snips": 0, "dr": 0}
    reps = 60
    for _ in range(reps):
        d = _logged(3000, rng)
        policy = np.where(d["x"] > 1, 0, CONTROL)
        logged = np.where(d["t"], 0, CONTROL)
        truth = float(np.mean(d["base"] + (policy == 0) * d["tau"]))
        q = np.column_stack([d["base"] * 0.9, (d["base"] + 0.05)])  # a deliberately imperfect model
        res = evaluate_policy(d["y"], logged, d["prop"], policy, q)
        for m in hits:
            hits[m] += res[m].ci_low <= truth <= res[m].ci_high
    assert all(h >= 0.9 * reps for h in hits.values()), hits


def test_a_good_outcome_model_narrows_the_dr_interval() -> None:
    d = _logged(4000, np.random.default_rng(3))
    policy = np.where(d["x"] > 1, 0, CONTROL)
    logged = np.where(d["t"], 0, CONTROL)
    q = np.column_stack([d["base"], d["base"] + d["tau"]])  # the true outcome model
    res = evaluate_policy(d["y"], logged, d["prop"], policy, q)
    assert res["dr"].se < res["ips"].se
    assert res["share_contacted"] == pytest.approx(float((d["x"] > 1).mean()))
    assert res["matched"] == int((logged == policy).sum())


def test_policies_over_predicted_uplift() -> None:
    u = np.array([[0.1, 0.3], [-0.2, -0.1], [0.05, 0.0], [0.4, 0.2], [0.0, -0.3]])
    arms = ["a", "b"]
    assert parse_policy("none").actions(u, arms).tolist() == [CONTROL] * 5
    assert parse_policy("all").actions(u, arms).tolist() == [1, 1, 0, 0, 0]
    assert parse_policy("all:b").actions(u, arms).tolist() == [1] * 5
    assert parse_policy("uplift>0").actions(u, arms).tolist() == [1, CONTROL, 0, 0, CONTROL]
    assert parse_policy(" uplift > 0.2 ").actions(u, arms).tolist() == [1, CONTROL, CONTROL, 0, CONTROL]
    assert parse_policy("top:40").actions(u, arms).tolist() == [1, CONTROL, CONTROL, 0, CONTROL]
    assert parse_policy("top:40%").text == "top:40"
    assert Policy("threshold", 0.0).text == "uplift>0"


@pytest.mark.parametrize(("text", "reason"), [
    ("top:0", r"\(0, 100\]"), ("top:150", r"\(0, 100\]"), ("best", "unknown policy"), ("uplift>=x", "unknown policy"),
])
def test_wrong_policies_are_clear_errors(text: str, reason: str) -> None:
    with pytest.raises(OPEError, match=reason):
        parse_policy(text)


def test_unknown_arm_and_bad_arrays_are_clear_errors() -> None:
    with pytest.raises(OPEError, match="unknown arm 'c'"):
        parse_policy("all:c").actions(np.zeros((2, 2)), ["a", "b"])
    with pytest.raises(OPEError, match="same length"):
        ips([1.0, 0.0], [1.0], [0.5, 0.5])
    with pytest.raises(OPEError, match="probability 0"):
        ips([1.0, 0.0], [1.0, 1.0], [0.0, 0.5])
    with pytest.raises(OPEError, match="at least 2"):
        ips([1.0], [1.0], [0.5])
    with pytest.raises(OPEError, match="one value per logged row"):
        doubly_robust([1.0, 0.0], [1.0, 1.0], [0.5, 0.5], [0.1], [0.1, 0.2])
