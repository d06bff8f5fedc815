"""The benefit catalogue (权益中台) as strict pydantic models.

::

    items:
      - id: level2-trial-7d
        kind: level2_trial
        name: {zh: Level-2行情7天体验卡, en: 7-day Level-2 quote trial}
        risk: R1                    # product and commission_coupon must say; content kinds default to R1
        unit_cost: "3.50"           # RMB, at most two decimals (kept exact, as fen)
        stock: 100000               # optional: units that may be issued
        budget: "200000.00"         # optional: RMB that may be spent
        valid: {from: 2026-01-01, to: 2027-12-31}
      - id: commission-coupon-30d
        kind: commission_coupon
        risk: R2
        terms:                       # documented price terms (domain.md 5.7)
          rate: "0.00018"            # the customer's net commission rate while the coupon runs
          duration_days: 30          # time-limited
          document: 佣金优惠协议补充条款 v1
          cash_rebate: false         # never a cash rebate

Stock reservation lives in the operational store (the run engine); this module only describes.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

__all__ = ["BENEFIT_KINDS", "CONTENT_KINDS", "BenefitItem", "CatalogueFile", "CouponTerms", "Names", "Validity",
           "parse_risk", "to_fen"]

BENEFIT_KINDS: tuple[str, ...] = ("news", "image", "investor_education", "advisor_video", "advisor_session",
                                  "level2_trial", "commission_coupon", "product")
#: kinds that carry no product risk: R1 unless the catalogue says otherwise
CONTENT_KINDS: frozenset[str] = frozenset({"news", "image", "investor_education", "advisor_video",
                                           "advisor_session", "level2_trial"})
_RISK_REQUIRED = frozenset({"product", "commission_coupon"})


def parse_risk(value: Any) -> int:
    """``"R3"``, ``"r3"`` or ``3`` -> 3; ValueError outside R1..R5."""
    if isinstance(value, bool):
        raise ValueError("expected a risk rating R1..R5")  # noqa: TRY004
    if isinstance(value, int) and 1 <= value <= 5:
        return value
    if isinstance(value, str) and len(value.strip()) == 2 and value.strip()[0] in "Rr" and value.strip()[1] in "12345":
        return int(value.strip()[1])
    raise ValueError(f"{value!r} is not a risk rating R1..R5")


def _money(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        value = repr(value)  # YAML 3.5 -> "3.5", exact
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"{value!r} is not an amount in RMB") from exc
    if not d.is_finite() or d < 0:
        raise ValueError(f"{value!r} must be a non-negative amount in RMB")
    if d != d.quantize(Decimal("0.01")):
        raise ValueError(f"{value} is not a whole number of fen (two decimals at most)")
    return d.quantize(Decimal("0.01"))


Money = Annotated[Decimal, BeforeValidator(_money)]
Risk = Annotated[int, BeforeValidator(parse_risk)]


def to_fen(amount: Decimal) -> int:
    """RMB (two decimals at most) -> fen, exact."""
    return int(amount * 100)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, populate_by_name=True)


class Names(_Strict):
    zh: str = Field(min_length=1, max_length=60)
    en: str = Field(min_length=1, max_length=120)


class Validity(_Strict):
    """The window in which the benefit may be issued (both days included)."""

    valid_from: dt.date = Field(alias="from")
    valid_to: dt.date | None = Field(None, alias="to")

    @model_validator(mode="after")
    def _order(self) -> Validity:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError(f"valid.to {self.valid_to} is before valid.from {self.valid_from}")
        return self

    def contains(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


class CouponTerms(_Strict):
    """A commission coupon's documented price terms: time-limited, never a cash rebate (domain.md 5.7)."""

    rate: Decimal = Field(gt=0, lt=Decimal("0.003"), description="net commission rate while the coupon runs")
    duration_days: int = Field(ge=1, le=366, description="time-limited: days the rate applies")
    document: str = Field(min_length=1, max_length=200, description="the contract amendment / terms document")
    cash_rebate: Literal[False] = Field(False, description="must be false: no cash rebates")
    min_charge: Money | None = Field(None, description="minimum charge per trade in RMB, when it applies")


class BenefitItem(_Strict):
    """One benefit of the catalogue."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")
    kind: Literal["news", "image", "investor_education", "advisor_video", "advisor_session", "level2_trial",
                  "commission_coupon", "product"]
    name: Names
    risk: Risk | None = Field(None, description="product risk rating R1..R5")
    unit_cost: Money = Field(description="RMB per unit issued")
    stock: int | None = Field(None, ge=0, description="units that may be issued (none: unlimited)")
    budget: Money | None = Field(None, description="RMB that may be spent (none: unlimited)")
    valid: Validity
    terms: CouponTerms | None = None
    description: str | None = Field(None, max_length=1000)

    @field_validator("risk", mode="before")
    @classmethod
    def _risk(cls, v: Any) -> Any:
        return None if v is None else parse_risk(v)

    @model_validator(mode="after")
    def _rules(self) -> BenefitItem:
        if self.kind in _RISK_REQUIRED and self.risk is None:
            raise ValueError(f"a {self.kind} needs a product risk rating: risk: R1..R5")
        if self.kind == "commission_coupon" and self.terms is None:
            raise ValueError("a commission_coupon needs its documented price terms: terms: {rate, duration_days, "
                             "document}")
        if self.kind != "commission_coupon" and self.terms is not None:
            raise ValueError(f"terms apply only to commission_coupon, not {self.kind}")
        if self.kind in CONTENT_KINDS and self.risk is None:
            object.__setattr__(self, "risk", 1)
        return self

    @property
    def unit_cost_fen(self) -> int:
        return to_fen(self.unit_cost)

    @property
    def budget_fen(self) -> int | None:
        return None if self.budget is None else to_fen(self.budget)

    @property
    def risk_label(self) -> str:
        return f"R{self.risk}"


class CatalogueFile(_Strict):
    """One catalogue file: ``items:`` a list of benefits."""

    items: list[BenefitItem] = Field(default_factory=list)
