"""Uplift model training on N rows: panhuo's T- and X-learner against causalml's equivalent learners, same data.

Issue 7: "uplift model training on 1M rows: state the time and compare with causalml's equivalent
learner on the same data when it installs". Run it alone::

    .venv/bin/python benchmarks/bench_uplift.py --rows 1000000 [--rounds 100] [--no-record]

What it does
------------
1. Simulates ``--rows`` logged contacts of a randomized campaign in the world of
   ``validation/uplift.py`` (ten tag-like features, known heterogeneous effect, treated with
   probability 0.8 for high-value customers and 0.5 for the others) and a fresh evaluation population
   of ``--eval-rows`` customers.
2. Times :func:`panhuo.learn.uplift.fit_arm` (``"t"`` and ``"x"``; propensity-weighted with the
   logged propensities) on every row, best of ``--repeat``, after an untimed warm-up fit (each
   contender's one-time library start-up is not timed). ``--threads`` sets LightGBM's threads for every
   contender (0: every core; on a shared machine other work keeps busy, OpenMP threads stall each other
   and 1 thread is faster and steadier).
3. Times causalml's ``BaseTClassifier`` (LightGBM classifiers) and ``BaseXClassifier`` (LightGBM
   classifier outcome models, LightGBM regressor effect models, the logged propensity passed as ``p``)
   with the same LightGBM parameters and rounds on the same rows. causalml is **not** a dependency of
   panhuo: it is imported when installed, else it runs in a throwaway virtualenv created under
   ``benchmarks/data/causalml-venv`` (``pip install causalml lightgbm==<panhuo's>``; git-ignored) so
   panhuo's own environment is never changed, or in ``--causalml-python PATH``. When it will not
   install or import, the script says so and skips those contenders. causalml's T-learner has no
   sample weights, so its fit is unweighted (with these propensities the ranking barely differs).
4. Checks every model on the evaluation population: the Qini coefficient against the known effects
   (:func:`panhuo.learn.uplift.uplift_metrics` with the true success probabilities) and the share of
   the true incremental gain captured by the top 20%, so a fast but useless fit cannot win.
5. Prints the table, the ratios and the machine's load average before and after; with ``--record``
   (the default) writes the section ``bench-uplift:<rows>`` of ``benchmarks/RESULTS.md`` through
   ``benchmarks/run.py``'s ``record``. Exit status 0 (a measurement); 1 when a panhuo fit fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV = HERE / "data" / "causalml-venv"

_CAUSALML_SCRIPT = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np
from importlib.metadata import version
from causalml.inference.meta import BaseTClassifier, BaseXClassifier
from lightgbm import LGBMClassifier, LGBMRegressor
d = np.load(sys.argv[1])
params = json.loads(sys.argv[2])
repeat = int(sys.argv[3])
x, t, y, p, xe = d["x"], d["t"], d["y"], d["p_treated"], d["x_eval"]
treatment = np.where(t, "treated", "control")
out = {"version": version("causalml")}
def clf(): return LGBMClassifier(**params)
def reg(): return LGBMRegressor(**params)
BaseTClassifier(learner=clf(), control_name="control").fit(x[:2000], treatment[:2000], y[:2000])  # warm-up, untimed
for name in ("t", "x"):
    best = None
    for _ in range(repeat):
        m = (BaseTClassifier(learner=clf(), control_name="control") if name == "t" else
             BaseXClassifier(outcome_learner=clf(), effect_learner=reg(), control_name="control"))
        t0 = time.perf_counter()
        if name == "t":
            m.fit(x, treatment, y)
        else:
            m.fit(x, treatment, y, p=p)
        s = time.perf_counter() - t0
        best = s if best is None else min(best, s)
    pred = m.predict(xe, p=np.full(len(xe), 0.6)) if name == "x" else m.predict(xe)
    out[name] = {"seconds": best, "pred": np.asarray(pred).reshape(len(xe), -1)[:, 0].tolist()}
print(json.dumps(out))
"""


