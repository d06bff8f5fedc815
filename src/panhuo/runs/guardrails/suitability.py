"""Guardrail 4: suitability (适当性) of product offers.

A playbook offers a product when one of its benefit items (or its arms' items) has a risk rating
R1-R5. Such a playbook never reaches a customer whose risk level C1-C5 is below the highest rating
offered, whose risk level is unknown, or whose assessment has expired (the ``assessment_expired``
tag). Ratings come from ``GuardContext.benefit_risk``, a plain dict of benefit id -> rating: the
engine fills it from the benefit catalogue's ``product`` items plus ``runs.benefit_risk`` in settings
(:func:`panhuo.runs.engine.product_risk`).
The check uses the highest rating over all arms (conservative: a customer suitable for one arm but
not another is held back from both).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis

from panhuo.runs.guardrails.base import Check, GuardContext, column_or

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["NAME", "REASONS", "checks", "offered_rating"]

NAME = "suitability"
REASONS = ("suitability_no_risk_level", "suitability_assessment_expired", "suitability_risk_above_level")
_LEVELS = {f"C{i}": i for i in range(1, 6)}


def offered_rating(ctx: GuardContext) -> int | None:
    """The highest product risk rating (1-5) the playbook offers, or None when it offers no product."""
    items = set(ctx.spec.benefit.items)
    for arm in ctx.spec.method.arms or []:
        items |= set(arm.items or [])
    ratings = [int(ctx.benefit_risk[i][1]) for i in items if i in ctx.benefit_risk]
    return max(ratings) if ratings else None


def checks(t: ir.Table, ctx: GuardContext) -> list[Check]:
    rating = offered_rating(ctx)
    if rating is None:
        return []
    level_text = column_or(t, "risk_level", None).cast("string").upper().strip()
    level = ibis.cases(*[(level_text == k, v) for k, v in _LEVELS.items()], else_=ibis.null("int64"))
    expired = column_or(t, "assessment_expired", True).cast("boolean").fill_null(True)
    return [
        (level.isnull(), "suitability_no_risk_level"),
        (expired, "suitability_assessment_expired"),
        ((level < rating).fill_null(True), "suitability_risk_above_level"),
    ]
