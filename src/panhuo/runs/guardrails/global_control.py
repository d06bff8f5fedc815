"""Guardrail 1: the persistent global control group (default 5%) that no playbook ever touches.

Membership (``_gc``) is computed by :func:`panhuo.runs.assignment.global_control` from a stable hash
of (customer, global salt) and joined onto the candidates before the guardrails run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from panhuo.runs.guardrails.base import Check, GuardContext

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["NAME", "REASONS", "checks"]

NAME = "global_control"
REASONS = ("global_control",)


def checks(t: ir.Table, ctx: GuardContext) -> list[Check]:
    return [(t["_gc"].fill_null(False), "global_control")]
