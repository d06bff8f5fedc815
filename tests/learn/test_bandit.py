"""Thompson sampling per segment (panhuo.learn.bandit) and the per-customer probabilities of assign()."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from panhuo.errors import ConfigError
from panhuo.learn.bandit import (
    POOLED,
    BanditSettings,
    Posteriors,
    allocation,
    floored,
    load_bandit_settings,
    tier_probabilities,
)
from panhuo.playbooks.schema import PlaybookSpec
from panhuo.runs.assignment import assign, customer_probabilities

DAY = dt.date(2026, 11, 24)


def _spec(allocation: str = "thompson") -> PlaybookSpec:
    return PlaybookSpec.model_validate({
        "id": "pb-bandit", "name": "bandit test",
        "timing": {"trigger": "schedule", "schedule": "every_trading_day", "at": "10:00", "send_window": ["09:30", "17:00"],
                   "reentry": "every_time"},
        "user": {"rule": "status = 'sleeping'"},
        "benefit": {"items": ["market-weekly-news"]},
        "channel": {"fixed": "app_push"},
        "method": {"mode": "automated", "holdout": 0.1, "allocation": allocation,
                   "arms": [{"id": "arm-a", "items": ["market-weekly-news"]}, {"id": "arm-b", "items": ["market-weekly-news"]}],
                   "success": {"event": "trade", "within_trading_days": 10}},
    })


def test_floor_keeps_every_arm_and_sums_to_one() -> None:
    p = floored(np.array([1.0, 0.0, 0.0]), 0.05)
    assert p.tolist() == pytest.approx([0.9, 0.05, 0.05])
    assert p.sum() == pytest.approx(1.0)
    # a clear winner gets most of the traffic, the loser never less than the floor
    s = BanditSettings(floor=0.05, draws=5000)
    q = tier_probabilities([60, 10], [40, 90], s, "pb", "tier", DAY.isoformat())
    assert q[0] > 0.9 and q[1] == pytest.approx(0.05, abs=1e-9)


def test_probabilities_are_deterministic_and_equal_without_data() -> None:
    s = BanditSettings(draws=2000)
    one = tier_probabilities([3, 4], [7, 6], s, "pb", "t", "2026-11-24")
    assert np.array_equal(one, tier_probabilities([3, 4], [7, 6], s, "pb", "t", "2026-11-24"))
    assert tier_probabilities([0, 0, 0], [0, 0, 0], s, "pb").tolist() == pytest.approx([1 / 3] * 3)


def test_posteriors_per_tier_and_pooled() -> None:
    post = Posteriors(["a", "b"])
    post.add_rows([("t1", "a", True), ("t1", "a", False), ("t2", "b", True), (None, "b", False), ("t1", "gone", True)])
    assert post.of("t1").tolist() == [[1, 1], [0, 0]]
    assert post.of("t2").tolist() == [[0, 0], [1, 0]]
    assert post.of(POOLED).tolist() == [[1, 1], [1, 1]]
    assert post.of("unknown").tolist() == post.of(POOLED).tolist()
    assert post.to_json()["t2"]["b"] == {"alpha": 2, "beta": 1}


def test_allocation_differs_by_tier(workspace) -> None:
    post = Posteriors(["arm-a", "arm-b"])
    post.add("hv", "arm-a", True, 80)
    post.add("hv", "arm-a", False, 120)
    post.add("hv", "arm-b", True, 20)
    post.add("hv", "arm-b", False, 180)
    post.add("young", "arm-a", True, 10)
    post.add("young", "arm-a", False, 190)
    post.add("young", "arm-b", True, 60)
    post.add("young", "arm-b", False, 140)
    alloc = allocation(workspace, _spec(), DAY, posteriors=post, settings=BanditSettings(floor=0.1, draws=4000))
    assert alloc.of("hv")[0] > 0.85 and alloc.of("young")[1] > 0.85
    assert min(alloc.of("hv").min(), alloc.of("young").min()) >= 0.1 - 1e-12
    m = alloc.matrix(["hv", "young", None])
    assert m.shape == (3, 2) and np.allclose(m.sum(axis=1), 1.0)
    assert np.array_equal(m[2], alloc.of(POOLED))
    assert alloc.to_json()["probabilities"]["hv"]["arm-a"] == pytest.approx(float(alloc.of("hv")[0]))


def test_assign_logs_the_per_customer_probability_as_propensity() -> None:
    ids = [f"C{i:05d}" for i in range(4000)]
    probs = np.tile([0.8, 0.2], (4000, 1))
    probs[2000:] = [0.1, 0.9]
    a = assign(ids, "pb", "0", 0.1, [("a", 0.5), ("b", 0.5)], probs=probs)
    treated = a.group == "treated"
    first, second = treated[:2000], treated[2000:]
    share_a = (a.arm[:2000][first] == "a").mean()
    share_b = (a.arm[2000:][second] == "b").mean()
    assert 0.75 < share_a < 0.85 and 0.86 < share_b < 0.94
    want = np.where(a.arm == "a", 0.9 * probs[:, 0], 0.9 * probs[:, 1])
    assert np.allclose(a.propensity[treated], want[treated])
    assert np.allclose(a.propensity[~treated], 0.1)
    # the same ids and matrix give the same arms (stable hashes)
    again = assign(ids, "pb", "0", 0.1, [("a", 0.5), ("b", 0.5)], probs=probs)
    assert (again.arm == a.arm).all()
    # suitability masks still apply: a disallowed arm is never drawn, the propensity is renormalised
    allowed = np.ones((4000, 2), bool)
    allowed[:10, 0] = False
    masked = assign(ids, "pb", "0", 0.1, [("a", 0.5), ("b", 0.5)], allowed=allowed, probs=probs)
    t10 = masked.group[:10] == "treated"
    assert (masked.arm[:10][t10] == "b").all() and np.allclose(masked.propensity[:10][t10], 0.9)


def test_assign_refuses_a_wrong_matrix() -> None:
    with pytest.raises(ValueError, match="2 x 2"):
        assign(["x", "y"], "pb", "0", 0.1, [("a", 0.5), ("b", 0.5)], probs=np.ones((3, 2)) / 2)
    with pytest.raises(ValueError, match="sum to 1"):
        assign(["x", "y"], "pb", "0", 0.1, [("a", 0.5), ("b", 0.5)], probs=np.ones((2, 2)))


def test_fixed_allocation_has_no_matrix(workspace) -> None:
    assert customer_probabilities(workspace, _spec("fixed"), ["x"], DAY) is None


def test_settings_file(workspace) -> None:
    assert load_bandit_settings(workspace) == BanditSettings()
    (workspace.root / "bandit.yaml").write_text("floor: 0.1\ndraws: 500\n", encoding="utf-8")
    assert load_bandit_settings(workspace) == BanditSettings(floor=0.1, draws=500)
    (workspace.root / "bandit.yaml").write_text("flor: 0.1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="bandit.yaml: unknown field"):
        load_bandit_settings(workspace)
    (workspace.root / "bandit.yaml").write_text("floor: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="floor must be between 0 and 1"):
        load_bandit_settings(workspace)
    with pytest.raises(ConfigError, match="exceeds 1"):
        BanditSettings(floor=0.4).check(3)
