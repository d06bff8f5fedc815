"""Estimators of a campaign's increment over its holdout, with 95% confidence intervals (pure numpy).

Every function takes per-customer arrays of one comparison (treated vs holdout of one playbook/campaign,
arm and tier) and returns an :class:`Estimate`; nothing here reads files or the warehouse.

* Group means are Hajek (normalised inverse-propensity-weighted) means: ``sum(w*y) / sum(w)`` with
  ``w = 1/propensity``; with equal propensities this is the plain mean. The propensity is the logged
  probability of the group (and arm) the customer was actually put in.
* The increment of a total is ``(mean_treated - mean_holdout) * n_treated``: incremental conversions
  when ``y`` is the 0/1 success flag, incremental commission when ``y`` is the commission.
* The CI is the normal approximation, ``estimate +- 1.96 * se``; the standard error of each Hajek
  mean is the delta-method (linearisation) one, ``sqrt(sum(w^2 (y-mean)^2)) / sum(w)`` with the small
  sample factor ``n/(n-1)``, and the two groups are independent.
* CUPED: ``y - theta * (x - mean(x))`` with ``x`` the same outcome in the pre-period (a window of the
  same length before the run) and ``theta = cov(x, y) / var(x)`` pooled over both groups. The
  variance of theta's estimate is ignored (standard practice; it is O(1/n)).

Zero treated or zero holdout, or a group whose weights sum to 0: ``Estimate.estimable`` is False with
the reason; no number is made up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Z95", "Estimate", "Increment", "hajek_mean", "increment", "cuped_adjust", "increment_with_cuped"]

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% CI; ``estimable`` False (and all numbers None) with a ``reason``."""

    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    se: float | None = None
    reason: str | None = None

    @property
    def estimable(self) -> bool:
        return self.estimate is not None

    @property
    def significant(self) -> bool:
        """True when the 95% CI excludes 0 (False when not estimable)."""
        if self.ci_low is None or self.ci_high is None:
            return False
        return self.ci_low > 0 or self.ci_high < 0

    @classmethod
    def not_estimable(cls, reason: str) -> Estimate:
        return cls(None, None, None, None, reason)

    def scaled(self, k: float) -> Estimate:
        if not self.estimable:
            return self
        lo, hi = sorted((self.ci_low * k, self.ci_high * k))  # type: ignore[operator]
        return Estimate(self.estimate * k, lo, hi, None if self.se is None else self.se * abs(k))  # type: ignore[operator]

    def as_dict(self, digits: int | None = None) -> dict[str, float | None]:
        """``{estimate, ci_low, ci_high}``, each rounded to ``digits`` when given (None when not estimable)."""
        vals = {"estimate": self.estimate, "ci_low": self.ci_low, "ci_high": self.ci_high}
        return {k: (v if v is None or digits is None else round(v, digits)) for k, v in vals.items()}


def _arrays(y: object, p: object | None) -> tuple[np.ndarray, np.ndarray]:
    ya = np.asarray(y, dtype=np.float64)
    if p is None:
        w = np.ones_like(ya)
    else:
        pa = np.asarray(p, dtype=np.float64)
        if pa.shape != ya.shape:
            raise ValueError(f"propensities ({pa.shape}) and outcomes ({ya.shape}) differ in length")
        if np.any(~np.isfinite(pa)) or np.any(pa <= 0) or np.any(pa > 1):
            raise ValueError("every propensity must be in (0, 1]")
        w = 1.0 / pa
    if np.any(~np.isfinite(ya)):
        raise ValueError("outcomes must be finite numbers (missing outcomes are left out before estimating)")
    return ya, w


def hajek_mean(y: object, propensity: object | None = None) -> tuple[float, float]:
    """The normalised IPW mean of ``y`` and its delta-method standard error; ValueError on an empty group."""
    ya, w = _arrays(y, propensity)
    n = ya.size
    if n == 0:
        raise ValueError("empty group")
    sw = float(w.sum())
    mean = float((w * ya).sum() / sw)
    if n == 1:
        return mean, float("nan")
    var = float((w**2 * (ya - mean) ** 2).sum()) / sw**2 * n / (n - 1)
    return mean, float(np.sqrt(var))


def increment(
    y_treated: object,
    y_holdout: object,
    p_treated: object | None = None,
    p_holdout: object | None = None,
    *,
    n_treated: int | None = None,
) -> Estimate:
    """``(mean_treated - mean_holdout) * n_treated`` with its 95% CI (Hajek means, delta method)."""
    yt, _ = _arrays(y_treated, p_treated)
    yh, _ = _arrays(y_holdout, p_holdout)
    if yt.size == 0:
        return Estimate.not_estimable("no treated customers")
    if yh.size == 0:
        return Estimate.not_estimable("no holdout customers: the increment cannot be measured")
    if yt.size < 2 or yh.size < 2:
        return Estimate.not_estimable("fewer than 2 customers in the treated or the holdout group")
    mt, st = hajek_mean(yt, p_treated)
    mh, sh = hajek_mean(yh, p_holdout)
    k = float(yt.size if n_treated is None else n_treated)
    diff = mt - mh
    se = float(np.sqrt(st**2 + sh**2))
    return Estimate(diff * k, (diff - Z95 * se) * k, (diff + Z95 * se) * k, se * k)


def cuped_adjust(y: object, x: object) -> tuple[np.ndarray, float]:
    """``y - theta (x - mean x)`` over all customers of the comparison, and theta (0 when x is constant)."""
    ya = np.asarray(y, dtype=np.float64)
    xa = np.asarray(x, dtype=np.float64)
    if ya.shape != xa.shape:
        raise ValueError("outcome and pre-period outcome differ in length")
    if ya.size < 2:
        return ya.copy(), 0.0
    vx = float(np.var(xa))
    theta = 0.0 if vx == 0.0 else float(np.mean((xa - xa.mean()) * (ya - ya.mean())) / vx)
    return ya - theta * (xa - xa.mean()), theta


@dataclass(frozen=True)
class Increment:
    """The plain and the CUPED-adjusted estimate of one increment (CUPED None without a pre-period)."""

    plain: Estimate
    cuped: Estimate | None
    theta: float | None = None


def increment_with_cuped(
    y_treated: object,
    y_holdout: object,
    x_treated: object | None = None,
    x_holdout: object | None = None,
    p_treated: object | None = None,
    p_holdout: object | None = None,
    *,
    n_treated: int | None = None,
) -> Increment:
    """The plain increment and, when pre-period outcomes are given, the CUPED one."""
    plain = increment(y_treated, y_holdout, p_treated, p_holdout, n_treated=n_treated)
    if x_treated is None or x_holdout is None or not plain.estimable:
        return Increment(plain, None, None)
    yt = np.asarray(y_treated, dtype=np.float64)
    yh = np.asarray(y_holdout, dtype=np.float64)
    adj, theta = cuped_adjust(np.concatenate([yt, yh]), np.concatenate([np.asarray(x_treated, dtype=np.float64),
                                                                     np.asarray(x_holdout, dtype=np.float64)]))
    cuped = increment(adj[: yt.size], adj[yt.size:], p_treated, p_holdout, n_treated=n_treated)
    return Increment(plain, cuped, theta)
