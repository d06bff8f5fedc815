"""Load and validate playbook YAML; every problem names the file, the line and the field.

``validate_playbook(text, "playbooks/ipo.yaml")`` returns a :class:`PlaybookSpec` or raises
:class:`PlaybookError` with every issue, e.g.
``playbooks/ipo.yaml line 6, field method.holdout: must be between 0 and 0.5 (a share of the audience), got 0.6``.

:func:`review_playbook` adds the checks that need the workspace (what ``panhuo playbook validate``
and ``add`` run before anything is stored): the benefit catalogue (unknown id, expired benefit,
product risk) and the content review (templates, wording, lengths; the playbook name, which the
default messages show, through the wording check too).
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, ValidationError

from panhuo.playbooks import schema
from panhuo.playbooks.errors import PlaybookError, PlaybookIssue
from panhuo.playbooks.rules import DEFAULT_QUIET_HOURS, check_rules
from panhuo.playbooks.schema import TRIGGERS, PlaybookSpec
from panhuo.playbooks.yamlmarks import format_path, line_of, load_with_lines

__all__ = [
    "LoadedPlaybook",
    "content_hash",
    "known_fields",
    "load_playbook",
    "checked_in_workspace",
    "review_playbook",
    "validate_playbook",
]

_MAX_BYTES = 1_000_000


def known_fields() -> set[str]:
    """Every field name of the playbook format (for 'did you mean' hints)."""
    names: set[str] = set()
    for obj in vars(schema).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj is not BaseModel:
            names.update(obj.model_fields)
    return names


def content_hash(text: str) -> str:
    """SHA-256 of the YAML text as written (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _clean_loc(loc: tuple[Any, ...], lines: dict[Any, int]) -> tuple[Any, ...]:
    """Drop the parts of a pydantic location that are not in the file: union tags and type names."""
    out: list[Any] = []
    for i, part in enumerate(loc):
        present = (*out, part) in lines
        last = i == len(loc) - 1
        if present or (last and isinstance(part, str | int) and part not in TRIGGERS and "[" not in str(part)):
            out.append(part)
    return tuple(out)


def _message(err: Any) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "extra_forbidden":
        key = str(err["loc"][-1])
        hint = difflib.get_close_matches(key, sorted(known_fields()), n=1)
        return f"unknown field {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    if kind == "missing":
        return "required field is missing"
    if kind == "union_tag_not_found":
        return f"required field 'trigger' is missing: one of {', '.join(TRIGGERS)}"
    if kind == "union_tag_invalid":
        return f"trigger {ctx.get('tag')!r} is not one of {', '.join(TRIGGERS)}"
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", "")).replace("'", "")
        return f"{value!r} is not one of {expected}"
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        return msg[len("Value error, "):]
    if isinstance(value, str | int | float | bool) and kind not in ("value_error", "assertion_error"):
        return f"{msg} (got {value!r})"
    return msg


@dataclass(frozen=True)
class LoadedPlaybook:
    """A validated playbook with the text it came from."""

    spec: PlaybookSpec
    text: str
    source: str

    @property
    def content_hash(self) -> str:
        return content_hash(self.text)

    def parsed(self) -> dict[str, Any]:
        """The JSON form stored with each version."""
        return self.spec.model_dump(mode="json")


def validate_playbook(
    text: str, file: str = "<playbook>", *, quiet_hours: tuple[str, str] = DEFAULT_QUIET_HOURS
) -> PlaybookSpec:
    """Validate one playbook's YAML text; raises PlaybookError naming file, line and field of each issue."""
    data, lines = load_with_lines(text, file)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise PlaybookError([PlaybookIssue(file, 1, None, f"expected a mapping (id, name, timing, ...), got {got}")])
    try:
        spec = PlaybookSpec.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            loc = _clean_loc(tuple(err["loc"]), lines)
            line, _ = line_of(lines, loc)
            field = format_path(loc)
            if err["type"] == "union_tag_not_found":
                field = format_path((*loc, "trigger"))
            issues.append(PlaybookIssue(file, line, field or None, _message(err)))
        raise PlaybookError(issues) from None
    problems = check_rules(spec, quiet_hours=quiet_hours, purpose_given="purpose" in data)
    if problems:
        issues = []
        for path, reason in problems:
            line, _ = line_of(lines, path)
            issues.append(PlaybookIssue(file, line, format_path(path), reason))
        raise PlaybookError(issues)
    return spec


def load_playbook(
    path: str | os.PathLike[str], *, quiet_hours: tuple[str, str] = DEFAULT_QUIET_HOURS
) -> LoadedPlaybook:
    """Read and validate a playbook file (UTF-8); the file is named as given in every message."""
    file = os.fspath(path)
    p = FsPath(file)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise PlaybookError([PlaybookIssue(file, None, None, f"cannot read: {exc.strerror}")]) from exc
    if len(raw) > _MAX_BYTES:
        raise PlaybookError([PlaybookIssue(file, None, None, f"larger than {_MAX_BYTES} bytes")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlaybookError([PlaybookIssue(file, None, None, f"not UTF-8 text (byte {exc.start})")]) from exc
    spec = validate_playbook(text, file, quiet_hours=quiet_hours)
    return LoadedPlaybook(spec=spec, text=text, source=file)


def _benefit_review(loaded: LoadedPlaybook, catalogue: Any, as_of: dt.date | None,
                    benefit_risk: dict[str, str]) -> list[PlaybookIssue]:
    """Unknown ids (with hints), benefits whose validity ended before ``as_of`` (a benefit valid only
    from a later day is accepted: a playbook may be prepared ahead), and product risk: a dormant-account
    playbook offers no risk-rated benefit (product or commission coupon), and a product offer needs
    ``purpose: product``."""
    from panhuo.benefits.catalogue import playbook_benefit_issues
    from panhuo.playbooks.rules import targets_dormant

    spec, file = loaded.spec, loaded.source
    issues = list(playbook_benefit_issues(loaded, catalogue))
    try:
        _, lines = load_with_lines(loaded.text, file)
    except PlaybookError:
        lines = {}
    refs: list[tuple[tuple[Any, ...], str]] = [(("benefit", "items", i), b) for i, b in enumerate(spec.benefit.items)]
    for a, arm in enumerate(spec.method.arms or []):
        refs += [(("method", "arms", a, "items", i), b) for i, b in enumerate(arm.items or [])]
    dormant = targets_dormant(spec) or spec.purpose == "activation_invite"
    for path, bid in refs:
        line, _ = line_of(lines, path)
        where = format_path(path)
        item = catalogue.items.get(bid)
        if item is not None and as_of is not None and item.valid.valid_to is not None and item.valid.valid_to < as_of:
            issues.append(PlaybookIssue(file, line, where, f"benefit {bid!r} expired on {item.valid.valid_to} "
                                                           f"(valid {item.valid.valid_from} to {item.valid.valid_to}), "
                                                           f"before {as_of}"))
        kind = item.kind if item is not None else None
        rating = benefit_risk.get(bid) or (f"R{int(item.risk)}" if item is not None and item.risk and
                                           kind in ("product", "commission_coupon") else None)
        if rating is None:
            continue
        if dormant:
            issues.append(PlaybookIssue(file, line, where, f"benefit {bid!r} is a {kind or 'product'} rated {rating}: "
                                                           "a dormant-account playbook offers only the activation "
                                                           "path (guides and content), never a product or coupon"))
        elif kind == "product" and spec.purpose != "product":
            issues.append(PlaybookIssue(file, line, where, f"benefit {bid!r} is a product rated {rating}: a product "
                                                           f"offer needs purpose: product (not {spec.purpose}) so "
                                                           "it is reviewed as product marketing"))
    return issues


def checked_in_workspace(loaded: LoadedPlaybook, ws: Any = None, as_of: dt.date | None = None) -> LoadedPlaybook:
    """``loaded`` after every check against workspace ``ws`` (its benefit catalogue, content settings,
    templates and product risk ratings; the defaults when ``ws`` is None), as of ``as_of`` (default:
    today in Asia/Shanghai). Raises PlaybookError listing every issue. ``panhuo playbook validate|add``
    and the API's ``POST /api/v1/playbooks`` call this, so both refuse the same playbooks."""
    from panhuo.benefits import load_catalogue
    from panhuo.store.models import now_shanghai

    issues = review_playbook(
        loaded, catalogue=load_catalogue(ws), content_settings=ws.settings.content if ws else None,
        templates_dir=ws.root / "templates" if ws else None, as_of=as_of or now_shanghai().date(),
        benefit_risk=dict(ws.settings.runs.benefit_risk) if ws else None)
    if issues:
        raise PlaybookError(issues)
    return loaded


def review_playbook(
    loaded: LoadedPlaybook,
    *,
    catalogue: Any = None,
    content_settings: Any = None,
    templates_dir: FsPath | None = None,
    as_of: dt.date | None = None,
    benefit_risk: dict[str, str] | None = None,
) -> list[PlaybookIssue]:
    """Every benefit and content issue of a validated playbook, each naming file, line and field.

    ``catalogue`` defaults to the starter catalogue (:func:`panhuo.benefits.load_catalogue`);
    ``content_settings`` to the default ``content`` settings; ``as_of`` (expiry) to no date;
    ``benefit_risk`` adds product risk ratings (``runs.benefit_risk``). Empty: nothing to fix.
    """
    from panhuo.content.review import check_playbook_content
    from panhuo.content.wording import DEFAULT_FORBIDDEN, find_forbidden

    if catalogue is None:
        from panhuo.benefits import load_catalogue

        catalogue = load_catalogue()
    issues = _benefit_review(loaded, catalogue, as_of, dict(benefit_risk or {}))
    phrases = content_settings.forbidden_phrases if content_settings is not None else DEFAULT_FORBIDDEN
    try:
        _, lines = load_with_lines(loaded.text, loaded.source)
    except PlaybookError:
        lines = {}
    for hit in find_forbidden(loaded.spec.name, phrases):
        issues.append(PlaybookIssue(loaded.source, lines.get(("name",)), "name",
                                    f"{hit}: the name is shown in default messages; wording that promises returns "
                                    f"or no loss is not allowed"))
    issues.extend(check_playbook_content(loaded, content_settings, templates_dir=templates_dir))
    return issues
