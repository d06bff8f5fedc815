"""The shared timeline of a synthetic brokerage: trading days, the market, snapshot and campaign dates.

One :class:`Timeline` is built per run from (seed, as-of, years). It holds

* ``days``: every trading day (from the trading-calendar service) from the first possible
  account opening (~15 years before as-of) to as-of; everything else indexes into it;
* a simulated index path (daily returns with fat tails and volatility clusters) that drives
  the value of securities in the balances, the ``index_move`` market events, and the
  *activity weight* of each day (customers trade more on big-move days);
* the 13 month-end snapshot days plus as-of, the trades window, the three-year dormancy cut,
  and the dates of the past SMS campaign;
* the ``market_events`` table (IPO subscriptions, index moves, new funds, dividends).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from panhuo.calendar import get_calendar, years_before
from panhuo.errors import ConfigError
from panhuo.generate.reference import Universe

__all__ = ["Timeline", "build_timeline", "default_as_of", "market_events_table", "years_before"]

HISTORY_YEARS = 15  # account openings spread over this many years before as-of
CAMPAIGN_DAYS_BEFORE = 150  # the past SMS campaign went out ~5 months before as-of
RESPONSE_WINDOW = 20  # trading days after sent_at in which the campaign effect is measured


def default_as_of(today: dt.date | None = None) -> dt.date:
    """The last trading day strictly before today (Asia/Shanghai)."""
    if today is None:
        from zoneinfo import ZoneInfo

        today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    return get_calendar().previous_trading_day(today)


@dataclass(frozen=True)
class Timeline:
    as_of: dt.date
    days: np.ndarray  # datetime64[D], trading days, ascending, last one <= as_of
    as_of_idx: int  # index of the last trading day <= as_of
    life_start: dt.date  # earliest open date
    log_index: np.ndarray  # log index level per trading day
    returns: np.ndarray  # daily index return per trading day
    cum_activity: np.ndarray  # cumulative activity weight, cum_activity[d] = sum of weights up to d
    window_idx: int  # first trading day of the trades window
    dormant_cut_idx: int  # first trading day inside the last three years
    snapshot_dates: np.ndarray  # datetime64[D]: 13 month-ends then as-of
    snapshot_idx: np.ndarray  # trading-day index in force on each snapshot date
    sent_idx: int  # trading day the campaign was sent
    selection_snapshot: int  # index into snapshot_dates of the audience selection snapshot
    campaign_id: str

    @property
    def n_days(self) -> int:
        return len(self.days)

    def day_of(self, dates: np.ndarray) -> np.ndarray:
        """Index of the first trading day on or after each date."""
        return np.searchsorted(self.days, dates.astype("datetime64[D]"), side="left")


def build_timeline(rng: np.random.Generator, as_of: dt.date, years: int) -> Timeline:
    cal = get_calendar()
    if not cal.covers(as_of):
        raise ConfigError(
            f"--as-of {as_of.isoformat()} is outside the trading calendar ({cal.first_year}-{cal.last_year})"
        )
    first_cal = dt.date(cal.first_year, 1, 1)
    window_start = years_before(as_of, years)
    if window_start < first_cal:
        raise ConfigError(
            f"--years {years}: trades would start {window_start.isoformat()}, before the trading calendar "
            f"({cal.first_year}-{cal.last_year})"
        )
    life_start = max(years_before(as_of, HISTORY_YEARS), first_cal)
    life_start = min(life_start, window_start)
    days = cal.sessions_array(life_start, as_of)
    n = len(days)
    as_of_idx = n - 1

    # Index path: Student-t shocks scaled by a slowly varying volatility regime.
    vol = 0.012 * np.exp(np.convolve(rng.normal(0, 0.35, n + 60), np.ones(60) / np.sqrt(60), "same")[:n] * 0.6)
    shocks = rng.standard_t(4, n) / np.sqrt(2.0)
    returns = np.clip(0.0002 + vol * shocks, -0.095, 0.095)
    log_index = np.log(3000.0) + np.cumsum(returns)
    # Activity: more trading on big-move days and in rising markets (a 60-day trend).
    trend = np.convolve(returns, np.ones(60), "full")[:n]
    weight = np.exp(0.35 * np.clip(trend / 0.08, -2, 2)) * (1.0 + 12.0 * np.abs(returns))
    weight = weight / weight.mean()
    cum_activity = np.cumsum(weight)

    as_of_np = np.datetime64(as_of, "D")
    # Month-ends: the last trading day of each of the 13 months before as-of's month-end.
    month_ends: list[np.datetime64] = []
    month = as_of_np.astype("datetime64[M]")
    while len(month_ends) < 13:
        last = np.searchsorted(days, (month + 1).astype("datetime64[D]"), side="left") - 1
        if last >= 0 and days[last] < as_of_np and (not month_ends or days[last] < month_ends[-1]):
            month_ends.append(days[last])
        month -= 1
    snapshot_dates = np.array(sorted(month_ends) + [as_of_np], dtype="datetime64[D]")
    snapshot_idx = np.searchsorted(days, snapshot_dates, side="right") - 1

    window_idx = int(np.searchsorted(days, np.datetime64(window_start, "D"), side="left"))
    dormant_cut = years_before(as_of, 3)
    dormant_cut_idx = int(np.searchsorted(days, np.datetime64(dormant_cut, "D"), side="right"))
    sent_day = as_of - dt.timedelta(days=CAMPAIGN_DAYS_BEFORE)
    sent_idx = int(np.searchsorted(days, np.datetime64(sent_day, "D"), side="left"))
    sel = int(np.searchsorted(snapshot_idx, sent_idx, side="left")) - 1
    sent_date = days[sent_idx].astype(dt.date)
    campaign_id = f"sms-{sent_date.year}q{(sent_date.month - 1) // 3 + 1}-wakeup"
    return Timeline(
        as_of=as_of,
        days=days,
        as_of_idx=as_of_idx,
        life_start=life_start,
        log_index=log_index,
        returns=returns,
        cum_activity=cum_activity,
        window_idx=window_idx,
        dormant_cut_idx=dormant_cut_idx,
        snapshot_dates=snapshot_dates,
        snapshot_idx=snapshot_idx,
        sent_idx=sent_idx,
        selection_snapshot=max(sel, 0),
        campaign_id=campaign_id,
    )


_BOARDS = {"60": "沪市主板", "68": "科创板", "00": "深市主板", "30": "创业板"}


def market_events_table(rng: np.random.Generator, tl: Timeline, universe: Universe) -> pa.Table:
    """IPO subscriptions, index moves beyond +-2%, new fund launches and dividends in the trades window."""
    dates: list[np.datetime64] = []
    kinds: list[str] = []
    attrs: list[str] = []

    def add(day: np.datetime64, kind: str, a: dict) -> None:
        dates.append(day)
        kinds.append(kind)
        attrs.append(json.dumps(a, ensure_ascii=False, sort_keys=True))

    next_ipo = 1
    codes = universe.codes.to_pylist()
    for d in range(tl.window_idx, tl.as_of_idx + 1):
        day = tl.days[d]
        # IPO subscription days: most trading days have one to three new listings open.
        if rng.random() < 0.55:
            for _ in range(int(rng.integers(1, 4))):
                board = rng.choice(["60", "68", "00", "30", "92"], p=[0.25, 0.25, 0.15, 0.3, 0.05])
                code = f"{board}{(next_ipo * 7919) % 10000:04d}" if board != "92" else f"920{next_ipo % 1000:03d}"
                next_ipo += 1
                add(day, "ipo_subscription", {
                    "symbol": code,
                    "market": "BJ" if board == "92" else ("SH" if board in ("60", "68") else "SZ"),
                    "board": _BOARDS.get(board, "北交所"),
                    "issue_price": round(float(np.exp(rng.normal(np.log(22.0), 0.6))), 2),
                })
        r = float(tl.returns[d])
        if abs(r) >= 0.02:
            add(day, "index_move", {
                "index": "000001",
                "name": "上证指数",
                "change_pct": round(100 * r, 2),
                "close": round(float(np.exp(tl.log_index[d])), 2),
            })
        if rng.random() < 0.6:
            sub_end = tl.days[min(d + int(rng.integers(5, 20)), tl.as_of_idx)]
            add(day, "new_fund", {
                "fund_code": f"{int(rng.integers(1, 26000)):06d}",
                "fund_type": str(rng.choice(["equity", "mixed", "bond", "index", "money_market"])),
                "risk_rating": str(rng.choice(["R1", "R2", "R3", "R4", "R5"], p=[0.1, 0.25, 0.35, 0.2, 0.1])),
                "subscription_end": str(sub_end),
            })
        month = int(str(day)[5:7])
        if rng.random() < (0.9 if month in (5, 6, 7) else 0.25):
            for _ in range(int(rng.integers(1, 6 if month in (5, 6, 7) else 2))):
                s = int(rng.choice(universe.by_class[0]))
                add(day, "dividend", {
                    "symbol": codes[s],
                    "market": ("SH", "SZ", "BJ", "OTC")[int(universe.market[s])],
                    "cash_per_10_shares": round(float(rng.uniform(0.2, 12.0)), 2),
                })
    return pa.table({
        "date": pa.array(np.array(dates, dtype="datetime64[D]"), pa.date32()),
        "kind": pa.array(kinds, pa.string()),
        "attributes": pa.array(attrs, pa.string()),
    })
