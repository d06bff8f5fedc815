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
