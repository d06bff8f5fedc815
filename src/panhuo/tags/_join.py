"""One helper the tag groups share: left-join a per-customer aggregate onto the base table."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["attach"]


def attach(base: ir.Table, agg: ir.Table, key: str) -> ir.Table:
    """``base`` left-joined with ``agg`` on ``base.customer_id == agg[key]``, without ``key``.

    ``agg`` has at most one row per customer and column names that ``base`` does not have.
    """
    j = base.left_join(agg, base.customer_id == agg[key])
    return j.drop(key)
