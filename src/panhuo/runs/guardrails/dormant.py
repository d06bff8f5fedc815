"""Guardrail 3: dormant accounts (休眠户) only through a playbook whose purpose is ``activation_invite``.

panhuo may invite and guide a dormant customer to apply for activation; it never activates
(DESIGN.md section 7). Every other playbook skips dormant customers whatever its audience says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from panhuo.runs.guardrails.base import Check, GuardContext, column_or

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["NAME", "REASONS", "checks"]

NAME = "dormant"
REASONS = ("dormant_activation_path_only",)


def checks(t: ir.Table, ctx: GuardContext) -> list[Check]:
    if ctx.spec.purpose == "activation_invite":
        return []
    status = column_or(t, "status", None).cast("string")
    return [((status == "dormant").fill_null(False), "dormant_activation_path_only")]
