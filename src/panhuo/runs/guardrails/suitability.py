"""Guardrail 4: suitability (适当性) of product offers.

A playbook offers a product when one of its benefit items (or its arms' items) has a risk rating
R1-R5. Such a playbook never reaches a customer whose risk level C1-C5 is below the highest rating
offered, whose risk level is unknown, or whose assessment has expired (the ``assessment_expired``
tag). Ratings come from ``GuardContext.benefit_risk``, a plain dict of benefit id -> rating: the
engine fills it from the benefit catalogue's ``product`` items plus ``runs.benefit_risk`` in settings
(:func:`panhuo.runs.engine.product_risk`).
With arms, suitability is per arm: a customer is blocked only when no arm suits them, and
assignment then draws only among the arms that do (their weights renormalised, the propensity
logged accordingly); an arm's rating is the highest of its items.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis

from panhuo.runs.guardrails.base import Check, GuardContext, column_or

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["NAME", "REASONS", "arm_columns", "arm_ratings", "checks", "offered_rating", "suitable"]

NAME = "suitability"
REASONS = ("suitability_no_risk_level", "suitability_assessment_expired", "suitability_risk_above_level")
_LEVELS = {f"C{i}": i for i in range(1, 6)}


def _rating(items: list[str] | set[str], ctx: GuardContext) -> int | None:
    ratings = [int(ctx.benefit_risk[i][1]) for i in items if i in ctx.benefit_risk]
    return max(ratings) if ratings else None


def arm_ratings(ctx: GuardContext) -> list[tuple[str, int | None]]:
    """Per arm (in the order of :func:`panhuo.runs.assignment.arm_probabilities`), the highest product
    rating it offers (None: no product). An arm without its own items offers the playbook's items."""
    from panhuo.runs.assignment import DEFAULT_ARM

    arms = ctx.spec.method.arms
    if not arms:
        return [(DEFAULT_ARM, _rating(ctx.spec.benefit.items, ctx))]
    return [(a.id, _rating(a.items or ctx.spec.benefit.items, ctx)) for a in arms]


def offered_rating(ctx: GuardContext) -> int | None:
    """The rating that decides whether a customer can get any arm: the least demanding arm's (None when
    some arm offers no product, or none does)."""
    ratings = [r for _, r in arm_ratings(ctx)]
    return None if any(r is None for r in ratings) else min(r for r in ratings if r is not None)


def _level(t: ir.Table) -> ir.IntegerValue:
    text = column_or(t, "risk_level", None).cast("string").upper().strip()
    return ibis.cases(*[(text == k, v) for k, v in _LEVELS.items()], else_=ibis.null("int64"))


def _expired(t: ir.Table) -> ir.BooleanValue:
    return column_or(t, "assessment_expired", True).cast("boolean").fill_null(True)


def suitable(t: ir.Table, rating: int | None) -> ir.BooleanValue:
    """Whether an offer of ``rating`` may reach each customer (never null)."""
    if rating is None:
        return ibis.literal(True)
    level = _level(t)
    return (level.notnull() & ~_expired(t) & (level >= rating)).fill_null(False)


def arm_columns(t: ir.Table, ctx: GuardContext) -> dict[str, ir.BooleanValue]:
    """``_arm_ok_<i>``: whether arm ``i`` is suitable for the customer (assignment draws among those)."""
    return {f"_arm_ok_{i}": suitable(t, r) for i, (_, r) in enumerate(arm_ratings(ctx))}


def checks(t: ir.Table, ctx: GuardContext) -> list[Check]:
    rating = offered_rating(ctx)
    if rating is None:
        return []
    level = _level(t)
    return [
        (level.isnull(), "suitability_no_risk_level"),
        (_expired(t), "suitability_assessment_expired"),
        ((level < rating).fill_null(True), "suitability_risk_above_level"),
    ]
