"""The playbook YAML (DESIGN.md section 4) as strict pydantic models: the five elements.

::

    id: ipo-day-wake-sleeping
    name: 新股申购日唤醒沉睡客户
    purpose: reactivation            # activation_invite for dormant audiences (DESIGN.md section 7)
    timing:  {trigger: market_event, event: ipo_subscription, send_window: ["09:15", "11:00"],
              reentry: {policy: every_n_trading_days, n: 20}}
    user:    {segment: sleeping_alive, tier: 沉睡户, exclude: [complained_90d], max_audience: 200000}
    benefit: {items: [ipo-guide-video, level2-trial-7d]}
    channel: {order: [app_push, wechat, sms]}
    method:  {mode: automated, holdout: 0.10, allocation: thompson,
              success: {event: trade, within_trading_days: 10}}

Every model forbids unknown fields. Times are quoted ``"HH:MM"`` text, Asia/Shanghai. Segment names
and inline rules are kept as text here and compiled by ``panhuo.segments``; benefit ids are checked
for their form only (the catalogue checks that they exist). Cross-field rules (send window within
allowed hours, a dormant audience only on the activation path, ...) are in ``panhuo.playbooks.rules``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from panhuo.content.spec import ContentSpec

__all__ = [
    "CHANNELS",
    "HHMM",
    "MARKET_EVENTS",
    "PURPOSES",
    "SLUG",
    "SUCCESS_EVENTS",
    "TRIGGERS",
    "Arm",
    "BehaviourTiming",
    "BenefitSpec",
    "ChannelSpec",
    "ContentSpec",
    "LifecycleTiming",
    "MarketEventTiming",
    "MethodSpec",
    "PlaybookSpec",
    "Reentry",
    "ScheduleTiming",
    "Success",
    "Timing",
    "UserSpec",
    "minutes",
]

SLUG = r"^[a-z0-9][a-z0-9-]{1,63}$"
SEGMENT_NAME = r"^[a-z][a-z0-9_]{0,63}$"
TRIGGERS = ("schedule", "market_event", "lifecycle", "behaviour")
MARKET_EVENTS = ("ipo_subscription", "index_move", "new_fund", "dividend")
CHANNELS = ("app_push", "sms", "wechat", "call")
SUCCESS_EVENTS = ("login", "deposit", "trade", "back_to_effective", "activated")
PURPOSES = ("reactivation", "activation_invite", "onboarding", "retention", "education", "product")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _hhmm(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a time 'HH:MM'")  # noqa: TRY004 (pydantic reports ValueError only)
    if isinstance(value, int):
        raise ValueError(  # noqa: TRY004
            f"write times as quoted text 'HH:MM': YAML read this one as the number {value} "
            f"(an unquoted 11:00 is a base-60 number); use \"{value // 60:02d}:{value % 60:02d}\""
        )
    if not isinstance(value, str) or not _HHMM.match(value):
        raise ValueError(f"{value!r} is not a time 'HH:MM' (00:00-23:59)")
    return value


HHMM = Annotated[str, BeforeValidator(_hhmm)]
Slug = Annotated[str, Field(pattern=SLUG)]
ChannelName = Literal["app_push", "sms", "wechat", "call"]
MarketEvent = Literal["ipo_subscription", "index_move", "new_fund", "dividend"]


def minutes(hhmm: str) -> int:
    """``"09:30"`` -> 570."""
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Reentry(_Strict):
    """When a customer who already entered may enter again: ``once_ever``, ``every_n_trading_days`` (with
    ``n``) or ``every_time`` the condition recurs. Written as ``reentry: once_ever`` or as a mapping."""

    policy: Literal["once_ever", "every_n_trading_days", "every_time"]
    n: int | None = Field(None, ge=1, le=250, description="trading days between entries")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"policy": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _n(self) -> Reentry:
        if self.policy == "every_n_trading_days" and self.n is None:
            raise ValueError("every_n_trading_days needs n (trading days between entries)")
        if self.policy != "every_n_trading_days" and self.n is not None:
            raise ValueError(f"n applies only to every_n_trading_days, not {self.policy}")
        return self


class _Timing(_Strict):
    send_window: tuple[HHMM, HHMM] = Field(description="[start, end] Asia/Shanghai, within the allowed hours")
    quiet_hours: tuple[HHMM, HHMM] | None = Field(None, description="extra quiet hours [from, to] (may wrap midnight)")
    reentry: Reentry


class ScheduleTiming(_Timing):
    """On the trading calendar: every trading day at ``at``, the first trading day of each month, or
    ``n`` trading days before a market event."""

    trigger: Literal["schedule"]
    schedule: Literal["every_trading_day", "first_trading_day_of_month", "n_trading_days_before"]
    at: HHMM | None = None
    n: int | None = Field(None, ge=1, le=60)
    event: MarketEvent | None = None

    @model_validator(mode="after")
    def _fields(self) -> ScheduleTiming:
        if self.schedule == "every_trading_day" and self.at is None:
            raise ValueError("every_trading_day needs at: 'HH:MM'")
        if self.schedule == "n_trading_days_before":
            if self.n is None or self.event is None:
                raise ValueError("n_trading_days_before needs n (1-60) and event (a market event kind)")
        elif self.n is not None or self.event is not None:
            raise ValueError(f"n and event apply only to n_trading_days_before, not {self.schedule}")
        return self


class MarketEventTiming(_Timing):
    """A market event from ``market_events``; ``index_move`` needs a ``threshold`` in percent."""

    trigger: Literal["market_event"]
    event: MarketEvent
    threshold: float | None = Field(None, gt=0, le=20, description="index move in percent (index_move only)")
    index: str | None = Field(None, max_length=32, description="index code, e.g. 000300.SH (index_move only)")
    direction: Literal["up", "down", "either"] | None = None

    @model_validator(mode="after")
    def _fields(self) -> MarketEventTiming:
        if self.event == "index_move" and self.threshold is None:
            raise ValueError("index_move needs threshold (percent move, e.g. 2.0)")
        if self.event != "index_move" and (self.threshold, self.index, self.direction) != (None, None, None):
            raise ValueError(f"threshold, index and direction apply only to index_move, not {self.event}")
        return self


class LifecycleTiming(_Timing):
    """A status transition from the status history; ``new_empty`` fires on the given days after opening."""

    trigger: Literal["lifecycle"]
    transition: Literal["effective_to_sleeping", "new_empty", "reactivated"]
    days: list[Annotated[int, Field(ge=1, le=365)]] | None = None

    @model_validator(mode="after")
    def _fields(self) -> LifecycleTiming:
        if self.transition == "new_empty":
            if not self.days:
                raise ValueError("new_empty needs days (days since opening, e.g. [1, 3, 7])")
            if len(set(self.days)) != len(self.days):
                raise ValueError("days must not repeat")
        elif self.days is not None:
            raise ValueError(f"days apply only to new_empty, not {self.transition}")
        return self


class BehaviourTiming(_Timing):
    """What the customer did: logged in at least ``min_logins`` times in ``days`` days without a trade,
    or opened a push and did not trade within ``days`` days."""

    trigger: Literal["behaviour"]
    behaviour: Literal["logged_in_no_trade", "push_opened_no_trade"]
    min_logins: int | None = Field(None, ge=1, le=100)
    days: int = Field(7, ge=1, le=60)

    @model_validator(mode="after")
    def _fields(self) -> BehaviourTiming:
        if self.behaviour == "logged_in_no_trade" and self.min_logins is None:
            raise ValueError("logged_in_no_trade needs min_logins")
        if self.behaviour != "logged_in_no_trade" and self.min_logins is not None:
            raise ValueError("min_logins applies only to logged_in_no_trade")
        return self


Timing = Annotated[
    ScheduleTiming | MarketEventTiming | LifecycleTiming | BehaviourTiming, Field(discriminator="trigger")
]


class UserSpec(_Strict):
    """用户: a named segment or an inline rule (compiled by ``panhuo.segments``), exclusions and a cap."""

    segment: str | None = Field(None, pattern=SEGMENT_NAME)
    rule: str | None = Field(None, min_length=1, max_length=4000)
    tier: str | None = Field(None, max_length=64, description="the tier this playbook serves, e.g. 沉睡户")
    exclude: list[Annotated[str, Field(pattern=SEGMENT_NAME)]] = Field(default_factory=list)
    max_audience: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one(self) -> UserSpec:
        if (self.segment is None) == (self.rule is None):
            raise ValueError("give exactly one of segment (a named segment) or rule (an inline rule)")
        return self


class BenefitSpec(_Strict):
    """权益: benefit ids from the catalogue (``level2-trial-7d``), offered in this order."""

    items: list[Slug] = Field(min_length=1)

    @field_validator("items")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("benefit items must not repeat")
        return v


class ChannelSpec(_Strict):
    """渠道: the first reachable channel of ``order``, or one ``fixed`` channel."""

    order: list[ChannelName] | None = Field(None, min_length=1)
    fixed: ChannelName | None = None

    @model_validator(mode="after")
    def _one(self) -> ChannelSpec:
        if (self.order is None) == (self.fixed is None):
            raise ValueError("give exactly one of order (first reachable) or fixed (one channel)")
        if self.order is not None and len(set(self.order)) != len(self.order):
            raise ValueError("channels in order must not repeat")
        return self

    @property
    def channels(self) -> list[str]:
        return list(self.order) if self.order is not None else [self.fixed or ""]


class Arm(_Strict):
    """One variant to allocate between: its benefit items and/or channel, and a fixed weight."""

    id: Slug
    items: list[Slug] | None = None
    channel: ChannelName | None = None
    weight: float | None = Field(None, gt=0, le=1)


class Success(_Strict):
    """The success event and its window in trading days."""

    event: Literal["login", "deposit", "trade", "back_to_effective", "activated"]
    within_trading_days: int = Field(ge=1, le=60)


class MethodSpec(_Strict):
    """方式: automated or advisor-led, holdout share, allocation, arms, success, personalisation (PIPL)."""

    mode: Literal["automated", "advisor_led"]
    holdout: float
    allocation: Literal["fixed", "thompson"] = "fixed"
    arms: list[Arm] | None = None
    success: Success
    personalised: bool = Field(False, description="model-driven targeting: customers may refuse it (PIPL)")

    @field_validator("holdout", mode="before")
    @classmethod
    def _holdout(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 0.5:
            raise ValueError(f"must be between 0 and 0.5 (a share of the audience), got {v!r}")
        return float(v)


class PlaybookSpec(_Strict):
    """One playbook: identity, purpose and the five elements."""

    id: Slug
    name: str = Field(min_length=1, max_length=100)
    purpose: Literal["reactivation", "activation_invite", "onboarding", "retention", "education", "product"] = (
        "reactivation"
    )
    description: str | None = Field(None, max_length=2000)
    timing: Timing
    user: UserSpec
    benefit: BenefitSpec
    channel: ChannelSpec
    method: MethodSpec
    content: ContentSpec | None = Field(None, description="templates per channel (panhuo.content), optional")
