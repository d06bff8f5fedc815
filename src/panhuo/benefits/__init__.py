"""The benefit catalogue 权益中台: what a playbook may offer, its risk rating, cost, stock, budget, validity.

The API the run engine uses::

    load_catalogue(ws) -> Catalogue              # starter catalogue + <workspace>/benefits/*.yaml
    benefit_risk(ws) -> dict[id, int]            # R1..R5 as 1..5 (suitability guardrail)
    check_playbook_benefits(playbook, catalogue) # BenefitError: playbook file, line, field of unknown ids

Issuing (stock and budget reservation in the operational store, inside the run engine's batch
transaction) is :mod:`panhuo.benefits.ledger` (``reserve``, ``reserve_all``, ``usage``), with its tables
in :mod:`panhuo.benefits.models` (migration 0003); imported on use, so this package stays free of SQLAlchemy.
"""

from __future__ import annotations

from panhuo.benefits.catalogue import (
    STARTER_CATALOGUE,
    Catalogue,
    benefit_risk,
    benefits_dir,
    check_playbook_benefits,
    load_catalogue,
    parse_catalogue,
    playbook_benefit_issues,
)
from panhuo.benefits.errors import BenefitError, BenefitIssue
from panhuo.benefits.schema import BENEFIT_KINDS, CONTENT_KINDS, BenefitItem, CouponTerms, parse_risk, to_fen

__all__ = [
    "BENEFIT_KINDS",
    "CONTENT_KINDS",
    "STARTER_CATALOGUE",
    "BenefitError",
    "BenefitIssue",
    "BenefitItem",
    "Catalogue",
    "CouponTerms",
    "benefit_risk",
    "benefits_dir",
    "check_playbook_benefits",
    "load_catalogue",
    "parse_catalogue",
    "parse_risk",
    "playbook_benefit_issues",
    "to_fen",
]
