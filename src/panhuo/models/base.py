"""The shared base of panhuo's statistical models (scikit-learn's estimator contract, lifetimes' style).

``__init__`` only stores options; ``fit`` validates its input and sets the fitted attributes, which end
in ``_`` (``params_``, ``log_likelihood_``); using a model before ``fit`` raises
:class:`panhuo.errors.NotFittedError`. The ``repr`` shows the fitted parameters. Input errors are
``ValueError``\\ s whose message names the argument, the rule and (the first) offending value.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from panhuo.errors import NotFittedError

__all__ = ["BaseModel", "as_float_array", "check_finite", "check_positive"]


def as_float_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a 1-d float array; ValueError naming ``name`` if it is not numeric."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _first_bad(arr: np.ndarray, bad: np.ndarray) -> str:
    i = int(np.flatnonzero(bad)[0])
    return f"{float(arr[i])!r} at position {i} ({int(bad.sum())} value(s) in all)"


def check_finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} must be finite (no NaN or infinity), got {_first_bad(arr, bad)}")


def check_positive(value: float, name: str, *, strict: bool = True) -> float:
    """A positive scalar option (``> 0``, or ``>= 0`` when not ``strict``), as float."""
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc
    ok = v > 0 if strict else v >= 0
    if not (np.isfinite(v) and ok):
        rule = "> 0" if strict else ">= 0"
        raise ValueError(f"{name} must be finite and {rule}, got {value!r}")
    return v


class BaseModel:
    """Base of every fitted model: fitted-state checks and a repr with the parameters.

    Subclasses list their parameter names in ``PARAM_NAMES`` and set ``params_`` (a dict in that
    order) in ``fit``.
    """

    PARAM_NAMES: ClassVar[tuple[str, ...]] = ()
    params_: dict[str, float]

    @property
    def is_fitted(self) -> bool:
        return isinstance(getattr(self, "params_", None), dict)

    def _check_fitted(self) -> dict[str, float]:
        params = getattr(self, "params_", None)
        if not isinstance(params, dict):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet: call fit(...) or set_params(...) first"
            )
        return params

    def set_params(self, **params: float) -> BaseModel:
        """Use known parameters (a stored model) without fitting; every name in ``PARAM_NAMES`` is needed."""
        missing = [n for n in self.PARAM_NAMES if n not in params]
        extra = [n for n in params if n not in self.PARAM_NAMES]
        if missing or extra:
            raise ValueError(
                f"{type(self).__name__} parameters are {', '.join(self.PARAM_NAMES)}; "
                f"missing: {missing or 'none'}, unknown: {extra or 'none'}"
            )
        self.params_ = {n: check_positive(params[n], n) for n in self.PARAM_NAMES}
        return self

    def _repr_options(self) -> str:
        return ""

    def __repr__(self) -> str:
        name = type(self).__name__
        params = getattr(self, "params_", None)
        if not isinstance(params, dict):
            opts = self._repr_options()
            return f"<panhuo {name}: not fitted{', ' + opts if opts else ''}>"
        shown = ", ".join(f"{k}={v:.4g}" for k, v in params.items())
        extra = []
        n = getattr(self, "n_customers_", None)
        if n is not None:
            extra.append(f"fitted on {n:,} customers")
        ll = getattr(self, "log_likelihood_", None)
        if ll is not None:
            extra.append(f"log-likelihood {ll:.2f}")
        return f"<panhuo {name}: {shown}{'; ' + ', '.join(extra) if extra else ''}>"
