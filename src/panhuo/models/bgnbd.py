"""BG/NBD ("beta-geometric / negative binomial distribution") buy-till-you-die model.

Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "'Counting Your Customers' the Easy Way: An
Alternative to the Pareto/NBD Model", *Marketing Science* 24(2), 275-284; and Fader, Hardie and Lee
(2008), "Computing P(alive) Using the BG/NBD Model" (the note with the corrected P(alive)).

Assumptions (FHL 2005, section 3):

1. While active, a customer's transactions follow a Poisson process with rate ``lambda``;
2. ``lambda ~ Gamma(r, alpha)`` (shape ``r``, rate ``alpha``) across customers;
3. right after each *repeat* transaction the customer becomes inactive with probability ``p``;
4. ``p ~ Beta(a, b)`` across customers;
5. ``lambda`` and ``p`` are independent.

The data of one customer is the summary ``(x, t_x, T)``: ``x`` repeat transactions (transactions
after the first), ``t_x`` the time of the last one and ``T`` the time since the first, all measured
from the first transaction. panhuo measures time in trading days (see :mod:`panhuo.scores`).

Implementation: the log-likelihood (eq. 6) and its analytic gradient are computed on the *distinct*
rows of the summary with a count per row (a million customers collapse to far fewer rows), the
terms that only depend on ``x`` once per distinct ``x``; the optimiser (L-BFGS-B) works on the
log-parameters, on data rescaled so the largest ``T`` is 10 (the likelihood changes by a constant,
``alpha`` is scaled back). A known limit of the model: P(alive) is 1 for ``x = 0`` (a customer can
only drop out right after a repeat transaction).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize
from scipy.special import digamma, gammaln, hyp2f1

from panhuo.models.base import BaseModel, as_float_array, check_finite, check_positive

__all__ = ["BGNBDSummary", "BetaGeoModel", "check_summary", "collapse_summary", "simulate_bgnbd"]

_LOG_BOUND = 30.0  # log-parameters are kept in [-30, 30]


@dataclass(frozen=True)
class BGNBDSummary:
    """Validated ``(x, t_x, T)`` rows with a weight (count) per row."""

    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    weights: np.ndarray

    @property
    def customers(self) -> float:
        return float(self.weights.sum())


def check_summary(frequency: Any, recency: Any, T: Any, weights: Any = None) -> BGNBDSummary:
    """Validate a BG/NBD summary; ValueError naming the argument, the rule and the first bad value.

    Rules: equal lengths; ``frequency`` integer-valued and ``>= 0``; ``0 <= recency <= T``;
    ``recency == 0`` where ``frequency == 0``; ``weights`` (if given) finite and ``>= 0`` with a
    positive sum.
    """
    x = as_float_array(frequency, "frequency")
    tx = as_float_array(recency, "recency")
    t = as_float_array(T, "T")
    w = np.ones_like(x) if weights is None else as_float_array(weights, "weights")
    n = len(x)
    for name, arr in (("recency", tx), ("T", t), ("weights", w)):
        if len(arr) != n:
            raise ValueError(f"{name} has {len(arr)} values but frequency has {n}: they must have equal lengths")
    if n == 0:
        raise ValueError("frequency is empty: the summary needs at least one customer")
    for name, arr in (("frequency", x), ("recency", tx), ("T", t), ("weights", w)):
        check_finite(arr, name)
        if (arr < 0).any():
            raise ValueError(f"{name} must be >= 0, got {float(arr[np.flatnonzero(arr < 0)[0]])!r} "
                             f"at position {int(np.flatnonzero(arr < 0)[0])}")
    frac = x != np.round(x)
    if frac.any():
        i = int(np.flatnonzero(frac)[0])
        raise ValueError(f"frequency must be a whole number of repeat transactions, got {float(x[i])!r} at position {i}")
    late = tx > t * (1 + 1e-12) + 1e-12
    if late.any():
        i = int(np.flatnonzero(late)[0])
        raise ValueError(f"recency must be <= T, got recency {float(tx[i])!r} > T {float(t[i])!r} at position {i} "
                         f"({int(late.sum())} row(s) in all)")
    zero = (x == 0) & (tx != 0)
    if zero.any():
        i = int(np.flatnonzero(zero)[0])
        raise ValueError(f"recency must be 0 where frequency is 0, got recency {float(tx[i])!r} at position {i}")
    if not w.sum() > 0:
        raise ValueError("weights must have a positive sum")
    return BGNBDSummary(np.round(x), tx, t, w)


def collapse_summary(frequency: Any, recency: Any, T: Any, weights: Any = None) -> BGNBDSummary:
    """Identical ``(x, t_x, T)`` rows merged into one, their weights summed (validated first)."""
    import pandas as pd

    s = check_summary(frequency, recency, T, weights)
    frame = pd.DataFrame({"x": s.frequency, "tx": s.recency, "T": s.T, "w": s.weights})
    g = frame.groupby(["x", "tx", "T"], sort=True, observed=True)["w"].sum().reset_index()
    g = g[g["w"] > 0]
    return BGNBDSummary(*(g[c].to_numpy(dtype=float) for c in ("x", "tx", "T", "w")))


def _dot(u: np.ndarray, v: np.ndarray) -> float:
    """Inner product without BLAS: OpenBLAS threads on ~1e5-element ``dot`` calls made each fit up to
    40x slower on a busy 2-CPU machine (thread hand-off), and a plain multiply-and-sum is as fast."""
    return float(np.add.reduce(u * v))


class _Prepared:
    """The summary arranged for fast likelihood evaluations (per-x terms computed once per distinct x)."""

    def __init__(self, s: BGNBDSummary, scale: float) -> None:
        keep = s.weights > 0
        x, self.w = s.frequency[keep], s.weights[keep]
        self.tx, self.T = s.recency[keep] * scale, s.T[keep] * scale
        self.xu, self.xi = np.unique(x, return_inverse=True)
        self.wx = np.bincount(self.xi, weights=self.w, minlength=len(self.xu))  # weight per distinct x
        self.W = float(self.w.sum())
        self.pos = x > 0
        self.xw = float(_dot(self.w, x))  # weighted sum of x


def _loglik(theta: np.ndarray, d: _Prepared, grad: bool = True) -> tuple[float, np.ndarray]:
    """Weighted log-likelihood (FHL 2005 eq. 6) and its gradient in ``theta = log(r, alpha, a, b)``.

    ``L = A1 A2 (A3 + [x > 0] A4)`` with ``A1 = Gamma(r+x) alpha^r / Gamma(r)``,
    ``A2 = Gamma(a+b) Gamma(b+x) / (Gamma(b) Gamma(a+b+x))``, ``A3 = (alpha+T)^-(r+x)`` and
    ``A4 = a / (b+x-1) (alpha+t_x)^-(r+x)``.
    """
    r, alpha, a, b = np.exp(theta)
    xu = d.xu
    # terms that depend on x only: once per distinct x
    g_x = gammaln(r + xu) - gammaln(r) + gammaln(a + b) + gammaln(b + xu) - gammaln(b) - gammaln(a + b + xu)
    pos_u = xu > 0
    bx1 = np.where(pos_u, b + xu - 1.0, 1.0)
    log_a4_u = np.where(pos_u, np.log(a) - np.log(bx1), -np.inf)
    rx = (r + xu)[d.xi]
    la_T = np.log(alpha + d.T)
    la_t = np.log(alpha + d.tx)
    c3 = -rx * la_T
    c4 = log_a4_u[d.xi] - rx * la_t
    lse = np.logaddexp(c3, c4)
    ll = float(_dot(d.wx, g_x) + d.W * r * np.log(alpha) + _dot(d.w, lse))
    if not grad:
        return ll, np.empty(0)
    s4 = np.exp(c4 - lse)  # share of the "dropped out after t_x" term; 0 where x = 0
    s3 = 1.0 - s4
    ws4 = d.w * s4
    g_r = (_dot(d.wx, digamma(r + xu) - digamma(r)) + d.W * np.log(alpha)
           - _dot(d.w * s3, la_T) - _dot(ws4, la_t))
    g_alpha = d.W * r / alpha - _dot(d.w * rx, s3 / (alpha + d.T) + s4 / (alpha + d.tx))
    inv_bx1 = np.where(pos_u, 1.0 / bx1, 0.0)[d.xi]
    g_a = _dot(d.wx, digamma(a + b) - digamma(a + b + xu)) + ws4.sum() / a
    g_b = _dot(d.wx, digamma(a + b) + digamma(b + xu) - digamma(b) - digamma(a + b + xu)) - _dot(ws4, inv_bx1)
    # chain rule to log-parameters: d/dlog(p) = p d/dp
    return ll, np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])


class BetaGeoModel(BaseModel):
    """BG/NBD model of repeat transactions (Fader, Hardie and Lee 2005).

    Parameters
    ----------
    penalizer
        L2 penalty on the parameters (``penalizer * sum(p**2)`` added to the mean negative
        log-likelihood, as in lifetimes); 0 (the default) gives the maximum-likelihood estimate.
    tol
        Convergence tolerance of L-BFGS-B (relative change of the objective).
    max_iter
        Iteration limit of L-BFGS-B.

    Attributes
    ----------
    params_ : dict
        ``r``, ``alpha`` (the Gamma heterogeneity of the transaction rate, ``alpha`` in the time
        unit of the data) and ``a``, ``b`` (the Beta heterogeneity of the dropout probability).
    log_likelihood_ : float
        Weighted log-likelihood (eq. 6 summed over customers) at ``params_``, in the data's time unit.
    n_customers_ : int
        Sum of the weights.
    n_rows_ : int
        Distinct ``(x, t_x, T)`` rows the fit worked on.
    optimizer_ : scipy.optimize.OptimizeResult

    References
    ----------
    Fader, Hardie and Lee (2005), Marketing Science 24(2), 275-284, eqs. 6, 7 and 10;
    Fader, Hardie and Lee (2008), "Computing P(alive) using the BG/NBD model", eq. 2.
    """

    PARAM_NAMES = ("r", "alpha", "a", "b")

    def __init__(self, penalizer: float = 0.0, tol: float = 1e-12, max_iter: int = 2000) -> None:
        self.penalizer = penalizer
        self.tol = tol
        self.max_iter = max_iter

    def _repr_options(self) -> str:
        return f"penalizer={self.penalizer}" if self.penalizer else ""

    # -- fitting ------------------------------------------------------------------
    def fit(
        self,
        frequency: Any,
        recency: Any,
        T: Any,
        weights: Any = None,
        initial_params: dict[str, float] | None = None,
    ) -> BetaGeoModel:
        """Maximum-likelihood fit on a summary (rows may be repeated or carry counts in ``weights``).

        Parameters
        ----------
        frequency, recency, T
            Repeat transactions ``x``, time of the last ``t_x`` and age ``T`` per row (see
            :func:`check_summary` for the rules).
        weights
            Customers per row (default 1).
        initial_params
            Starting values (default 1 for every parameter on the rescaled data).

        Raises
        ------
        ValueError
            The summary breaks a rule (the message names the argument), or the optimiser failed.
        """
        penalizer = check_positive(self.penalizer, "penalizer", strict=False)
        s = collapse_summary(frequency, recency, T, weights)
        t_max = float(s.T.max())
        scale = 10.0 / t_max if t_max > 0 else 1.0
        d = _Prepared(s, scale)
        if initial_params is None:
            theta0 = np.zeros(4)
        else:
            p0 = {n: check_positive(initial_params[n], f"initial_params[{n!r}]") for n in self.PARAM_NAMES}
            theta0 = np.log([p0["r"], p0["alpha"] * scale, p0["a"], p0["b"]])

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            ll, g = _loglik(theta, d)
            p = np.exp(theta)
            f = -ll / d.W + penalizer * float(_dot(p, p))
            return f, -g / d.W + penalizer * 2.0 * p * p

        res = optimize.minimize(
            objective, theta0, jac=True, method="L-BFGS-B",
            bounds=[(-_LOG_BOUND, _LOG_BOUND)] * 4,
            options={"maxiter": self.max_iter, "ftol": self.tol, "gtol": 1e-9, "maxcor": 20},
        )
        if not np.all(np.isfinite(res.x)) or not np.isfinite(res.fun):
            raise ValueError(f"BG/NBD fit failed: {res.message}")
        r, alpha_s, a, b = np.exp(res.x)
        self.params_ = {"r": float(r), "alpha": float(alpha_s / scale), "a": float(a), "b": float(b)}
        self.optimizer_ = res
        self.n_rows_ = len(s.weights)
        self.n_customers_ = round(s.customers)
        # ll on the original time scale: scaling time by c changes each row by -x log(c)
        self.log_likelihood_ = float(_loglik(res.x, d, grad=False)[0] + d.xw * np.log(scale))
        return self

    # -- likelihood -------------------------------------------------------------------
    def log_likelihood(self, frequency: Any, recency: Any, T: Any, weights: Any = None) -> float:
        """Weighted log-likelihood (eq. 6 summed) of a summary at the fitted parameters."""
        p = self._check_fitted()
        s = check_summary(frequency, recency, T, weights)
        d = _Prepared(s, 1.0)
        return _loglik(np.log([p["r"], p["alpha"], p["a"], p["b"]]), d, grad=False)[0]

    def log_likelihood_gradient(self, frequency: Any, recency: Any, T: Any, weights: Any = None) -> np.ndarray:
        """Gradient of :meth:`log_likelihood` with respect to ``log(r), log(alpha), log(a), log(b)``."""
        p = self._check_fitted()
        s = check_summary(frequency, recency, T, weights)
        return _loglik(np.log([p["r"], p["alpha"], p["a"], p["b"]]), _Prepared(s, 1.0))[1]

    # -- predictions ------------------------------------------------------------------
    def conditional_probability_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(still active at ``T`` | x, t_x, T) (FHL 2008 note, eq. 2).

        ``1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x))``; 1 where ``x = 0``.
        """
        p = self._check_fitted()
        s = check_summary(frequency, recency, T)
        return 1.0 / (1.0 + self._odds_dead(p, s))

    @staticmethod
    def _odds_dead(p: dict[str, float], s: BGNBDSummary) -> np.ndarray:
        r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
        x = s.frequency
        pos = x > 0
        bx1 = np.where(pos, b + x - 1.0, 1.0)
        log_odds = np.log(a) - np.log(bx1) + (r + x) * (np.log(alpha + s.T) - np.log(alpha + s.recency))
        return np.where(pos, np.exp(np.minimum(log_odds, 700.0)), 0.0)

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: float | Any, frequency: Any, recency: Any, T: Any
    ) -> np.ndarray:
        """E[Y(t) | x, t_x, T]: expected transactions in ``(T, T + t]`` (FHL 2005 eq. 10).

        ``(a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]``
        divided by ``1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)``. ``t`` is a scalar or one
        value per row, in the time unit of the data.
        """
        p = self._check_fitted()
        s = check_summary(frequency, recency, T)
        tt = np.broadcast_to(as_float_array(t, "t"), s.T.shape) if np.ndim(t) else np.full(s.T.shape, float(t))
        check_finite(tt, "t")
        if (tt < 0).any():
            raise ValueError(f"t must be >= 0, got {float(tt[tt < 0][0])!r}")
        r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
        x = s.frequency
        z = tt / (alpha + s.T + tt)
        ratio = (alpha + s.T) / (alpha + s.T + tt)
        hyp = hyp2f1(r + x, b + x, a + b + x - 1.0, z)
        head = (a + b + x - 1.0) / (a - 1.0)
        num = head * (1.0 - np.exp((r + x) * np.log(ratio)) * hyp)
        return num / (1.0 + self._odds_dead(p, s))

    def expected_number_of_purchases_up_to_time(self, t: float | Any) -> np.ndarray:
        """E[X(t)] for a customer just acquired (FHL 2005 eq. 7).

        ``(a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]``.
        """
        p = self._check_fitted()
        tt = as_float_array(t, "t")
        check_finite(tt, "t")
        r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
        hyp = hyp2f1(r, b, a + b - 1.0, tt / (alpha + tt))
        return (a + b - 1.0) / (a - 1.0) * (1.0 - (alpha / (alpha + tt)) ** r * hyp)


