"""Tiering (分层): an ordered list of tiers, first match wins, so every customer is in exactly one.

The default scheme ships as ``tiers.yaml`` in this package (documented in ``docs/tiers.md``); a
workspace may replace it with its own ``<workspace>/tiers.yaml`` of the same shape. The last tier
must catch everyone else (``rule: 'true'``); each tier carries a suggested strategy in the four
playbook elements (时点 timing, 权益 benefit, 渠道 channel, 方式 method).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
from pydantic import BaseModel, ConfigDict, Field

from panhuo.segments._yaml import read_docs, validate
from panhuo.segments.compiler import check, compile_rule
from panhuo.segments.errors import Location, SegmentError
from panhuo.segments.expr import Source

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from panhuo.segments.symbols import SymbolTable

__all__ = [
    "DEFAULT_FILE",
    "Strategy",
    "Tier",
    "TierRow",
    "TierScheme",
    "assign_tiers",
    "load_tiers",
    "tier_expr",
    "tier_summary",
]

DEFAULT_FILE = "tiers.yaml"


class Strategy(BaseModel):
    """The suggested strategy of a tier, one or two lines per element."""

    model_config = ConfigDict(extra="forbid")
    timing: str = Field(min_length=1, description="时点")
    benefit: str = Field(min_length=1, description="权益")
    channel: str = Field(min_length=1, description="渠道")
    method: str = Field(min_length=1, description="方式")


class _TierFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    rule: str = Field(min_length=1)
    strategy: Strategy


@dataclass(frozen=True)
class Tier:
    id: str
    zh: str
    en: str
    rule: Source
    strategy: Strategy
    location: Location


@dataclass(frozen=True)
class TierScheme:
    """Tiers in evaluation order; ``file`` is where the scheme was read from."""

    tiers: tuple[Tier, ...]
    file: str

    def ids(self) -> list[str]:
        return [t.id for t in self.tiers]

    def tier(self, tier_id: str) -> Tier:
        for t in self.tiers:
            if t.id == tier_id:
                return t
        raise SegmentError(f"unknown tier '{tier_id}' (tiers: {', '.join(self.ids())})")


@dataclass(frozen=True)
class TierRow:
    """One line of the tier summary; ``avg_total_assets`` in RMB (two decimals) or None."""

    id: str
    zh: str
    en: str
    customers: int
    share: float | None
    avg_total_assets: Decimal | None


def load_tiers(path: Path | None = None, symbols: SymbolTable | None = None, display: str | None = None
               ) -> TierScheme:
    """Read and check a tier scheme (default: the one shipped with panhuo).

    Raises
    ------
    SegmentError
        Malformed YAML, a missing field, a duplicate id, a rule that is not true/false or uses an
        unknown tag, or a last tier that does not catch everyone else.
    """
    if path is None:
        ref = resources.files("panhuo.segments").joinpath(DEFAULT_FILE)
        with resources.as_file(ref) as p:
            return load_tiers(p, symbols, display or f"panhuo/segments/{DEFAULT_FILE}")
    shown = display or str(path)
    tiers: list[Tier] = []
    for doc in read_docs(Path(path), shown, "tiers"):
        spec: _TierFile = validate(_TierFile, doc)
        where = doc.at("id")
        if any(t.id == spec.id for t in tiers):
            raise SegmentError(f"tier id '{spec.id}' appears twice", where, spec.id)
        src = doc.source("rule")
        check(src, symbols, want="bool")
        tiers.append(Tier(spec.id, spec.zh, spec.en, src, spec.strategy, where))
    if not tiers or tiers[-1].rule.text.strip().lower() != "true":
        last = tiers[-1].location if tiers else Location(shown, 1, 1)
        raise SegmentError("the last tier must catch every other customer (rule: 'true')", last)
    return TierScheme(tuple(tiers), shown)


def tier_expr(scheme: TierScheme, table: ir.Table, symbols: SymbolTable | None = None,
              as_of: dt.date | None = None) -> ir.StringValue:
    """The tier id of each row: the first tier whose rule holds (unknown counts as not holding)."""
    cases = [(compile_rule(t.rule, table, symbols, as_of=as_of), t.id) for t in scheme.tiers[:-1]]
    if not cases:
        return ibis.literal(scheme.tiers[-1].id, type="string")
    return ibis.cases(*cases, else_=scheme.tiers[-1].id)


def assign_tiers(scheme: TierScheme, table: ir.Table, symbols: SymbolTable | None = None,
                 as_of: dt.date | None = None) -> ir.Table:
    """``table`` with a ``tier`` column."""
    return table.mutate(tier=tier_expr(scheme, table, symbols, as_of))


def tier_summary(scheme: TierScheme, table: ir.Table, symbols: SymbolTable | None = None,
                 as_of: dt.date | None = None) -> list[TierRow]:
    """Customers, share and average total assets per tier, in scheme order (empty tiers included)."""
    t = assign_tiers(scheme, table, symbols, as_of)
    metrics = {"customers": t.count()}
    has_assets = "total_assets_fen" in t.columns
    if has_assets:
        metrics["avg_fen"] = t.total_assets_fen.mean()
    rows = t.group_by("tier").aggregate(**metrics).to_pyarrow().to_pylist()
    by_id = {r["tier"]: r for r in rows}
    total = sum(int(r["customers"]) for r in rows)
    out = []
    for tier in scheme.tiers:
        r = by_id.get(tier.id, {})
        n = int(r.get("customers", 0) or 0)
        avg = r.get("avg_fen")
        avg_rmb = (Decimal(str(avg)) / 100).quantize(Decimal("0.01"), ROUND_HALF_EVEN) if avg is not None else None
        out.append(TierRow(tier.id, tier.zh, tier.en, n, n / total if total else None, avg_rmb))
    return out
