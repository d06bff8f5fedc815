"""Check and render a playbook's ``content:`` section, channel by channel.

:func:`template_sources` lists every template text of a :class:`ContentSpec` with where it comes
from (the playbook file and the line the text starts on, or ``<workspace>/templates/NAME.j2``).
:func:`check_content` runs every check that needs no customer: syntax and sandbox rules, unknown
variables, the wording check, the SMS signature and 回T退订 rules, and the length of the fixed text.
:func:`render_content` renders every channel for one customer's variables (masked, see
:func:`message_variables`), measures SMS segments and push lengths, and checks the result's wording.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError

from panhuo.content.errors import ContentError, ContentIssue
from panhuo.content.masking import format_fen, mask_name, mask_phone
from panhuo.content.sandbox import allowed_variables, literal_text, make_environment, parse, static_issues
from panhuo.content.sms import SmsLength, SmsRules, finalise_sms, measure
from panhuo.content.spec import ContentSpec
from panhuo.content.wording import find_forbidden

if TYPE_CHECKING:
    from panhuo.config import ContentSettings

__all__ = [
    "ContentRenderer",
    "RenderedMessage",
    "TemplateSource",
    "check_content",
    "message_variables",
    "render_content",
    "sms_rules",
    "template_sources",
]

_SIG = re.compile(r"【([^【】]*)】")


def _settings(settings: ContentSettings | None) -> ContentSettings:
    if settings is None:
        from panhuo.config import ContentSettings

        return ContentSettings()
    return settings


def sms_rules(settings: ContentSettings | None = None) -> SmsRules:
    s = _settings(settings)
    return SmsRules(s.sms_signature, s.sms_unsubscribe, s.sms_single_segment, s.sms_multi_segment, s.sms_max_segments)


@dataclass(frozen=True)
class TemplateSource:
    """One template text: its ``channel`` and ``part`` (``body``, ``title``, ``data.first`` ...), the text,
    the file to name in messages, the file line of the text's first line, and the field path."""

    channel: str
    part: str
    text: str
    file: str
    first_line: int | None
    field: str

    def whole(self, reason: str) -> ContentIssue:
        """An issue about the whole text (its length, ...): at the line the text starts on, when known."""
        return ContentIssue(self.file, self.first_line, self.field, reason)

    def issue(self, line: int | None, reason: str) -> ContentIssue:
        if line is not None and self.first_line is None:
            return ContentIssue(self.file, None, self.field, f"template line {line}: {reason}")
        at = None if line is None or self.first_line is None else self.first_line + line - 1
        return ContentIssue(self.file, at, self.field, reason)


