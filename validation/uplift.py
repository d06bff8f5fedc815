"""Validation: targeting the top 20% by predicted uplift captures clearly more true gain than random or propensity targeting.

The simulated world (one per replication, its own seed) has tag-like features and a **known true
effect** per customer, built from the four classic groups of uplift modelling:

* *sure things*: traded in the last 30 days: a high chance to trade anyway, no effect from a message;
* *persuadables*: sleeping (last trade 30-400 days ago) app users who still log in (>= 2 logins in 30
  days): +15 points (+19.5 for high-value customers);
* *sleeping dogs* (harmed by contact): 3+ contacts in 90 days or a complaint: -8 points;
* everyone else: +1 point.

The success probability without contact is a logistic function of recent trading and logins, so the
customers most likely to trade (what a propensity or response model ranks first) are mostly sure
things: targeting them wastes messages. (``panhuo.simulate.world``, the bandit world, is not used
here: its effect is multiplicative in each customer's baseline hazard, so propensity and uplift
rank alike there, and its harmed customers are a hash no feature reveals.)

Each replication logs a randomized campaign on ``--train`` customers (treated with probability 0.8
for high-value customers, 0.5 for the others, as the generated brokerage's past campaign), trains the
X-learner and the T-learner of :mod:`panhuo.learn.uplift` on it (propensity-weighted) and a response
model (LightGBM P(success | features) on the same rows, the "propensity targeting" contender), then
takes a fresh population of ``--population`` customers and contacts 20% of it by each rule. The
**share of the true incremental gain** of a rule is the sum of the true effects of the customers it
contacts over the sum when everyone is contacted (above 20% is better than random; it can exceed
100% because contacting the harmed customers loses successes).

Goals, over every replication: the X-learner's share is above both the random and the propensity
share in every replication, and its mean is at least 1.5 times the better of their means. Prints one
line per replication and the means; exits 1 when a goal is missed.

    .venv/bin/python validation/uplift.py [--replications 10] [--train 20000] [--population 20000] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from panhuo.learn.uplift import fit_arm

SHARE = 0.2
RATIO_GOAL = 1.5
FEATURES = ["days_since_last_trade", "logins_30d", "total_assets", "app_user", "contacts_90d", "complaints_90d",
            "age", "noise_1", "noise_2", "noise_3"]


def world(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Features, the propensity of treatment, the success probability without contact and the true effect."""
    days = np.minimum(rng.exponential(220.0, n), 1500.0)
    logins = rng.poisson(np.exp(rng.normal(0.0, 1.0, n)))
    assets = np.exp(rng.normal(9.5, 1.6, n))
    app = rng.random(n) < 0.7
    contacts = rng.poisson(1.2, n)
    complaints = (rng.random(n) < 0.05).astype(float)
    age = rng.uniform(20, 70, n)
    noise = rng.normal(size=(n, 3))
    x = np.column_stack([days, logins, assets, app, contacts, complaints, age, noise]).astype(np.float64)
    high = assets >= 50_000
    logit = -2.6 + 2.2 * (days < 30) + 0.45 * np.log1p(logins) - 0.0015 * days + 0.3 * high
    p0 = 1.0 / (1.0 + np.exp(-logit))
    persuadable = (days >= 30) & (days <= 400) & (logins >= 2) & app
    harmed = (contacts >= 3) | (complaints > 0)
    tau = np.where(harmed, -0.08, np.where(persuadable, np.where(high, 0.195, 0.15), 0.01))
    p1 = np.clip(p0 + tau, 0.001, 0.999)
    return {"x": x, "high": high, "p0": p0, "p1": p1, "tau": p1 - p0,
            "propensity": np.where(high, 0.8, 0.5)}


def _top(score: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-score, kind="stable")[:k]


