"""Guardrail 2b: PIPL — a customer who refused personalised marketing gets no model-driven playbook.

Applies only to playbooks with ``method.personalised: true``. The refusal is a consent flag like any
other: the boolean tag column ``refuses_personalised`` (true: refused). The data contract has no
source for it yet (``contact_permissions`` channels are app_push, sms, wechat, call), so when the
column is missing nobody is blocked here and the run reports a warning (:func:`warning`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from panhuo.runs.guardrails.base import Check, GuardContext

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["COLUMN", "NAME", "REASONS", "checks", "warning"]

NAME = "pipl"
REASONS = ("pipl_refused_personalised",)
COLUMN = "refuses_personalised"


def checks(t: ir.Table, ctx: GuardContext) -> list[Check]:
    if not ctx.spec.method.personalised or COLUMN not in t.columns:
        return []
    return [(t[COLUMN].cast("boolean").fill_null(False), "pipl_refused_personalised")]


def warning(columns: list[str], ctx: GuardContext) -> str | None:
    """A message when a personalised playbook runs without any refusal data."""
    if ctx.spec.method.personalised and COLUMN not in columns:
        return (f"personalised playbook but the tags have no '{COLUMN}' column: PIPL refusals of "
                "personalised marketing could not be checked")
    return None
