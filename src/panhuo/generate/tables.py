"""Turning a simulated block of customers into the contract's customer-level tables.

``customers``, ``balances``, ``holdings``, ``contact_permissions`` and ``contact_history`` are
built here from a :class:`~panhuo.generate.model.Block`; the event-level tables (``trades``,
``app_events``) are in :mod:`panhuo.generate.activity`. Attributes are coherent with the
model: wealthier customers are more often advisor-served and pay lower commission rates, idle
customers have older (often expired) risk assessments, the counter's ``dormant_flag`` is set for
90% of the computed-dormant accounts (and for a few idle accounts whose cash crept above
100 RMB after the flag was set), holdings add up exactly to the securities value at as-of.
About 2.5% of customers refused personalised marketing (PIPL): a ``contact_permissions`` row of
channel ``personalised`` with ``allowed = false``, more often those who opted out of a channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from panhuo.contract.schema import ASSET_CLASSES, CHANNELS, GENDERS, PERSONALISED, RISK_LEVELS
from panhuo.generate.campaign import BENEFIT, Campaign
from panhuo.generate.model import Block, balances_at
from panhuo.generate.reference import BOND, FUND, OPTION, OTHER, STOCK, Geography, Universe, pick_symbols
from panhuo.generate.timeline import Timeline
from panhuo.generate.writer import money

__all__ = [
    "Attributes",
    "customer_attributes",
    "customers_table",
    "balances_table",
    "holdings_table",
    "permissions_table",
    "contact_history_table",
    "PROFILES",
]

# Trading profiles: probability of each asset class (stock, fund, bond, option, other) per row.
PROFILES = np.array(
    [
        [0.96, 0.02, 0.01, 0.00, 0.01],  # stock picker
        [0.65, 0.30, 0.02, 0.00, 0.03],  # stocks and funds
        [0.20, 0.75, 0.03, 0.00, 0.02],  # fund investor
        [0.20, 0.10, 0.30, 0.00, 0.40],  # fixed income and reverse repo
        [0.45, 0.15, 0.02, 0.35, 0.03],  # options trader (C4/C5 only)
    ]
)
POOL_SLOTS = ((STOCK, 5), (FUND, 2), (BOND, 1), (OPTION, 1), (OTHER, 1))  # symbols a customer keeps trading
_PHONE_PREFIX = np.array(["13", "15", "18"])
_S = pa.string()


@dataclass(frozen=True)
class Attributes:
    """Per-customer attributes shared by several tables."""

    ids: pa.Array  # string customer_id
    last_trade: np.ndarray  # trading-day index of the last trade (-1: never)
    rate_ppm: np.ndarray  # commission rate in millionths (250 = 0.025%)
    profile: np.ndarray  # row index into PROFILES
    risk: np.ndarray  # index into RISK_LEVELS
    pool: np.ndarray  # (n, 10) symbol indices, slots as POOL_SLOTS
    app_user: np.ndarray
    wechat_bound: np.ndarray
    cash: np.ndarray  # fen at as-of
    sec: np.ndarray
    prod: np.ndarray
    dormant: np.ndarray  # computed rule at as-of
    dormant_flag: np.ndarray


def customer_attributes(rng: np.random.Generator, tl: Timeline, uni: Universe, b: Block) -> Attributes:
    n = b.n
    last = np.full(n, -1, np.int64)
    np.maximum.at(last, b.day_cust, b.day_idx)
    _, cash, sec, prod = balances_at(tl, b, len(tl.snapshot_dates) - 1)
    new_empty = b.new_account & ~b.funded
    no_trade_3y = last < tl.dormant_cut_idx
    dormant = (sec == 0) & (cash <= 10_000) & no_trade_3y & ~new_empty
    crept = (sec == 0) & (cash > 10_000) & (cash <= 30_000) & no_trade_3y & (b.revive_idx == np.iinfo(np.int32).max)
    flag = (dormant & (rng.random(n) < 0.9)) | (crept & (rng.random(n) < 0.1))

    log_w = np.log(b.wealth)
    rate = 250 - 18 * (log_w - 9.5) + rng.normal(0, 25, n)
    rate_ppm = (np.round(rate.clip(120, 500) / 10) * 10).astype(np.int64)  # steps of 0.1 basis point

    profile = rng.choice(4, size=n, p=[0.55, 0.27, 0.11, 0.07])
    # Risk level: options traders are C4/C5 with some money.
    risk = rng.choice(5, size=n, p=[0.08, 0.22, 0.40, 0.20, 0.10])
    profile[(rng.random(n) < 0.4) & (risk >= 3) & (b.wealth > 50_000)] = 4
    pool = np.empty((n, 10), np.int64)
    col = 0
    for klass, k in POOL_SLOTS:
        for _ in range(k):
            pool[:, col] = pick_symbols(uni, klass, rng.random(n))
            col += 1
    age_open = b.open_date.astype("datetime64[Y]").astype(int) + 1970 - b.birth_year
    recent = last >= tl.as_of_idx - 500
    p_app = 0.35 + 0.25 * recent + 0.15 * (age_open < 45) + 0.15 * (b.open_date >= np.datetime64(tl.as_of, "D") - 1500)
    app_user = rng.random(n) < p_app.clip(0, 0.95)
    wechat_bound = rng.random(n) < np.where(app_user, 0.55, 0.25)
    return Attributes(
        ids=pa.array([f"C{i:08d}" for i in range(b.first + 1, b.first + n + 1)], _S),
        last_trade=last,
        rate_ppm=rate_ppm,
        profile=profile,
        risk=risk,
        pool=pool,
        app_user=app_user,
        wechat_bound=wechat_bound,
        cash=cash,
        sec=sec,
        prod=prod,
        dormant=dormant,
        dormant_flag=flag,
    )


def customers_table(rng: np.random.Generator, tl: Timeline, geo: Geography, b: Block, a: Attributes) -> pa.Table:
    n = b.n
    prov = rng.choice(len(geo.province_weight), size=n, p=geo.province_weight)
    counts = np.array([len(x) for x in geo.province_branches])
    firsts = np.array([x[0] for x in geo.province_branches])
    branch = firsts[prov] + (rng.random(n) * counts[prov]).astype(np.int64)
    log_w = np.log(b.wealth)
    served = rng.random(n) < np.clip(0.33 + 0.12 * (log_w - 9.5), 0.1, 0.9)
    adv = geo.branch_advisor_start[branch] + (rng.random(n) * geo.branch_advisor_count[branch]).astype(np.int64)
    advisor = geo.advisor_ids.take(pa.array(adv)).to_numpy(zero_copy_only=False)
    advisor = pa.array(np.where(served, advisor, None), _S)

    # Assessment: around the last time the customer was active; half re-assessed in the last two years anyway.
    as_of = np.datetime64(tl.as_of, "D")
    active = np.where(a.last_trade >= 0, tl.days[a.last_trade.clip(0)], b.open_date)
    ref = np.minimum(np.maximum(active, b.open_date) + 30, as_of)
    span = (ref - b.open_date).astype(np.int64)
    assessed = b.open_date + (rng.random(n) * (span + 1)).astype("timedelta64[D]")
    refresh = rng.random(n) < 0.5
    recent = as_of - (rng.random(n) * 700).astype("timedelta64[D]")
    assessed = np.where(refresh, np.maximum(recent, b.open_date), assessed)

    idx = np.arange(b.first, b.first + n)
    phone = np.char.add(_PHONE_PREFIX[idx % 3], np.char.add("000", np.char.zfill((idx // 3 % 1_000_000).astype(str), 6)))
    gender = rng.choice(3, size=n, p=[0.52, 0.46, 0.02])
    return pa.table({
        "customer_id": a.ids,
        "open_date": pa.array(b.open_date, pa.date32()),
        "birth_year": pa.array(b.birth_year, pa.int64()),
        "gender": pa.array(np.array(GENDERS)[gender], _S),
        "province": geo.province_names.take(pa.array(prov)),
        "city": geo.city_names.take(pa.array(geo.branch_city[branch])),
        "branch_id": geo.branch_ids.take(pa.array(branch)),
        "advisor_id": advisor,
        "risk_level": pa.array(np.array(RISK_LEVELS)[a.risk], _S),
        "risk_assessed_on": pa.array(assessed.astype("datetime64[D]"), pa.date32()),
        "phone": pa.array(phone, _S),
        "app_user": pa.array(a.app_user),
        "wechat_bound": pa.array(a.wechat_bound),
        "dormant_flag": pa.array(a.dormant_flag),
    })


def balances_table(tl: Timeline, b: Block, a: Attributes) -> pa.Table:
    """One row per customer per snapshot on or after the open date, customer-major, by date."""
    S = len(tl.snapshot_dates)
    ex = np.empty((b.n, S), bool)
    cash = np.empty((b.n, S), np.int64)
    sec = np.empty((b.n, S), np.int64)
    prod = np.empty((b.n, S), np.int64)
    for s in range(S):
        ex[:, s], cash[:, s], sec[:, s], prod[:, s] = balances_at(tl, b, s)
    keep = ex.ravel()
    cust = np.repeat(np.arange(b.n), S)[keep]
    dates = np.tile(tl.snapshot_dates, b.n)[keep]
    return pa.table({
        "customer_id": a.ids.take(pa.array(cust)),
        "as_of": pa.array(dates, pa.date32()),
        "cash": money(cash.ravel()[keep]),
        "securities_value": money(sec.ravel()[keep]),
        "product_value": money(prod.ravel()[keep]),
    })


def holdings_table(rng: np.random.Generator, tl: Timeline, uni: Universe, b: Block, a: Attributes) -> pa.Table:
    """At as-of, one to five symbols per customer holding securities; values add up to securities_value."""
    who = np.flatnonzero(a.sec > 0)
    k = np.minimum(1 + rng.poisson(1.3, who.size), 5)
    k = np.minimum(k, a.sec[who])
    # Random distinct slots among the stock, fund and bond slots of the customer's pool (0..7).
    order = np.argsort(rng.random((who.size, 8)), axis=1)
    take = np.arange(8)[None, :] < k[:, None]
    slot = order[take]
    cust = np.repeat(who, k)
    sym = a.pool[cust, slot]
    w = rng.exponential(size=cust.size)
    wsum = np.zeros(b.n)
    np.add.at(wsum, cust, w)
    val = np.floor(w / wsum[cust] * a.sec[cust]).astype(np.int64)
    short = a.sec.copy()
    np.subtract.at(short, cust, val)
    first_row = np.cumsum(k) - k
    val[first_row] += short[who]
    # Merge a symbol drawn twice for the same customer.
    key = cust * len(uni.market) + sym
    order2 = np.argsort(key, kind="stable")
    key, val, cust, sym = key[order2], val[order2], cust[order2], sym[order2]
    uk, start = np.unique(key, return_index=True)
    val = np.add.reduceat(val, start) if val.size else val
    cust, sym = cust[start], sym[start]
    pos = val > 0
    cust, sym, val = cust[pos], sym[pos], val[pos]
    return pa.table({
        "customer_id": a.ids.take(pa.array(cust)),
        "as_of": pa.array(np.full(cust.size, np.datetime64(tl.as_of, "D")), pa.date32()),
        "symbol": uni.codes.take(pa.array(sym)),
        "asset_class": pa.array(np.array(ASSET_CLASSES)[uni.asset_class[sym]], _S),
        "market_value": money(val),
    })


def _open_time(rng: np.random.Generator, b: Block) -> np.ndarray:
    secs = (9.5 * 3600 + rng.random(b.n) * 7 * 3600).astype(np.int64)
    return b.open_date.astype("datetime64[us]") + (secs * 1_000_000).astype("timedelta64[us]")


def permissions_table(
    rng: np.random.Generator, tl: Timeline, b: Block, a: Attributes, camp: Campaign,
    pipl_rng: np.random.Generator | None = None,
) -> pa.Table:
    """Four rows per customer (app_push, sms, wechat, call): consent given at opening, some opt-outs.

    With ``pipl_rng``, a fifth row (channel ``personalised``, ``allowed = false``) for the customers
    who refused personalised marketing, dated between opening and as-of; rows stay grouped by
    customer. Drawn from ``pipl_rng`` only, so the four channel rows do not change with it.
    """
    n = b.n
    opened = _open_time(rng, b)
    as_of_us = np.datetime64(tl.as_of, "D").astype("datetime64[us]") + np.timedelta64(15, "h")
    span = (as_of_us - opened).astype(np.int64).clip(1, None)
    allowed = np.empty((n, 4), bool)
    allowed[:, 0] = a.app_user & (rng.random(n) >= 0.12)
    allowed[:, 1] = rng.random(n) >= 0.07
    allowed[:, 2] = a.wechat_bound & (rng.random(n) >= 0.06)
    allowed[:, 3] = rng.random(n) >= 0.20
    opt_out = ~allowed & np.column_stack([a.app_user, np.ones(n, bool), a.wechat_bound, np.ones(n, bool)])
    later = opened[:, None] + (rng.random((n, 4)) * span[:, None]).astype("timedelta64[us]")
    updated = np.where(opt_out, later, opened[:, None])
    # Replies of T to the campaign SMS: unsubscribed a little after sending.
    allowed[camp.unsub_cust, 1] = False
    updated[camp.unsub_cust, 1] = camp.unsub_at
    cust = np.repeat(np.arange(n), 4)
    channel = np.tile(np.array(CHANNELS, dtype=object), n)
    allowed_rows = allowed.ravel()
    updated_rows = updated.ravel().astype("datetime64[us]")
    if pipl_rng is not None:
        p = np.where(opt_out.any(axis=1), 0.045, 0.012)
        refuse = np.flatnonzero(pipl_rng.random(n) < p)
        when = opened[refuse] + (pipl_rng.random(refuse.size) * span[refuse]).astype("timedelta64[us]")
        order = np.argsort(np.concatenate([cust, refuse]), kind="stable")
        cust = np.concatenate([cust, refuse])[order]
        channel = np.concatenate([channel, np.full(refuse.size, PERSONALISED, dtype=object)])[order]
        allowed_rows = np.concatenate([allowed_rows, np.zeros(refuse.size, bool)])[order]
        updated_rows = np.concatenate([updated_rows, when.astype("datetime64[us]")])[order]
    return pa.table({
        "customer_id": a.ids.take(pa.array(cust)),
        "channel": pa.array(channel, _S),
        "allowed": pa.array(allowed_rows),
        "updated_at": pa.array(updated_rows, pa.timestamp("us")),
    })


def contact_history_table(tl: Timeline, a: Attributes, camp: Campaign) -> pa.Table:
    m = camp.cust.size
    return pa.table({
        "customer_id": a.ids.take(pa.array(camp.cust)),
        "campaign_id": pa.array(np.full(m, tl.campaign_id), _S),
        "sent_at": pa.array(camp.sent_at, pa.timestamp("us")),
        "channel": pa.array(np.full(m, "sms"), _S),
        "benefit": pa.array(np.full(m, BENEFIT), _S),
        "group": pa.array(np.where(camp.treated, "treated", "holdout"), _S),
        "propensity": pa.array(camp.propensity, pa.float64()),
    })
