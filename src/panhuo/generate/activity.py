"""The event-level tables of a simulated block: ``trades`` and ``app_events``.

Trades: every active trading day of the model inside the trades window becomes
``1 + Poisson(1.2)`` rows. The asset class follows the customer's trading profile, the symbol
comes mostly (80%) from the handful of symbols the customer keeps trading, else from the whole
universe by popularity. Quantities respect lot sizes (100 shares, 10 bonds, 1 option contract,
1,000 RMB of reverse repo); ``amount`` = quantity x price; the order size scales with the
wealth of the episode that produced the day. Commission:

* stock and fund: ``max(5.00, round_half_up(amount x rate))`` with the customer's own net rate
  (0.012%-0.05%, most between 0.02% and 0.03%, lower for richer customers);
* bond: ``round_half_up(amount x rate x 0.4)``; option: 2.50 RMB per contract;
  reverse repo (other): ``round_half_up(amount x 0.001%)``.

App events (last 120 calendar days): sessions per customer as a Poisson count whose rate
depends on how recently the customer traded (recent traders log in often, idle customers
rarely), with a group of high-value idle customers who still log in ("lurkers"). Each session
is a ``login`` followed by ``quote`` and ``content_view`` events; ``push_open`` events come
only to customers who allow app push. ``channel`` is the device (android, ios, harmony, pc)
or ``app_push`` for push opens.

Complaints (投诉, :func:`complaint_events`): the complaint system exports each complaint as an
``app_events`` row with ``event = 'complaint'`` and ``channel`` where it came in (``call_centre``,
``online_service``, or ``12386``, the regulator's hotline). About 1.5% of customers complain in the
last 120 days: more often recent traders (orders, fees) and customers who replied T to the past
SMS campaign. They come from their own random stream, so the other events do not change with them.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from panhuo.contract.schema import ASSET_CLASSES, MARKETS, SIDES
from panhuo.generate.model import ROWS_PER_DAY_EXTRA, Block
from panhuo.generate.reference import BOND, FUND, OPTION, OTC, OTHER, STOCK, Universe, pick_symbols
from panhuo.generate.tables import PROFILES, Attributes
from panhuo.generate.timeline import Timeline
from panhuo.generate.writer import money

__all__ = [
    "trades_table",
    "app_events_table",
    "complaint_events",
    "Complaints",
    "APP_DAYS",
    "OPTION_FEE_FEN",
    "MIN_COMMISSION_FEN",
]

APP_DAYS = 120
OPTION_FEE_FEN = 250
MIN_COMMISSION_FEN = 500
_S = pa.string()
_SLOT0 = {STOCK: (0, 5), FUND: (5, 2), BOND: (7, 1), OPTION: (8, 1), OTHER: (9, 1)}
_DEVICES = np.array(["android", "ios", "harmony", "pc"])
_EVENTS = np.array(["login", "quote", "content_view", "push_open", "complaint"])
_COMPLAINT_CHANNELS = np.array(["call_centre", "online_service", "12386"])
_COMPLAINT = 4

Complaints = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(local customer index, event time as datetime64[us], channel) of each complaint."""


