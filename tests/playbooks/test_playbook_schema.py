"""Playbook YAML validation: every error names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from panhuo.playbooks import PlaybookError, load_playbook, validate_playbook
from panhuo.playbooks.rules import in_quiet_hours

__all__: list[str] = []

GOOD = """\
id: ipo-day-wake-sleeping
name: 新股申购日唤醒沉睡客户
timing:    {trigger: market_event, event: ipo_subscription, send_window: ["09:15", "11:00"], reentry: once_ever}
user:      {segment: sleeping_alive, exclude: [complained_90d], max_audience: 200000}
benefit:   {items: [ipo-guide-video, level2-trial-7d]}
method:    {mode: automated, holdout: 0.10, allocation: thompson,
            success: {event: trade, within_trading_days: 10}}
channel:   {order: [app_push, wechat, sms]}
"""


def _issue(text: str, file: str = "playbooks/ipo.yaml") -> str:
    with pytest.raises(PlaybookError) as info:
        validate_playbook(text, file)
    return str(info.value.issues[0])


def test_design_example_is_valid() -> None:
    spec = validate_playbook(GOOD, "playbooks/ipo.yaml")
    assert spec.method.holdout == 0.10 and spec.channel.channels == ["app_push", "wechat", "sms"]
    assert spec.timing.reentry.policy == "once_ever"


def test_invalid_yaml_names_file_and_line() -> None:
    text = GOOD.replace("user:      {segment: sleeping_alive,", "user:      {segment: [sleeping_alive,")
    msg = _issue(text)
    assert msg.startswith("playbooks/ipo.yaml line 4") and "invalid YAML" in msg


def test_unknown_field_names_line_and_path() -> None:
    msg = _issue(GOOD.replace("max_audience: 200000", "max_audience: 200000, maxaudience: 5"))
    assert msg == "playbooks/ipo.yaml line 4, field user.maxaudience: unknown field 'maxaudience' (did you mean 'max_audience'?)"


def test_holdout_out_of_range() -> None:
    msg = _issue(GOOD.replace("holdout: 0.10", "holdout: 0.6"))
    assert msg.startswith("playbooks/ipo.yaml line 6, field method.holdout: must be between 0 and 0.5")


def test_send_window_outside_allowed_hours() -> None:
    msg = _issue(GOOD.replace('["09:15", "11:00"]', '["20:00", "22:00"]'))
    assert msg.startswith("playbooks/ipo.yaml line 3, field timing.send_window: send window 20:00-22:00 is outside")
    assert "08:00-21:00" in msg


def test_send_window_outside_trading_hours_for_ipo() -> None:
    msg = _issue(GOOD.replace('["09:15", "11:00"]', '["15:30", "18:00"]'))
    assert "line 3, field timing.send_window" in msg and "trading hours" in msg and "ipo_subscription" in msg


def test_playbook_quiet_hours_narrow_the_window() -> None:
    text = GOOD.replace('reentry: once_ever', 'reentry: once_ever, quiet_hours: ["10:30", "08:00"]')
    assert "this playbook's quiet_hours" in _issue(text)


def test_dormant_audience_needs_activation_purpose() -> None:
    text = GOOD.replace("segment: sleeping_alive", "segment: dormant")
    msg = _issue(text)
    assert msg.startswith("playbooks/ipo.yaml line 4, field user.segment:") and "activation_invite" in msg
    text_with_purpose = text.replace("name: 新", "purpose: reactivation\nname: 新")
    assert _issue(text_with_purpose).startswith("playbooks/ipo.yaml line 2, field purpose:")
    ok = text.replace("name: 新", "purpose: activation_invite\nname: 新")
    assert validate_playbook(ok).purpose == "activation_invite"


def test_dormant_in_inline_rule_is_caught() -> None:
    text = GOOD.replace("segment: sleeping_alive", "rule: \"status == 'dormant' and cash < 100\"")
    assert "activation_invite" in _issue(text)


def test_unquoted_time_is_explained() -> None:
    msg = _issue(GOOD.replace('["09:15", "11:00"]', "[09:15, 11:00]"))
    assert "field timing.send_window[1]" in msg and '"11:00"' in msg


def test_unknown_trigger_and_missing_trigger() -> None:
    assert "trigger 'weird' is not one of" in _issue(GOOD.replace("trigger: market_event", "trigger: weird"))
    msg = _issue(GOOD.replace("trigger: market_event, ", ""))
    assert "line 3, field timing.trigger: required field 'trigger' is missing" in msg


def test_missing_element_and_bad_enum() -> None:
    assert _issue(GOOD.replace("benefit:   {items: [ipo-guide-video, level2-trial-7d]}\n", "")) == (
        "playbooks/ipo.yaml line 1, field benefit: required field is missing"
    )
    assert "line 7, field method.success.event: 'trades' is not one of" in _issue(GOOD.replace("event: trade,", "event: trades,"))


def test_duplicate_key_is_refused() -> None:
    assert "line 9, field name: duplicate key 'name' (first on line 2)" in _issue(GOOD + "name: again\n")


def test_every_issue_is_reported() -> None:
    text = GOOD.replace("holdout: 0.10", "holdout: 0.9").replace("max_audience: 200000", "max_audience: 0")
    with pytest.raises(PlaybookError) as info:
        validate_playbook(text, "f.yaml")
    assert {i.field for i in info.value.issues} == {"method.holdout", "user.max_audience"}


@pytest.mark.parametrize(("old", "new", "field"), [
    ("reentry: once_ever", "reentry: {policy: every_n_trading_days}", "timing.reentry"),
    ("channel:   {order: [app_push, wechat, sms]}", "channel:   {order: [sms], fixed: sms}", "channel"),
    ("mode: automated", "mode: advisor_led", "channel"),
    ("allocation: thompson,", "allocation: thompson, arms: [{id: only-one}],", "method.arms"),
    ("items: [ipo-guide-video,", "items: [Bad_Id,", "benefit.items[0]"),
    ("exclude: [complained_90d]", "exclude: [sleeping_alive]", "user.exclude"),
])
def test_cross_field_rules_name_the_field(old: str, new: str, field: str) -> None:
    assert old in GOOD
    with pytest.raises(PlaybookError) as info:
        validate_playbook(GOOD.replace(old, new), "f.yaml")
    assert info.value.issues[0].field == field


def test_schedule_trigger_rules() -> None:
    sched = GOOD.replace("trigger: market_event, event: ipo_subscription",
                         'trigger: schedule, schedule: every_trading_day, at: "09:30"')
    assert validate_playbook(sched).timing.trigger == "schedule"
    assert "every_trading_day needs at" in _issue(sched.replace(', at: "09:30"', ""))
    assert "outside the send window" in _issue(sched.replace('"09:30"', '"12:00"'))
    before = sched.replace('schedule: every_trading_day, at: "09:30"', "schedule: n_trading_days_before, n: 3")
    assert "needs n (1-60) and event" in _issue(before)


def test_file_is_named_as_given(tmp_path: Path) -> None:
    f = tmp_path / "ipo.yaml"
    f.write_text(GOOD.replace("holdout: 0.10", "holdout: -0.1"), encoding="utf-8")
    with pytest.raises(PlaybookError, match=rf"^{f} line 6, field method.holdout"):
        load_playbook(f)
    f.write_bytes("id: 新".encode("gbk"))
    with pytest.raises(PlaybookError, match="not UTF-8"):
        load_playbook(f)


def test_quiet_hours_wrap_midnight() -> None:
    quiet = ("21:00", "08:00")
    assert in_quiet_hours(21 * 60, quiet) and in_quiet_hours(7 * 60 + 59, quiet)
    assert not in_quiet_hours(8 * 60, quiet) and not in_quiet_hours(20 * 60 + 59, quiet)
