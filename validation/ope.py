"""Validation: IPS, self-normalised IPS and doubly robust estimates of a known policy's value cover the truth (>= 90%).

World: the customers of ``validation/uplift.py`` (tag-like features, sure things, persuadables, harmed
customers) with **two arms**: ``sms`` has that script's true effect, ``app_push`` 60% of it for app
users and -2 points for customers without the app. Each replication logs ``--logged`` contacts with
unequal logged probabilities (high-value customers: control 0.3, sms 0.5, push 0.2; others: control
0.5, sms 0.25, push 0.25), the propensity of the action taken recorded with every row.

Two known policies are evaluated from each log with :func:`panhuo.learn.ope.evaluate_policy`:

* ``rule``: sms to sleeping customers who log in (last trade 30-400 days ago, >= 2 logins), app push
  to the other app users with a login, nobody else;
* ``model uplift>0.03``: the best arm of an X-learner (:mod:`panhuo.learn.uplift`, trained once on a
  separate pilot log of ``--pilot`` contacts) when its predicted uplift exceeds 3 points; the same
  model's outcome predictions are the doubly robust estimate's outcome model.

The truth of a policy is its value (success rate) on the population, the mean over ``--truth`` fresh
customers of the exact success probability under the policy's action (Monte Carlo error about 0.001,
far below the intervals' half-width). Goal: for each policy and each of IPS, SNIPS and DR, the 95% CI
contains the truth in at least 90% of the replications. Prints the coverage, mean estimate and mean
CI width; exits 1 when a goal is missed.

    .venv/bin/python validation/ope.py [--replications 200] [--logged 5000]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from panhuo.learn.ope import CONTROL, METHODS, Policy, evaluate_policy
from panhuo.learn.uplift import fit_arm

COVERAGE_GOAL = 0.90
ARMS = ["sms", "app_push"]
_HIGH = np.array([0.3, 0.5, 0.2])  # control, sms, app_push
_STANDARD = np.array([0.5, 0.25, 0.25])


def _uplift_world() -> Any:
    path = Path(__file__).resolve().parent / "uplift.py"
    spec = importlib.util.spec_from_file_location("validation_uplift_world", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def world(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Features, logged action probabilities (rows x 3) and the success probability per action (rows x 3)."""
    w = _uplift_world().world(n, rng)
    app = w["x"][:, 3] > 0
    p_sms = w["p1"]
    p_push = np.clip(w["p0"] + np.where(app, 0.6 * w["tau"], -0.02), 0.001, 0.999)
    return {"x": w["x"], "probs": np.where(w["high"][:, None], _HIGH, _STANDARD),
            "p": np.column_stack([w["p0"], p_sms, p_push])}


