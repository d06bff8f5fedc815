"""Guardrails (DESIGN.md section 5) in one place, applied set-based to the whole candidate set.

One module per rule, evaluated in this order; the first rule that blocks a customer decides, and its
reason code is recorded:

1. ``global_control`` — the persistent global control group no playbook touches;
   ``reentry`` — whether a customer who entered this playbook before may enter again;
2. ``consent`` — consent (and reach) per channel; picks the channel;
   ``pipl`` — personalised (model-driven) playbooks skip customers who refused personalisation;
3. ``dormant`` — dormant accounts only through an ``activation_invite`` playbook;
4. ``suitability`` — product offers: risk level vs rating, expired assessments;
5. ``frequency`` — caps per customer per day/week/month and per channel (contact log + queued messages);
6. ``send_window`` — quiet hours and the send window (defer or skip);
7. ``one_per_run`` — one message per customer per playbook run.

:func:`apply` compiles every rule into one Ibis expression (a ``CASE`` per output column) over the
candidate table, so the engine evaluates all customers in one query, never a Python loop per customer.
:func:`funnel` counts candidates left after each rule.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

import ibis

from panhuo.runs.guardrails import (
    consent,
    dormant,
    frequency,
    global_control,
    one_per_run,
    pipl,
    reentry,
    send_window,
    suitability,
)
from panhuo.runs.guardrails.base import GuardContext

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["ORDER", "REASONS", "GuardContext", "apply", "funnel"]

ORDER: tuple[ModuleType, ...] = (
    global_control, reentry, consent, pipl, dormant, suitability, frequency, send_window, one_per_run,
)
REASONS: dict[str, tuple[str, ...]] = {m.NAME: m.REASONS for m in ORDER}


def apply(t: ir.Table, ctx: GuardContext) -> ir.Table:
    """``customer_id, channel, guardrail, reason, _arm_ok_<i>...`` for every row of ``t`` (guardrail/reason
    null: passed; ``_arm_ok_<i>``: arm ``i`` is suitable for the customer).

    ``t`` holds the candidates with their tags and the joined columns ``_gc`` (global control),
    ``_n_<period>`` and ``_n_<period>_<channel>`` (contact counts), ``_entry_gap`` (trading days since the
    customer last entered this playbook) and ``_dup`` (a repeated customer).
    """
    branches: list[tuple[ir.BooleanValue, str, str]] = []
    for rule in ORDER:
        branches.extend((cond, rule.NAME, reason) for cond, reason in rule.checks(t, ctx))
    null = ibis.null("string")
    if branches:
        guard = ibis.cases(*[(c, ibis.literal(name)) for c, name, _ in branches], else_=null)
        reason = ibis.cases(*[(c, ibis.literal(r)) for c, _, r in branches], else_=null)
    else:
        guard, reason = null, null
    return t.select(t.customer_id, channel=consent.channel_expr(t, ctx, caps=True), guardrail=guard, reason=reason,
                    **suitability.arm_columns(t, ctx))


def funnel(candidates: int, blocked: dict[str, int]) -> list[tuple[str, int]]:
    """``[("candidates", n), ("after global_control", n1), ...]`` from the blocked count per rule."""
    rows = [("candidates", candidates)]
    left = candidates
    for rule in ORDER:
        left -= blocked.get(rule.NAME, 0)
        rows.append((f"after {rule.NAME}", left))
    return rows
