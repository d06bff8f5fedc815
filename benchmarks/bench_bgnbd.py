"""BG/NBD fit on N customers: panhuo's BetaGeoModel against lifetimes' BetaGeoFitter, in one run.

Target (issue 4): 1M customers fitted in under 30 s, at least 5x faster than lifetimes on the same
summary, with the same parameters to 1%. Run it alone::

    .venv/bin/python benchmarks/bench_bgnbd.py --customers 1000000

What it does
------------
1. Simulates a trading-day summary from the BG/NBD process (``panhuo.models.simulate_bgnbd``) with
   the synthetic brokerage's parameters (r=0.5, alpha=4.5, a=0.8, b=12 per trading day), ages ``T``
   uniform over 20..1250 trading days and the last trading day rounded up to a whole day, like
   panhuo's real summaries: one row per customer.
2. Times ``BetaGeoModel().fit(frequency, recency, T)`` on the one-row-per-customer summary
   (validation and collapsing to distinct rows included), best of ``--repeat``.
3. Times lifetimes 0.11's ``BetaGeoFitter().fit`` on the same one-row-per-customer summary, and
   also on the collapsed summary with its ``weights`` argument (lifetimes' best case), once each.
   lifetimes is imported in-process when installed; otherwise it runs in a separate interpreter
   (``--lifetimes-python PATH``, or a throwaway venv created under the temp folder with
   ``pip install lifetimes``) and only its ``fit`` call is timed. If lifetimes cannot be installed
   or imported, the script says so and compares against a plain scipy Nelder-Mead on the
   likelihood evaluated row by row without gradient instead.
4. Prints the seconds, the parameters of each, the largest relative parameter difference and the
   ratios. Exit status 0 (a measurement); 1 with ``--check`` when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "simulate_summary"]

TRUE = {"r": 0.5, "alpha": 4.5, "a": 0.8, "b": 12.0}
NAMES = ("r", "alpha", "a", "b")

_LIFETIMES_SCRIPT = r"""
import json, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from lifetimes import BetaGeoFitter
import lifetimes
d = np.load(sys.argv[1])
out = {"version": lifetimes.__version__}
for label, w in (("rows", None), ("weights", "collapsed")):
    if w is None:
        f, r, T, wt = d["frequency"], d["recency"], d["T"], None
    else:
        f, r, T, wt = d["cf"], d["cr"], d["cT"], d["cw"]
    if label == "rows" and sys.argv[2] == "skip-rows":
        continue
    t0 = time.perf_counter()
    m = BetaGeoFitter().fit(f, r, T, weights=wt)
    out[label] = {"seconds": time.perf_counter() - t0, "params": {k: float(v) for k, v in m.params_.items()}}
print(json.dumps(out))
"""


def simulate_summary(customers: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One (frequency, recency, T) row per customer, in whole trading days."""
    from panhuo.models import simulate_bgnbd

    rng = np.random.default_rng(seed)
    T = rng.integers(20, 1251, customers).astype(float)
    s = simulate_bgnbd(**TRUE, T=T, seed=rng)
    recency = np.where(s.frequency > 0, np.clip(np.ceil(s.recency), 1, T), 0.0)
    return s.frequency, recency, T


