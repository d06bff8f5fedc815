"""Customer tags (标签): a catalogue of small specs, each one portable Ibis expression, stored per as-of date.

The API other stages use::

    TAGS, tag_spec(name)                                   # the catalogue: name, group, kind, zh, en, how
    compute_tags(ws, con, as_of, progress=None) -> TagResult   # compute and store <warehouse>/tags/<date>.parquet
    load_tags(ws, con, as_of=None) -> ibis.Table           # latest snapshot on or before as_of (money in *_fen)
    describe_tags(ws, con, as_of=None) -> list[TagDistribution]
    contact_rows(contact_history, extra)                   # the hook for panhuo's own sends (measurement)
"""

from __future__ import annotations

from panhuo.tags.catalogue import TAG_SCHEMA, TAGS, tag_spec, tags_expr
from panhuo.tags.describe import TagDistribution, describe_tags
from panhuo.tags.response import CONTACT_COLUMNS, contact_rows
from panhuo.tags.spec import GROUPS, KINDS, TagContext, TagSpec
from panhuo.tags.store import TagResult, TagSnapshot, compute_tags, load_tags, tag_snapshots

__all__ = [
    "CONTACT_COLUMNS",
    "GROUPS",
    "KINDS",
    "TAGS",
    "TAG_SCHEMA",
    "TagContext",
    "TagDistribution",
    "TagResult",
    "TagSnapshot",
    "TagSpec",
    "compute_tags",
    "contact_rows",
    "describe_tags",
    "load_tags",
    "tag_snapshots",
    "tag_spec",
    "tags_expr",
]
