"""Uplift models (增量响应模型): who changes because of the contact, learnt from past randomized contacts.

Learners (pure numpy + LightGBM, usable without a workspace, by the validation scripts and benchmarks)
---------------------------------------------------------------------------------------------------
* **T-learner**: two LightGBM classifiers, ``mu1(x) = P(success | x, treated)`` on the treated rows and
  ``mu0(x) = P(success | x, control)`` on the control rows; uplift ``tau(x) = mu1(x) - mu0(x)``.
* **X-learner** (Kuenzel et al. 2019): the T-learner's ``mu0``/``mu1``, then the imputed effects
  ``D1 = y - mu0(x)`` on the treated and ``D0 = mu1(x) - y`` on the controls, two LightGBM regressions
  ``tau1``/``tau0`` on them, combined as ``tau(x) = e(x) tau0(x) + (1 - e(x)) tau1(x)`` with ``e(x)``
  the chance of treatment: the constant logged probability when it is the same for every row, else a
  LightGBM classifier of the treatment on ``x``.

Every model is **propensity-weighted**: row weight ``1 / propensity``, the logged probability of the
group (and arm) the customer was actually put in, so a campaign that treated 80% of one tier and 50% of
another is learnt as if both were split evenly (with equal propensities the weights are all equal).

Evaluation: :func:`uplift_metrics` (Qini coefficient and AUUC). Customers are ranked by predicted
uplift, highest first; for the top fraction ``phi`` of the population (by weight) the **gain** is
``g(phi) = (treated success rate - control success rate within the top phi) * phi``, incremental
successes per customer of the whole population when only the top ``phi`` is contacted (Hajek rates,
weights ``1/propensity``). ``g(1)`` is the average effect of contacting everyone; random targeting
gains ``phi * g(1)``. ``auuc`` is the area under ``g`` over ``phi`` in [0, 1] (trapezoids at every
distinct score); ``qini`` is the area between ``g`` and the random line, ``auuc - g(1)/2``: 0 for a
model no better than chance, positive when it ranks the responsive customers first.

Workspace layer
---------------
Training rows are the closed-window outcomes of past randomized contacts, read with
:mod:`panhuo.measure.outcomes`: a warehouse campaign's ``contact_history`` rows (``--campaign``) and a
playbook's assignments (``--playbook``; read through ``panhuo.runs.models.assignment_rows``).
Treated rows are the treatment of their arm (a campaign's benefit, a playbook's arm), holdout rows
the control. Global control rows are left out: that persistent group is drawn before any playbook,
and the logged treated/holdout propensities are conditional on not being in it (mixing them in would
double-count the control side of an IPS sum). Features are the stored tag snapshot at the **contact date** (a
playbook run: its as-of date, the tags it selected on; a campaign row: the last trading day before the
day it was sent, so nothing the customer did after the message leaks in), encoded like the
reactivation propensity model (:func:`panhuo.scores.propensity_data.encode_features`, the same
excluded tags). Tags and the status they need are computed when missing.

Time split: rows are ordered by contact date; the earliest ~70% of dates train, the later ones
evaluate (Qini/AUUC), per arm where both parts hold at least ``MIN_ROWS`` of the arm's rows and of
the controls (an arm missing from one part is stored with ``not_evaluated`` and the reason). When
every contact shares one date (a single campaign sent on one day), or no arm spans the cut (arms
change over time), no time split can evaluate anything: a seeded random 70/30 split is used instead
and the metadata says so (``split.kind = "random"`` with the reason). The stored model is then
refitted on every row.

Storage::

    <workspace>/models/uplift/<version>/model.json      # arms, learner, features, category levels,
                                                        # training window, sources, metrics, params
    <workspace>/models/uplift/<version>/<arm>.<part>.txt  # LightGBM text models (mu0, mu1, tau0, ...)

written under a hidden temporary folder, fsynced and renamed into place. :func:`score_uplift` scores
the customers whose status at the as-of date is one the training contacts had and stores the score
family ``uplift`` (:mod:`panhuo.scores.store`): ``uplift`` (the best arm's predicted uplift),
``uplift_arm`` (that arm) and ``uplift_<arm>`` per arm, so a playbook audience can say
``percentile(uplift) > 80`` (top 20% by predicted uplift).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from panhuo.errors import PanhuoError

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace

__all__ = [
    "CONTROL_GROUPS",
    "FAMILY",
    "LEARNERS",
    "MIN_ROWS",
    "ArmModel",
    "UpliftError",
    "UpliftModel",
    "UpliftSample",
    "UpliftScoreResult",
    "UpliftTrainResult",
    "arm_column",
    "build_sample",
    "fit_arm",
    "gain_curve",
    "list_uplift_models",
    "load_uplift_model",
    "score_uplift",
    "split_sample",
    "train_uplift",
    "uplift_metrics",
]

FAMILY = "uplift"
LEARNERS = ("t", "x")
CONTROL_GROUPS = ("holdout",)  # global control rows are outside a playbook's randomization (see build_sample)
MIN_ROWS = 20  # rows at least per group (treated of an arm, control) in each part of the split
EVAL_SHARE = 0.3
META_FILE = "model.json"
DEFAULT_ROUNDS = 150
DEFAULT_PARAMS: dict[str, Any] = {
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
}

Progress = Callable[[str, int, int], None]


class UpliftError(PanhuoError):
    """Uplift training or scoring that cannot be done: no randomized contacts, an empty group, too few rows."""


def _noop(_step: str, _done: int, _total: int) -> None:
    return None


# -- learners ---------------------------------------------------------------------------------
def _params(objective: str, n: int, seed: int, params: dict[str, Any] | None, threads: int | None) -> dict[str, Any]:
    p = {**DEFAULT_PARAMS, **(params or {})}
    p["objective"] = objective
    p["seed"] = seed
    # small samples: a leaf needs fewer rows, or nothing is learnt at all
    p["min_data_in_leaf"] = int(max(5, min(int(p["min_data_in_leaf"]), n // 20)))
    if threads is not None:
        p["num_threads"] = threads
    return p


def _booster(x: np.ndarray, y: np.ndarray, w: np.ndarray, objective: str, rounds: int, seed: int,
             params: dict[str, Any] | None, threads: int | None, names: list[str] | None) -> Any:
    import lightgbm as lgb

    ds = lgb.Dataset(x, label=y, weight=w, feature_name=names or "auto", free_raw_data=True,
                     params={"verbose": -1})
    return lgb.train(_params(objective, len(y), seed, params, threads), ds, num_boost_round=rounds)


@dataclass
class ArmModel:
    """The fitted uplift model of one arm against the control (T- or X-learner)."""

    arm: str
    learner: str
    mu0: Any  # lightgbm.Booster: P(success | x, control)
    mu1: Any  # lightgbm.Booster: P(success | x, treated with this arm)
    tau0: Any = None  # X-learner: regression of mu1(x) - y on the controls
    tau1: Any = None  # X-learner: regression of y - mu0(x) on the treated
    e_model: Any = None  # X-learner: P(treated | x) when the logged probability varies
    e_const: float | None = None  # X-learner: the constant P(treated) otherwise

    def outcome(self, x: np.ndarray, treated: bool) -> np.ndarray:
        """Predicted success probability with (``treated``) or without the contact."""
        return np.asarray((self.mu1 if treated else self.mu0).predict(x), dtype=np.float64)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted uplift ``P(success | treated) - P(success | control)`` per row of ``x``."""
        if self.learner == "t":
            return self.outcome(x, True) - self.outcome(x, False)
        e = self.e_model.predict(x) if self.e_model is not None else np.full(len(x), float(self.e_const))
        return e * np.asarray(self.tau0.predict(x)) + (1.0 - e) * np.asarray(self.tau1.predict(x))

    def parts(self) -> dict[str, Any]:
        out = {"mu0": self.mu0, "mu1": self.mu1, "tau0": self.tau0, "tau1": self.tau1, "e": self.e_model}
        return {k: v for k, v in out.items() if v is not None}


