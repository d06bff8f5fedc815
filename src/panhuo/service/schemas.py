"""Request and response bodies of the REST API (``/api/v1``): the pydantic models its OpenAPI document shows.

Shared by the routers in :mod:`panhuo.service.api`; the console may reuse them for its own JSON fragments.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "ERRORS",
    "MAX_YAML",
    "ApproveIn",
    "ErrorOut",
    "HealthOut",
    "InvalidOut",
    "IssueOut",
    "LoginIn",
    "LoginOut",
    "MeOut",
    "PlaybookDetailOut",
    "PlaybookIn",
    "PlaybookOut",
    "RejectIn",
    "RunDetailOut",
    "RunOut",
    "VersionOut",
    "errors",
]

MAX_YAML = 256 * 1024


class LoginIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class MeOut(BaseModel):
    name: str
    display_name: str
    roles: list[str]
    via: str = Field(description="session or api_key")
    scope: str = Field(description="read or write")


class LoginOut(BaseModel):
    user: MeOut
    csrf_token: str
    expires_at: dt.datetime


class HealthOut(BaseModel):
    status: str
    version: str
    store: str


class VersionOut(BaseModel):
    version: int
    author: str
    created_at: dt.datetime
    content_hash: str
    source: str
    yaml_text: str


class PlaybookOut(BaseModel):
    id: str
    name: str
    state: str
    current_version: int
    review_version: int | None
    live_version: int | None
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime


class PlaybookDetailOut(PlaybookOut):
    versions: list[VersionOut]


class PlaybookIn(BaseModel):
    yaml: str = Field(min_length=1, max_length=MAX_YAML, description="the playbook's YAML text")
    source: str = Field(default="api", max_length=200, description="names the text in error messages")


class ApproveIn(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class RejectIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class RunOut(BaseModel):
    id: int
    playbook_id: str
    playbook_version: int
    run_key: str
    as_of: dt.date
    started_at: dt.datetime
    finished_at: dt.datetime | None
    state: str
    candidates: int
    holdout: int
    sends: int


class RunDetailOut(RunOut):
    funnel: dict[str, Any] | list[Any] | None


class IssueOut(BaseModel):
    file: str
    line: int | None
    field: str | None
    reason: str


class ErrorOut(BaseModel):
    detail: str


class InvalidOut(BaseModel):
    detail: str
    issues: list[IssueOut]


ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}}


def errors(*codes: int, invalid: bool = False) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: 401 and 403 plus ``codes`` (plain errors) and 422 with issues if ``invalid``."""
    out: dict[int | str, dict[str, Any]] = dict(ERRORS)
    for c in codes:
        out[c] = {"model": ErrorOut}
    if invalid:
        out[422] = {"model": InvalidOut}
    return out


# ---------------------------------------------------------------- customers


class StatusEventOut(BaseModel):
    from_status: str | None
    to_status: str | None
    date: dt.date
    baseline: bool = Field(description="the first computed date (everyone enters; not a transition)")


class MessageOut(BaseModel):
    id: int
    run_id: int
    playbook_id: str
    channel: str
    arm: str | None
    benefit_id: str | None
    status: str
    content: str
    send_after: dt.datetime | None
    sent_at: dt.datetime | None
    receipt_status: str | None
    receipt_at: dt.datetime | None
    last_error: str | None


class ContactOut(BaseModel):
    channel: str
    sent_at: dt.datetime
    playbook_id: str | None


class ResponseOut(BaseModel):
    event: str = Field(description="delivered, failed, opened, clicked or reply")
    channel: str
    outbox_id: int | None
    at: dt.datetime | None
    received_at: dt.datetime


class OptOutOut(BaseModel):
    channel: str
    source: str
    text: str | None
    at: dt.datetime


class IssuedBenefitOut(BaseModel):
    run_id: int
    benefit_id: str
    unit_cost_fen: int
    issued_at: dt.datetime


class CallTaskOut(BaseModel):
    id: int
    playbook_id: str
    customer_id: str
    advisor_id: str | None
    due_date: dt.date
    script: str
    created_at: dt.datetime
    outcome: str | None
    outcome_at: dt.datetime | None
    outcome_by: str | None
    note: str | None


class CustomerStatusOut(BaseModel):
    status: str | None
    status_since: dt.date | None
    as_of: dt.date | None


