"""The tag catalogue (``TAGS``, ``tag_spec``) and the one wide expression that computes every tag.

``tags_expr(ctx)`` starts from the customers opened on or before ``as_of`` joined with the stored
status snapshot, lets every group add its columns (:data:`GROUP_MODULES`, in catalogue order;
engagement before reachability, which needs ``app_user``) and keeps ``customer_id`` plus one stored
column per tag.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

import pyarrow as pa

from panhuo.tags import assets, engagement, lifecycle, profile, reachability, response, trading
from panhuo.tags._join import attach
from panhuo.tags.spec import TagContext, TagSpec

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["GROUP_MODULES", "TAGS", "TAG_SCHEMA", "stored_columns", "tag_spec", "tags_expr"]

#: the tag groups in the order their columns are computed and stored
GROUP_MODULES: tuple[ModuleType, ...] = (assets, trading, engagement, reachability, profile, lifecycle, response)

TAGS: tuple[TagSpec, ...] = tuple(s for m in GROUP_MODULES for s in m.SPECS)

_BY_NAME: dict[str, TagSpec] = {s.name: s for s in TAGS}
if len(_BY_NAME) != len(TAGS):  # pragma: no cover - guarded by a test too
    raise RuntimeError("duplicate tag names in the catalogue")

#: the stored wide table: customer_id, then one column per tag (money as int64 fen)
TAG_SCHEMA = pa.schema([("customer_id", pa.string())] + [(s.stored, s.arrow_type) for s in TAGS])


def tag_spec(name: str) -> TagSpec:
    """The spec of tag ``name`` (the stored name ``<name>_fen`` of a money tag is accepted too).

    Raises
    ------
    KeyError
        No such tag; the message lists the close names.
    """
    spec = _BY_NAME.get(name)
    if spec is None and name.endswith("_fen"):
        spec = _BY_NAME.get(name[: -len("_fen")])
        if spec is not None and spec.kind != "money":
            spec = None
    if spec is None:
        import difflib

        close = difflib.get_close_matches(name, list(_BY_NAME), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise KeyError(f"unknown tag {name!r}{hint}")
    return spec


def stored_columns() -> list[str]:
    return [s.stored for s in TAGS]


def _base(ctx: TagContext) -> ir.Table:
    c = ctx.customers.filter(ctx.customers.open_date <= ctx.day)
    c = c.select(
        customer_id=c.customer_id.cast("string"),
        _c_open=c.open_date,
        _c_birth_year=c.birth_year,
        _c_province=c.province,
        _c_branch=c.branch_id,
        _c_advisor=c.advisor_id,
        _c_risk=c.risk_level,
        _c_assessed=c.risk_assessed_on,
        _c_phone=c.phone,
        _c_app_user=c.app_user,
        _c_wechat=c.wechat_bound,
    )
    s = ctx.status
    s = s.select(
        _sid=s.customer_id,
        _st_status=s.status,
        _st_since=s.status_since,
        _st_total=s.total_assets_fen,
        _st_cash=s.cash_fen,
        _st_prod=s.product_value_fen,
        _st_last_trade=s.last_trade_date,
    )
    return attach(c, s, "_sid")


def tags_expr(ctx: TagContext) -> ir.Table:
    """Every tag of every customer opened on or before ``ctx.as_of``: the stored wide table."""
    t = _base(ctx)
    for module in GROUP_MODULES:
        t = module.extend(ctx, t)
    return t.select("customer_id", *[t[s.stored].cast(s.ibis_type).name(s.stored) for s in TAGS])