def fit_arm(
    learner: str,
    x: np.ndarray,
    treated: np.ndarray,
    y: np.ndarray,
    propensity: np.ndarray | None = None,
    *,
    arm: str = "treated",
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    threads: int | None = None,
    feature_names: list[str] | None = None,
) -> ArmModel:
    """Fit a T- (``"t"``) or X-learner (``"x"``) on one arm vs control.

    ``propensity`` is each row's logged probability of the group it was put in (None: all equal);
    rows are weighted ``1 / propensity``. ``y`` is the 0/1 success.
    """
    if learner not in LEARNERS:
        raise UpliftError(f"unknown learner {learner!r}: one of {', '.join(LEARNERS)} (T- or X-learner)")
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(treated, dtype=bool)
    yy = np.asarray(y, dtype=np.float64)
    p = np.ones(len(yy)) if propensity is None else np.asarray(propensity, dtype=np.float64)
    if not (len(x) == len(t) == len(yy) == len(p)):
        raise UpliftError("features, treatment, outcome and propensity differ in length")
    if np.any(~np.isfinite(p)) or np.any(p <= 0) or np.any(p > 1):
        raise UpliftError("every propensity must be in (0, 1]")
    for name, mask in (("treated", t), ("control", ~t)):
        if mask.sum() < MIN_ROWS:
            raise UpliftError(f"arm {arm!r}: {int(mask.sum())} {name} row(s), at least {MIN_ROWS} needed")
    w = 1.0 / p
    args = dict(rounds=rounds, params=params, threads=threads, names=feature_names)
    mu1 = _booster(x[t], yy[t], w[t], "binary", seed=seed, **args)
    mu0 = _booster(x[~t], yy[~t], w[~t], "binary", seed=seed + 1, **args)
    if learner == "t":
        return ArmModel(arm, "t", mu0, mu1)
    d1 = yy[t] - mu0.predict(x[t])
    d0 = mu1.predict(x[~t]) - yy[~t]
    tau1 = _booster(x[t], d1, w[t], "regression", seed=seed + 2, **args)
    tau0 = _booster(x[~t], d0, w[~t], "regression", seed=seed + 3, **args)
    # P(treated | x): for treated rows it is the logged propensity; for controls 1 - theirs
    e_row = np.where(t, p, 1.0 - p)
    if np.ptp(e_row) < 1e-9 and 0.0 < e_row[0] < 1.0:
        return ArmModel(arm, "x", mu0, mu1, tau0, tau1, None, float(e_row[0]))
    e_model = _booster(x, t.astype(np.float64), np.ones(len(t)), "binary", seed=seed + 4, **args)
    return ArmModel(arm, "x", mu0, mu1, tau0, tau1, e_model, None)


