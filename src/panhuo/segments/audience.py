"""The audience table segments are evaluated on: tags + scores + custom tags, one row per customer.

``audience(ws, con, as_of)`` joins the tag library's snapshot (``panhuo.tags.load_tags``) with the
scores (``panhuo.scores.load_scores``, when any are stored) and adds the workspace's custom tags.
Both packages are imported lazily: segments work, and are tested, without them through a tags
snapshot file (``tags_file``: Parquet with ``customer_id``, tag columns as the tag library stores
them, and optionally an ``as_of`` date column holding one or more snapshot dates).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import ibis

from panhuo.errors import WarehouseError
from panhuo.segments.library import Library, load_library
from panhuo.segments.symbols import SymbolTable, builtin_symbols, symbols_for_table

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace

__all__ = ["Audience", "attach_scores", "audience", "read_tags_file"]


@dataclass(frozen=True)
class Audience:
    """The table, the names usable in expressions, the snapshot date and the workspace's library."""

    table: ir.Table
    symbols: SymbolTable
    as_of: dt.date | None
    library: Library

    def count(self, segment: str) -> int:
        return self.library.count(segment, self.table, self.symbols, self.as_of)

    def members(self, segment: str) -> ir.Table:
        return self.library.members(segment, self.table, self.symbols, self.as_of)


def read_tags_file(con: BaseBackend, path: Path, as_of: dt.date | None = None) -> tuple[ir.Table, dt.date | None]:
    """A tags snapshot from a Parquet file; with an ``as_of`` column, the latest date on or before ``as_of``.

    Raises
    ------
    WarehouseError
        The file is missing, or holds no snapshot on or before ``as_of``.
    """
    path = Path(path)
    if not path.exists():
        raise WarehouseError(f"{path}: no such tags file")
    t = con.read_parquet(str(path))
    if "as_of" not in t.columns:
        return t, as_of
    dates = sorted(d for d in t.select("as_of").distinct().to_pyarrow().column(0).to_pylist() if d is not None)
    day = max((d for d in dates if as_of is None or d <= as_of), default=None)
    if day is None:
        first = dates[0].isoformat() if dates else "none"
        raise WarehouseError(f"{path}: no tags on or before {as_of.isoformat() if as_of else '?'} "
                             f"(first snapshot: {first})")
    t = t.filter(t.as_of == ibis.literal(day, type="date")).drop("as_of")
    return t, day


def attach_scores(tags: ir.Table, scores: ir.Table) -> ir.Table:
    """Left-join score columns (those not already in ``tags``) on ``customer_id``."""
    keep = [c for c in scores.columns if c not in tags.columns and c != "as_of"]
    if not keep:
        return tags
    s = scores.select(_sid=scores.customer_id, **{c: scores[c] for c in keep})
    j = tags.left_join(s, tags.customer_id == s._sid)
    return j.select(*tags.columns, *keep)


def _load_tags(ws: Workspace, con: BaseBackend, as_of: dt.date | None) -> tuple[ir.Table, dt.date | None]:
    try:
        from panhuo.tags import load_tags  # type: ignore[attr-defined]
    except ImportError as exc:
        raise WarehouseError("the tag library (panhuo.tags) is not available here; pass a tags snapshot "
                             "with --tags FILE.parquet") from exc
    table = load_tags(ws, con, as_of)
    day = as_of
    if "as_of" in table.columns:
        values = table.select("as_of").limit(1).to_pyarrow().column(0).to_pylist()
        day = values[0] if values else as_of
        table = table.drop("as_of")
    return table, day


def _scores(ws: Workspace, con: BaseBackend, as_of: dt.date | None) -> ir.Table | None:
    try:
        from panhuo.scores import load_scores  # type: ignore[attr-defined]
    except ImportError:
        return None
    try:
        return load_scores(ws, con, as_of)
    except WarehouseError:  # no scores computed yet: segments that need them fail on compile
        return None


def audience(
    ws: Workspace,
    con: BaseBackend,
    as_of: dt.date | None = None,
    *,
    tags_file: Path | None = None,
    library: Library | None = None,
) -> Audience:
    """Tags (+ scores + custom tags) as of ``as_of`` (default: the latest), ready for segments.

    Parameters
    ----------
    tags_file
        Read tags from this Parquet snapshot instead of the tag library (scores are still attached
        when stored).
    library
        The custom tags and segments (default: read from the workspace).

    Raises
    ------
    WarehouseError
        No tags on or before ``as_of``.
    SegmentError
        A custom tag or segment file is wrong.
    """
    if tags_file is not None:
        table, day = read_tags_file(con, tags_file, as_of)
    else:
        table, day = _load_tags(ws, con, as_of)
    scores = _scores(ws, con, day)
    if scores is not None:
        table = attach_scores(table, scores)
    lib = load_library(ws.root) if library is None else library
    # every known name (a score not computed yet reads "not in this data"), the table's own kinds first
    base = builtin_symbols().with_symbols(symbols_for_table(table).values())
    table = lib.extend(table, base, day)
    return Audience(table, lib.symbols(base), day, lib)
