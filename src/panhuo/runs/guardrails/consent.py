"""Guardrail 2: consent per channel, and the channel each customer is reached on.

Consent is the ``consent_<channel>`` tag (the latest ``contact_permissions`` row on or before the
as-of date; an SMS reply of T writes a refusal, so an SMS opt-out blocks SMS). Where the tags also
carry ``reach_<channel>`` (consent plus the technical condition: app user, phone, WeChat bound) it
is required too. An opt-out recorded since the tags were built (``opt_outs``, e.g. an SMS reply of T
to the callback endpoint, :mod:`panhuo.delivery.events`) arrives as ``_optout_<channel>`` (joined by
the run engine) and reads as no consent on that channel. The channel is the first of the playbook's
``order`` that passes, or its ``fixed`` channel; no such channel blocks the customer. A missing tag
column reads as no consent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis

from panhuo.runs.guardrails.base import Check, GuardContext, column_or

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["NAME", "REASONS", "channel_expr", "checks", "reachable"]

NAME = "consent"
REASONS = ("no_consent_app_push", "no_consent_sms", "no_consent_wechat", "no_consent_call", "no_consent_any_channel")


def reachable(t: ir.Table, channel: str) -> ir.BooleanValue:
    """Consent (and reach, when known; no opt-out) on ``channel``; never null."""
    ok = column_or(t, f"consent_{channel}", False).cast("boolean").fill_null(False)
    if f"reach_{channel}" in t.columns:
        ok = ok & t[f"reach_{channel}"].fill_null(False)
    if f"_optout_{channel}" in t.columns:
        ok = ok & ~t[f"_optout_{channel}"].fill_null(False)
    return ok


def channel_expr(t: ir.Table, ctx: GuardContext, *, caps: bool = False) -> ir.StringValue:
    """The first reachable channel of the playbook (null when none is); with ``caps``, also not at its
    frequency cap (:func:`panhuo.runs.guardrails.frequency.capped`)."""
    from panhuo.runs.guardrails.frequency import capped

    channels = ctx.spec.channel.channels
    ok = {c: reachable(t, c) & ~capped(t, c, ctx) if caps else reachable(t, c) for c in channels}
    return ibis.cases(*[(ok[c], c) for c in channels], else_=ibis.null("string"))


def checks(t: ir.Table, ctx: GuardContext) -> list[Check]:
    channels = ctx.spec.channel.channels
    reason = f"no_consent_{channels[0]}" if len(channels) == 1 else "no_consent_any_channel"
    return [(channel_expr(t, ctx).isnull(), reason)]
