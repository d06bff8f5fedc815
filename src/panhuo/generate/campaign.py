"""The past randomized SMS wake-up campaign of the synthetic brokerage, with a known true effect.

Design (what ``contact_history`` records)
-----------------------------------------
* ``campaign_id`` ``sms-<year>q<quarter>-wakeup`` (quarter of the send date), channel ``sms``,
  benefit ``level2-trial-7d``; sent on the first trading day on or after as-of minus 150 days,
  between 10:00 and 11:30 Shanghai time (``sent_at``; holdout rows carry the assignment time).
* Audience: every customer who was **sleeping** on the last month-end snapshot before the send
  date: opened and funded, total assets < 10,000 RMB, and not dormant by the computed rule at
  that time (securities 0, cash <= 100 RMB and no trade in the three years before sending).
* Tiers: ``high_value`` when total assets at selection >= 5,000 RMB or the highest month-end
  total assets in the snapshots up to the selection >= 50,000 RMB; ``standard`` otherwise.
* Assignment: treated with probability ``propensity`` = **0.8 for high_value, 0.5 for standard**
  (an independent Bernoulli per customer; the rest are ``holdout``).

True effect (what a correct measurement should recover)
-------------------------------------------------------
Outcome window: the 20 trading days after the send day (T+1 .. T+20).

* A treated customer who would **not** have traded in the window anyway responds with
  probability **q = 0.12 (high_value) and 0.04 (standard)**: a first trade on a day in the
  window (geometric, about four trading days after sending, most in the first week), with
  trade rows like any other active day. Customers who trade in the window anyway are unaffected, so the true
  lift in P(trade within 20 trading days) is ``q x (1 - b)``, where ``b`` is the tier's
  baseline rate (the holdout's trade rate in the window: about 13% for standard and 25% for
  high_value on 100k customers, since many small sleeping accounts still trade now and then).
  Measured on 100k customers (seed 42): standard +3.1pp (expected 0.04 x 0.87 = 3.5pp),
  high_value +9.2pp (expected 0.12 x 0.75 = 9.0pp).
* A responder deposits new money on the response day (log-normal, median 25,000 RMB for
  high_value and 6,000 RMB for standard), which shows in the balances from then on, so some
  responders become effective again (reactivation).
* A responder keeps trading after the response day: a fresh BG/NBD episode with
  ``lambda ~ Gamma(0.8, rate 15)``, ``p ~ Beta(1, 4)``, adding commission after the window too.
* Side effect: 2.5% of treated customers reply T and unsubscribe: ``contact_permissions`` sms
  ``allowed = false`` with ``updated_at`` a few minutes to hours after their ``sent_at``.

Holdout customers are never changed. Natural trading (the BG/NBD process and natural
reactivations) is the same for both groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from panhuo.generate.model import Block, balances_at, btyd_arrivals
from panhuo.generate.timeline import RESPONSE_WINDOW, Timeline

__all__ = ["Campaign", "run_campaign", "PROPENSITY", "RESPONSE_PROB", "DEPOSIT_MEDIAN", "BENEFIT"]

PROPENSITY = {"high_value": 0.8, "standard": 0.5}
RESPONSE_PROB = {"high_value": 0.12, "standard": 0.04}
DEPOSIT_MEDIAN = {"high_value": 25_000.0, "standard": 6_000.0}
UNSUBSCRIBE_PROB = 0.025
BENEFIT = "level2-trial-7d"
_SENT_HOUR = 10


@dataclass(frozen=True)
class Campaign:
    cust: np.ndarray  # local customer indices in the audience, ascending
    high_value: np.ndarray  # bool
    propensity: np.ndarray  # float
    treated: np.ndarray  # bool
    responded: np.ndarray  # bool
    sent_at: np.ndarray  # datetime64[us]
    unsub_cust: np.ndarray  # local customer indices who replied T
    unsub_at: np.ndarray  # datetime64[us]


def _cut_index(tl: Timeline, day_idx: int) -> int:
    """First trading day inside the three years before trading day ``day_idx``."""
    day = tl.days[day_idx].astype("datetime64[D]")
    y = day.astype("datetime64[Y]").astype(int) + 1970 - 3
    cut = np.datetime64(f"{y:04d}-{str(day)[5:]}") if str(day)[5:] != "02-29" else np.datetime64(f"{y:04d}-02-28")
    return int(np.searchsorted(tl.days, cut, side="right"))


def run_campaign(rng: np.random.Generator, tl: Timeline, b: Block) -> Campaign:
    """Pick the audience, assign groups, and inject the true effect into ``b`` (in place)."""
    sel = tl.selection_snapshot
    exists, cash, sec, prod = balances_at(tl, b, sel)
    total = cash + sec + prod
    peak = total.copy()
    for s in range(sel):
        _, c, se, pr = balances_at(tl, b, s)
        peak = np.maximum(peak, c + se + pr)
    last_before = np.full(b.n, -1, np.int64)
    before = b.day_idx < tl.sent_idx
    np.maximum.at(last_before, b.day_cust[before], b.day_idx[before])
    dormant_then = (sec == 0) & (cash <= 10_000) & (last_before < _cut_index(tl, tl.sent_idx))
    in_aud = exists & b.funded & (b.fund_idx <= tl.snapshot_idx[sel]) & (total < 1_000_000) & ~dormant_then
    cust = np.flatnonzero(in_aud)
    m = cust.size
    high = (total[cust] >= 500_000) | (peak[cust] >= 5_000_000)
    prop = np.where(high, PROPENSITY["high_value"], PROPENSITY["standard"])
    treated = rng.random(m) < prop

    # Baseline outcome: any trading day in the window, from the natural process.
    lo, hi = tl.sent_idx + 1, min(tl.sent_idx + RESPONSE_WINDOW, tl.as_of_idx)
    in_win = (b.day_idx >= lo) & (b.day_idx <= hi)
    traded = np.zeros(b.n, bool)
    traded[b.day_cust[in_win]] = True
    q = np.where(high, RESPONSE_PROB["high_value"], RESPONSE_PROB["standard"])
    responded = treated & ~traded[cust] & (rng.random(m) < q) & (lo <= hi)
    r = cust[responded]
    r_high = high[responded]
    r_day = np.minimum(lo + rng.geometric(0.25, r.size) - 1, hi).astype(np.int64)
    dep = np.exp(rng.normal(0.0, 0.8, r.size)) * np.where(
        r_high, DEPOSIT_MEDIAN["high_value"], DEPOSIT_MEDIAN["standard"]
    )
    b.deposit_idx[r] = r_day
    b.deposit_wealth[r] = dep
    c_more, d_more = btyd_arrivals(rng, tl, r, r_day, rng.gamma(0.8, 1 / 15.0, r.size), rng.beta(1.0, 4.0, r.size))
    level = np.zeros(b.n)
    level[r] = dep
    b.day_cust = np.concatenate([b.day_cust, r, c_more])
    b.day_idx = np.concatenate([b.day_idx, r_day, d_more])
    b.day_wealth = np.concatenate([b.day_wealth, dep, level[c_more]])

    day = tl.days[tl.sent_idx].astype("datetime64[us]")
    sent_at = day + np.timedelta64(_SENT_HOUR, "h") + (rng.random(m) * 5400e6).astype("timedelta64[us]")
    unsub = treated & (rng.random(m) < UNSUBSCRIBE_PROB)
    unsub_at = sent_at[unsub] + (rng.exponential(90 * 60e6, unsub.sum()) + 60e6).astype("timedelta64[us]")
    return Campaign(cust, high, prop, treated, responded, sent_at, cust[unsub], unsub_at)

