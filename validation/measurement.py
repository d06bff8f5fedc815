"""Validation: the report's 95% CIs cover the true increments, and CUPED narrows them (issue 7).

Each replication draws a fresh simulated population with known true effects and measures it with the
production code path (:func:`panhuo.measure.report.build_report` on an
:class:`~panhuo.measure.outcomes.Outcomes` table, the same weights, CUPED and CIs as ``panhuo report``):

* three tiers with different baseline conversion, true lift (one tier is *harmed* by contact: a
  negative lift) and commission per conversion;
* a pre-period activity (the same outcome in the window before the run) that predicts the outcome,
  so CUPED has something to remove;
* two runs with different holdout shares (10% and 50%) and the tiers spread unevenly over them, so the
  assignment probability is related to the outcome and the unweighted difference would be biased:
  the IPW (Hajek) weights are needed;
* two arms in the first run with unequal weights.

The truth of the pooled comparison (arm ``all``, tier ``all``) is the population-average true lift
(conversions) and lift x commission per conversion (commission) times the number of treated
customers: the estimand of an IPW difference of means. It is known exactly from the generator.
Goals: the 95% CIs (plain IPW and CUPED, conversions and commission) each cover the truth in 93% to
97% of the replications; the CUPED CI is narrower than the plain one on average (width ratio < 1).

With ``R`` replications the Monte Carlo standard error of a coverage of 95% is
``sqrt(0.95 * 0.05 / R)``: 1.5 points at 200, 0.7 at 1,000. The default is 1,000 so that a correctly
calibrated CI is not failed by chance (the 93-97% band is then about +-2.9 standard errors);
``--replications 200`` runs the issue's figure. Prints the coverages and the average width ratio;
exits 1 when a goal is missed.

    .venv/bin/python validation/measurement.py [--replications 1000] [--customers 20000] [--seed 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from panhuo.measure.outcomes import Outcomes
from panhuo.measure.report import build_report

TIER_SHARE = np.array([0.5, 0.3, 0.2])
TIER_BASE = np.array([0.04, 0.10, 0.20])      # P(success) without contact, pre-period inactive
PRE_LIFT = 0.25                               # + when active in the pre-period
PRE_RATE = np.array([0.10, 0.30, 0.50])       # P(active in the pre-period) by tier
TRUE_LIFT = np.array([-0.01, 0.04, 0.08])     # contact's effect on P(success); tier 0 is harmed
COMMISSION_MEAN = np.array([30.0, 80.0, 200.0])  # RMB per conversion (gamma, shape 2)
RUN_A_SHARE = np.array([0.3, 0.5, 0.8])       # P(run A) by tier: tiers spread unevenly over the runs
HOLDOUT = {1: 0.1, 2: 0.5}                    # run id -> holdout share
ARMS = (("a", 0.7), ("b", 0.3))               # arms of run 1 (run 2 has one)
GOAL = (0.93, 0.97)
D0 = dt.date(2026, 1, 30)


def true_effects() -> tuple[float, float]:
    """Population-average true lift in conversions and in commission (RMB) per customer."""
    return float(TIER_SHARE @ TRUE_LIFT), float(TIER_SHARE @ (TRUE_LIFT * COMMISSION_MEAN))


def world(rng: np.random.Generator, n: int) -> tuple[Outcomes, int]:
    """One simulated population measured as a playbook's outcomes; also the number treated."""
    tier = rng.choice(3, size=n, p=TIER_SHARE)
    pre = rng.random(n) < PRE_RATE[tier]
    run = np.where(rng.random(n) < RUN_A_SHARE[tier], 1, 2)
    h = np.where(run == 1, HOLDOUT[1], HOLDOUT[2])
    treated = rng.random(n) >= h
    arm = np.full(n, None, dtype=object)
    prop = np.where(treated, 1.0 - h, h)
    r1 = treated & (run == 1)
    pick = rng.random(n) < ARMS[0][1]
    arm[r1 & pick], arm[r1 & ~pick] = ARMS[0][0], ARMS[1][0]
    prop[r1 & pick] *= ARMS[0][1]
    prop[r1 & ~pick] *= ARMS[1][1]
    arm[treated & (run == 2)] = "a"
    p0 = TIER_BASE[tier] + PRE_LIFT * pre
    y = rng.random(n) < p0 + TRUE_LIFT[tier] * treated
    comm = np.where(y, np.rint(rng.gamma(2.0, COMMISSION_MEAN[tier] / 2.0) * 100), 0).astype(np.int64)
    # the pre-period outcome: active customers converted there with the same commission law
    pre_comm = np.where(pre, np.rint(rng.gamma(2.0, COMMISSION_MEAN[tier] / 2.0) * 100), 0).astype(np.int64)
    grp = np.where(treated, "treated", "holdout")
    rows = pa.table({
        "run_id": pa.array(run, pa.int64()),
        "customer_id": pa.array([f"c{i}" for i in range(n)]),
        "grp": pa.array(grp.tolist(), pa.string()),
        "arm": pa.array(arm.tolist(), pa.string()),
        "propensity": pa.array(prop, pa.float64()),
        "as_of": pa.array([D0] * n, pa.date32()),
        "closed": pa.array(np.ones(n, dtype=bool)),
        "days_remaining": pa.array(np.zeros(n, dtype=np.int64)),
        "in_data": pa.array(np.ones(n, dtype=bool)),
        "success": pa.array(y),
        "pre_success": pa.array(pre),
        "commission_fen": pa.array(comm),
        "pre_commission_fen": pa.array(pre_comm),
        "tier": pa.array([f"t{t}" for t in tier.tolist()], pa.string()),
    })
    return Outcomes("playbook", "validation", "trade", 10, dt.date(2026, 3, 2), rows, []), int(treated.sum())


