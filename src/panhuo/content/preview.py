"""``panhuo playbook preview``: a playbook's messages rendered for one real customer, masked.

The customer comes from the stored tag snapshot (:func:`panhuo.tags.load_tags`) on or before the
as-of date: the one named, or one drawn at random (``seed`` makes the draw repeatable). Only that
customer's row is read; the phone number is read from the warehouse's ``customers`` table for that
one customer and masked before any template sees it (PIPL: minimise what is shown).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from panhuo.content.render import RenderedMessage, message_variables, render_content
from panhuo.errors import ConfigError

if TYPE_CHECKING:
    from ibis import BaseBackend

    from panhuo.config import Workspace
    from panhuo.playbooks.loader import LoadedPlaybook

__all__ = ["Preview", "build_preview", "customer_phone", "customer_tags"]


@dataclass
class Preview:
    """The rendered messages of one playbook for one customer (personal data masked)."""

    playbook_id: str
    source: str
    customer_id: str
    as_of: dt.date
    benefit_id: str | None
    benefit_name: str
    messages: list[RenderedMessage] = field(default_factory=list)
    channels_without_template: list[str] = field(default_factory=list)


def customer_tags(
    ws: Workspace, con: BaseBackend, customer_id: str | None, as_of: dt.date | None, seed: int | None = None
) -> dict[str, Any]:
    """One customer's tag row (``as_of`` included) from the latest snapshot on or before ``as_of``."""
    from panhuo.tags import load_tags

    t = load_tags(ws, con, as_of)
    if customer_id is not None:
        rows = t.filter(t.customer_id == customer_id).limit(1).to_pyarrow().to_pylist()
        if not rows:
            raise ConfigError(f"--customer {customer_id!r}: no such customer in the tag snapshot "
                              f"on or before {as_of or 'today'} (see 'panhuo tags')")
        return rows[0]
    n = int(t.count().to_pyarrow().as_py())
    if n == 0:
        raise ConfigError("the tag snapshot has no customers")
    k = random.Random(seed).randrange(n)
    return t.order_by("customer_id").limit(1, offset=k).to_pyarrow().to_pylist()[0]


def customer_phone(ws: Workspace, con: BaseBackend, customer_id: str) -> str | None:
    """The phone of one customer from the load in force, or None (no warehouse, no column, no row)."""
    from panhuo.errors import WarehouseError
    from panhuo.warehouse import Warehouse

    try:
        wh = Warehouse(ws.warehouse_dir)
        if not wh.has_table("customers"):
            return None
        c = wh.table(con, "customers")
        if "phone" not in c.columns:
            return None
        rows = c.filter(c.customer_id.cast("string") == customer_id).select("phone").limit(1).to_pyarrow().to_pylist()
    except WarehouseError:
        return None
    return rows[0]["phone"] if rows else None


def build_preview(
    ws: Workspace,
    loaded: LoadedPlaybook,
    *,
    customer_id: str | None = None,
    as_of: dt.date | None = None,
    seed: int | None = None,
) -> Preview:
    """Render every channel of ``loaded``'s ``content:`` for one customer; ContentError when a check fails."""
    from panhuo.benefits import load_catalogue
    from panhuo.engines import connect

    spec = loaded.spec
    catalogue = load_catalogue(ws)
    first = spec.benefit.items[0] if spec.benefit.items else None
    benefit_name = catalogue.items[first].name.zh if first in catalogue else (first or "")
    content = getattr(spec, "content", None)
    con = connect(ws.settings.engine, ws.tmp_dir)
    row = customer_tags(ws, con, customer_id, as_of, seed)
    cid = str(row["customer_id"])
    settings = ws.settings.content
    variables = message_variables(row, settings=settings, benefit_name=benefit_name,
                                  link=content.link if content is not None else None,
                                  phone=customer_phone(ws, con, cid))
    preview = Preview(spec.id, loaded.source, cid, row["as_of"], first, benefit_name)
    if content is not None:
        preview.messages = render_content(content, variables, settings, file=loaded.source, yaml_text=loaded.text,
                                          templates_dir=ws.root / "templates")
    have = {m.channel for m in preview.messages}
    preview.channels_without_template = [c for c in spec.channel.channels if c not in have]
    return preview