def _world_module() -> Any:
    path = REPO / "validation" / "uplift.py"
    spec = importlib.util.spec_from_file_location("validation_uplift_world", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _load() -> str:
    a, b, c = os.getloadavg()
    return f"{a:.1f}/{b:.1f}/{c:.1f}"


def simulate(rows: int, eval_rows: int, seed: int) -> dict[str, np.ndarray]:
    w = _world_module()
    rng = np.random.default_rng(seed)
    logged = w.world(rows, rng)
    t = rng.random(rows) < logged["propensity"]
    y = (rng.random(rows) < np.where(t, logged["p1"], logged["p0"])).astype(np.float64)
    pop = w.world(eval_rows, rng)
    return {"x": logged["x"], "t": t, "y": y, "p_treated": logged["propensity"],
            "prop": np.where(t, logged["propensity"], 1 - logged["propensity"]),
            "x_eval": pop["x"], "tau_eval": pop["tau"], "p0_eval": pop["p0"], "p1_eval": pop["p1"],
            "features": np.array(w.FEATURES)}


def quality(pred: np.ndarray, d: dict[str, np.ndarray], seed: int) -> dict[str, float]:
    """Qini against the known effect (a fresh randomized draw of the evaluation population) and top-20% share."""
    from panhuo.learn.uplift import uplift_metrics

    rng = np.random.default_rng(seed + 99)
    n = len(pred)
    t = rng.random(n) < 0.5
    y = (rng.random(n) < np.where(t, d["p1_eval"], d["p0_eval"])).astype(np.float64)
    met = uplift_metrics(pred, t, y)
    k = n // 5
    share = float(d["tau_eval"][np.argsort(-pred, kind="stable")[:k]].sum() / d["tau_eval"].sum())
    return {"qini": met["qini"], "share_top20": share}


def lgb_params(rounds: int, seed: int, threads: int = 0) -> dict[str, Any]:
    """causalml's (scikit-learn API) spelling of panhuo's DEFAULT_PARAMS."""
    from panhuo.learn.uplift import DEFAULT_PARAMS as P

    return {**({"n_jobs": threads} if threads else {}),"n_estimators": rounds, "learning_rate": P["learning_rate"], "num_leaves": P["num_leaves"],
            "min_child_samples": P["min_data_in_leaf"], "colsample_bytree": P["feature_fraction"],
            "subsample": P["bagging_fraction"], "subsample_freq": P["bagging_freq"], "reg_lambda": P["lambda_l2"],
            "verbose": -1, "random_state": seed, "deterministic": True, "force_row_wise": True}


def _causalml_python(explicit: str | None) -> tuple[str | None, str]:
    """An interpreter that imports causalml, or (None, why not)."""
    if explicit:
        return explicit, f"--causalml-python {explicit}"
    if importlib.util.find_spec("causalml") is not None:
        return sys.executable, "installed in panhuo's environment"
    py = VENV / "bin" / "python"
    if not py.exists():
        import lightgbm

        print(f"causalml is not installed: creating a throwaway virtualenv in {VENV} (pip install causalml "
              f"lightgbm=={lightgbm.__version__}) ...", flush=True)
        made = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True, check=False)
        if made.returncode != 0:
            return None, f"could not create a virtualenv: {made.stderr.strip()[-300:]}"
        got = subprocess.run([str(py), "-m", "pip", "install", "-q", "causalml", f"lightgbm=={lightgbm.__version__}"],
                             capture_output=True, text=True, check=False, timeout=1800)
        if got.returncode != 0:
            return None, f"pip install causalml failed: {(got.stderr or got.stdout).strip()[-400:]}"
    check = subprocess.run([str(py), "-c", "import causalml.inference.meta, lightgbm"], capture_output=True,
                           text=True, check=False)
    if check.returncode != 0:
        return None, f"causalml does not import: {check.stderr.strip()[-300:]}"
    return str(py), f"throwaway virtualenv {VENV}"


