"""Validation: Thompson sampling per tier has sublinear regret and beats a fixed equal split (issue 7).

Over ``--replications`` seeds (each its own simulated world: lifts per tier and arm, harmed
customers, fatigue; :mod:`panhuo.simulate.world`), a three-arm Thompson playbook is replayed for
``--weeks`` weekly runs with the production delay (a week's outcomes count once its 10-trading-day
window has closed) by :func:`panhuo.simulate.replay.replay`. Goals, every seed:

* sublinear: the later half of the weeks adds less expected regret than the earlier half;
* the cumulative expected regret after the last week is below a fixed equal split's on the same
  treated customers.

Prints one line per seed and the totals; exits 1 when a goal is missed.

    .venv/bin/python validation/bandit.py [--replications 5] [--weeks 8] [--customers 20000]
"""

from __future__ import annotations

import argparse
import sys
import time

from panhuo.simulate.replay import replay


def check(replications: int, weeks: int, customers: int, first_seed: int = 1, quiet: bool = False) -> list[str]:
    """Run the replications; return the goals missed (empty: passed)."""
    missed: list[str] = []
    total_ts = total_eq = 0.0
    for seed in range(first_seed, first_seed + replications):
        r = replay(seed, weeks=weeks, customers=customers)
        h = weeks // 2
        first, last = sum(r.thompson[:h]), sum(r.thompson[h:])
        ts, eq = sum(r.thompson), sum(r.equal)
        total_ts += ts
        total_eq += eq
        ok = r.sublinear() and r.beats_equal()
        if not quiet:
            print(f"seed {seed}: cumulative regret Thompson {ts:8.1f} vs equal split {eq:8.1f} "
                  f"({ts / eq:5.1%}); weeks 1-{h} {first:7.1f}, weeks {h + 1}-{weeks} {last:7.1f} "
                  f"{'ok' if ok else 'MISS'}")
        if not r.sublinear():
            missed.append(f"seed {seed}: regret not sublinear (weeks 1-{h}: {first:.1f}, weeks {h + 1}-{weeks}: {last:.1f})")
        if not r.beats_equal():
            missed.append(f"seed {seed}: Thompson regret {ts:.1f} not below the equal split's {eq:.1f}")
    if not quiet:
        print(f"all seeds: Thompson {total_ts:.1f} vs equal split {total_eq:.1f} ({total_ts / total_eq:.1%}); "
              f"goal: every seed sublinear and below the equal split")
    return missed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replications", type=int, default=5)
    ap.add_argument("--weeks", type=int, default=8)
    ap.add_argument("--customers", type=int, default=20_000)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    missed = check(args.replications, args.weeks, args.customers)
    print(f"{args.replications} replications in {time.perf_counter() - t0:.1f} s")
    for m in missed:
        print(f"MISS {m}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
