"""Override files: the shipped one, the brokerage's merged on top, and clear errors for bad files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from panhuo.calendar import (
    SHIPPED_OVERRIDE_FILE,
    CalendarOverrideError,
    build_calendar,
    calendar_for,
    get_calendar,
    load_override_file,
)
from panhuo.calendar import service
from panhuo.config import Workspace
from panhuo.errors import CalendarError, ConfigError

__all__: list[str] = []

D = dt.date
Writer = Callable[..., Path]

# A made-up 2027 (the real one is not published yet): the closures of a plausible year.
FAKE_2027 = """
    version: 1
    years:
      2027:
        source: test fixture, not a real notice
        trading_days: {count}
        closures: [2027-01-01, 2027-02-05, 2027-02-08, 2027-02-09, 2027-02-10, 2027-02-11, 2027-10-01]
"""
FAKE_2027_TRADING_DAYS = 261 - 7  # 2027 has 261 weekdays


def test_shipped_file_is_valid_and_cites_a_notice_per_year() -> None:
    data = load_override_file(SHIPPED_OVERRIDE_FILE)
    assert {2024, 2025, 2026} <= set(data.years)
    assert 2027 not in data.years  # not published as of 2026-11-25
    for year, entry in data.years.items():
        assert f"关于{year}年部分节假日休市安排的通知" in entry.source
        assert entry.trading_days is not None


def test_brokerage_file_adds_a_year(write_override: Writer, fresh_cache: None) -> None:
    path = write_override(FAKE_2027.format(count=FAKE_2027_TRADING_DAYS))
    cal = get_calendar(str(path))
    assert cal.last_year == 2027 and cal.is_covered_year(2027)
    assert cal.next_trading_day(D(2026, 12, 31)) == D(2027, 1, 4)
    assert not cal.is_trading_day(D(2027, 2, 10))
    cov = cal.coverage(2027)
    assert cov.base is not None and str(path) in cov.base
    assert cov.trading_days == FAKE_2027_TRADING_DAYS
    # the default calendar is untouched, and the brokerage calendar is cached
    assert not get_calendar().is_covered_year(2027)
    assert get_calendar(str(path)) is cal


def test_brokerage_file_adds_and_removes_closures(write_override: Writer) -> None:
    path = write_override(
        """
        years:
          2025:
            source: 临时休市 test notice
            add_closures: [2025-07-15, 2025-01-01]
            remove_closures: [2025-06-02]
        """
    )
    cal = build_calendar(path)
    assert not cal.is_trading_day(D(2025, 7, 15))
    assert cal.is_trading_day(D(2025, 6, 2))
    cov = cal.coverage(2025)
    assert cov.trading_days == 243
    assert any("2025-07-15" in c for c in cov.changes) and any("2025-06-02" in c for c in cov.changes)
    assert any("2025-01-01" in n and "already" in n for n in cov.notes)
    assert len(cov.sources) == 2  # the shipped notice and the brokerage's


def test_full_list_replaces_exchange_calendars_for_a_covered_year(write_override: Writer) -> None:
    path = write_override(
        """
        years:
          2026:
            source: test
            closures: [2026-01-01]
        """
    )
    cal = build_calendar(path)
    assert cal.closures(2026) == [D(2026, 1, 1)]
    assert cal.is_trading_day(D(2026, 10, 1))


def test_shipped_trading_day_count_catches_a_drifting_exchange_calendars(
    monkeypatch: pytest.MonkeyPatch, fresh_cache: None
) -> None:
    real = service._exchange_closures

    def drifted() -> tuple[dict[int, set[dt.date]], str]:
        closures, label = real()
        closures[2025] = closures[2025] - {D(2025, 2, 4)}  # an exchange_calendars release that forgot a day
        return closures, label

    monkeypatch.setattr(service, "_exchange_closures", drifted)
    with pytest.raises(CalendarOverrideError, match=r"xshg_overrides\.yaml: field years\.2025\.trading_days"):
        get_calendar()


def test_add_closures_need_a_covered_year(write_override: Writer) -> None:
    path = write_override(
        """
        years:
          2027:
            source: test
            add_closures: [2027-01-01]
        """
    )
    with pytest.raises(CalendarOverrideError, match=r"field years\.2027: 2027 is not covered") as info:
        build_calendar(path)
    assert str(path) in str(info.value)


def test_covered_years_must_follow_one_another(write_override: Writer) -> None:
    path = write_override(
        """
        years:
          2028:
            source: test
            closures: [2028-01-03]
        """
    )
    with pytest.raises(CalendarOverrideError, match="2027 is not covered"):
        build_calendar(path)


def test_trading_days_check_of_a_brokerage_file(write_override: Writer) -> None:
    path = write_override(FAKE_2027.format(count=250))
    with pytest.raises(CalendarOverrideError, match=r"years\.2027\.trading_days: 2027 has 254 trading days"):
        build_calendar(path)


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ("years: {2025: {source: test notice, add_closures: [2025-10-04]}}", "years.2025.add_closures.0", "Saturday"),
        ("years: {2025: {source: test notice, remove_closures: [2025-09-28]}}", "years.2025.remove_closures.0",
         "never trading days"),
        ("years: {2025: {source: test notice, add_closures: [2024-12-31]}}", "years.2025.add_closures.0", "not in 2025"),
        ("years: {2025: {source: test notice, add_closures: [2025-02-30]}}", "years.2025.add_closures.0", "not a date"),
        ("years: {2025: {source: test notice, add_closures: [20250707]}}", "years.2025.add_closures.0", "not a date"),
        ("years: {2025: {add_closures: [2025-07-07]}}", "years.2025.source", "required"),
        ("years: {2025: {source: test notice, add_closure: [2025-07-07]}}", "years.2025.add_closure", "xtra"),
        ("years: {2025: {source: test notice, closures: [2025-01-01], add_closures: [2025-07-07]}}", "years.2025",
         "not both"),
        ("years: {2025: {source: test notice, add_closures: [2025-07-07, 2025-07-07]}}", "years.2025.add_closures.1",
         "twice"),
        ("version: 2", "version", "1"),
        ("exchange: XSHE", "exchange", "XSHG"),
        ("years: {next: {source: test notice}}", "years.next", "year key"),
        ("years: {2025: {source: test notice, trading_days: 400}}", "years.2025.trading_days", "262"),
    ],  # fmt: skip
)
def test_bad_file_error_names_file_and_field(write_override: Writer, body: str, field: str, reason: str) -> None:
    path = write_override(body, name="broker-closures.yaml")
    with pytest.raises(CalendarOverrideError) as info:
        build_calendar(path)
    message = str(info.value)
    assert f"{path}: field {field}" in message
    assert reason in message
    # catchable both as a calendar problem and as a configuration problem
    assert isinstance(info.value, CalendarError) and isinstance(info.value, ConfigError)


def test_unreadable_and_malformed_files(write_override: Writer, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(CalendarOverrideError, match="nope.yaml: cannot read"):
        build_calendar(missing)
    with pytest.raises(CalendarOverrideError, match="not valid YAML"):
        build_calendar(write_override("years: [2025: {"))
    with pytest.raises(CalendarOverrideError, match="expected a mapping"):
        build_calendar(write_override("- 2025-01-01"))


def test_empty_brokerage_file_changes_nothing(write_override: Writer) -> None:
    cal = build_calendar(write_override(""))
    assert cal.coverage(2025).trading_days == 243


def test_workspace_override_file_is_relative_to_the_workspace(tmp_path: Path, fresh_cache: None) -> None:
    ws = Workspace.open(tmp_path / "ws")
    (ws.root / "closures.yaml").write_text(
        FAKE_2027.format(count=FAKE_2027_TRADING_DAYS).replace("\n    ", "\n"), encoding="utf-8"
    )
    settings = ws.settings.model_copy(update={"calendar": ws.settings.calendar.model_copy(
        update={"override_file": "closures.yaml"})})  # fmt: skip
    ws = ws.save(settings)
    assert calendar_for(ws).is_covered_year(2027)
    assert not calendar_for(Workspace.open(tmp_path / "other")).is_covered_year(2027)
