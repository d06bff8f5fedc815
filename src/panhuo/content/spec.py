"""The ``content:`` section of a playbook: one template per channel, inline or in a workspace file.

::

    content:
      link: https://m.example.com/ipo          # {{ link }} (default: content.default_link in panhuo.yaml)
      sms:      {template: "{{ brokerage_name }}提醒：今日有新股申购，{{ benefit_name }}已为您准备。{{ link }}"}
      app_push: {title: 今日新股申购, body: "{{ benefit_name }}，点击查看申购指南"}
      wechat:   {template_id: OPENTM-IPO-01, data: {first: 今日新股申购提醒, remark: "{{ benefit_name }}"}}
      call:     {file: ipo-call.j2}           # <workspace>/templates/ipo-call.j2

Texts are Jinja2 templates rendered in a sandbox (:mod:`panhuo.content.render`). ``sms``, ``call``
and the push ``body`` may name a file under ``<workspace>/templates/`` (``*.j2``) instead of inline
text. These models only check the shape; templates are checked by :func:`panhuo.content.check_content`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["TEMPLATE_FILE", "AppPushContent", "CallContent", "ContentSpec", "SmsContent", "WechatContent"]

TEMPLATE_FILE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.j2$"
_Text = Annotated[str, Field(min_length=1, max_length=4000)]
_File = Annotated[str, Field(pattern=TEMPLATE_FILE, description="a file under <workspace>/templates/")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _one(text: str | None, file: str | None, what: str) -> None:
    if (text is None) == (file is None):
        raise ValueError(f"give exactly one of {what} (inline text) or file (a template under <workspace>/templates/)")


class SmsContent(_Strict):
    """短信: one text; the signature 【...】 and 回T退订 are added when missing."""

    template: _Text | None = None
    file: _File | None = None

    @model_validator(mode="after")
    def _check(self) -> SmsContent:
        _one(self.template, self.file, "template")
        return self


class AppPushContent(_Strict):
    """APP push: a title and a body."""

    title: _Text
    body: _Text | None = None
    file: _File | None = None

    @model_validator(mode="after")
    def _check(self) -> AppPushContent:
        _one(self.body, self.file, "body")
        return self


class WechatContent(_Strict):
    """WeChat template message: the platform's template id and its data fields (each a template)."""

    template_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    data: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")], _Text] = Field(min_length=1)


class CallContent(_Strict):
    """Advisor call task: the script the advisor follows."""

    script: _Text | None = None
    file: _File | None = None

    @model_validator(mode="after")
    def _check(self) -> CallContent:
        _one(self.script, self.file, "script")
        return self


class ContentSpec(_Strict):
    """Templates per channel and the ``{{ link }}`` of this playbook."""

    link: str | None = Field(None, max_length=200, pattern=r"^https://\S+$")
    sms: SmsContent | None = None
    app_push: AppPushContent | None = None
    wechat: WechatContent | None = None
    call: CallContent | None = None

    def channels(self) -> list[str]:
        """The channels this section has a template for."""
        return [c for c in ("app_push", "sms", "wechat", "call") if getattr(self, c) is not None]
