"""Guardrail 7: one message per customer per playbook run.

Within the candidate set a customer appearing twice keeps one row (``_dup`` marks the others); across
retries of the same run the outbox's UNIQUE idempotency key (sha256 of playbook, customer, run key)
with ON CONFLICT DO NOTHING makes a second insert a no-op (:mod:`panhuo.runs.outbox`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from panhuo.runs.guardrails.base import Check, GuardContext

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["NAME", "REASONS", "checks"]

NAME = "one_per_run"
REASONS = ("duplicate_in_run",)


def checks(t: ir.Table, ctx: GuardContext) -> list[Check]:
    return [(t["_dup"].fill_null(False), "duplicate_in_run")]