def log(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A logged campaign: the action taken (-1 control, 0 sms, 1 app_push), its propensity and the outcome."""
    w = world(n, rng)
    u = rng.random(n)
    col = (u[:, None] > np.cumsum(w["probs"], axis=1)).sum(axis=1)  # 0 control, 1 sms, 2 push
    rows = np.arange(n)
    y = (rng.random(n) < w["p"][rows, col]).astype(np.float64)
    return {**w, "action": col - 1, "propensity": w["probs"][rows, col], "y": y}


def rule_policy(x: np.ndarray) -> np.ndarray:
    days, logins, app = x[:, 0], x[:, 1], x[:, 3] > 0
    sleeping_login = (days >= 30) & (days <= 400) & (logins >= 2)
    return np.where(sleeping_login, 0, np.where(app & (logins >= 1), 1, CONTROL))


class ModelPolicy:
    """The pilot-trained X-learner per arm: uplift>T decisions and the DR outcome model."""

    def __init__(self, pilot: dict[str, np.ndarray], threshold: float, rounds: int, seed: int,
                 threads: int | None = 1) -> None:
        self.models = []
        control = pilot["action"] == CONTROL
        for k in range(len(ARMS)):
            rows = control | (pilot["action"] == k)
            self.models.append(fit_arm("x", pilot["x"][rows], pilot["action"][rows] == k, pilot["y"][rows],
                                       pilot["propensity"][rows], arm=ARMS[k], rounds=rounds, seed=seed,
                                       threads=threads))
        self.policy = Policy("threshold", threshold)

    def actions(self, x: np.ndarray) -> np.ndarray:
        return self.policy.actions(np.column_stack([m.predict(x) for m in self.models]), ARMS)

    def q(self, x: np.ndarray) -> np.ndarray:
        q0 = np.mean([m.outcome(x, False) for m in self.models], axis=0)
        return np.column_stack([q0, *[m.outcome(x, True) for m in self.models]])


def truth(actions_of: Any, n: int, rng: np.random.Generator) -> float:
    w = world(n, rng)
    a = actions_of(w["x"])
    return float(w["p"][np.arange(n), a + 1].mean())


def check(replications: int, n_logged: int, n_pilot: int = 20_000, n_truth: int = 400_000, first_seed: int = 1,
          rounds: int = 100, quiet: bool = False, threads: int | None = 1) -> tuple[list[str], dict[str, dict[str, float]]]:
    """Run the replications; return (goals missed, coverage per policy and method)."""
    rng = np.random.default_rng(first_seed)
    model = ModelPolicy(log(n_pilot, rng), 0.03, rounds, first_seed, threads)
    policies = {"rule": rule_policy, "model uplift>0.03": model.actions}
    true = {name: truth(f, n_truth, rng) for name, f in policies.items()}
    hits = {name: {m: 0 for m in METHODS} for name in policies}
    est = {name: {m: [] for m in METHODS} for name in policies}
    width = {name: {m: [] for m in METHODS} for name in policies}
    for r in range(replications):
        d = log(n_logged, np.random.default_rng(first_seed * 100_003 + r + 1))
        q = model.q(d["x"])
        for name, f in policies.items():
            res = evaluate_policy(d["y"], d["action"], d["propensity"], f(d["x"]), q)
            for m in METHODS:
                e = res[m]
                hits[name][m] += int(e.ci_low <= true[name] <= e.ci_high)
                est[name][m].append(e.estimate)
                width[name][m].append(e.ci_high - e.ci_low)
    missed: list[str] = []
    coverage: dict[str, dict[str, float]] = {}
    for name in policies:
        coverage[name] = {m: hits[name][m] / replications for m in METHODS}
        if not quiet:
            cells = ", ".join(f"{m.upper()} {coverage[name][m]:.1%} (mean {np.mean(est[name][m]):.4f}, CI width "
                              f"{np.mean(width[name][m]):.4f})" for m in METHODS)
            print(f"policy {name}: true value {true[name]:.4f}; coverage {cells}")
        for m in METHODS:
            if coverage[name][m] < COVERAGE_GOAL:
                missed.append(f"policy {name}: {m.upper()} CI covers the truth in {coverage[name][m]:.1%} of "
                              f"{replications} replications (goal >= {COVERAGE_GOAL:.0%})")
    if not quiet:
        print(f"goal: every policy and method covers the truth in >= {COVERAGE_GOAL:.0%} of {replications} replications")
    return missed, coverage


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replications", type=int, default=200)
    ap.add_argument("--logged", type=int, default=5_000, help="logged contacts per replication")
    ap.add_argument("--pilot", type=int, default=20_000, help="contacts of the pilot log the model policy learns from")
    ap.add_argument("--truth", type=int, default=400_000, help="customers for the Monte Carlo truth")
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="LightGBM threads (0: every core)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    missed, _ = check(args.replications, args.logged, args.pilot, args.truth, args.first_seed, args.rounds,
                      threads=args.threads or None)
    print(f"{args.replications} replications in {time.perf_counter() - t0:.1f} s")
    for m in missed:
        print(f"MISSED: {m}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