def replicate(seed: int, n_train: int, n_pop: int, rounds: int = 100, threads: int | None = 1) -> dict[str, float]:
    """One replication: the share of the true gain captured by each targeting rule."""
    import lightgbm as lgb

    rng = np.random.default_rng(seed)
    logged = world(n_train, rng)
    t = rng.random(n_train) < logged["propensity"]
    y = (rng.random(n_train) < np.where(t, logged["p1"], logged["p0"])).astype(np.float64)
    prop = np.where(t, logged["propensity"], 1.0 - logged["propensity"])
    pop = world(n_pop, rng)
    k = int(round(SHARE * n_pop))
    total = float(pop["tau"].sum())
    out: dict[str, float] = {}
    for learner in ("x", "t"):
        m = fit_arm(learner, logged["x"], t, y, prop, rounds=rounds, seed=seed, feature_names=FEATURES,
                    threads=threads)
        out[learner] = float(pop["tau"][_top(m.predict(pop["x"]), k)].sum()) / total
    response = lgb.train({"objective": "binary", "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 100,
                          "verbose": -1, "seed": seed, "deterministic": True, "force_row_wise": True,
                          **({"num_threads": threads} if threads else {})},
                         lgb.Dataset(logged["x"], label=y, weight=1.0 / prop, params={"verbose": -1}),
                         num_boost_round=rounds)
    out["propensity"] = float(pop["tau"][_top(response.predict(pop["x"]), k)].sum()) / total
    out["random"] = float(pop["tau"][rng.choice(n_pop, k, replace=False)].sum()) / total
    out["oracle"] = float(pop["tau"][_top(pop["tau"], k)].sum()) / total
    return out


def check(replications: int, n_train: int, n_pop: int, first_seed: int = 1, quiet: bool = False,
          rounds: int = 100, threads: int | None = 1) -> tuple[list[str], dict[str, float]]:
    """Run the replications; return (goals missed, mean shares)."""
    missed: list[str] = []
    rows = []
    for seed in range(first_seed, first_seed + replications):
        r = replicate(seed, n_train, n_pop, rounds, threads)
        rows.append(r)
        ok = r["x"] > r["random"] and r["x"] > r["propensity"]
        if not quiet:
            print(f"seed {seed}: top {SHARE:.0%} captures of the true incremental gain: X-learner {r['x']:6.1%}, "
                  f"T-learner {r['t']:6.1%}, propensity {r['propensity']:6.1%}, random {r['random']:6.1%} "
                  f"(oracle {r['oracle']:6.1%}) {'ok' if ok else 'MISS'}")
        if not ok:
            missed.append(f"seed {seed}: X-learner share {r['x']:.1%} not above random {r['random']:.1%} "
                          f"and propensity {r['propensity']:.1%}")
    mean = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    better = max(mean["random"], mean["propensity"])
    if mean["x"] < RATIO_GOAL * better:
        missed.append(f"mean X-learner share {mean['x']:.1%} is not {RATIO_GOAL}x the better of random and "
                      f"propensity ({better:.1%})")
    if not quiet:
        print(f"mean over {replications} replications: X-learner {mean['x']:.1%}, T-learner {mean['t']:.1%}, "
              f"propensity {mean['propensity']:.1%}, random {mean['random']:.1%}, oracle {mean['oracle']:.1%}; "
              f"goal: X-learner above both every replication and >= {RATIO_GOAL}x the better mean ({better:.1%})")
    return missed, mean


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replications", type=int, default=10)
    ap.add_argument("--train", type=int, default=20_000, help="customers in each logged campaign")
    ap.add_argument("--population", type=int, default=20_000, help="customers to target in each replication")
    ap.add_argument("--rounds", type=int, default=100, help="boosting rounds per LightGBM model")
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="LightGBM threads (0: every core; 1 is fastest on a "
                    "busy shared machine)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    missed, _ = check(args.replications, args.train, args.population, args.first_seed, rounds=args.rounds,
                      threads=args.threads or None)
    print(f"{args.replications} replications in {time.perf_counter() - t0:.1f} s")
    for m in missed:
        print(f"MISSED: {m}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