def _value_lines(yaml_text: str | None) -> dict[tuple[str, ...], int]:
    """File line (1-based) of the first line of each scalar value under ``content:``."""
    out: dict[tuple[str, ...], int] = {}
    if not yaml_text:
        return out
    try:
        root = yaml.compose(yaml_text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return out

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                walk(v, (*path, str(k.value)))
        elif isinstance(node, yaml.ScalarNode):
            block = node.style in ("|", ">")
            out[path] = node.start_mark.line + 1 + (1 if block else 0)

    if root is not None:
        walk(root, ())
    return out


_PARTS = {"sms": ("template",), "app_push": ("title", "body"), "call": ("script",)}


def template_sources(
    content: ContentSpec, *, file: str = "<playbook>", yaml_text: str | None = None, templates_dir: Path | None = None
) -> tuple[list[TemplateSource], list[ContentIssue]]:
    """Every template text of ``content``; issues for template files that cannot be read."""
    lines = _value_lines(yaml_text)
    sources: list[TemplateSource] = []
    issues: list[ContentIssue] = []
    for channel in content.channels():
        spec = getattr(content, channel)
        if channel == "wechat":
            for key, text in spec.data.items():
                path = ("content", "wechat", "data", key)
                sources.append(TemplateSource(channel, f"data.{key}", text, file, lines.get(path), ".".join(path)))
            continue
        for part in _PARTS[channel]:
            text = getattr(spec, part)
            if text is not None:
                path = ("content", channel, part)
                sources.append(TemplateSource(channel, part, text, file, lines.get(path), ".".join(path)))
        if getattr(spec, "file", None):
            main = "body" if channel == "app_push" else _PARTS[channel][0]
            path = ("content", channel, "file")
            if templates_dir is None:
                issues.append(ContentIssue(file, lines.get(path), ".".join(path),
                                           f"template file {spec.file!r} needs a workspace (<workspace>/templates/)"))
                continue
            f = templates_dir / spec.file
            try:
                text = f.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                issues.append(ContentIssue(file, lines.get(path), ".".join(path), f"cannot read template {f}: {exc}"))
                continue
            sources.append(TemplateSource(channel, main, text, str(f), 1, f"{channel}.{main}"))
    return sources, issues


def _fixed_text(tree: nodes.Template) -> str:
    return "".join(n.data for n in tree.find_all(nodes.TemplateData))


def _sms_structure(src: TemplateSource, tree: nodes.Template, rules: SmsRules) -> list[ContentIssue]:
    issues: list[ContentIssue] = []
    for m in _SIG.finditer(src.text):
        if m.group(1).strip() != rules.signature:
            line = src.text.count("\n", 0, m.start()) + 1
            issues.append(src.issue(line, f"the SMS carries the signature {m.group(0)!r}; only the brokerage's "
                                          f"{rules.bracketed!r} may be used"))
    for node in tree.find_all((nodes.If, nodes.For, nodes.Filter, nodes.CondExpr)):
        inner = [n for n in node.find_all(nodes.TemplateData)] + [n for n in node.find_all(nodes.Const)]
        for n in inner:
            value = n.data if isinstance(n, nodes.TemplateData) else n.value
            if isinstance(value, str) and (rules.unsubscribe in value or rules.bracketed in value):
                issues.append(src.issue(node.lineno, f"the signature and {rules.unsubscribe!r} must not be conditional "
                                                     f"or filtered: every SMS carries them (they are added when missing)"))
                break
    fixed = finalise_sms(_SIG.sub("", _fixed_text(tree)), rules) if not issues else ""
    if fixed:
        length = measure(fixed, rules)
        if not length.ok:
            issues.append(src.whole(f"the fixed text alone is {length.chars} characters with signature and "
                                          f"{rules.unsubscribe}: {length.segments} segments, more than "
                                          f"content.sms_max_segments = {rules.max_segments}"))
    return issues


def check_content(
    content: ContentSpec | None,
    settings: ContentSettings | None = None,
    *,
    file: str = "<playbook>",
    yaml_text: str | None = None,
    templates_dir: Path | None = None,
    allowed: frozenset[str] | None = None,
) -> list[ContentIssue]:
    """Every problem of a ``content:`` section that needs no customer; an empty list when it may be approved."""
    if content is None:
        return []
    s = _settings(settings)
    rules = sms_rules(s)
    env = make_environment()
    allowed = allowed if allowed is not None else allowed_variables()
    sources, issues = template_sources(content, file=file, yaml_text=yaml_text, templates_dir=templates_dir)
    for src in sources:
        seen = set()
        for hit in find_forbidden(src.text, s.forbidden_phrases):
            seen.add((hit.phrase, hit.line))
            issues.append(src.issue(hit.line, f"{hit}: wording that promises returns or no loss is not allowed"))
        assembled, char_lines = literal_text(env, src.text)
        for hit in find_forbidden(assembled, s.forbidden_phrases):
            line = char_lines[hit.start] if hit.start < len(char_lines) else None
            if (hit.phrase, line) not in seen:
                seen.add((hit.phrase, line))
                issues.append(src.issue(line, f"forbidden wording {hit.phrase!r} assembled from the template's text and "
                                              f"string literals: wording that promises returns or no loss is not allowed"))
        for st in static_issues(env, src.text, allowed):
            issues.append(src.issue(st.line, st.reason))
        tree, _ = parse(env, src.text)
        if tree is None:
            continue
        if src.channel == "sms":
            issues.extend(_sms_structure(src, tree, rules))
        if src.channel == "app_push":
            limit = s.push_title_max if src.part == "title" else s.push_body_max
            n = len(_fixed_text(tree))
            if n > limit:
                issues.append(src.whole(f"push {src.part} fixed text is {n} characters, more than "
                                              f"content.push_{src.part}_max = {limit}"))
    return issues


def message_variables(
    tags: Mapping[str, Any],
    *,
    settings: ContentSettings | None = None,
    benefit_name: str = "",
    link: str | None = None,
    phone: str | None = None,
    customer_name: str | None = None,
) -> dict[str, Any]:
    """The variables of one customer's message: every tag (money tags as ``1,234.56元`` and as ``<tag>_fen``),
    dates as ``YYYY-MM-DD``, and the message variables, with ``phone`` and ``customer_name`` masked."""
    from panhuo.tags.catalogue import TAGS

    s = _settings(settings)
    out: dict[str, Any] = {}
    for spec in TAGS:
        value = tags.get(spec.stored)
        if spec.kind == "money":
            fen = None if value is None else int(value)
            out[spec.stored] = fen
            out[spec.name] = format_fen(fen) if fen is not None else ""
        elif isinstance(value, dt.date):
            out[spec.name] = value.isoformat()
        else:
            out[spec.name] = "" if value is None else value
    out.update(brokerage_name=s.brokerage_name, benefit_name=benefit_name, link=link or s.default_link,
               phone=mask_phone(phone), customer_name=mask_name(customer_name))
    return out


@dataclass
class RenderedMessage:
    """One channel's rendered message: its parts, the SMS length, and any problem found."""

    channel: str
    parts: dict[str, str] = field(default_factory=dict)
    sms: SmsLength | None = None
    problems: list[ContentIssue] = field(default_factory=list)


class ContentRenderer:
    """A ``content:`` section checked and compiled once, then rendered for many customers.

    ``ContentRenderer(content, settings, ...)`` raises ContentError when :func:`check_content` finds
    anything; :meth:`render` then renders every channel for one customer's variables (see
    :func:`message_variables`): SMS finalised with signature and 回T退订 and measured, push lengths
    and the rendered wording checked (problems are reported on the message, not raised).
    """

    def __init__(
        self,
        content: ContentSpec,
        settings: ContentSettings | None = None,
        *,
        file: str = "<playbook>",
        yaml_text: str | None = None,
        templates_dir: Path | None = None,
    ) -> None:
        self.settings = _settings(settings)
        issues = check_content(content, self.settings, file=file, yaml_text=yaml_text, templates_dir=templates_dir)
        if issues:
            raise ContentError(issues)
        self.content = content
        self.rules = sms_rules(self.settings)
        env = make_environment()
        sources, _ = template_sources(content, file=file, yaml_text=yaml_text, templates_dir=templates_dir)
        self._compiled = [(src, env.from_string(src.text)) for src in sources]

    @property
    def channels(self) -> list[str]:
        return list(dict.fromkeys(src.channel for src, _ in self._compiled))

    def render(self, variables: Mapping[str, Any], channels: list[str] | None = None) -> list[RenderedMessage]:
        """Every channel (or only ``channels``) rendered with ``variables``; ContentError if rendering fails."""
        s, rules, values = self.settings, self.rules, dict(variables)
        out: dict[str, RenderedMessage] = {}
        for src, template in self._compiled:
            if channels is not None and src.channel not in channels:
                continue
            msg = out.setdefault(src.channel, RenderedMessage(src.channel))
            if src.channel == "wechat" and self.content.wechat is not None:
                msg.parts.setdefault("template_id", self.content.wechat.template_id)
            try:
                text = template.render(values).strip()
            except (SecurityError, UndefinedError) as exc:
                raise ContentError([src.issue(None, f"refused while rendering: {exc}")]) from exc
            except TemplateError as exc:
                raise ContentError([src.issue(getattr(exc, "lineno", None), f"cannot render: {exc}")]) from exc
            if src.channel == "sms":
                try:
                    text = finalise_sms(text, rules)
                except ValueError as exc:
                    raise ContentError([src.issue(None, str(exc))]) from exc
                msg.sms = measure(text, rules)
                if not msg.sms.ok:
                    msg.problems.append(src.whole(f"{msg.sms.chars} characters = {msg.sms.segments} segments, "
                                                        f"more than content.sms_max_segments = {rules.max_segments}"))
            if src.channel == "app_push":
                limit = s.push_title_max if src.part == "title" else s.push_body_max
                if len(text) > limit:
                    msg.problems.append(src.whole(f"push {src.part} is {len(text)} characters, more than {limit}"))
            for hit in find_forbidden(text, s.forbidden_phrases):
                msg.problems.append(src.whole(f"rendered text: {hit}"))
            msg.parts[src.part] = text
        return list(out.values())


def render_content(
    content: ContentSpec,
    variables: Mapping[str, Any],
    settings: ContentSettings | None = None,
    *,
    file: str = "<playbook>",
    yaml_text: str | None = None,
    templates_dir: Path | None = None,
) -> list[RenderedMessage]:
    """Render every channel of ``content`` with ``variables`` once; raises ContentError when a check fails.
    For many customers build one :class:`ContentRenderer` instead."""
    renderer = ContentRenderer(content, settings, file=file, yaml_text=yaml_text, templates_dir=templates_dir)
    return renderer.render(variables)
