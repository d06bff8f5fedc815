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


def test_refusal_of_personalised_marketing_is_the_latest_personalised_row(tags) -> None:
    assert tags["a"]["refuses_personalised"] is True  # allowed, then refused on as_of evening
    assert tags["c"]["refuses_personalised"] is False  # the refusal comes after as_of
    assert tags["e"]["refuses_personalised"] is False  # refused (undated), then allowed again
    assert tags["f"]["refuses_personalised"] is True  # allowed and refused in the same second
    assert tags["g"]["refuses_personalised"] is False  # no row: not refused
    # the personalised rows are no consent to any contact channel
    assert (tags["f"]["consent_sms"], tags["f"]["consent_app_push"]) == (False, False)
