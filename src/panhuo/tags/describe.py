"""Describe a stored tag snapshot: every tag's meaning and distribution (``panhuo tags describe``).

Per tag: the share of nulls; for numbers (money, int, float) the minimum, median and maximum; for
dates the earliest and latest; for strings and booleans the most frequent values with counts.
Money is reported in RMB as exact ``Decimal`` (medians are rounded to the fen).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

import ibis

from panhuo.contract.parse import fen_to_decimal
from panhuo.tags.catalogue import TAGS
from panhuo.tags.store import load_tags

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace
    from panhuo.tags.spec import TagSpec

__all__ = ["TOP_VALUES", "TagDistribution", "describe_tags"]

TOP_VALUES = 5
_NUMERIC = ("money", "int", "float")


@dataclass
class TagDistribution:
    """The distribution of one tag in one snapshot."""

    spec: TagSpec
    rows: int
    nulls: int
    minimum: Any = None
    median: Any = None
    maximum: Any = None
    top: list[tuple[Any, int]] = field(default_factory=list)

    @property
    def null_share(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0


def _money(v: Any) -> Decimal | None:
    if v is None:
        return None
    if isinstance(v, int):
        return fen_to_decimal(v)
    return (Decimal(str(v)) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def describe_tags(ws: Workspace, con: BaseBackend, as_of: dt.date | None = None) -> tuple[dt.date, list[TagDistribution]]:
    """The as-of date of the snapshot described and every tag's distribution, in catalogue order.

    Raises
    ------
    WarehouseError
        No tags stored on or before ``as_of``.
    """
    t = load_tags(ws, con, as_of)
    aggs: dict[str, ibis.Value] = {"_rows": t.count(), "_as_of": t.as_of.max()}
    for i, s in enumerate(TAGS):
        col = t[s.stored]
        aggs[f"n{i}"] = col.isnull().ifelse(1, 0).sum()
        if s.kind in _NUMERIC or s.kind == "date":
            aggs[f"lo{i}"] = col.min()
            aggs[f"hi{i}"] = col.max()
        if s.kind in _NUMERIC:
            aggs[f"md{i}"] = col.cast("float64").median()
    row = t.aggregate(**aggs).to_pyarrow().to_pylist()[0]
    rows = int(row["_rows"])
    day = row["_as_of"]
    out: list[TagDistribution] = []
    for i, s in enumerate(TAGS):
        d = TagDistribution(spec=s, rows=rows, nulls=int(row[f"n{i}"] or 0))
        if s.kind in _NUMERIC or s.kind == "date":
            d.minimum, d.maximum = row[f"lo{i}"], row[f"hi{i}"]
        if s.kind in _NUMERIC:
            d.median = row[f"md{i}"]
        if s.kind == "money":
            d.minimum, d.median, d.maximum = _money(d.minimum), _money(d.median), _money(d.maximum)
        if s.kind in ("string", "bool"):
            col = t[s.stored]
            f = t.filter(col.notnull())
            g = f.group_by(f[s.stored].name("v")).agg(c=f.count())
            top = g.order_by([ibis.desc("c"), "v"]).limit(TOP_VALUES).to_pyarrow().to_pylist()
            d.top = [(r["v"], int(r["c"])) for r in top]
        out.append(d)
    return day, out
