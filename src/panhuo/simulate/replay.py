"""In-memory replay of a Thompson playbook in the simulated world, for the bandit's validation.

The same pieces as the warehouse loop (:mod:`panhuo.simulate.loop`) without the warehouse: the
world's true success probabilities (:class:`panhuo.simulate.world.World`), the bandit's floored
per-tier probabilities (:func:`panhuo.learn.bandit.tier_probabilities`) and the run engine's
stable-hash assignment (:func:`panhuo.runs.assignment.assign`). Each week a rotating share of the
population is the audience; a holdout share is kept out; treated customers get an arm; success is
drawn from the true probability of that arm. Feedback is delayed as in production: a week's outcomes
reach the posteriors only once its success window (``window`` trading days, 5 a week) has closed.

Regret of a treated customer = P(success | best arm of their tier) - P(success | the arm given), in
expectation (the world knows both). A fixed equal split on the same treated customers has regret
``best - mean over arms``; :func:`replay` returns both per week.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np

from panhuo.learn.bandit import BanditSettings, Posteriors, tier_probabilities
from panhuo.runs.assignment import assign, unit_hash
from panhuo.simulate.world import World

__all__ = ["ReplayResult", "replay", "REPLAY_TIERS"]

#: tiers of the replay population and their shares (tier ids of panhuo's default scheme)
REPLAY_TIERS: dict[str, float] = {"sleeping_hv_active": 0.2, "sleeping_young_active": 0.3, "sleeping_other": 0.35,
                                  "effective_at_risk": 0.15}
ARMS = ("guide-video", "level2-trial", "coupon")


@dataclass
class ReplayResult:
    """Per-week expected regret of Thompson and of a fixed equal split on the same treated customers."""

    seed: int
    weeks: int
    thompson: list[float] = field(default_factory=list)
    equal: list[float] = field(default_factory=list)
    treated: list[int] = field(default_factory=list)
    probabilities: list[dict[str, list[float]]] = field(default_factory=list)
    best: dict[str, str] = field(default_factory=dict)

    @property
    def cumulative(self) -> list[float]:
        return list(np.cumsum(self.thompson))

    @property
    def cumulative_equal(self) -> list[float]:
        return list(np.cumsum(self.equal))

    def sublinear(self) -> bool:
        """The later half of the weeks adds less regret than the earlier half (cumulative regret bends)."""
        h = self.weeks // 2
        return sum(self.thompson[h:]) < sum(self.thompson[:h])

    def beats_equal(self) -> bool:
        return sum(self.thompson) < sum(self.equal)


def replay(seed: int, *, weeks: int = 8, customers: int = 20_000, audience: float = 0.4, holdout: float = 0.1,
           window: int = 10, settings: BanditSettings | None = None, world: World | None = None,
           playbook_id: str = "replay-thompson") -> ReplayResult:
    """Play ``weeks`` weekly runs of a three-arm Thompson playbook; see the module docstring."""
    if weeks < 2 or customers < 100:
        raise ValueError("a replay needs at least 2 weeks and 100 customers")
    settings = settings or BanditSettings(draws=4000)
    world = world or World(seed=seed)
    ids = [f"R{seed}-{i:07d}" for i in range(customers)]
    u = unit_hash(ids, "replay-tier", str(seed))
    names = list(REPLAY_TIERS)
    cuts = np.cumsum(list(REPLAY_TIERS.values()))
    tier = np.array(names, dtype=object)[np.searchsorted(cuts, u * cuts[-1], side="right").clip(0, len(names) - 1)]
    hazard = world.hazards(ids, list(tier))["trade"]
    channel = ["app_push"] * customers
    arms = list(ARMS)
    out = ReplayResult(seed=seed, weeks=weeks, best=world.best_arms(playbook_id, names, arms))
    lag = math.ceil(window / 5)  # weeks until a run's window has closed
    pending: list[tuple[int, list[tuple[str, str, bool]]]] = []
    post = Posteriors(arms)
    contacts = np.zeros((weeks, customers), dtype=np.int64)
    start = dt.date(2026, 1, 5)
    for w in range(weeks):
        for item in [p for p in pending if p[0] + lag <= w]:
            post.add_rows(item[1])
            pending.remove(item)
        as_of = start + dt.timedelta(weeks=w)
        by_tier = {}
        for t in names:
            c = post.of(t)
            by_tier[t] = tier_probabilities(c[:, 0], c[:, 1], settings, playbook_id, t, as_of.isoformat())
        out.probabilities.append({t: [float(x) for x in p] for t, p in by_tier.items()})
        pick = np.flatnonzero(unit_hash(ids, "replay-week", str(seed), str(w)) < audience)
        pid = [ids[i] for i in pick]
        probs = np.array([by_tier[tier[i]] for i in pick])
        a = assign(pid, playbook_id, str(seed), holdout, [(x, 1 / len(arms)) for x in arms], probs=probs)
        treated = a.group == "treated"
        ti = pick[treated]
        prior = contacts[max(0, w - world.fatigue_days // 5):w, ti].sum(axis=0) if w else np.zeros(ti.size)
        p = world.arm_probabilities([ids[i] for i in ti], playbook_id, list(tier[ti]), arms,
                                    [channel[i] for i in ti], prior, hazard[ti], window)
        j = np.array([arms.index(x) for x in a.arm[treated]], dtype=np.int64)
        got = p[np.arange(ti.size), j]
        best = p.max(axis=1)
        out.thompson.append(float((best - got).sum()))
        out.equal.append(float((best - p.mean(axis=1)).sum()))
        out.treated.append(int(ti.size))
        rng = np.random.default_rng(np.random.SeedSequence([seed, w, 7]))
        success = rng.random(ti.size) < got
        contacts[w, ti] = 1
        pending.append((w, [(str(tier[i]), arms[k], bool(s)) for i, k, s in zip(ti, j, success, strict=True)]))
    return out
