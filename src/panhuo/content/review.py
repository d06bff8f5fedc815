"""The content review of a whole playbook, as run before approval and by ``panhuo playbook preview``.

:func:`check_playbook_content` takes a loaded playbook (spec, YAML text, source file);
:func:`check_parsed_content` takes a stored version's parsed JSON and YAML text (what the approval
hook in :mod:`panhuo.playbooks.repository` has). Both return every issue; empty means approvable.
Besides :func:`panhuo.content.check_content`, a template for a channel the playbook never uses is
reported (it would never be sent, and was probably meant for another channel).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from panhuo.content.errors import ContentIssue
from panhuo.content.render import check_content
from panhuo.content.spec import ContentSpec

if TYPE_CHECKING:
    from panhuo.config import ContentSettings
    from panhuo.playbooks.loader import LoadedPlaybook

__all__ = ["check_parsed_content", "check_playbook_content"]


def _channels(channel: Mapping[str, Any] | Any) -> list[str]:
    if isinstance(channel, Mapping):
        order, fixed = channel.get("order"), channel.get("fixed")
    else:
        order, fixed = getattr(channel, "order", None), getattr(channel, "fixed", None)
    return list(order) if order else ([fixed] if fixed else [])


def _review(content: ContentSpec | None, channels: list[str], settings: ContentSettings | None, file: str,
            yaml_text: str | None, templates_dir: Path | None) -> list[ContentIssue]:
    if content is None:
        return []
    issues = check_content(content, settings, file=file, yaml_text=yaml_text, templates_dir=templates_dir)
    for ch in content.channels():
        if ch not in channels:
            issues.append(ContentIssue(file, None, f"content.{ch}",
                                       f"a template for {ch}, but the playbook's channels are {', '.join(channels)}"))
    return issues


def check_playbook_content(
    loaded: LoadedPlaybook, settings: ContentSettings | None = None, *, templates_dir: Path | None = None
) -> list[ContentIssue]:
    """Every content issue of a loaded playbook (file and line from its YAML)."""
    spec = loaded.spec
    content = getattr(spec, "content", None)
    return _review(content, spec.channel.channels, settings, loaded.source, loaded.text, templates_dir)


def check_parsed_content(
    parsed: Mapping[str, Any],
    yaml_text: str | None,
    source: str,
    settings: ContentSettings | None = None,
    *,
    templates_dir: Path | None = None,
) -> list[ContentIssue]:
    """Every content issue of a stored playbook version (its parsed JSON form and YAML text)."""
    raw = parsed.get("content")
    if raw is None:
        return []
    try:
        content = ContentSpec.model_validate(raw)
    except ValidationError as exc:
        return [ContentIssue(source, None, "content." + ".".join(map(str, e["loc"])), e["msg"]) for e in exc.errors()]
    return _review(content, _channels(parsed.get("channel") or {}), settings, source, yaml_text, templates_dir)