# -- evaluation -------------------------------------------------------------------------------
def gain_curve(
    score: np.ndarray, treated: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(phi, g(phi))`` at every distinct score, ``phi`` from 0 to 1 (see the module docstring)."""
    s = np.asarray(score, dtype=np.float64)
    t = np.asarray(treated, dtype=bool)
    yy = np.asarray(y, dtype=np.float64)
    w = np.ones(len(s)) if weight is None else np.asarray(weight, dtype=np.float64)
    if len(s) == 0:
        raise UpliftError("no rows to evaluate")
    order = np.argsort(-s, kind="stable")
    s, t, yy, w = s[order], t[order], yy[order], w[order]
    wt = np.cumsum(w * t)
    wc = np.cumsum(w * ~t)
    rt = np.cumsum(w * t * yy)
    rc = np.cumsum(w * ~t * yy)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # end of each group of tied scores
    wt, wc, rt, rc = wt[last], wc[last], rt[last], rc[last]
    total = wt[-1] + wc[-1]
    phi = (wt + wc) / total
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_t = np.where(wt > 0, rt / np.where(wt > 0, wt, 1), 0.0)
        rate_c = np.where(wc > 0, rc / np.where(wc > 0, wc, 1), 0.0)
    gain = np.where((wt > 0) & (wc > 0), (rate_t - rate_c) * phi, 0.0)
    return np.r_[0.0, phi], np.r_[0.0, gain]


def uplift_metrics(
    score: np.ndarray, treated: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None,
    at: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5),
) -> dict[str, Any]:
    """Qini coefficient, AUUC, the average effect and the gain at some fractions (see the module docstring)."""
    t = np.asarray(treated, dtype=bool)
    if t.all() or not t.any():
        raise UpliftError("evaluation needs both treated and control rows")
    phi, g = gain_curve(score, treated, y, weight)
    auuc = float(np.sum((phi[1:] - phi[:-1]) * (g[1:] + g[:-1]) / 2))
    ate = float(g[-1])
    return {
        "rows": int(len(t)),
        "treated": int(t.sum()),
        "control": int((~t).sum()),
        "ate": ate,
        "auuc": auuc,
        "auuc_random": ate / 2,
        "qini": auuc - ate / 2,
        "gain_at": {f"{f:g}": float(np.interp(f, phi, g)) for f in at},
    }


# -- the sample -------------------------------------------------------------------------------
@dataclass
class UpliftSample:
    """Training rows: one per contact, with its features, group, arm, logged propensity and success."""

    customer_id: np.ndarray  # object (str)
    contact_date: np.ndarray  # datetime64[D]
    feature_date: np.ndarray  # datetime64[D]
    treated: np.ndarray  # bool
    arm: np.ndarray  # object: the arm for treated rows, None for controls
    propensity: np.ndarray  # float: probability of the row's own group (and arm)
    y: np.ndarray  # float 0/1: the success event in the window
    x: np.ndarray  # float matrix
    feature_names: list[str]
    levels: dict[str, list[str]]
    statuses: list[str]  # account statuses the contacted customers had at the feature date
    sources: list[dict[str, Any]]  # per campaign/playbook: kind, id, event, window, rows used, rows left out
    source: np.ndarray | None = None  # object: "<kind>:<id>" of each row

    @property
    def rows(self) -> int:
        return len(self.y)

    def arms(self) -> list[str]:
        return sorted({a for a in self.arm[self.treated]})

    def take(self, idx: np.ndarray) -> UpliftSample:
        return UpliftSample(self.customer_id[idx], self.contact_date[idx], self.feature_date[idx], self.treated[idx],
                            self.arm[idx], self.propensity[idx], self.y[idx], self.x[idx], self.feature_names,
                            self.levels, self.statuses, self.sources,
                            None if self.source is None else self.source[idx])

    def arm_rows(self, arm: str) -> np.ndarray:
        """The rows of one arm's comparison: its treated rows and the controls of the same campaigns/playbooks.

        Randomization holds within a campaign or playbook only, so an arm is never compared with another
        source's holdout (another date, audience and window).
        """
        mine = self.arm == arm
        if self.source is None:
            return mine | ~self.treated
        return mine | (~self.treated & np.isin(self.source, np.unique(self.source[mine])))


def _outcomes(ws: Workspace, con: BaseBackend, campaigns: list[str], playbooks: list[str],
              window_days: int, event: str) -> list[tuple[Any, str]]:
    from panhuo.measure.outcomes import campaign_outcomes, playbook_outcomes

    got = []
    for cid in campaigns:
        got.append((campaign_outcomes(ws, con, cid, window_days=window_days, event=event), "campaign"))
    for pid in playbooks:
        got.append((playbook_outcomes(ws, con, pid), "playbook"))
    return got


def build_sample(
    ws: Workspace,
    con: BaseBackend,
    *,
    campaigns: list[str] | tuple[str, ...] = (),
    playbooks: list[str] | tuple[str, ...] = (),
    window_days: int = 10,
    event: str = "trade",
    progress: Progress | None = None,
    levels: dict[str, list[str]] | None = None,
) -> UpliftSample:
    """The training rows of some campaigns and playbooks, with features from the tags at each contact date.

    Rows whose window is still open or whose customer is missing from the load are left out (counted in
    ``sources``). ``window_days``/``event`` apply to campaigns; a playbook uses its own success definition.

    Raises
    ------
    UpliftError
        Nothing named, no closed row, or no control row at all (not a randomized contact).
    MeasureError
        Unknown campaign or playbook, a playbook without finished runs.
    """
    from panhuo.calendar.service import calendar_for
    from panhuo.scores.propensity_data import encode_features, ensure_tags
    from panhuo.tags.store import load_tags

    note = progress or _noop
    if not campaigns and not playbooks:
        raise UpliftError("name the past contacts to learn from: --campaign ID (contact_history) and/or --playbook ID")
    note("outcomes", 0, 1)
    cal = calendar_for(ws)
    parts: list[dict[str, Any]] = []
    sources: list[dict[str, Any]] = []
    for out, kind in _outcomes(ws, con, list(campaigns), list(playbooks), window_days, event):
        t = out.rows.to_pydict()
        keep = [i for i in range(out.rows.num_rows) if t["closed"][i] and t["in_data"][i]]
        open_rows = sum(1 for c in t["closed"] if not c)
        missing = sum(1 for c in t["in_data"] if not c)
        gc = sum(1 for i in keep if t["grp"][i] == "global_control")
        sources.append({"kind": kind, "id": out.id, "event": out.event, "window_trading_days": out.window_days,
                        "rows": len(keep) - gc, "open_window_rows": open_rows, "missing_customers": missing,
                        "global_control_left_out": gc})
        if not keep and open_rows:
            left = max((r.get("days_remaining") or 0) for r in out.runs)
            raise UpliftError(f"{kind} {out.id!r}: no window is closed yet ({left} trading day(s) remain): "
                              "nothing to learn from")
        for i in keep:
            day = t["as_of"][i]
            fday = day if kind == "playbook" else cal.previous_trading_day(day)
            parts.append({"customer_id": t["customer_id"][i], "contact_date": day, "feature_date": fday,
                          "grp": t["grp"][i], "arm": t["arm"][i], "propensity": t["propensity"][i],
                          "y": 1.0 if t["success"][i] else 0.0, "source": f"{kind}:{out.id}"})
    if not parts:
        raise UpliftError("no contact with a closed window and a customer in the data: nothing to learn from")
    treated = np.array([p["grp"] == "treated" for p in parts])
    control = np.array([p["grp"] in CONTROL_GROUPS for p in parts])
    names = ", ".join(f"{s['kind']} {s['id']}" for s in sources)
    if not control.any():
        raise UpliftError(f"{names}: no holdout rows: these contacts were not randomized, so who "
                          "changed because of the contact cannot be learnt")
    if not treated.any():
        raise UpliftError(f"{names}: no treated rows: nobody was contacted")
    parts = [p for p, k in zip(parts, treated | control, strict=True) if k]

    fdays = sorted({p["feature_date"] for p in parts})
    tables: dict[dt.date, pa.Table] = {}
    for i, day in enumerate(fdays):
        note(f"tags {day.isoformat()}", i, len(fdays))
        ensure_tags(ws, con, day)
        tag = load_tags(ws, con, day)
        got_day = tag.select("as_of").limit(1).to_pyarrow().column(0).to_pylist()
        if got_day and got_day[0] != day:
            raise UpliftError(f"the tag snapshot of {day.isoformat()} is missing (found {got_day[0]})")
        ids = sorted({p["customer_id"] for p in parts if p["feature_date"] == day})
        tbl = tag.drop("as_of").to_pyarrow()
        import pyarrow.compute as pc

        tables[day] = tbl.filter(pc.is_in(tbl.column("customer_id"), value_set=pa.array(ids, pa.string())))
    note("features", len(fdays), len(fdays))
    if levels is None:
        _, _, levels = encode_features(pa.concat_tables(list(tables.values())), fdays[0])
    rows_x: list[np.ndarray] = []
    kept: list[dict[str, Any]] = []
    statuses: set[str] = set()
    feature_names: list[str] = []
    for day in fdays:
        tbl = tables[day]
        pos = {c: i for i, c in enumerate(tbl.column("customer_id").to_pylist())}
        mine = [p for p in parts if p["feature_date"] == day and p["customer_id"] in pos]
        if not mine:
            continue
        statuses.update(s for s in tbl.column("status").to_pylist() if s is not None)
        x, feature_names, _ = encode_features(tbl, day, levels)
        rows_x.append(x[[pos[p["customer_id"]] for p in mine]])
        kept.extend(mine)
    if not kept:
        raise UpliftError("none of the contacted customers has tags at the contact date")
    prop = np.array([np.nan if p["propensity"] is None else p["propensity"] for p in kept], dtype=np.float64)
    if np.any(~np.isfinite(prop)) or np.any(prop <= 0) or np.any(prop > 1):
        raise UpliftError("some contact has a missing or impossible propensity (outside (0, 1])")
    return UpliftSample(
        customer_id=np.array([p["customer_id"] for p in kept], dtype=object),
        contact_date=np.array([p["contact_date"] for p in kept], dtype="datetime64[D]"),
        feature_date=np.array([p["feature_date"] for p in kept], dtype="datetime64[D]"),
        treated=np.array([p["grp"] == "treated" for p in kept]),
        arm=np.array([(p["arm"] or "treated") if p["grp"] == "treated" else None for p in kept], dtype=object),
        propensity=prop,
        y=np.array([p["y"] for p in kept]),
        x=np.vstack(rows_x),
        feature_names=feature_names,
        levels=levels,
        statuses=sorted(statuses),
        sources=sources,
        source=np.array([p["source"] for p in kept], dtype=object),
    )


def split_sample(sample: UpliftSample, eval_share: float = EVAL_SHARE, seed: int = 0,
                 random_reason: str | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Train/evaluation row indices: by contact date (earlier train, later evaluate), random when one date.

    The cut is the first contact date at which at least ``1 - eval_share`` of the rows are earlier.
    ``random_reason``: split at random anyway, for this reason.
    """
    dates = sample.contact_date
    uniq = np.unique(dates)
    if len(uniq) >= 2 and random_reason is None:
        share = np.array([(dates < d).mean() for d in uniq])
        ok = [i for i in range(1, len(uniq)) if share[i] >= 1 - eval_share]
        cut = uniq[ok[0]] if ok else uniq[-1]
        train = np.flatnonzero(dates < cut)
        test = np.flatnonzero(dates >= cut)
        info = {"kind": "time", "train_until": str(dates[train].max()), "evaluate_from": str(cut),
                "evaluate_until": str(dates.max())}
    else:
        rng = np.random.default_rng(seed)
        is_test = rng.random(len(dates)) < eval_share
        train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
        reason = random_reason or f"every contact was on {uniq[0]}: no later contacts to evaluate on"
        info = {"kind": "random", "reason": reason, "eval_share": eval_share, "seed": seed}
    info.update({"train_rows": int(len(train)), "evaluate_rows": int(len(test))})
    return train, test, info


# -- the stored model -------------------------------------------------------------------------
def arm_column(arm: str) -> str:
    """The score column of an arm: ``uplift_`` + the arm name in lower case, other characters as ``_``."""
    return "uplift_" + re.sub(r"[^a-z0-9]+", "_", arm.lower()).strip("_")


@dataclass
class UpliftModel:
    """A trained uplift model: one :class:`ArmModel` per arm, and the metadata stored with it."""

    arms: dict[str, ArmModel]
    meta: dict[str, Any]

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return {a: m.predict(x) for a, m in self.arms.items()}


def _models_root(ws: Workspace) -> Path:
    from panhuo.scores.store import models_dir

    return models_dir(ws) / FAMILY


def _part_file(arm_index: int, part: str) -> str:
    return f"arm{arm_index}.{part}.txt"


def _save(ws: Workspace, version: str, model: UpliftModel) -> Path:
    from panhuo._io import fsync_dir, fsync_tree

    root = _models_root(ws)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{version}.{secrets.token_hex(4)}.tmp"
    final = root / version
    try:
        tmp.mkdir()
        for i, (_arm, m) in enumerate(model.arms.items()):
            for part, booster in m.parts().items():
                (tmp / _part_file(i, part)).write_text(booster.model_to_string(), encoding="utf-8")
        (tmp / META_FILE).write_text(json.dumps(model.meta, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                                     encoding="utf-8")
        fsync_tree(tmp)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(root)
    return final


def list_uplift_models(ws: Workspace) -> list[dict[str, Any]]:
    """The metadata of every stored uplift model, oldest first (interrupted saves are skipped)."""
    from panhuo.errors import WarehouseError

    root = _models_root(ws)
    out = []
    for p in sorted(root.glob(f"*/{META_FILE}")) if root.is_dir() else []:
        if p.parent.name.startswith("."):
            continue
        try:
            out.append(json.loads(p.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise WarehouseError(f"{p}: damaged uplift model metadata: {exc}") from exc
    return sorted(out, key=lambda m: (m["trained_at"], m["version"]))


def load_uplift_model(ws: Workspace, version: str | None = None) -> UpliftModel:
    """A stored model: ``version``, else the newest. UpliftError when there is none."""
    import lightgbm as lgb

    models = list_uplift_models(ws)
    if version is not None:
        meta = next((m for m in models if m["version"] == version), None)
        if meta is None:
            raise UpliftError(f"no uplift model version {version!r} (see `panhuo uplift list`)")
    elif not models:
        raise UpliftError("no uplift model trained yet: run `panhuo uplift train --campaign ID` first")
    else:
        meta = models[-1]
    folder = _models_root(ws) / meta["version"]
    arms: dict[str, ArmModel] = {}
    for i, arm in enumerate(meta["arms"]):
        def part(name: str, i: int = i) -> Any:
            path = folder / _part_file(i, name)
            return lgb.Booster(model_str=path.read_text(encoding="utf-8")) if path.exists() else None

        m = ArmModel(arm, meta["learner"], part("mu0"), part("mu1"), part("tau0"), part("tau1"), part("e"),
                     meta.get("e_const", {}).get(arm))
        if m.mu0 is None or m.mu1 is None or (m.learner == "x" and (m.tau0 is None or m.tau1 is None)):
            raise UpliftError(f"{folder}: the model files of arm {arm!r} are incomplete")
        arms[arm] = m
    return UpliftModel(arms, meta)


@dataclass
class UpliftTrainResult:
    """A trained and stored uplift model and its evaluation on the later contacts."""

    version: str
    path: Path
    learner: str
    arms: list[str]
    rows: int
    split: dict[str, Any]
    metrics: dict[str, dict[str, Any]]  # per arm: uplift_metrics on the evaluation rows
    seconds: float
    model: UpliftModel = field(repr=False)


def _fit_all(sample: UpliftSample, arms: list[str], learner: str, rounds: int, seed: int, threads: int | None,
             note: Progress, label: str, step0: int, total: int) -> dict[str, ArmModel]:
    out: dict[str, ArmModel] = {}
    for k, arm in enumerate(arms):
        note(f"{label}: arm {arm}", step0 + k, total)
        rows = sample.arm_rows(arm)
        out[arm] = fit_arm(learner, sample.x[rows], sample.treated[rows], sample.y[rows], sample.propensity[rows],
                           arm=arm, rounds=rounds, seed=seed, threads=threads, feature_names=sample.feature_names)
    return out


def _too_few(sample: UpliftSample, arm: str) -> str | None:
    """Why ``arm`` cannot be fitted/evaluated on ``sample`` (None: it can)."""
    n_control = int((~sample.treated & sample.arm_rows(arm)).sum())
    n_arm = int((sample.arm == arm).sum())
    if n_control < MIN_ROWS or n_arm < MIN_ROWS:
        return f"{n_arm} treated and {n_control} control row(s), at least {MIN_ROWS} of each needed"
    return None


def _check_groups(sample: UpliftSample, part: str = "") -> None:
    """Enough rows to fit every arm: UpliftError naming the group that is empty or too small."""
    what = f"the {part} contacts" if part else "the contacts"
    n_control = int((~sample.treated).sum())
    if n_control == 0:
        raise UpliftError(f"{what} have no holdout/control row: one group is empty")
    if not sample.treated.any():
        raise UpliftError(f"{what} have no treated row: one group is empty")
    if n_control < MIN_ROWS:
        raise UpliftError(f"{what} have {n_control} control row(s): too few rows, at least {MIN_ROWS} needed")
    for arm in sample.arms():
        why = _too_few(sample, arm)
        if why is not None:
            raise UpliftError(f"{what} of arm {arm!r} have {why}: too few rows")


def train_uplift(
    ws: Workspace,
    con: BaseBackend,
    *,
    campaigns: list[str] | tuple[str, ...] = (),
    playbooks: list[str] | tuple[str, ...] = (),
    learner: str = "x",
    window_days: int = 10,
    event: str = "trade",
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
    threads: int | None = None,
    progress: Progress | None = None,
) -> UpliftTrainResult:
    """Build the sample, evaluate on the time split, refit on every row and store a new model version.

    ``threads``: LightGBM threads (None: every core; 1 is much faster on a machine other work keeps busy,
    where OpenMP threads wait for each other).

    Raises
    ------
    UpliftError
        See :func:`build_sample`; and too few rows or an empty group. An arm without enough rows in
        either part of the split is stored unevaluated (``metrics[arm]["not_evaluated"]`` says why); when
        no arm can be evaluated, the contacts are too few to train on.
    """
    if learner not in LEARNERS:
        raise UpliftError(f"unknown learner {learner!r}: one of {', '.join(LEARNERS)} (T- or X-learner)")
    t0 = time.perf_counter()
    note = progress or _noop
    sample = build_sample(ws, con, campaigns=campaigns, playbooks=playbooks, window_days=window_days, event=event,
                          progress=note)
    _check_groups(sample, "")
    arms = sample.arms()
    train_idx, eval_idx, split = split_sample(sample, seed=seed)
    train, test = sample.take(train_idx), sample.take(eval_idx)
    # an arm is evaluated when both parts of the split hold enough of its rows and of the controls
    # (arms change over time: an arm only in the later contacts cannot be evaluated on them)
    why = {a: _too_few(train, a) or _too_few(test, a) for a in arms}
    evaluable = [a for a in arms if why[a] is None]
    if not evaluable and split["kind"] == "time":
        reason = (f"no arm has enough contacts both before and from {split['evaluate_from']}; arms change over "
                  "time")
        train_idx, eval_idx, split = split_sample(sample, seed=seed, random_reason=reason)
        train, test = sample.take(train_idx), sample.take(eval_idx)
        why = {a: _too_few(train, a) or _too_few(test, a) for a in arms}
        evaluable = [a for a in arms if why[a] is None]
    total = len(evaluable) + len(arms) + 1
    first = _fit_all(train, evaluable, learner, rounds, seed, threads, note, "fit on earlier contacts", 0, total)
    metrics: dict[str, dict[str, Any]] = {}
    for arm in arms:
        if arm not in first:
            where = "earlier" if _too_few(train, arm) else "later"
            metrics[arm] = {"not_evaluated": f"the {where} contacts have {why[arm]}"}
            continue
        rows = test.arm_rows(arm)
        metrics[arm] = uplift_metrics(first[arm].predict(test.x[rows]), test.treated[rows], test.y[rows],
                                      1.0 / test.propensity[rows])
    if not evaluable:
        raise UpliftError("too few rows to evaluate any arm: "
                          + "; ".join(f"arm {a!r}: {metrics[a]['not_evaluated']}" for a in arms))
    final = _fit_all(sample, arms, learner, rounds, seed, threads, note, "refit on every contact", len(evaluable),
                     total)
    note("store", total - 1, total)
    cd = sample.contact_date
    meta = {
        "family": FAMILY,
        "version": f"{FAMILY}-{dt.date.today().isoformat()}-{secrets.token_hex(3)}",
        "trained_at": dt.datetime.now().isoformat(timespec="seconds"),
        "learner": learner,
        "model": f"{learner.upper()}-learner (LightGBM {_lgb_version()})",
        "arms": arms,
        "arm_columns": {a: arm_column(a) for a in arms},
        "features": sample.feature_names,
        "category_levels": sample.levels,
        "statuses": sample.statuses,
        "sources": sample.sources,
        "training_window": {"first_contact": str(cd.min()), "last_contact": str(cd.max()),
                            "feature_dates": sorted({str(d) for d in sample.feature_date})},
        "rows": {"total": sample.rows, "treated": int(sample.treated.sum()), "control": int((~sample.treated).sum()),
                 **{f"arm:{a}": int((sample.arm == a).sum()) for a in arms}},
        "split": split,
        "metrics": metrics,
        "params": {**DEFAULT_PARAMS, "rounds": rounds, "seed": seed},
        "e_const": {a: m.e_const for a, m in final.items() if m.e_const is not None},
        "propensity_weighted": bool(np.ptp(sample.propensity) > 1e-9),
    }
    if len({a for a in (arm_column(x) for x in arms)}) != len(arms):
        raise UpliftError(f"arms {arms} give the same score column name; rename an arm")
    model = UpliftModel(final, meta)
    path = _save(ws, meta["version"], model)
    note("stored", total, total)
    return UpliftTrainResult(meta["version"], path, learner, arms, sample.rows, split, metrics,
                             round(time.perf_counter() - t0, 3), model)


def _lgb_version() -> str:
    import lightgbm as lgb

    return str(lgb.__version__)


# -- scoring ----------------------------------------------------------------------------------
@dataclass
class UpliftScoreResult:
    """A stored ``uplift`` score snapshot."""

    as_of: dt.date
    version: str
    arms: list[str]
    columns: dict[str, str]  # arm -> score column
    customers: int  # rows stored (every customer of the tag snapshot)
    scored: int  # customers in the model's population (non-null scores)
    path: Path
    scores: pa.Table = field(repr=False)  # customer_id, uplift, uplift_arm, one column per arm
    table: ir.Table | None = field(default=None, repr=False)


def score_uplift(
    ws: Workspace, con: BaseBackend, as_of: dt.date, *, version: str | None = None, progress: Progress | None = None
) -> UpliftScoreResult:
    """Score every customer whose status at ``as_of`` the model was trained on; store the ``uplift`` snapshot.

    Customers of other statuses are stored with null scores (the model knows nothing about them).
    """
    from panhuo.scores.propensity_data import encode_features, ensure_tags
    from panhuo.scores.store import ScoreStore, load_scores
    from panhuo.tags.store import load_tags
    from panhuo.warehouse import Warehouse

    note = progress or _noop
    note("model", 0, 3)
    model = load_uplift_model(ws, version)
    meta = model.meta
    first = dt.date.fromisoformat(meta["training_window"]["first_contact"])
    if as_of < first:
        raise UpliftError(f"--as-of {as_of.isoformat()} is before the model's first training contact "
                          f"({first.isoformat()}): it would score the past with the future")
    note(f"tags {as_of.isoformat()}", 1, 3)
    ensure_tags(ws, con, as_of)
    tags = load_tags(ws, con, as_of).drop("as_of").to_pyarrow()
    statuses = tags.column("status").to_pylist()
    inside = np.array([s in meta["statuses"] for s in statuses], dtype=bool)
    note("score customers", 2, 3)
    x, names, _ = encode_features(tags, as_of, meta["category_levels"])
    if names != meta["features"]:
        raise UpliftError(f"model {meta['version']}: its features differ from the tags of today's catalogue; "
                          "train it again")
    arms = meta["arms"]
    cols = {a: meta["arm_columns"][a] for a in arms}
    preds = {a: np.full(len(inside), np.nan) for a in arms}
    if inside.any():
        for a, m in model.arms.items():
            preds[a][inside] = m.predict(x[inside])
    stack = np.column_stack([preds[a] for a in arms])
    best_i = np.where(inside, np.argmax(np.where(np.isnan(stack), -np.inf, stack), axis=1), -1)
    best = np.where(inside, stack[np.arange(len(stack)), np.maximum(best_i, 0)], np.nan)
    data: dict[str, Any] = {
        "customer_id": tags.column("customer_id"),
        "uplift": pa.array(best, pa.float64(), mask=~inside),
        "uplift_arm": pa.array([arms[i] if i >= 0 else None for i in best_i], pa.string()),
    }
    for a in arms:
        data[cols[a]] = pa.array(preds[a], pa.float64(), mask=~inside)
    table = pa.table(data).sort_by("customer_id")
    schema = table.schema
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    record = {"model_version": meta["version"], "model": meta["model"], "arms": arms, "arm_columns": cols,
              "population_statuses": meta["statuses"], "scored_customers": int(inside.sum()),
              "load_id": wh.current_id, "metrics": meta["metrics"]}
    path, rows = ScoreStore.of(ws, FAMILY).write(as_of, table.to_batches(), schema, record)
    note("stored", 3, 3)
    return UpliftScoreResult(as_of, meta["version"], arms, cols, rows, int(inside.sum()), path, table,
                             load_scores(ws, con, as_of))