@dataclass
class Result:
    replications: int
    coverage: dict[str, float]
    width_ratio: dict[str, float]
    seconds: float

    def missed(self) -> list[str]:
        out = [f"coverage of {k}: {v:.1%} outside {GOAL[0]:.0%}-{GOAL[1]:.0%}" for k, v in self.coverage.items()
               if not GOAL[0] <= v <= GOAL[1]]
        out += [f"CUPED does not narrow the CI of {k} on average (width ratio {v:.3f})"
                for k, v in self.width_ratio.items() if not v < 1.0]
        return out


def run(replications: int, customers: int, seed: int = 1) -> Result:
    """Measure ``replications`` fresh worlds; coverage of the truth and CUPED/plain CI width ratio."""
    t0 = time.perf_counter()
    lift, lift_comm = true_effects()
    keys = {"conversions": ("incremental_conversions", 1.0), "commission": ("incremental_commission_rmb", 1.0)}
    hits = {f"{k} {m}": 0 for k in keys for m in ("ipw", "cuped")}
    widths: dict[str, list[float]] = {k: [] for k in keys}
    widths_c: dict[str, list[float]] = {k: [] for k in keys}
    for r in range(replications):
        rng = np.random.default_rng([seed, r])
        out, n_t = world(rng, customers)
        g = build_report(out)["groups"][0]
        assert g["arm"] == "all" and g["tier"] == "all"
        truth = {"conversions": lift * n_t, "commission": lift_comm * n_t}
        for k, (field, _) in keys.items():
            for m, name in (("ipw", field), ("cuped", f"{field}_cuped")):
                ci = g[name]
                hits[f"{k} {m}"] += ci["ci_low"] <= truth[k] <= ci["ci_high"]
            widths[k].append(g[field]["ci_high"] - g[field]["ci_low"])
            widths_c[k].append(g[f"{field}_cuped"]["ci_high"] - g[f"{field}_cuped"]["ci_low"])
    coverage = {k: v / replications for k, v in hits.items()}
    ratio = {k: float(np.mean(widths_c[k]) / np.mean(widths[k])) for k in keys}
    return Result(replications, coverage, ratio, time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--replications", type=int, default=1000)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if args.replications < 1 or args.customers < 100:
        ap.error("--replications must be >= 1 and --customers >= 100")
    res = run(args.replications, args.customers, args.seed)
    lift, lift_comm = true_effects()
    print(f"true effect per customer: {lift:+.4f} conversions, {lift_comm:+.2f} RMB commission "
          f"(tier 0 harmed: lift {TRUE_LIFT[0]:+.2f})")
    for k, v in res.coverage.items():
        print(f"coverage {k}: {v:.1%} (goal {GOAL[0]:.0%}-{GOAL[1]:.0%}) {'ok' if GOAL[0] <= v <= GOAL[1] else 'MISS'}")
    for k, v in res.width_ratio.items():
        print(f"CUPED / plain CI width, {k}: {v:.3f} (goal < 1) {'ok' if v < 1 else 'MISS'}")
    se = (0.95 * 0.05 / res.replications) ** 0.5
    print(f"{res.replications} replications of {args.customers:,} customers in {res.seconds:.1f} s "
          f"(Monte Carlo s.e. of a 95% coverage: {se:.1%})")
    missed = res.missed()
    for m in missed:
        print(f"MISS {m}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
