"""Segments, custom tags and tiers (分层): a small safe expression language over tags and scores.

The API other stages (playbooks) use::

    audience(ws, con, as_of=None) -> Audience              # tags + scores + custom tags; .count(), .members()
    load_library(ws.root) -> Library                       # tags/*.yaml, segments/*.yaml (+ built-ins)
    compile_rule(text, table, symbols=None, as_of=None)    # an expression -> Ibis boolean (never null)
    load_tiers() -> TierScheme; tier_summary(scheme, table, symbols, as_of)

Expressions are parsed by panhuo's own tokenizer and parser (``expr``), type-checked and compiled
to Ibis (``compiler``); user text is never evaluated as Python.
"""

from __future__ import annotations

from panhuo.segments.audience import Audience, audience, read_tags_file
from panhuo.segments.compiler import check, compile_expr, compile_rule, names_used
from panhuo.segments.errors import Location, SegmentError
from panhuo.segments.export import export_segment, mask_phone
from panhuo.segments.expr import FUNCTIONS, Source, parse
from panhuo.segments.library import Library, Segment, load_library
from panhuo.segments.symbols import BUILTIN, Symbol, SymbolTable, builtin_symbols, symbols_for_table
from panhuo.segments.tiers import Tier, TierRow, TierScheme, assign_tiers, load_tiers, tier_expr, tier_summary

__all__ = [
    "BUILTIN",
    "FUNCTIONS",
    "Audience",
    "Library",
    "Location",
    "Segment",
    "SegmentError",
    "Source",
    "Symbol",
    "SymbolTable",
    "Tier",
    "TierRow",
    "TierScheme",
    "assign_tiers",
    "audience",
    "builtin_symbols",
    "check",
    "compile_expr",
    "compile_rule",
    "export_segment",
    "load_library",
    "load_tiers",
    "mask_phone",
    "names_used",
    "parse",
    "read_tags_file",
    "symbols_for_table",
    "tier_expr",
    "tier_summary",
]
