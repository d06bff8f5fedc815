"""Statistical models: one model per file on a shared base (:mod:`panhuo.models.base`).

- :mod:`panhuo.models.bgnbd`: BG/NBD buy-till-you-die (Fader, Hardie and Lee 2005).
"""

from __future__ import annotations

from panhuo.models.base import BaseModel
from panhuo.models.bgnbd import BetaGeoModel, BGNBDSummary, check_summary, collapse_summary, simulate_bgnbd

__all__ = ["BGNBDSummary", "BaseModel", "BetaGeoModel", "check_summary", "collapse_summary", "simulate_bgnbd"]
