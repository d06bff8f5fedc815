"""``panhuo calendar``: check which years the trading calendar covers, count and step trading days.

``check`` exits with code 1 (and a red warning) when the year asked about is not covered, when the
current year is not covered, or in December when next year's closures are not in yet; any other
command raises CalendarError (exit code 2) for an uncovered date. The workspace's
``calendar.override_file`` is merged into the calendar.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.panel import Panel
from rich.text import Text

from panhuo.calendar.crosscheck import chinese_calendar_differences, holiday_runs
from panhuo.calendar.service import TradingCalendar, calendar_for, shanghai_today
from panhuo.cli._common import console, workspace
from panhuo.errors import ConfigError

__all__ = ["register", "calendar_app"]

calendar_app = typer.Typer(
    name="calendar",
    help="The trading calendar (SSE/SZSE sessions): coverage per year, trading days between dates.",
    no_args_is_help=True,
)

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ConfigError(f"option {option}: {value!r} is not a date (YYYY-MM-DD)") from exc


def _calendar() -> TradingCalendar:
    return calendar_for(workspace())


def _alarm(title: str, lines: list[str]) -> None:
    console.print(
        Panel(
            Text("\n".join(lines), style="bold red"),
            title=f"[bold red]WARNING: {title}[/]",
            border_style="red",
        )
    )


@calendar_app.command("check")
def check(
    year: Annotated[
        int | None, typer.Option("--year", "-y", help="the year to check (default: this year)")
    ] = None,
    today: Annotated[
        str | None,
        typer.Option("--today", help="pretend today is this date (YYYY-MM-DD), for testing", hidden=True),
    ] = None,
) -> None:
    """Is YEAR covered, by which source; its trading days and holidays. Exit code 1 if a warning."""
    now = _date(today, "--today") if today else shanghai_today()
    year = now.year if year is None else year
    cal = _calendar()
    override = workspace().settings.calendar.override_file
    cov = cal.coverage(year)
    failed = False
    console.print(
        f"[bold]Trading calendar {year}[/] (SSE/SZSE, Asia/Shanghai; "
        f"covered years {cal.first_year}-{cal.last_year})"
    )
    console.print(f"  brokerage override file: {override or '(none: calendar.override_file not set)'}")
    if not cov.covered:
        failed = True
        _alarm(
            f"{year} IS NOT COVERED by the trading calendar",
            [
                f"The exchanges' closures for {year} are not in the calendar "
                f"(it covers {cal.first_year}-{cal.last_year}).",
                f"Every trading-day question about {year} fails (windows, triggers, 'next trading day').",
                f"When SSE publishes 《关于{year}年部分节假日休市安排的通知》, add a {year} entry with the full list",
                "of weekday closures to the override file (calendar.override_file in panhuo.yaml).",
            ],
        )
    else:
        console.print(f"  [green]covered[/] by {cov.base}")
        for source in cov.sources:
            console.print(f"  checked against {source}")
        for change in cov.changes:
            console.print(f"  correction: {change}")
        for note in cov.notes:
            console.print(f"  [yellow]note:[/] {note}")
        console.print(
            f"  [bold]{cov.trading_days}[/] trading days, {len(cov.closures)} weekday closures "
            "(weekends, make-up workdays 调休 included, are always closed)"
        )
        console.print("  holidays:")
        for run in holiday_runs(cal, year):
            span = run.first.isoformat()
            if run.last != run.first:
                span += f" .. {run.last.isoformat()}"
            plural = "s" if run.weekdays != 1 else ""
            console.print(f"    {span:<24} {run.name} ({run.weekdays} weekday{plural} closed)")
        diffs = chinese_calendar_differences(cal, year)
        if diffs is None:
            console.print(f"  chinesecalendar has no data for {year}: no cross-check")
        elif not diffs:
            console.print("  cross-check with chinesecalendar (workday and Mon-Fri): no difference")
        else:
            console.print(
                f"  cross-check with chinesecalendar (workday and Mon-Fri): {len(diffs)} difference(s)"
            )
            for d in diffs:
                console.print(f"    {d.day.isoformat()} {_WEEKDAYS[d.day.weekday()]}: {d.reason}")
    if year != now.year and not cal.is_covered_year(now.year):
        failed = True
        _alarm(
            f"THIS YEAR ({now.year}) IS NOT COVERED",
            [
                f"Today is {now.isoformat()} and the calendar covers {cal.first_year}-{cal.last_year}: "
                f"add {now.year}'s closures to the override file."
            ],
        )
    elif now.month == 12 and not cal.is_covered_year(now.year + 1) and year != now.year + 1:
        failed = True
        _alarm(
            f"NEXT YEAR ({now.year + 1}) IS NOT COVERED YET",
            [
                f"Today is {now.isoformat()}; from 1 January {now.year + 1} every trading-day "
                "question will fail.",
                f"Add the {now.year + 1} closures (SSE notice, usually published in December) "
                "to the override file.",
            ],
        )
    if failed:
        raise typer.Exit(code=1)


@calendar_app.command("days")
def days(
    start: Annotated[str, typer.Option("--from", help="first date (YYYY-MM-DD), included")],
    end: Annotated[str, typer.Option("--to", help="last date (YYYY-MM-DD), included")],
    show: Annotated[bool, typer.Option("--list/--no-list", help="list the trading days")] = False,
) -> None:
    """Trading days from --from to --to, both included."""
    first, last = _date(start, "--from"), _date(end, "--to")
    if last < first:
        raise ConfigError(f"option --to: {last.isoformat()} is before --from {first.isoformat()}")
    sessions = _calendar().sessions(first, last)
    if not sessions:
        console.print(f"{first.isoformat()} .. {last.isoformat()}: 0 trading days")
        return
    console.print(
        f"{first.isoformat()} .. {last.isoformat()}: {len(sessions)} "
        f"trading day{'s' if len(sessions) != 1 else ''} "
        f"(first {sessions[0].isoformat()}, last {sessions[-1].isoformat()})"
    )
    if show:
        for day in sessions:
            console.print(f"  {day.isoformat()} {_WEEKDAYS[day.weekday()]}")


@calendar_app.command("next")
def next_day(
    day: Annotated[str, typer.Argument(help="a date (YYYY-MM-DD)")],
    n: Annotated[int, typer.Option("--n", "-n", help="trading days to step (negative: back)")] = 1,
) -> None:
    """The trading day N trading days after DAY (default: the next one)."""
    d = _date(day, "DAY")
    cal = _calendar()
    if n == 0:
        raise ConfigError("option --n: give a non-zero number of trading days")
    target = cal.add_trading_days(d, n)
    state = "a trading day" if cal.is_trading_day(d) else "not a trading day"
    console.print(f"{d.isoformat()} {_WEEKDAYS[d.weekday()]} is {state}")
    plural = "s" if abs(n) != 1 else ""
    console.print(f"{n:+d} trading day{plural}: {target.isoformat()} {_WEEKDAYS[target.weekday()]}")


def register(app: typer.Typer) -> None:
    """Add the ``calendar`` command group to the panhuo app."""
    app.add_typer(calendar_app, name="calendar")
