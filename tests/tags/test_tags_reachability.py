"""Reachability: latest permission per channel (ties refuse, later rows ignored) and technical reach."""

from __future__ import annotations


def test_consent_is_the_latest_row_per_channel(tags) -> None:
    a = tags["a"]
    assert a["consent_app_push"] is False  # allowed, then refused; the re-allow is after as_of
    assert a["consent_sms"] is True  # one row without updated_at
    assert a["consent_wechat"] is False  # allowed and refused at the same second: refusal wins
    assert a["consent_call"] is True  # updated on as_of evening
    assert tags["e"]["consent_call"] is False  # only a row after as_of
    assert tags["g"]["consent_sms"] is False  # no row at all


def test_reach_needs_consent_and_the_channel(tags) -> None:
    a = tags["a"]
    assert (a["reach_app_push"], a["reach_sms"], a["reach_wechat"], a["reach_call"]) == (False, True, False, True)
    b = tags["b"]
    assert (b["consent_sms"], b["reach_sms"]) == (True, False)  # empty phone
    assert b["reach_app_push"] is True  # consent and an app user by login
    c = tags["c"]
    assert (c["consent_wechat"], c["reach_wechat"], c["consent_app_push"], c["reach_app_push"]) == (
        True, False, True, False)
    assert tags["e"]["reach_wechat"] is True
