"""Calendar override files: the exchange closures panhuo adds to, or removes from, exchange_calendars.

Two files share this format: the one shipped with panhuo (``xshg_overrides.yaml``, next to this
module) and the brokerage's own (``calendar.override_file`` in panhuo.yaml), merged in that order.

.. code-block:: yaml

    version: 1
    exchange: XSHG            # SSE and SZSE share their closure days
    years:
      2025:
        source: 上海证券交易所《关于2025年部分节假日休市安排的通知》   # the notice, required
        url: https://www.sse.com.cn/...                                   # optional
        trading_days: 243       # optional check: the count after this file is applied
        add_closures: []        # weekdays the exchange is closed but the layers below say open
        remove_closures: []     # weekdays the layers below say closed but the exchange is open
      2027:
        source: 上海证券交易所《关于2027年部分节假日休市安排的通知》
        closures: [2027-01-01, ...]   # the full list of weekday closures: the year becomes covered

Weekends are never trading days (make-up workdays 调休 included), so every date listed must be a
weekday of its year. Errors name the file and the field, like ``panhuo.yaml`` errors do.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from panhuo.errors import CalendarError, ConfigError

__all__ = [
    "CalendarOverrideError",
    "YearOverride",
    "OverrideFile",
    "load_override_file",
    "parse_override_text",
]

_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class CalendarOverrideError(CalendarError, ConfigError):
    """A calendar override file is unreadable or invalid; the message names the file and field."""


def _iso_date(value: Any) -> dt.date:
    """Accept a YAML date or a ``YYYY-MM-DD`` string, nothing looser (no timestamps, no datetimes)."""
    if isinstance(value, dt.datetime):
        raise ValueError(f"{value!r} has a time of day; give a date as YYYY-MM-DD")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)")


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class YearOverride(_Model):
    """One year of one override file."""

    source: str = Field(min_length=4, description="the exchange notice the dates were taken from")
    url: str | None = None
    trading_days: int | None = Field(None, ge=150, le=262, description="expected count after this file")
    closures: list[IsoDate] | None = Field(None, description="full list of weekday closures of the year")
    add_closures: list[IsoDate] = Field(default_factory=list)
    remove_closures: list[IsoDate] = Field(default_factory=list)
    note: str | None = None


class OverrideFile(_Model):
    """A whole override file. ``path`` is where it was read from (for messages)."""

    version: Literal[1] = 1
    exchange: Literal["XSHG"] = "XSHG"
    years: dict[Annotated[int, Field(ge=1990, le=2100)], YearOverride] = Field(default_factory=dict)
    path: str = Field("<memory>", exclude=True)


class _Loader(yaml.SafeLoader):
    """SafeLoader that leaves dates as text, so a bad date (2025-02-30) gets a message naming its field."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _format_validation(path: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"{path}: field {loc}: {e['msg']}")
    return "\n".join(lines)


def _check_semantics(path: str, data: OverrideFile) -> None:
    """What pydantic cannot see: dates in their year, weekdays only, no duplicates or contradictions."""
    problems: list[str] = []
    for year, entry in sorted(data.years.items()):
        if entry.closures is not None and (entry.add_closures or entry.remove_closures):
            problems.append(
                f"{path}: field years.{year}: give either closures (the full list) "
                "or add_closures/remove_closures, not both"
            )
        fields: list[tuple[str, list[dt.date]]] = [
            ("closures", entry.closures or []),
            ("add_closures", entry.add_closures),
            ("remove_closures", entry.remove_closures),
        ]
        for name, days in fields:
            seen: set[dt.date] = set()
            for i, day in enumerate(days):
                where = f"{path}: field years.{year}.{name}.{i}"
                if day.year != year:
                    problems.append(f"{where}: {day.isoformat()} is not in {year}")
                if day.weekday() >= 5:
                    weekday = _WEEKDAY_NAMES[day.weekday()]
                    if name == "remove_closures":
                        problems.append(
                            f"{where}: {day.isoformat()} is a {weekday}; weekends are never trading days "
                            "(make-up workdays 调休 included)"
                        )
                    else:
                        problems.append(
                            f"{where}: {day.isoformat()} is a {weekday}; weekends are always closed, "
                            "list weekday closures only"
                        )
                if day in seen:
                    problems.append(f"{where}: {day.isoformat()} is listed twice")
                seen.add(day)
        both = set(entry.add_closures) & set(entry.remove_closures)
        for day in sorted(both):
            problems.append(
                f"{path}: field years.{year}: {day.isoformat()} is in both add_closures and remove_closures"
            )
    if problems:
        raise CalendarOverrideError("\n".join(problems))


def parse_override_text(text: str, path: str = "<memory>") -> OverrideFile:
    """Parse and validate the text of an override file; ``path`` is used in messages."""
    try:
        raw = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except (yaml.YAMLError, ValueError) as exc:
        raise CalendarOverrideError(f"{path}: not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise CalendarOverrideError(
            f"{path}: expected a mapping (version, exchange, years), got {type(raw).__name__}"
        )
    if "path" in raw:
        raise CalendarOverrideError(f"{path}: field path: extra inputs are not permitted")
    years = raw.get("years")
    if isinstance(years, dict):
        for key in years:
            if isinstance(key, bool) or not isinstance(key, int):
                raise CalendarOverrideError(
                    f"{path}: field years.{key}: a year key must be a number like 2025"
                )
    try:
        data = OverrideFile.model_validate({**raw, "path": path})
    except ValidationError as exc:
        raise CalendarOverrideError(_format_validation(path, exc)) from exc
    _check_semantics(path, data)
    return data


def load_override_file(path: str | Path) -> OverrideFile:
    """Read and validate an override file; every error names the file and the field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CalendarOverrideError(f"{p}: cannot read calendar override file: {reason}") from exc
    return parse_override_text(text, str(p))
