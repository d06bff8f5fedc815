"""Engagement tags against hand-computed values: logins, active days, monthly active, app user."""

from __future__ import annotations

from tests.status.conftest import D


def test_logins_and_active_days(tags) -> None:
    a = tags["a"]
    assert a["last_login"] == D("2026-10-26")  # the 2026-11-25 login is after as_of
    # logins: 10-26 00:00 (day 30) in 30d; 10-25 23:59:59 only in 90d; 08-27 (day 90) in 90d; 08-26 out
    assert (a["logins_30d"], a["logins_90d"]) == (1, 3)
    # active days: 10-26, 11-01 (two push opens, one day), 11-24 | + 10-25, 08-27
    assert (a["active_days_30d"], a["active_days_90d"]) == (3, 5)
    assert (a["content_views_30d"], a["push_opens_30d"]) == (1, 2)
    assert a["monthly_active"] is True


def test_app_user_from_flag_or_login(tags) -> None:
    assert tags["a"]["app_user"] is True
    assert tags["b"]["app_user"] is True  # flag unknown, but logged in
    assert tags["b"]["monthly_active"] is False
    assert tags["c"]["app_user"] is False
    assert (tags["g"]["app_user"], tags["g"]["last_login"], tags["g"]["logins_90d"]) == (False, None, 0)


def test_complaints_count_in_90_days_and_are_not_app_activity(tags) -> None:
    c = tags["c"]
    # 08-27 00:00 (day 90) and 11-24 18:00 count; 08-26 23:59:59 and 11-25 do not
    assert c["complaints_90d"] == 2
    assert (c["active_days_30d"], c["active_days_90d"], c["app_user"], c["last_login"]) == (0, 0, False, None)
    a = tags["a"]
    assert a["complaints_90d"] == 1
    assert (a["active_days_30d"], a["active_days_90d"]) == (3, 5)  # its complaint day had push opens
    assert tags["g"]["complaints_90d"] == 0  # no events at all
