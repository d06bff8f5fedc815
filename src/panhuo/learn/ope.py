"""Off-policy evaluation (离线策略评估): the value a candidate targeting policy would have had, from logged contacts.

Every contact panhuo (or a past campaign) logged carries the probability of the action actually taken
(treated with an arm, or held out): ``propensity`` in ``assignments`` and ``contact_history``. That is
enough to estimate, without running it, what the success rate would have been had a *different*
policy decided who is contacted with which arm, e.g. "contact when the predicted uplift is positive"
or "contact the top 20% by predicted uplift".

Notation, per logged row ``i``: outcome ``y_i`` (0/1 success, or commission), logged action ``a_i``
with logged probability ``p_i``, ``m_i = pi(a_i | x_i)`` the probability that the candidate policy
takes the logged action (1 or 0 for a deterministic policy), and for the doubly robust estimator an
outcome model ``q(x, a)`` (predicted success with action ``a``): ``q_logged_i = q(x_i, a_i)`` and
``q_policy_i = sum_a pi(a | x_i) q(x_i, a)``. Weights ``w_i = m_i / p_i``.

* **IPS**: ``V = mean(w_i y_i)``; unbiased when the propensities are right.
* **Self-normalised IPS**: ``V = sum(w_i y_i) / sum(w_i)``; a little biased, often much less variable.
* **Doubly robust**: ``V = mean(q_policy_i + w_i (y_i - q_logged_i))``; unbiased when the propensities
  are right, whatever the outcome model, and lower variance when the model is good.

The 95% CI is ``V +- 1.96 se``: for IPS and DR ``se`` is the standard deviation of the per-row terms
over ``sqrt(n)``; for SNIPS the delta-method ``sqrt(sum(w^2 (y - V)^2)) / sum(w)``. A value is per
customer of the logged population (a success rate for a 0/1 outcome); multiply by a population size
for totals. :class:`~panhuo.measure.estimate.Estimate` carries each result; when no logged action
matches the policy at all, IPS/SNIPS are not estimable (no number is made up).

Policies over predicted uplift (:func:`parse_policy`): ``none`` (contact nobody), ``all`` or
``all:<arm>`` (everyone, with the best arm or the named one), ``uplift>T`` (the best arm when its
predicted uplift exceeds ``T``, e.g. ``uplift>0``), ``top:P`` (the best arm for the top ``P`` percent
by the best arm's predicted uplift).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from panhuo.errors import PanhuoError
from panhuo.measure.estimate import Z95, Estimate

__all__ = [
    "CONTROL",
    "METHODS",
    "OPEError",
    "Policy",
    "doubly_robust",
    "evaluate_policy",
    "ips",
    "parse_policy",
    "snips",
]

CONTROL = -1  # the action "not contacted" (held out) in action index arrays
METHODS = ("ips", "snips", "dr")


class OPEError(PanhuoError):
    """An off-policy evaluation that cannot be made: a wrong policy, impossible propensities, mismatched arrays."""


def _check(y: object, match: object, propensity: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ya = np.asarray(y, dtype=np.float64)
    ma = np.asarray(match, dtype=np.float64)
    pa = np.asarray(propensity, dtype=np.float64)
    if not (ya.shape == ma.shape == pa.shape) or ya.ndim != 1:
        raise OPEError(f"outcomes {ya.shape}, policy probabilities {ma.shape} and propensities {pa.shape} "
                       "must be 1-d arrays of the same length")
    if ya.size < 2:
        raise OPEError(f"{ya.size} logged row(s): at least 2 are needed")
    if np.any(~np.isfinite(pa)) or np.any(pa <= 0) or np.any(pa > 1):
        raise OPEError("every logged propensity must be in (0, 1]: a row logged with probability 0 cannot be")
    if np.any(~np.isfinite(ma)) or np.any(ma < 0) or np.any(ma > 1):
        raise OPEError("the policy's probabilities of the logged actions must be in [0, 1]")
    if np.any(~np.isfinite(ya)):
        raise OPEError("outcomes must be finite numbers (leave customers without outcomes out first)")
    return ya, ma, pa


def _mean_ci(terms: np.ndarray) -> Estimate:
    v = float(terms.mean())
    se = float(terms.std(ddof=1) / np.sqrt(terms.size))
    return Estimate(v, v - Z95 * se, v + Z95 * se, se)


def ips(y: object, match: object, propensity: object) -> Estimate:
    """Inverse propensity scoring: ``mean(m/p * y)`` with its 95% CI."""
    ya, ma, pa = _check(y, match, propensity)
    if not np.any(ma > 0):
        return Estimate.not_estimable("no logged action is one the policy would take")
    return _mean_ci(ma / pa * ya)


def snips(y: object, match: object, propensity: object) -> Estimate:
    """Self-normalised IPS: ``sum(w y) / sum(w)``, ``w = m/p``, with its delta-method 95% CI."""
    ya, ma, pa = _check(y, match, propensity)
    w = ma / pa
    sw = float(w.sum())
    if sw <= 0:
        return Estimate.not_estimable("no logged action is one the policy would take")
    v = float((w * ya).sum() / sw)
    n = int((w > 0).sum())
    if n < 2:
        return Estimate.not_estimable("fewer than 2 logged actions are ones the policy would take")
    se = float(np.sqrt((w**2 * (ya - v) ** 2).sum()) / sw * np.sqrt(n / (n - 1)))
    return Estimate(v, v - Z95 * se, v + Z95 * se, se)


def doubly_robust(y: object, match: object, propensity: object, q_logged: object, q_policy: object) -> Estimate:
    """Doubly robust: ``mean(q_policy + m/p (y - q_logged))`` with its 95% CI."""
    ya, ma, pa = _check(y, match, propensity)
    ql = np.asarray(q_logged, dtype=np.float64)
    qp = np.asarray(q_policy, dtype=np.float64)
    if ql.shape != ya.shape or qp.shape != ya.shape:
        raise OPEError("the outcome model's predictions must have one value per logged row")
    if np.any(~np.isfinite(ql)) or np.any(~np.isfinite(qp)):
        raise OPEError("the outcome model's predictions must be finite")
    return _mean_ci(qp + ma / pa * (ya - ql))


@dataclass(frozen=True)
class Policy:
    """A deterministic targeting policy over predicted uplift (see the module docstring)."""

    kind: str  # none | all | threshold | top
    value: float | None = None  # threshold T or percentage P
    arm: str | None = None  # all:<arm>

    @property
    def text(self) -> str:
        if self.kind == "threshold":
            return f"uplift>{self.value:g}"
        if self.kind == "top":
            return f"top:{self.value:g}"
        if self.kind == "all" and self.arm:
            return f"all:{self.arm}"
        return self.kind

    def actions(self, uplift: np.ndarray, arms: list[str]) -> np.ndarray:
        """The action per row (an arm index, or :data:`CONTROL`) from predicted uplift (rows x arms)."""
        u = np.asarray(uplift, dtype=np.float64)
        if u.ndim == 1:
            u = u[:, None]
        if u.shape[1] != len(arms):
            raise OPEError(f"{u.shape[1]} uplift column(s) for {len(arms)} arm(s)")
        n = u.shape[0]
        if self.kind == "none":
            return np.full(n, CONTROL)
        if self.kind == "all" and self.arm is not None:
            if self.arm not in arms:
                raise OPEError(f"policy {self.text!r}: unknown arm {self.arm!r} (arms: {', '.join(arms)})")
            return np.full(n, arms.index(self.arm))
        best = np.argmax(u, axis=1)
        top = u[np.arange(n), best]
        if self.kind == "all":
            return best
        if self.kind == "threshold":
            return np.where(top > float(self.value), best, CONTROL)  # type: ignore[arg-type]
        k = int(round(n * float(self.value) / 100.0))  # type: ignore[arg-type]
        chosen = np.zeros(n, dtype=bool)
        chosen[np.argsort(-top, kind="stable")[:k]] = True
        return np.where(chosen, best, CONTROL)


_THRESHOLD = re.compile(r"^uplift\s*>\s*(-?[0-9]+(?:\.[0-9]+)?)$")
_TOP = re.compile(r"^top\s*:\s*([0-9]+(?:\.[0-9]+)?)%?$")


def parse_policy(text: str) -> Policy:
    """``none``, ``all``, ``all:<arm>``, ``uplift>T`` or ``top:P``; OPEError otherwise."""
    s = text.strip()
    if s.lower() == "none":
        return Policy("none")
    if s.lower() == "all":
        return Policy("all")
    if s.lower().startswith("all:") and s[4:].strip():
        return Policy("all", arm=s[4:].strip())
    if m := _THRESHOLD.match(s):
        return Policy("threshold", float(m.group(1)))
    if m := _TOP.match(s):
        p = float(m.group(1))
        if not 0 < p <= 100:
            raise OPEError(f"policy {text!r}: the percentage must be in (0, 100]")
        return Policy("top", p)
    raise OPEError(f"unknown policy {text!r}: write none, all, all:<arm>, uplift>T (e.g. uplift>0) or top:P "
                   "(e.g. top:20)")


def evaluate_policy(
    y: object,
    logged: object,
    propensity: object,
    policy: object,
    q: object | None = None,
) -> dict[str, Any]:
    """IPS, SNIPS and (with ``q``) DR values of a deterministic policy from logged actions.

    Parameters
    ----------
    y
        Outcome per logged row.
    logged
        The logged action per row: an arm index ``0..K-1`` or :data:`CONTROL`.
    propensity
        The logged probability of that action.
    policy
        The candidate policy's action per row (same coding).
    q
        Optional outcome model, rows x (K + 1): column 0 the predicted outcome without contact, column
        ``k + 1`` with arm ``k``. Gives the doubly robust estimate.

    Returns ``{"ips", "snips", "dr" (None without q): Estimate, "n", "matched", "share_contacted"}``.
    """
    la = np.asarray(logged, dtype=np.int64)
    pa = np.asarray(policy, dtype=np.int64)
    if la.shape != pa.shape:
        raise OPEError("logged and policy actions differ in length")
    match = (la == pa).astype(np.float64)
    out: dict[str, Any] = {
        "n": int(la.size), "matched": int(match.sum()), "share_contacted": float((pa != CONTROL).mean()),
        "ips": ips(y, match, propensity), "snips": snips(y, match, propensity), "dr": None,
    }
    if q is not None:
        qa = np.asarray(q, dtype=np.float64)
        if qa.ndim != 2 or qa.shape[0] != la.size:
            raise OPEError("q must be rows x (arms + 1): no contact first, then one column per arm")
        if la.max(initial=CONTROL) + 1 >= qa.shape[1] or pa.max(initial=CONTROL) + 1 >= qa.shape[1]:
            raise OPEError("an action refers to an arm q has no column for")
        rows = np.arange(la.size)
        out["dr"] = doubly_robust(y, match, propensity, qa[rows, la + 1], qa[rows, pa + 1])
    return out


def evaluate_logged(
    ws: Any,
    con: Any,
    policy_text: str,
    *,
    campaigns: list[str] | tuple[str, ...] = (),
    playbooks: list[str] | tuple[str, ...] = (),
    version: str | None = None,
    window_days: int = 10,
    event: str = "trade",
    progress: Any = None,
) -> dict[str, Any]:
    """A stored uplift model's policy evaluated on the logged contacts of some campaigns and playbooks.

    The policy ranks the logged customers by the model's predicted uplift (features: their tags at the
    contact date, as in training), choosing only among the model's arms these contacts used (an arm
    never logged has no support: nothing can say what it would have done); the outcome model of the DR
    estimate is the model's ``mu0``/``mu1``.
    Also gives the same three estimates for contacting nobody and the on-policy value of the logged
    policy (the plain mean outcome), so the candidate is read against both. ``in_sample`` is True when
    some evaluated campaign or playbook was among the model's training sources (optimistic).
    """
    from panhuo.learn.uplift import build_sample, load_uplift_model

    policy = parse_policy(policy_text)
    model = load_uplift_model(ws, version)
    meta = model.meta
    arms: list[str] = list(meta["arms"])
    sample = build_sample(ws, con, campaigns=campaigns, playbooks=playbooks, window_days=window_days, event=event,
                          progress=progress, levels=meta["category_levels"])
    if sample.feature_names != meta["features"]:
        raise OPEError(f"model {meta['version']}: its features differ from the tags of today's catalogue; train it again")
    logged_arms = set(sample.arm[sample.treated])
    usable = [a for a in arms if a in logged_arms]
    if not usable:
        raise OPEError(f"model {meta['version']}: none of its arms ({', '.join(arms)}) was used in these contacts "
                       f"(they used {', '.join(sorted(logged_arms)) or 'none'}): a policy can only be evaluated on "
                       "actions that were logged")
    if policy.arm is not None and policy.arm not in logged_arms:
        raise OPEError(f"policy {policy.text!r}: arm {policy.arm!r} was never used in these contacts")
    # an arm never logged here has no support: the policy may only choose among the logged ones
    pred = np.column_stack([model.arms[a].predict(sample.x) if a in logged_arms else np.full(sample.rows, -np.inf)
                            for a in arms])
    unknown = len(arms)  # a logged arm the model does not know: the policy never takes it
    logged = np.array([CONTROL if not t else (arms.index(a) if a in arms else unknown)
                       for t, a in zip(sample.treated, sample.arm, strict=True)], dtype=np.int64)
    q = np.column_stack([np.mean([model.arms[a].outcome(sample.x, False) for a in arms], axis=0),
                         *[model.arms[a].outcome(sample.x, True) for a in arms], np.zeros(sample.rows)])
    candidate = policy.actions(pred, arms)
    nobody = Policy("none").actions(pred, arms)

    def res(actions: np.ndarray) -> dict[str, Any]:
        r = evaluate_policy(sample.y, logged, sample.propensity, actions, q)
        return {"n": r["n"], "matched": r["matched"], "share_contacted": r["share_contacted"],
                **{m: r[m].as_dict() | {"reason": r[m].reason} for m in METHODS}}

    trained_on = {(s["kind"], s["id"]) for s in meta.get("sources", [])}
    evaluated = {(s["kind"], s["id"]) for s in sample.sources}
    return {
        "format": "panhuo.ope/1",
        "model_version": meta["version"],
        "policy": policy.text,
        "arms": arms,
        "sources": sample.sources,
        "rows": sample.rows,
        "in_sample": bool(trained_on & evaluated),
        "policy_arms": usable,  # the model's arms the policy may choose here (those the contacts used)
        "logged_value": float(sample.y.mean()),
        "candidate": res(candidate),
        "contact_nobody": res(nobody),
    }
