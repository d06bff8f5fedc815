"""Message content: sandboxed Jinja2 templates per channel, masking, SMS rules and the wording check.

The API::

    ContentSpec                                   # the optional ``content:`` section of a playbook
    check_content(content, settings, file=, yaml_text=, templates_dir=) -> list[ContentIssue]
    check_playbook_content(loaded, settings, templates_dir=) -> list[ContentIssue]
    render_content(content, variables, settings, ...) -> list[RenderedMessage]
    ContentRenderer(content, settings, ...).render(variables)   # check and compile once, render many
    MessageBuilder(ws, spec, as_of, yaml_text=).build(ids, channels, benefit_ids) -> BuiltMessages  # a run's outbox
    message_variables(tag_row, settings=, benefit_name=, link=, phone=, customer_name=)  # masked
    find_forbidden(text, phrases) -> list[WordingHit]
    mask_phone, mask_name, format_fen, sms_segments, finalise_sms

Importing this package is light (no Ibis); the tag catalogue is imported when a template is checked.
"""

from __future__ import annotations

from panhuo.content.errors import ContentError, ContentIssue
from panhuo.content.masking import format_fen, mask_name, mask_phone
from panhuo.content.messages import BuiltMessages, MessageBuilder, MessageProblem, effective_content
from panhuo.content.render import (
    ContentRenderer,
    RenderedMessage,
    TemplateSource,
    check_content,
    message_variables,
    render_content,
    sms_rules,
    template_sources,
)
from panhuo.content.review import check_parsed_content, check_playbook_content
from panhuo.content.sandbox import MESSAGE_VARIABLES, allowed_variables, make_environment
from panhuo.content.sms import SmsLength, SmsRules, finalise_sms, measure, sms_length, sms_segments
from panhuo.content.spec import ContentSpec
from panhuo.content.wording import DEFAULT_FORBIDDEN, WordingHit, find_forbidden, normalise

__all__ = [
    "DEFAULT_FORBIDDEN",
    "MESSAGE_VARIABLES",
    "BuiltMessages",
    "ContentError",
    "ContentIssue",
    "ContentRenderer",
    "ContentSpec",
    "MessageBuilder",
    "MessageProblem",
    "RenderedMessage",
    "SmsLength",
    "SmsRules",
    "TemplateSource",
    "WordingHit",
    "allowed_variables",
    "check_content",
    "check_parsed_content",
    "check_playbook_content",
    "effective_content",
    "finalise_sms",
    "find_forbidden",
    "format_fen",
    "make_environment",
    "mask_name",
    "mask_phone",
    "measure",
    "message_variables",
    "normalise",
    "render_content",
    "sms_length",
    "sms_rules",
    "sms_segments",
    "template_sources",
]