def _lifetimes_python(explicit: str | None) -> tuple[str | None, str]:
    """An interpreter that can import lifetimes, and how it was found (or why there is none)."""
    try:
        import lifetimes  # noqa: F401

        return sys.executable, "imported in this interpreter"
    except ImportError:
        pass
    if explicit:
        return explicit, f"--lifetimes-python {explicit}"
    venv = Path(tempfile.gettempdir()) / "panhuo-bench-lifetimes-venv"
    py = venv / "bin" / "python"
    ok = py.exists() and subprocess.run([str(py), "-c", "import lifetimes"], capture_output=True,
                                        check=False).returncode == 0
    if not ok:
        print(f"lifetimes is not installed here: creating a throwaway venv {venv} (pip install lifetimes) ...",
              flush=True)
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, check=False)
        if made.returncode == 0:
            made = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "lifetimes"],
                                  capture_output=True, text=True, check=False)
        if made.returncode != 0:
            return None, "could not install lifetimes: " + (made.stderr.strip().splitlines() or ["?"])[-1]
        check = subprocess.run([str(py), "-c", "import lifetimes"], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            return None, "lifetimes installed but cannot be imported: " + check.stderr.strip().splitlines()[-1]
    return str(py), f"throwaway venv {venv}"


def _run_lifetimes(py: str, data: dict[str, np.ndarray], skip_rows: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "summary.npz"
        np.savez(path, **data)
        script = Path(tmp) / "fit_lifetimes.py"
        script.write_text(_LIFETIMES_SCRIPT, encoding="utf-8")
        out = subprocess.run([py, str(script), str(path), "skip-rows" if skip_rows else "rows"],
                             capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError("lifetimes failed: " + out.stderr.strip()[-2000:])
    result: dict = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _nelder_mead(f: np.ndarray, r: np.ndarray, T: np.ndarray) -> dict:
    """Fallback reference: Nelder-Mead on the BG/NBD likelihood row by row, no gradient, no collapsing."""
    from math import exp, lgamma, log

    def nll(theta: np.ndarray) -> float:
        ra, al, a, b = np.exp(theta)
        total = 0.0
        for x, tx, t in zip(f.tolist(), r.tolist(), T.tolist(), strict=True):
            a1 = lgamma(ra + x) - lgamma(ra) + ra * log(al)
            a2 = lgamma(a + b) + lgamma(b + x) - lgamma(b) - lgamma(a + b + x)
            a3 = -(ra + x) * log(al + t)
            a4 = log(a) - log(b + x - 1) - (ra + x) * log(al + tx) if x > 0 else -np.inf
            m = max(a3, a4)
            total += a1 + a2 + m + log(exp(a3 - m) + (exp(a4 - m) if x > 0 else 0.0))
        return -total

    from scipy.optimize import minimize

    t0 = time.perf_counter()
    res = minimize(nll, np.zeros(4), method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-6})
    return {"seconds": time.perf_counter() - t0, "params": dict(zip(NAMES, np.exp(res.x).tolist(), strict=True))}


def _max_rel(a: dict[str, float], b: dict[str, float]) -> float:
    return max(abs(a[k] - b[k]) / abs(b[k]) for k in NAMES)


def _fmt(p: dict[str, float]) -> str:
    return ", ".join(f"{k}={p[k]:.4f}" for k in NAMES)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=3, help="panhuo fits timed (best of)")
    ap.add_argument("--lifetimes-python", help="an interpreter with lifetimes installed")
    ap.add_argument("--reference", choices=("lifetimes", "nelder-mead"), default="lifetimes",
                    help="nelder-mead: skip lifetimes and compare with the plain scipy fallback")
    ap.add_argument("--skip-lifetimes-rows", action="store_true",
                    help="time lifetimes only on the collapsed summary with weights (its fast path)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args(argv)

    from panhuo.models import BetaGeoModel, collapse_summary

    f, r, T = simulate_summary(args.customers, args.seed)
    c = collapse_summary(f, r, T)
    print(f"summary: {args.customers:,} customers, {len(c.weights):,} distinct (x, t_x, T) rows; "
          f"true parameters {_fmt(TRUE)}", flush=True)

    best, model = float("inf"), None
    for _ in range(max(1, args.repeat)):
        t0 = time.perf_counter()
        model = BetaGeoModel().fit(f, r, T)
        best = min(best, time.perf_counter() - t0)
    assert model is not None
    ours = model.params_
    print(f"panhuo BetaGeoModel: {best:.2f} s (best of {args.repeat}; collapsing included) -> {_fmt(ours)}; "
          f"log-likelihood {model.log_likelihood_:,.1f}", flush=True)

    if args.reference == "lifetimes":
        py, how = _lifetimes_python(args.lifetimes_python)
    else:
        py, how = None, "--reference nelder-mead"
    ok = best < 30.0
    if py is None:
        print(f"lifetimes: not used ({how}); comparing against plain scipy Nelder-Mead instead")
        ref = _nelder_mead(f, r, T)
        ratio = ref["seconds"] / best
        diff = _max_rel(ours, ref["params"])
        print(f"scipy Nelder-Mead (row by row, no gradient): {ref['seconds']:.2f} s -> {_fmt(ref['params'])}")
        print(f"ratio nelder-mead/panhuo: {ratio:.1f}x; max parameter difference {diff:.3%}")
        ok = ok and ratio >= 5 and diff <= 0.01
    else:
        data = {"frequency": f, "recency": r, "T": T, "cf": c.frequency, "cr": c.recency, "cT": c.T, "cw": c.weights}
        lt = _run_lifetimes(py, data, args.skip_lifetimes_rows)
        print(f"lifetimes {lt['version']} ({how}):")
        for label, text in (("rows", "one row per customer"), ("weights", "collapsed rows + weights")):
            if label not in lt:
                continue
            res = lt[label]
            ratio = res["seconds"] / best
            diff = _max_rel(ours, res["params"])
            print(f"  BetaGeoFitter on {text}: {res['seconds']:.2f} s -> {_fmt(res['params'])}")
            print(f"  ratio lifetimes({label})/panhuo: {ratio:.1f}x; max parameter difference {diff:.3%}")
            ok = ok and diff <= 0.01 and (label != "rows" or ratio >= 5)
    print(f"targets (under 30 s, >= 5x lifetimes on the same summary, parameters within 1%): "
          f"{'met' if ok else 'MISSED'}")
    return 1 if (args.check and not ok) else 0


if __name__ == "__main__":
    sys.exit(main())
