"""The simulated world's true effects, the in-memory bandit replay and the fast bandit validation."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from panhuo.simulate.replay import replay
from panhuo.simulate.world import World

IDS = [f"C{i:06d}" for i in range(20_000)]


def test_hazards_follow_the_tier_and_are_stable() -> None:
    w = World(seed=3)
    hv = w.trade_hazard(IDS, ["sleeping_hv_active"] * len(IDS))
    silent = w.trade_hazard(IDS, ["long_silent"] * len(IDS))
    assert hv.mean() == pytest.approx(0.012, rel=0.05) and silent.mean() == pytest.approx(0.0015, rel=0.05)
    assert np.array_equal(hv, World(seed=3).trade_hazard(IDS, ["sleeping_hv_active"] * len(IDS)))
    assert not np.array_equal(hv, World(seed=4).trade_hazard(IDS, ["sleeping_hv_active"] * len(IDS)))


def test_true_effect_harm_channel_and_fatigue() -> None:
    w = World(seed=1)
    n = len(IDS)
    tiers = ["sleeping_other"] * n
    h = w.hazards(IDS, tiers)["trade"]
    m = w.multiplier(IDS, "pb", tiers, ["arm-a"] * n, ["app_push"] * n, np.zeros(n))
    harmed = w.harmed(IDS)
    assert harmed.mean() == pytest.approx(0.08, abs=0.01)
    assert np.allclose(m[harmed], 0.5) and (m[~harmed] >= 1).all()
    base = w.p_success(h, 1.0, 10)
    treated = w.p_success(h, m, 10)
    assert (treated[harmed] < base[harmed]).all()  # harmed by contact: less likely to trade
    assert (treated[~harmed] >= base[~harmed]).all()
    # exact: 1 - (1 - h m)^10 with the effect lasting the 10 days of the window
    assert treated[0] == pytest.approx(1 - (1 - h[0] * m[0]) ** 10)
    tired = w.multiplier(IDS, "pb", tiers, ["arm-a"] * n, ["app_push"] * n, np.full(n, 2))
    sms = w.multiplier(IDS, "pb", tiers, ["arm-a"] * n, ["sms"] * n, np.zeros(n))
    lift = w.lift("pb", "sleeping_other", "arm-a")
    if lift > 0:
        assert (tired[~harmed] < m[~harmed]).all() and (sms[~harmed] < m[~harmed]).all()
    # heterogeneous: the best arm is not the same in every tier for some playbook
    arms = ["a1", "a2", "a3"]
    tiers_all = ["sleeping_hv_active", "sleeping_young_active", "sleeping_other", "effective_at_risk"]
    assert any(len(set(w.best_arms(f"pb{k}", tiers_all, arms).values())) > 1 for k in range(5))


def test_day_draws_are_seeded_by_world_and_day() -> None:
    w = World(seed=2)
    hz = w.hazards(IDS, ["effective_active"] * len(IDS))
    d = dt.date(2026, 12, 1)
    one, two = w.draw_day(d, hz, np.ones(len(IDS))), w.draw_day(d, hz, np.ones(len(IDS)))
    assert all(np.array_equal(one[k], two[k]) for k in one)
    assert one["trade"].mean() == pytest.approx(hz["trade"].mean(), rel=0.15)
    assert (one["login"] | ~one["trade"]).all()  # everyone who trades (app users) logs in


def test_replay_learns_the_best_arm_per_tier() -> None:
    r = replay(5, weeks=8, customers=6000)
    assert r.sublinear() and r.beats_equal()
    assert r.thompson[0] == pytest.approx(r.equal[0], rel=0.15)  # week 1: no closed window, equal split
    last = r.probabilities[-1]
    learnt = [t for t, best in r.best.items() if last[t][["guide-video", "level2-trial", "coupon"].index(best)] > 0.5]
    assert len(learnt) >= 3
    assert min(min(p) for p in last.values()) >= 0.05 - 1e-9  # the exploration floor
    again = replay(5, weeks=8, customers=6000)  # same seed, same world, same numbers
    assert again.thompson == r.thompson and again.probabilities == r.probabilities


def test_bandit_validation_fast() -> None:
    path = Path(__file__).resolve().parents[2] / "validation" / "bandit.py"
    spec = importlib.util.spec_from_file_location("validation_bandit", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.check(replications=3, weeks=8, customers=5000, quiet=True) == []
    assert mod.main(["--replications", "2", "--customers", "4000"]) == 0