def _half_up(num: np.ndarray, den: int) -> np.ndarray:
    return (num + den // 2) // den


def trades_table(rng: np.random.Generator, tl: Timeline, uni: Universe, b: Block, a: Attributes) -> pa.Table:
    keep = b.day_idx >= tl.window_idx
    key = b.day_cust[keep].astype(np.int64) * (tl.n_days + 1) + b.day_idx[keep]
    order = np.argsort(key, kind="stable")
    cust_d = b.day_cust[keep][order]
    day_d = b.day_idx[keep][order]
    level_d = b.day_wealth[keep][order]
    rows = 1 + rng.poisson(ROWS_PER_DAY_EXTRA, cust_d.size)
    cust = np.repeat(cust_d, rows)
    day = np.repeat(day_d, rows)
    level = np.repeat(level_d, rows)
    m = cust.size

    cum = np.cumsum(PROFILES, axis=1)[a.profile[cust]]
    klass = (rng.random(m)[:, None] > cum[:, :-1]).sum(axis=1)
    sym = np.empty(m, np.int64)
    own = rng.random(m) < 0.8
    for k, (start, width) in _SLOT0.items():
        sel = klass == k
        slot = start + (rng.random(sel.sum()) * width).astype(np.int64)
        sym[sel] = np.where(own[sel], a.pool[cust[sel], slot], pick_symbols(uni, k, rng.random(sel.sum())))
    market = uni.market[sym]

    drift = np.where((klass == STOCK) | (klass == FUND), 0.6 * (tl.log_index[day] - tl.log_index[tl.as_of_idx]), 0.0)
    price = uni.price[sym] * np.exp(drift + rng.normal(0.0, 0.05, m))
    target = np.maximum(level * np.exp(rng.normal(np.log(0.4), 0.7, m)).clip(0.01, 1.0), 500.0)
    is_stock = klass == STOCK
    etf = (klass == FUND) & (market != OTC)
    otc = (klass == FUND) & (market == OTC)
    price = np.where(is_stock, np.round(price, 2), price)
    price = np.where(etf | (klass == BOND), np.round(price, 3), price)
    price = np.where(klass == OPTION, np.round(price, 4).clip(0.0001), price)
    price = np.where(klass == OTHER, 100.0, price)
    price = np.where(is_stock, price.clip(0.5), price)
    lot = np.select([is_stock | etf, klass == BOND, klass == OTHER], [100.0, 10.0, 10.0], 1.0)
    unit = np.where(klass == OPTION, 10_000.0, 1.0)
    qty = np.maximum(np.round(target / (price * unit * lot)), 1.0) * lot
    qty = np.where(klass == OPTION, qty.clip(1, 200), qty)
    amount = np.round(qty * price * unit * 100).astype(np.int64)
    # OTC funds are bought by amount; the quantity is the fund units at the day's NAV.
    otc_amount = np.maximum(np.round(target * 100), 1_000).astype(np.int64)
    amount = np.where(otc, otc_amount, amount)
    qty = np.where(otc, np.round(otc_amount / 100.0 / price, 2), qty)

    rate = a.rate_ppm[cust]
    comm = np.select(
        [is_stock | (klass == FUND), klass == BOND, klass == OPTION],
        [
            np.maximum(MIN_COMMISSION_FEN, _half_up(amount * rate, 1_000_000)),
            _half_up(amount * rate * 4, 10_000_000),
            qty.astype(np.int64) * OPTION_FEE_FEN,
        ],
        _half_up(amount, 100_000),
    )
    side = (rng.random(m) < 0.48).astype(np.int64)
    return pa.table({
        "customer_id": a.ids.take(pa.array(cust)),
        "trade_date": pa.array(tl.days[day], pa.date32()),
        "market": pa.array(np.array(MARKETS)[market], _S),
        "symbol": uni.codes.take(pa.array(sym)),
        "asset_class": pa.array(np.array(ASSET_CLASSES)[klass], _S),
        "side": pa.array(np.array(SIDES)[side], _S),
        "quantity": pa.array(qty, pa.float64()),
        "amount": money(amount),
        "commission": money(comm),
    })


def _session_rate(rng: np.random.Generator, tl: Timeline, b: Block, a: Attributes) -> np.ndarray:
    gap = np.where(a.last_trade >= 0, tl.as_of_idx - a.last_trade, 10_000)
    base = np.select([gap <= 21, gap <= 120, gap <= 750], [0.15, 0.045, 0.014], 0.005)
    lurker = (gap > 120) & (b.wealth >= 50_000) & (rng.random(b.n) < 0.35)
    base = np.where(lurker, 0.08, base)
    return np.where(a.app_user, base * np.exp(rng.normal(-0.18, 0.6, b.n)), 0.0).clip(0, 1.5)


def complaint_events(rng: np.random.Generator, tl: Timeline, b: Block, a: Attributes,
                     unsubscribed: np.ndarray) -> Complaints:
    """Complaints in the last ``APP_DAYS`` days, at office hours (09:00-18:00) on any calendar day."""
    gap = np.where(a.last_trade >= 0, tl.as_of_idx - a.last_trade, 10_000)
    who = np.zeros(b.n, bool)
    who[unsubscribed] = True
    p = 0.009 + np.where(gap <= 120, 0.02, 0.0) + np.where(who, 0.06, 0.0)
    k = np.where(rng.random(b.n) < p, 1 + rng.poisson(0.3, b.n), 0)
    cust = np.repeat(np.arange(b.n), k)
    as_of = np.datetime64(tl.as_of, "D")
    day = as_of - (rng.random(cust.size) * APP_DAYS).astype(np.int64).astype("timedelta64[D]")
    secs = (9 * 3600 + rng.random(cust.size) * 9 * 3600).astype(np.int64)
    when = day.astype("datetime64[us]") + (secs * 1_000_000).astype("timedelta64[us]")
    channel = _COMPLAINT_CHANNELS[rng.choice(3, size=cust.size, p=[0.75, 0.2, 0.05])]
    return cust, when, channel


def app_events_table(
    rng: np.random.Generator, tl: Timeline, b: Block, a: Attributes, push_allowed: np.ndarray,
    complaints: Complaints | None = None,
) -> pa.Table:
    as_of = np.datetime64(tl.as_of, "D")
    cal_days = as_of - np.arange(APP_DAYS - 1, -1, -1).astype("timedelta64[D]")
    trading = np.isin(cal_days, tl.days[-APP_DAYS:])
    wcum = np.cumsum(np.where(trading, 1.0, 0.35))
    wcum /= wcum[-1]
    device = rng.choice(4, size=b.n, p=[0.55, 0.35, 0.07, 0.03])

    rate = _session_rate(rng, tl, b, a)
    n_sess = rng.poisson(rate * APP_DAYS)
    s_cust = np.repeat(np.arange(b.n), n_sess)
    s_day = cal_days[np.searchsorted(wcum, rng.random(s_cust.size), side="right").clip(0, APP_DAYS - 1)]
    hour_w = np.array([1, 0, 0, 0, 0, 0, 1, 2, 4, 10, 10, 8, 4, 8, 9, 5, 3, 3, 3, 5, 6, 6, 4, 2], float)
    hour = np.searchsorted(np.cumsum(hour_w) / hour_w.sum(), rng.random(s_cust.size), side="right").clip(0, 23)
    start = s_day.astype("datetime64[us]") + ((hour * 3600 + rng.random(s_cust.size) * 3300) * 1e6).astype(
        "timedelta64[us]"
    )
    n_quote = rng.poisson(1.8, s_cust.size)
    n_view = rng.poisson(0.35, s_cust.size)
    per = 1 + n_quote + n_view
    e_cust = np.repeat(s_cust, per)
    pos = np.arange(e_cust.size) - np.repeat(np.cumsum(per) - per, per)
    kind = np.where(pos == 0, 0, np.where(pos <= np.repeat(n_quote, per), 1, 2))
    gaps = rng.uniform(5, 240, e_cust.size) * 1e6
    gaps[np.cumsum(per) - per] = 0.0
    offs = np.cumsum(gaps)
    offs -= np.repeat(offs[np.cumsum(per) - per], per)
    e_time = np.repeat(start, per) + offs.astype("timedelta64[us]")
    day_end = np.repeat(s_day, per).astype("datetime64[us]") + np.timedelta64(86_399_000_000, "us")
    e_time = np.minimum(e_time, day_end)

    n_push = rng.poisson(np.where(push_allowed, APP_DAYS * 0.012 * (1 + 2 * rate), 0.0))
    p_cust = np.repeat(np.arange(b.n), n_push)
    p_day = cal_days[(rng.random(p_cust.size) * APP_DAYS).astype(np.int64)]
    p_time = p_day.astype("datetime64[us]") + ((9 * 3600 + rng.random(p_cust.size) * 12 * 3600) * 1e6).astype(
        "timedelta64[us]"
    )

    none: Complaints = (np.zeros(0, np.int64), np.zeros(0, "datetime64[us]"), np.zeros(0, str))
    c_cust, c_time, c_channel = complaints or none
    cust = np.concatenate([e_cust, p_cust, c_cust])
    times = np.concatenate([e_time, p_time, c_time])
    kinds = np.concatenate([kind, np.full(p_cust.size, 3), np.full(c_cust.size, _COMPLAINT)])
    order = np.lexsort((kinds, times, cust))
    cust, times, kinds = cust[order], times[order], kinds[order]
    channel = np.where(kinds == 3, "app_push", _DEVICES[device[cust]])
    if c_cust.size:
        complaint_channel = np.concatenate([np.full(e_cust.size + p_cust.size, ""), c_channel])[order]
        channel = np.where(kinds == _COMPLAINT, complaint_channel, channel)
    return pa.table({
        "customer_id": a.ids.take(pa.array(cust)),
        "event_time": pa.array(times, pa.timestamp("us")),
        "event": pa.array(_EVENTS[kinds], _S),
        "channel": pa.array(channel, _S),
    })