def simulate_bgnbd(
    r: float, alpha: float, a: float, b: float, T: Any, seed: int | np.random.Generator | None = None
) -> BGNBDSummary:
    """Draw one ``(x, t_x, T)`` summary per entry of ``T`` from the BG/NBD process.

    Per customer: ``lambda ~ Gamma(r, rate=alpha)``, ``p ~ Beta(a, b)``; ``n ~ Poisson(lambda T)``
    Poisson events in ``(0, T]`` and ``K ~ Geometric(p)`` repeat transactions before dropping out
    (dropout right after the K-th); ``x = min(n, K)`` and, given ``n`` events, the x-th of ``n``
    uniform order statistics on ``(0, T]``: ``t_x = T Beta(x, n - x + 1)``.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    t = as_float_array(T, "T")
    check_finite(t, "T")
    n = len(t)
    lam = rng.gamma(check_positive(r, "r"), 1.0 / check_positive(alpha, "alpha"), n)
    p = np.clip(rng.beta(check_positive(a, "a"), check_positive(b, "b"), n), 1e-12, 1.0)
    events = rng.poisson(lam * t)
    k = rng.geometric(p)
    x = np.minimum(events, k)
    pos = x > 0
    tx = np.zeros(n)
    tx[pos] = t[pos] * rng.beta(x[pos], events[pos] - x[pos] + 1)
    return BGNBDSummary(x.astype(float), tx, t, np.ones(n))
