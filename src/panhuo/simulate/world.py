"""The simulated world: how customers respond to panhuo's messages, with known true effects.

Every customer has a **baseline** daily hazard of trading, logging in and depositing, set by their
tier (分层) and a customer multiplier drawn from a stable hash (log-normal, mean about 1), so a
sleeping high-value customer who still logs in trades far more often than a long-silent one.

A message changes the hazards of the ``effect_days`` trading days after its run's as-of date by a
multiplier ``m``:

* most customers respond: ``m = 1 + lift(playbook, tier, arm) x channel factor x fatigue ** k``,
  where ``lift`` is drawn per (world seed, playbook, tier, arm) from a stable hash (between 0 and
  ``lift_scale``, so arms differ and the best arm differs by tier), the channel factor favours an
  advisor's call and penalises SMS, and ``k`` is the number of messages the customer got in the
  ``fatigue_days`` trading days before (contact fatigue);
* a share ``harmed_share`` of customers (stable hash) is **harmed** by any contact: ``m = harm`` (< 1,
  less likely to trade after being contacted, whatever the arm).

The probability of the success event in a window of ``W`` trading days is then exact:
``1 - (1 - h m)^min(E, W) (1 - h)^(W - min(E, W))`` with ``h`` the daily hazard of the event and
``E`` the effect days; the **true effect** of an assignment is that minus the same with ``m = 1``.
The best arm of a segment is the arm with the largest lift in that tier (``m`` grows with the lift
for everyone who is not harmed, and does not depend on the arm for those who are), so regret is
measured against it. ``back_to_effective`` and ``activated`` are not simulated (no true effect).
Same seed, same world: every draw is a stable hash or a generator seeded by (seed, day).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from panhuo.runs.assignment import unit_hash

__all__ = ["BASE_TRADE", "CHANNEL_FACTOR", "SIMULATED_EVENTS", "World"]

#: baseline daily probability of at least one trade, per tier id of panhuo's default scheme
BASE_TRADE: dict[str, float] = {
    "dormant": 0.0003, "new_empty": 0.004, "sleeping_hv_active": 0.012, "sleeping_hv_silent": 0.004,
    "sleeping_young_active": 0.010, "long_silent": 0.0015, "sleeping_other": 0.005,
    "effective_at_risk": 0.030, "effective_active": 0.100, "other": 0.010,
}
DEFAULT_TRADE = 0.008  # a tier the table does not know (a workspace's own scheme)
#: how much a channel carries the lift (an advisor's call more than a push, an SMS less)
CHANNEL_FACTOR: dict[str, float] = {"call": 1.4, "wechat": 1.0, "app_push": 1.0, "sms": 0.7}
SIMULATED_EVENTS = ("trade", "login", "deposit")


@dataclass(frozen=True)
class World:
    """The true response model (see the module docstring); all parameters are part of the world."""

    seed: int = 0
    effect_days: int = 10
    lift_scale: float = 2.5
    harmed_share: float = 0.08
    harm: float = 0.5
    fatigue: float = 0.6
    fatigue_days: int = 20
    login_ratio: float = 4.0  # login hazard = ratio x trade hazard + 0.01 (app users only)
    deposit_ratio: float = 0.35
    base: dict[str, float] = field(default_factory=lambda: dict(BASE_TRADE))

    # -- customers -----------------------------------------------------------------------------
    def trade_hazard(self, ids: Sequence[str], tiers: Sequence[str | None]) -> np.ndarray:
        """Baseline daily trade hazard of each customer: the tier's rate x a stable log-normal multiplier."""
        rate = np.array([self.base.get(t or "", DEFAULT_TRADE) for t in tiers], dtype=np.float64)
        u1 = np.clip(unit_hash(ids, "world", str(self.seed), "base-1"), 1e-12, 1.0)
        u2 = unit_hash(ids, "world", str(self.seed), "base-2")
        z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
        return np.clip(rate * np.exp(0.5 * z - 0.125), 0.0, 0.6)

    def hazards(self, ids: Sequence[str], tiers: Sequence[str | None], app_user: np.ndarray | None = None
                ) -> dict[str, np.ndarray]:
        """Baseline daily hazards ``trade``, ``login`` (app users), ``deposit`` per customer."""
        h = self.trade_hazard(ids, tiers)
        app = np.ones(len(ids), bool) if app_user is None else np.asarray(app_user, bool)
        login = np.where(app, np.clip(self.login_ratio * h + 0.01, 0.0, 0.9), h)
        return {"trade": h, "login": np.maximum(login, h), "deposit": self.deposit_ratio * h}

    def harmed(self, ids: Sequence[str]) -> np.ndarray:
        """Customers whom any contact makes less likely to trade (stable hash)."""
        return unit_hash(ids, "world", str(self.seed), "harmed") < self.harmed_share

    # -- treatments ----------------------------------------------------------------------------
    def lift(self, playbook_id: str, tier: str | None, arm: str | None) -> float:
        """The true lift of an arm in a tier (0 .. lift_scale)."""
        u = float(unit_hash([f"{playbook_id}\x1f{tier or ''}\x1f{arm or 'main'}"], "world", str(self.seed), "lift")[0])
        return self.lift_scale * u * u

    def multiplier(self, ids: Sequence[str], playbook_id: str, tiers: Sequence[str | None],
                   arms: Sequence[str | None], channels: Sequence[str | None], prior_contacts: np.ndarray
                   ) -> np.ndarray:
        """The hazard multiplier ``m`` of each message (harm, lift, channel, fatigue)."""
        cache: dict[tuple[str | None, str | None], float] = {}
        lift = np.empty(len(ids))
        for i, (t, a) in enumerate(zip(tiers, arms, strict=True)):
            v = cache.get((t, a))
            if v is None:
                v = cache[(t, a)] = self.lift(playbook_id, t, a)
            lift[i] = v
        ch = np.array([CHANNEL_FACTOR.get(c or "", 1.0) for c in channels])
        m = 1.0 + lift * ch * self.fatigue ** np.asarray(prior_contacts, dtype=np.float64)
        return np.where(self.harmed(ids), self.harm, m)

    def p_success(self, hazard: np.ndarray, m: np.ndarray | float, window: int) -> np.ndarray:
        """P(at least one event in ``window`` trading days) with ``m`` on the first ``effect_days``."""
        e = min(self.effect_days, window)
        hm = np.clip(hazard * m, 0.0, 0.95)
        return 1.0 - (1.0 - hm) ** e * (1.0 - hazard) ** (window - e)

    def arm_probabilities(self, ids: Sequence[str], playbook_id: str, tiers: Sequence[str | None],
                          arms: Sequence[str], channels: Sequence[str | None], prior_contacts: np.ndarray,
                          hazard: np.ndarray, window: int) -> np.ndarray:
        """``(n, K)`` true success probabilities of each customer under each arm."""
        out = np.empty((len(ids), len(arms)))
        for j, a in enumerate(arms):
            m = self.multiplier(ids, playbook_id, tiers, [a] * len(ids), channels, prior_contacts)
            out[:, j] = self.p_success(hazard, m, window)
        return out

    def best_arms(self, playbook_id: str, tiers: Sequence[str], arms: Sequence[str]) -> dict[str, str]:
        """The best arm of each tier (largest lift)."""
        return {t: max(arms, key=lambda a, _t=t: self.lift(playbook_id, _t, a)) for t in tiers}

    # -- realisation ---------------------------------------------------------------------------
    def draw_day(self, day: dt.date, hazards: dict[str, np.ndarray], m: np.ndarray) -> dict[str, np.ndarray]:
        """Which customers log in, trade and deposit on ``day`` (one seeded generator per world and day)."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, day.toordinal()]))
        n = len(m)
        out = {}
        for name in SIMULATED_EVENTS:
            out[name] = rng.random(n) < np.clip(hazards[name] * m, 0.0, 0.95)
        out["login"] |= out["trade"] & (hazards["login"] > hazards["trade"])  # an app user trading logs in
        return out
