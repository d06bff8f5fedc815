"""Statistical models: one model per file on a shared base (:mod:`panhuo.models.base`).

- :mod:`panhuo.models.bgnbd`: BG/NBD buy-till-you-die (Fader, Hardie and Lee 2005).
- :mod:`panhuo.models.propensity`: reactivation propensity (LightGBM), :mod:`panhuo.models.metrics` for
  AUC, Brier and calibration.
"""

from __future__ import annotations

from panhuo.models.base import BaseModel
from panhuo.models.bgnbd import BetaGeoModel, BGNBDSummary, check_summary, collapse_summary, simulate_bgnbd
from panhuo.models.propensity import PropensityModel

__all__ = [
    "BGNBDSummary",
    "BaseModel",
    "BetaGeoModel",
    "PropensityModel",
    "check_summary",
    "collapse_summary",
    "simulate_bgnbd",
]
