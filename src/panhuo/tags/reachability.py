"""Reachability tags per channel (app push, SMS, WeChat, call): consent and technical reach; and the
PIPL refusal of personalised (model-driven) marketing.

Consent is the ``allowed`` of the latest ``contact_permissions`` row per customer and channel by
``updated_at`` (rows updated after ``as_of`` are not read; a row without ``updated_at`` is older than
any dated one; on a tie a refusal wins); no row means no consent. The latest row is picked in one
group-by: the maximum of ``(updated_at, refused)`` encoded as one integer, so the pick is the same
on every engine. Reach needs consent and the channel's technical condition: app push an app user,
SMS and call a phone number, WeChat a bound WeChat account.

The refusal of personalised marketing is a consent flag like any other (DESIGN.md section 7): the
``contact_permissions`` rows of channel ``personalised``, latest row by the same rule; ``allowed`` false
means refused, and no row means not refused (the default is the customer's consent to the channel).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import ibis

from panhuo.contract.schema import CHANNELS, PERSONALISED
from panhuo.tags._join import attach
from panhuo.tags.spec import TagContext, TagSpec

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["SPECS", "extend", "phone_present"]

_G = "reachability"
_ZH = {"app_push": "APP推送", "sms": "短信", "wechat": "微信", "call": "电话"}
_EN = {"app_push": "app push", "sms": "SMS", "wechat": "WeChat", "call": "phone call"}
_TECH = {
    "app_push": "app_user",
    "sms": "a phone number on file",
    "wechat": "customers.wechat_bound",
    "call": "a phone number on file",
}

SPECS: tuple[TagSpec, ...] = (
    *(
        TagSpec(f"consent_{c}", _G, "bool", f"{_ZH[c]}营销授权", f"consents to {_EN[c]} marketing",
                f"allowed of the latest contact_permissions row for channel {c} by updated_at "
                "(on or before as_of); no row: false")
        for c in CHANNELS
    ),
    *(
        TagSpec(f"reach_{c}", _G, "bool", f"{_ZH[c]}可触达", f"reachable by {_EN[c]}",
                f"consent_{c} and {_TECH[c]}")
        for c in CHANNELS
    ),
    TagSpec("refuses_personalised", _G, "bool", "拒绝个性化营销", "refuses personalised marketing (PIPL)",
            "not allowed in the latest contact_permissions row for channel personalised by updated_at "
            "(on or before as_of); no row: false"),
)


def phone_present(phone: ir.StringValue) -> ir.BooleanValue:
    return phone.notnull() & (phone.strip().length() > 0)


def extend(ctx: TagContext, base: ir.Table) -> ir.Table:
    """Add consent and reach; ``base`` has ``app_user`` and the customer columns ``_c_phone``, ``_c_wechat``."""
    p = ctx.contact_permissions
    end = ibis.literal(dt.datetime.combine(ctx.as_of + dt.timedelta(days=1), dt.time()), type="timestamp")
    ts = p.updated_at.cast("timestamp")
    p = p.filter(ts.isnull() | (ts < end))
    ts = p.updated_at.cast("timestamp")
    # latest row wins; among rows of the same second a refusal (odd key) wins
    key = ibis.ifelse(ts.isnull(), 0, ts.epoch_seconds().cast("int64") + 1) * 2 + ibis.ifelse(p.allowed, 0, 1)
    p = p.select(_pid=p.customer_id, _ch=p.channel, _key=key.cast("int64"))
    agg = p.group_by("_pid").agg(
        **{f"_k_{c}": p["_key"].max(where=p["_ch"] == c) for c in (*CHANNELS, PERSONALISED)}
    )
    j = attach(base, agg, "_pid")
    consent = {c: j[f"_k_{c}"].notnull() & ((j[f"_k_{c}"] % 2) == 0) for c in CHANNELS}
    phone = phone_present(j["_c_phone"])
    tech = {
        "app_push": j["app_user"],
        "sms": phone,
        "wechat": j["_c_wechat"].fill_null(False),
        "call": phone,
    }
    cols: dict[str, ir.Value] = {f"consent_{c}": consent[c].fill_null(False) for c in CHANNELS}
    cols |= {f"reach_{c}": (consent[c] & tech[c]).fill_null(False) for c in CHANNELS}
    refused = j[f"_k_{PERSONALISED}"]
    cols["refuses_personalised"] = (refused.notnull() & ((refused % 2) == 1)).fill_null(False)
    return j.mutate(**cols)