def run_causalml(py: str, d: dict[str, np.ndarray], rounds: int, seed: int, repeat: int, threads: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.npz"
        np.savez(data, x=d["x"], t=d["t"], y=d["y"], p_treated=d["p_treated"], x_eval=d["x_eval"])
        done = subprocess.run([py, "-c", _CAUSALML_SCRIPT, str(data), json.dumps(lgb_params(rounds, seed, threads)), str(repeat)],
                              capture_output=True, text=True, check=False, timeout=7200)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-600:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(args: argparse.Namespace, rows: list[dict[str, Any]], notes: list[str], load: tuple[str, str],
             machine: dict[str, str]) -> str:
    cmd = (f".venv/bin/python benchmarks/bench_uplift.py --rows {args.rows} --eval-rows {args.eval_rows} "
           f"--rounds {args.rounds} --repeat {args.repeat} --seed {args.seed} --threads {args.threads}")
    out = [f"## Uplift training, {args.rows:,} rows", "",
           f"Recorded {dt.datetime.now().isoformat(timespec='seconds')} with `{cmd}` (fit time only, best of runs; "
           f"the same rows, features and LightGBM parameters for every contender).", "",
           f"- Machine: {machine['cpu']}, {machine['nproc']} CPUs, {machine['memory']} RAM; load average before "
           f"{load[0]}, after {load[1]}; panhuo commit {machine['commit']}",
           "- Quality: Qini coefficient and share of the true incremental gain in the top 20% on "
           f"{args.eval_rows:,} fresh customers of the simulated world (known effects)", "",
           "| contender | fit seconds | vs panhuo same learner | Qini | top-20% share of true gain |",
           "| --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        out.append(f"| {r['label']} | {r['seconds']:.2f} | {r['ratio']} | {r['qini']:.4f} | {r['share_top20']:.1%} |")
    out.append("")
    out.extend(f"- {n}" for n in notes)
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--eval-rows", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=100, help="boosting rounds per LightGBM model")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=0, help="LightGBM threads for every contender (0: every core)")
    ap.add_argument("--causalml", action=argparse.BooleanOptionalAction, default=True,
                    help="time causalml's learners too (installing it in a throwaway virtualenv if needed)")
    ap.add_argument("--causalml-python", default=None, help="an interpreter with causalml installed")
    ap.add_argument("--record", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args(argv)

    from panhuo.learn.uplift import fit_arm

    load_before = _load()
    print(f"load average before: {load_before} ({os.cpu_count()} CPUs)")
    d = simulate(args.rows, args.eval_rows, args.seed)
    names = [str(f) for f in d["features"]]
    rows: list[dict[str, Any]] = []
    ours: dict[str, float] = {}
    fit_arm("t", d["x"][:2000], d["t"][:2000], d["y"][:2000], rounds=2, threads=args.threads or None)  # warm-up
    for learner in ("t", "x"):
        best = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            m = fit_arm(learner, d["x"], d["t"], d["y"], d["prop"], rounds=args.rounds, seed=args.seed,
                        feature_names=names, threads=args.threads or None)
            s = time.perf_counter() - t0
            best = s if best is None else min(best, s)
        assert best is not None
        ours[learner] = best
        q = quality(m.predict(d["x_eval"]), d, args.seed)
        rows.append({"label": f"panhuo {learner.upper()}-learner (LightGBM, propensity-weighted)", "seconds": best,
                     "ratio": "1.00x", **q})
        print(f"panhuo {learner.upper()}-learner: {best:.2f} s, Qini {q['qini']:.4f}, top-20% share "
              f"{q['share_top20']:.1%}", flush=True)
    notes: list[str] = []
    if args.causalml:
        py, how = _causalml_python(args.causalml_python)
        if py is None:
            notes.append(f"causalml skipped: {how}")
            print(f"causalml skipped: {how}")
        else:
            try:
                res = run_causalml(py, d, args.rounds, args.seed, args.repeat, args.threads)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                notes.append(f"causalml failed to run ({how}): {exc}")
                print(f"causalml failed: {exc}")
            else:
                for learner, label in (("t", "BaseTClassifier"), ("x", "BaseXClassifier")):
                    r = res[learner]
                    q = quality(np.asarray(r["pred"]), d, args.seed)
                    ratio = r["seconds"] / ours[learner]
                    rows.append({"label": f"causalml {res['version']} {label} (LightGBM)", "seconds": r["seconds"],
                                 "ratio": f"{ratio:.2f}x", **q})
                    print(f"causalml {label}: {r['seconds']:.2f} s ({ratio:.2f}x panhuo's), Qini {q['qini']:.4f}, "
                          f"top-20% share {q['share_top20']:.1%}")
                    print(f"ratio uplift causalml/panhuo {learner}-learner {ratio:.2f}")
                notes.append(f"causalml from {how}; its T-learner fit is unweighted (no sample weights); its "
                             "X-learner is given the logged treatment probability as p")
    else:
        notes.append("causalml not run (--no-causalml)")
    load_after = _load()
    print(f"load average after: {load_after}")
    notes.append("panhuo's fit includes the propensity weights and, for the X-learner, the imputed-effect models "
                 "and (the logged probability varying by tier) a LightGBM model of P(treated | x)")
    if args.record:
        sys.path.insert(0, str(HERE))
        import run as bench

        bench.record(markdown(args, rows, notes, (load_before, load_after), bench.machine()), args.rows,
                     "bench-uplift")
    return 0


if __name__ == "__main__":
    sys.exit(main())
