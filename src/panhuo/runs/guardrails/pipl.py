"""Guardrail 2b: PIPL — a customer who refused personalised marketing gets no model-driven playbook.

Applies only to playbooks with ``method.personalised: true``. The refusal is a consent flag like any
other: the boolean tag column ``refuses_personalised`` (true: refused), computed by the tag library
from the ``contact_permissions`` rows of channel ``personalised`` (latest row wins; ``allowed`` false is
a refusal; no row is no refusal). A tags snapshot without the column (computed by an older panhuo, or
a hand-made tags file) blocks nobody here, and the run reports a warning (:func:`warning`).
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
    """A message when a personalised playbook runs on tags without the refusal column."""
    if ctx.spec.method.personalised and COLUMN not in columns:
        return (f"personalised playbook but the tags have no '{COLUMN}' column: PIPL refusals of "
                "personalised marketing could not be checked; recompute the tags (`panhuo tags`)")
    return None
