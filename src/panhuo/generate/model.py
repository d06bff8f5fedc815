"""The customer model of the synthetic brokerage, simulated one block of customers at a time.

Per customer (all vectorised over a block):

1. **Opening** spread over ~15 years with boom years (2015, 2020-21, 2024-25) weighted up;
   ~2.5% opened in the last 30 days, about half of those never funded (新开空户). ~2.5% of older
   accounts were never funded either (they count as dormant).
2. **Latent wealth** ``W``: log-normal body with a Pareto tail (the top 2%), older customers and
   more active traders richer. ``W`` is the value of the engaged money at as-of prices.
3. **Trading** follows BG/NBD exactly, in *activity time* (trading days weighted by market
   activity): the first funded day carries the first ("trial") trade, repeat trading days arrive
   as a Poisson process with rate ``lambda ~ Gamma(r=0.5, alpha=4.5)`` (mean ~0.11 per day) and
   after each repeat the customer dies with probability ``p ~ Beta(a=0.8, b=12)``. Each active
   day becomes ``1 + Poisson(1.2)`` trade rows.
4. **Withdrawal**: with probability 0.5 a customer moves the money out ``Exp(mean 180)``
   trading days after the last trade (if that is before as-of), leaving a residual: in 25% of cases cash <= 100
   and no securities (these become dormant three years after the last trade), otherwise some
   leftover cash above 100 RMB, sometimes an odd lot. Withdrawals in the last year of effective customers are the
   effective -> sleeping transitions visible in the month-end balances.
5. **Natural reactivation**: 5% of customers idle for more than ~300 trading days start a new
   BG/NBD episode in the last year with a fresh deposit (sleeping/dormant -> trading again).
6. **Balances** at the 13 month-ends and as-of: ``W`` split into securities (moving with the
   simulated index and an idiosyncratic monthly walk), products and cash, per engaged episode,
   plus the residual after a withdrawal; no row before the open date, zeros before funding.

The campaign and its true effect are in :mod:`panhuo.generate.campaign`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from panhuo.generate.timeline import Timeline

__all__ = ["Block", "simulate_block", "btyd_arrivals", "balances_at", "NEVER"]

NEVER = np.iinfo(np.int32).max  # a day index that never comes

# BG/NBD parameters (activity-time units ~ trading days).
LAMBDA_SHAPE, LAMBDA_RATE = 0.5, 4.5
P_A, P_B = 0.8, 12.0
ROWS_PER_DAY_EXTRA = 1.2
WITHDRAW_PROB, WITHDRAW_LAG_MEAN = 0.5, 180.0
REVIVAL_PROB, REVIVAL_IDLE = 0.05, 300

_BOOM = {2015: 2.6, 2016: 1.3, 2020: 1.6, 2021: 1.8, 2024: 1.7, 2025: 1.6}


@dataclass
class Block:
    """The latent state of one block of customers (index ``i`` is local to the block)."""

    first: int  # global number of the first customer of the block
    n: int
    open_date: np.ndarray  # datetime64[D]
    birth_year: np.ndarray
    new_account: np.ndarray  # bool, opened in the last 30 days
    funded: np.ndarray  # bool
    fund_idx: np.ndarray  # int64 trading-day index of funding (NEVER if never funded)
    wealth: np.ndarray  # float RMB
    lam: np.ndarray
    p_die: np.ndarray
    sec_share: np.ndarray
    prod_share: np.ndarray
    beta: np.ndarray
    withdraw_idx: np.ndarray  # int64 (NEVER: not withdrawn by as-of)
    res_cash: np.ndarray  # int64 fen
    res_sec: np.ndarray  # int64 fen
    revive_idx: np.ndarray  # int64 (NEVER: none)
    revive_wealth: np.ndarray
    # active trading days: local customer index, trading-day index, wealth level of the episode
    day_cust: np.ndarray
    day_idx: np.ndarray
    day_wealth: np.ndarray
    idio: np.ndarray  # (n, S) idiosyncratic log factor of engaged money per snapshot
    cash_noise: np.ndarray  # (n, S)
    # filled by the campaign step
    deposit_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    deposit_wealth: np.ndarray = field(default_factory=lambda: np.zeros(0))


def btyd_arrivals(
    rng: np.random.Generator, tl: Timeline, who: np.ndarray, start: np.ndarray, lam: np.ndarray, p: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Repeat-transaction days of a BG/NBD process per customer ``who`` that started on day ``start``.

    Arrivals form a Poisson process with rate ``lam`` in activity time after ``start``; after
    each repeat the customer dies with probability ``p``. Only arrivals up to as-of are drawn:
    the first ``min(N, K)`` order statistics of the ``N`` Poisson arrivals in the horizon, where
    ``K`` is the geometric number of repeats before death. Returns (customer, day) sorted by
    customer then day, one entry per distinct active day.
    """
    c0 = tl.cum_activity[start]
    horizon = tl.cum_activity[tl.as_of_idx] - c0
    n_arr = rng.poisson(lam * horizon)
    k_die = rng.geometric(p)
    m = np.minimum(n_arr, k_die)
    total = int(m.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    seg_start = np.cumsum(m) - m
    cs = np.cumsum(rng.exponential(size=total))
    prev = np.where(seg_start > 0, cs[np.maximum(seg_start - 1, 0)], 0.0)
    has = m > 0
    s_m = cs[seg_start[has] + m[has] - 1] - prev[has]
    denom = s_m + rng.gamma((n_arr[has] - m[has] + 1).astype(float), 1.0)
    u = (cs - np.repeat(prev[has], m[has])) / np.repeat(denom, m[has])
    t = np.repeat(c0[has], m[has]) + u * np.repeat(horizon[has], m[has])
    day = np.searchsorted(tl.cum_activity, t, side="left").clip(0, tl.as_of_idx)
    cust = np.repeat(who[has], m[has])
    key = cust.astype(np.int64) * (tl.n_days + 1) + day
    key = np.unique(key)
    return key // (tl.n_days + 1), key % (tl.n_days + 1)


def _open_dates(rng: np.random.Generator, tl: Timeline, n: int) -> tuple[np.ndarray, np.ndarray]:
    as_of = np.datetime64(tl.as_of, "D")
    start = np.datetime64(tl.life_start, "D")
    span = np.arange(start, as_of - 30, dtype="datetime64[D]")
    years = span.astype("datetime64[Y]").astype(int) + 1970
    w = np.array([_BOOM.get(int(y), 1.0) for y in range(years.min(), years.max() + 1)])[years - years.min()]
    w = w * (1.0 + 0.06 * (years - years.min()))  # the customer base grows
    w = w * np.where((span.astype("datetime64[D]").view("int64") - 4) % 7 < 5, 1.0, 0.25)  # fewer at weekends
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    new = rng.random(n) < 0.025
    d = span[np.searchsorted(cdf, rng.random(n), side="right").clip(0, len(span) - 1)]
    d_new = as_of - rng.integers(0, 30, n)
    return np.where(new, d_new, d), new


def simulate_block(rng: np.random.Generator, tl: Timeline, first: int, n: int) -> Block:
    """Simulate the customers ``first .. first+n-1`` up to as-of (before the campaign)."""
    S = len(tl.snapshot_dates)
    open_date, new = _open_dates(rng, tl, n)
    open_idx = tl.day_of(open_date)
    open_year = open_date.astype("datetime64[Y]").astype(int) + 1970
    age_open = (18 + rng.gamma(2.2, 9.0, n)).clip(18, 85).astype(int)
    birth_year = open_year - age_open
    age_now = tl.as_of.year - birth_year

    never = np.where(new, rng.random(n) < 0.55, rng.random(n) < 0.025 * np.where(np.isin(open_year, (2015, 2021)), 1.6, 1.0))
    delay = rng.geometric(0.25, n) - 1
    fund_idx = np.where(never, NEVER, np.minimum(open_idx + delay, tl.as_of_idx)).astype(np.int64)
    funded = ~never

    z = rng.normal(size=(n, 2))
    lam = rng.gamma(LAMBDA_SHAPE, 1.0 / LAMBDA_RATE, n)
    p_die = rng.beta(P_A, P_B, n)
    lam_z = np.log(lam / (LAMBDA_SHAPE / LAMBDA_RATE)).clip(-4, 3)
    log_w = 9.05 + 1.45 * z[:, 0] + 0.5 * lam_z + 0.012 * (age_now - 40)
    wealth = np.exp(log_w)
    tail = rng.random(n) < 0.02
    wealth = np.where(tail, 2.0e5 * (1.0 + rng.pareto(1.25, n)), wealth).clip(50.0, 3.0e8)

    who = np.flatnonzero(funded)
    c_rep, d_rep = btyd_arrivals(rng, tl, who, fund_idx[who], lam[who], p_die[who])
    last_main = np.where(funded, fund_idx, -1)
    np.maximum.at(last_main, c_rep, d_rep)

    # Withdrawal some time after the last trade.
    lag = rng.exponential(WITHDRAW_LAG_MEAN, n).astype(np.int64) + 1
    wd = np.where(funded & (rng.random(n) < WITHDRAW_PROB), last_main + lag, NEVER)
    withdraw_idx = np.where(wd <= tl.as_of_idx, wd, NEVER).astype(np.int64)
    clean = rng.random(n) < 0.25
    zero_cash = rng.random(n) < 0.45
    res_cash = np.where(clean, np.where(zero_cash, 0, rng.integers(1, 10_001, n)), 10_001 + np.exp(rng.normal(np.log(200.0), 1.0, n)) * 100)
    res_cash = np.round(res_cash).astype(np.int64)
    res_sec = np.where(clean | (rng.random(n) < 0.5), 0, np.round(np.exp(rng.normal(np.log(800.0), 1.0, n)) * 100)).astype(np.int64)

    # Natural reactivation of long-idle customers in the last year.
    lo = tl.as_of_idx - 250
    idle_ok = funded & (last_main < tl.as_of_idx - REVIVAL_IDLE)
    revive = idle_ok & (rng.random(n) < REVIVAL_PROB)
    earliest = np.maximum(last_main + REVIVAL_IDLE, lo)
    rv = earliest + (rng.random(n) * np.maximum(tl.as_of_idx - 5 - earliest, 1)).astype(np.int64)
    revive &= rv < tl.as_of_idx
    revive_idx = np.where(revive, rv, NEVER).astype(np.int64)
    revive_wealth = np.where(revive, np.exp(rng.normal(np.log(18000.0), 1.1, n)), 0.0)
    rw = np.flatnonzero(revive)
    lam2 = rng.gamma(0.8, 1.0 / 12.0, rw.size)
    c_rev, d_rev = btyd_arrivals(rng, tl, rw, revive_idx[rw], lam2, rng.beta(1.0, 5.0, rw.size))

    day_cust = np.concatenate([who, c_rep, rw, c_rev])
    day_idx = np.concatenate([fund_idx[who], d_rep, revive_idx[rw], d_rev])
    day_wealth = np.concatenate([wealth[who], wealth[c_rep], revive_wealth[rw], revive_wealth[c_rev]])

    sec_share = rng.beta(2.5, 1.5, n)
    has_prod = rng.random(n) < np.clip(0.12 + 0.1 * (log_w - 9), 0.05, 0.6)
    prod_share = np.where(has_prod, rng.uniform(0.1, 0.6, n), 0.0) * (0.95 - sec_share).clip(0, None)
    beta = rng.uniform(0.6, 1.3, n)
    steps = rng.normal(0.0, 0.07, (n, S))
    steps[:, -1] = 0.0
    idio = -np.cumsum(steps[:, ::-1], axis=1)[:, ::-1] + steps  # zero at as-of, a walk backwards
    cash_noise = np.exp(rng.normal(0.0, 0.25, (n, S)))
    return Block(
        first=first,
        n=n,
        open_date=open_date,
        birth_year=birth_year.astype(np.int64),
        new_account=new,
        funded=funded,
        fund_idx=fund_idx,
        wealth=wealth,
        lam=lam,
        p_die=p_die,
        sec_share=sec_share,
        prod_share=prod_share,
        beta=beta,
        withdraw_idx=withdraw_idx,
        res_cash=res_cash,
        res_sec=res_sec,
        revive_idx=revive_idx,
        revive_wealth=revive_wealth,
        day_cust=day_cust,
        day_idx=day_idx,
        day_wealth=day_wealth,
        idio=idio,
        cash_noise=cash_noise,
        deposit_idx=np.full(n, NEVER, np.int64),
        deposit_wealth=np.zeros(n),
    )


def balances_at(tl: Timeline, b: Block, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(exists, cash, securities, products) in fen at snapshot ``s`` for every customer of the block."""
    d = int(tl.snapshot_idx[s])
    snap_date = tl.snapshot_dates[s]
    exists = b.open_date <= snap_date
    mk = np.exp(b.beta * (tl.log_index[d] - tl.log_index[tl.as_of_idx]))
    f = np.exp(b.idio[:, s])
    cash_share = 1.0 - b.sec_share - b.prod_share
    sec = np.zeros(b.n)
    prod = np.zeros(b.n)
    cash = np.zeros(b.n)
    for level, active in (
        (b.wealth, (b.fund_idx <= d) & (d < b.withdraw_idx)),
        (b.revive_wealth, b.revive_idx <= d),
        (b.deposit_wealth, b.deposit_idx <= d),
    ):
        x = np.where(active, level, 0.0)
        sec += x * b.sec_share * mk * f
        prod += x * b.prod_share * f
        cash += x * cash_share * b.cash_noise[:, s]
    gone = b.withdraw_idx <= d
    cash_f = np.round(cash * 100).astype(np.int64) + np.where(gone, b.res_cash, 0)
    sec_f = np.round(sec * 100).astype(np.int64) + np.where(gone, b.res_sec, 0)
    prod_f = np.round(prod * 100).astype(np.int64)
    return exists, cash_f, sec_f, prod_f