class CustomerOut(BaseModel):
    customer_id: str
    profile: dict[str, Any] = Field(description="the customers row of the load in force (personal fields masked)")
    masked: list[str] = Field(description="fields shown masked")
    unmasked: bool
    tags: dict[str, Any] = Field(description="the tag snapshot on or before as_of (money tags in fen)")
    status: CustomerStatusOut
    status_history: list[StatusEventOut]
    messages: list[MessageOut] = Field(description="outbox rows, newest first (at most 200)")
    contacts: list[ContactOut] = Field(description="messages actually sent (contact_log), newest first")
    responses: list[ResponseOut] = Field(description="receipts and replies, newest first")
    opt_outs: list[OptOutOut]
    benefits: list[IssuedBenefitOut]
    call_tasks: list[CallTaskOut]


class UnmaskIn(BaseModel):
    reason: str = Field(min_length=5, max_length=2000, description="why the personal data is needed (audited)")


# ---------------------------------------------------------------- segments and tiers


class SegmentOut(BaseModel):
    name: str
    zh: str
    en: str
    description: str
    rule: str
    exclude: list[str]
    cap: int | None
    builtin: bool
    defined_in: str


class SegmentCountOut(SegmentOut):
    customers: int
    as_of: dt.date | None


class TierOut(BaseModel):
    id: str
    zh: str
    en: str
    customers: int
    share: float | None
    avg_total_assets_rmb: str | None = Field(description="exact, two decimals; null when the tier is empty")


class TiersOut(BaseModel):
    as_of: dt.date | None
    scheme: str
    total: int
    tiers: list[TierOut]


# ---------------------------------------------------------------- playbook extras


class ReasonIn(BaseModel):
    reason: str | None = Field(default=None, max_length=2000, description="why (kept in the audit log)")


class DiffOut(BaseModel):
    playbook_id: str
    from_version: int
    to_version: int
    diff: str = Field(description="unified diff of the two versions' YAML (empty when equal)")


class SmsLengthOut(BaseModel):
    chars: int
    segments: int
    max_segments: int
    ok: bool


class RenderedOut(BaseModel):
    channel: str
    parts: dict[str, str]
    sms: SmsLengthOut | None
    problems: list[str]


class PreviewOut(BaseModel):
    playbook_id: str
    version: int
    source: str
    customer_id: str
    as_of: dt.date
    benefit_id: str | None
    benefit_name: str
    messages: list[RenderedOut]
    channels_without_template: list[str]


class FunnelStageOut(BaseModel):
    stage: str
    customers: int


class DryRunOut(BaseModel):
    playbook_id: str
    version: int
    as_of: dt.date
    run_key: str
    funnel: list[FunnelStageOut]
    reasons: dict[str, int] = Field(description="customers refused per reason code")
    send_at: dt.datetime | None
    deferred: bool
    trigger: str
    warnings: list[str]
    written: int = Field(description="always 0: a dry run writes nothing")


# ---------------------------------------------------------------- benefits, tasks, reports, audit, users


class BenefitOut(BaseModel):
    id: str
    kind: str | None
    name_zh: str | None
    name_en: str | None
    risk: str | None
    unit_cost_fen: int | None
    stock: int | None = Field(description="units that may be issued; null: unlimited")
    issued: int
    stock_left: int | None
    budget_fen: int | None
    spent_fen: int
    budget_left_fen: int | None
    units_left: int | None
    valid_from: dt.date | None
    valid_to: dt.date | None
    defined_in: str | None
    state: str = Field(description="ok, exhausted, not_valid_today or not_in_catalogue")


class StockIn(BaseModel):
    stock: int | None = Field(ge=0, le=1_000_000_000, description="the new number of units that may be issued "
                                                                  "(null: unlimited)")
    reason: str = Field(min_length=3, max_length=2000, description="why (kept in the audit log)")


class OutcomeIn(BaseModel):
    outcome: str = Field(description="reached, no_answer, refused or interested")
    note: str | None = Field(default=None, max_length=2000)


class AuditOut(BaseModel):
    seq: int
    at: dt.datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | list[Any] | None
    after: dict[str, Any] | list[Any] | None
    hash: str


class AuditVerifyOut(BaseModel):
    ok: bool
    checked: int
    broken_seq: int | None
    reason: str | None


class UserOut(BaseModel):
    name: str
    display_name: str
    roles: list[str]
    active: bool
    has_password: bool
    created_at: dt.datetime


class UserIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    roles: list[str] = Field(min_length=1, max_length=5)
    display_name: str = Field(default="", max_length=200)
    password: str | None = Field(default=None, min_length=1, max_length=1024,
                                 description="optional; without one the user cannot log in until 'users passwd'")
