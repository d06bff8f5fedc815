"""What every guardrail rule sees: the playbook, the run settings, the send time and the benefit ratings.

A rule is a module with ``NAME``, ``REASONS`` (its reason codes) and ``checks(t, ctx)`` returning
``(blocked, reason_code)`` pairs: ``blocked`` is an Ibis boolean over the candidate table ``t`` that is
never null (unknown counts as blocked where refusing is the safe side). ``apply()`` in
:mod:`panhuo.runs.guardrails` evaluates all rules of all candidates in one query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from panhuo.config import RunSettings
from panhuo.playbooks.schema import PlaybookSpec

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["Check", "GuardContext", "column_or"]

Check = tuple["ir.BooleanValue", str]


@dataclass(frozen=True)
class GuardContext:
    """Inputs of the guardrails besides the candidate table.

    ``benefit_risk`` maps product benefit ids to their risk rating (R1-R5); a benefit missing from it
    is not a product offer. It is a plain dict until the benefit catalogue (panhuo.benefits) lands.
    ``send_at`` is when the messages would go out; ``inside_window`` whether that is inside the
    playbook's send window and outside quiet hours.
    """

    spec: PlaybookSpec
    settings: RunSettings
    now: dt.datetime
    send_at: dt.datetime
    inside_window: bool
    benefit_risk: Mapping[str, str] = field(default_factory=dict)


def column_or(t: ir.Table, name: str, default: object) -> ir.Value:
    """Column ``name`` of ``t``, or a literal ``default`` when the tags do not have it."""
    import ibis

    return t[name] if name in t.columns else ibis.literal(default)
