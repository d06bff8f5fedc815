"""``generate_brokerage``: write a realistic synthetic brokerage that follows data contract v1.

All eight tables (customers, balances, trades, app_events, contact_permissions, holdings,
market_events, contact_history), one file each, ``<out>/<table>.parquet`` or ``.csv``.

How it is built
---------------
Customers are simulated in blocks of 50,000 (:mod:`panhuo.generate.model`: openings, wealth,
BG/NBD trading, withdrawals, reactivations, balances), then a past SMS campaign with a known
true effect is applied (:mod:`panhuo.generate.campaign`), and the block's rows of every table
are appended to the files (:mod:`panhuo.generate.tables`, :mod:`panhuo.generate.activity`,
:mod:`panhuo.generate.writer`). Memory is bounded by the block, not by the number of customers.

Determinism
-----------
Same (seed, as-of, customers, years) -> byte-identical files (for the same versions of numpy
and pyarrow). Every block draws from its own stream ``SeedSequence([seed, block, step])``, and
the shared timeline, branch network and symbol universe from ``SeedSequence([seed, 0, 0])``.
The block size is fixed, so the first customers of a larger run equal those of a smaller one
except for the trailing partial block.

Complaints (``app_events`` rows with event ``complaint``) and refusals of personalised marketing
(``contact_permissions`` channel ``personalised``) come from streams of their own (steps 10 and 9),
so adding them left every other row of those tables as it was.

Default as-of: the last trading day strictly before today's date in Asia/Shanghai (from the
trading-calendar service), so a run on a Monday uses the previous Friday (or earlier around
holidays). Pass ``as_of`` for a reproducible run.

Status shares (DESIGN.md section 2 rules, the flag winning, on 100k customers, seed 42):
effective 24.6%, sleeping 66.0%, dormant 8.0% (computed rule 8.4%), new_empty 1.4%; app MAU
~29%. Trades: ~29 rows per customer over 5 years (28.7M for 1M customers). The dormancy rule
looks three years back, so keep ``years >= 3`` when the data feeds the status stage.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from panhuo.errors import ConfigError
from panhuo.generate import activity, tables
from panhuo.generate.campaign import run_campaign
from panhuo.generate.model import simulate_block
from panhuo.generate.reference import build_geography, build_universe
from panhuo.generate.timeline import build_timeline, default_as_of, market_events_table
from panhuo.generate.writer import TABLE_ORDER, OutputFolder

__all__ = ["generate_brokerage", "BLOCK_SIZE", "Progress", "TABLE_ORDER", "default_as_of"]

BLOCK_SIZE = 50_000
Progress = Callable[[str, int, int], None]
"""``progress(table, blocks_done, blocks_total)``, called after each block of each table."""


def _rng(seed: int, block: int, step: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, block, step]))


def generate_brokerage(
    out: str | Path,
    customers: int,
    seed: int,
    as_of: dt.date | None = None,
    years: int = 5,
    fmt: str = "parquet",
    encoding: str = "utf-8",
    progress: Progress | None = None,
) -> dict[str, int]:
    """Generate the brokerage into folder ``out``; returns the row count of each table."""
    if customers < 1:
        raise ConfigError("--customers must be at least 1")
    if seed < 0:
        raise ConfigError("--seed must be a non-negative integer")
    if not 1 <= years <= 15:
        raise ConfigError("--years must be between 1 and 15")
    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"--format {fmt!r}: use parquet or csv")
    encoding = encoding.lower().replace("_", "-")
    if encoding not in ("utf-8", "utf8", "gbk"):
        raise ConfigError(f"--encoding {encoding!r}: use utf-8 or gbk")
    encoding = "gbk" if encoding == "gbk" else "utf-8"
    if encoding == "gbk" and fmt != "csv":
        raise ConfigError("--encoding gbk applies to CSV only; Parquet text is always UTF-8")
    as_of = as_of or default_as_of()

    shared = _rng(seed, 0, 0)
    tl = build_timeline(shared, as_of, years)
    geo = build_geography(shared)
    uni = build_universe(shared)
    n_blocks = -(-customers // BLOCK_SIZE)
    tick = progress or (lambda _t, _d, _n: None)

    with OutputFolder(Path(out), fmt, encoding) as folder:
        folder.write("market_events", market_events_table(_rng(seed, 0, 1), tl, uni))
        tick("market_events", 1, 1)
        for k in range(n_blocks):
            first = k * BLOCK_SIZE
            n = min(BLOCK_SIZE, customers - first)
            blk = k + 1
            b = simulate_block(_rng(seed, blk, 1), tl, first, n)
            camp = run_campaign(_rng(seed, blk, 2), tl, b)
            a = tables.customer_attributes(_rng(seed, blk, 3), tl, uni, b)
            folder.write("customers", tables.customers_table(_rng(seed, blk, 4), tl, geo, b, a))
            tick("customers", k + 1, n_blocks)
            folder.write("balances", tables.balances_table(tl, b, a))
            tick("balances", k + 1, n_blocks)
            folder.write("trades", activity.trades_table(_rng(seed, blk, 5), tl, uni, b, a))
            tick("trades", k + 1, n_blocks)
            perms = tables.permissions_table(_rng(seed, blk, 6), tl, b, a, camp, pipl_rng=_rng(seed, blk, 9))
            is_push = pc.equal(perms.column("channel"), "app_push")
            push = pc.filter(perms.column("allowed"), is_push).to_numpy(zero_copy_only=False)
            complaints = activity.complaint_events(_rng(seed, blk, 10), tl, b, a, camp.unsub_cust)
            events = activity.app_events_table(_rng(seed, blk, 7), tl, b, a, push, complaints)
            folder.write("app_events", events)
            tick("app_events", k + 1, n_blocks)
            folder.write("contact_permissions", perms)
            tick("contact_permissions", k + 1, n_blocks)
            folder.write("holdings", tables.holdings_table(_rng(seed, blk, 8), tl, uni, b, a))
            tick("holdings", k + 1, n_blocks)
            folder.write("contact_history", tables.contact_history_table(tl, a, camp))
            tick("contact_history", k + 1, n_blocks)
            del b, camp, a, perms, events
    return folder.rows
