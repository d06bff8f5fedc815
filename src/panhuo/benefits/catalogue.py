"""Load the benefit catalogue: the shipped starter catalogue plus ``<workspace>/benefits/*.yaml``.

Every problem names the file, the line and the field, e.g.
``benefits/coupons.yaml line 7, field items[0].risk: a commission_coupon needs a product risk rating``.
A workspace item with the id of a starter item replaces it; the same id in two workspace files (or
twice in one) is an error. Names are put through the wording check too (a benefit called 保本... is
refused). What the run engine uses: :func:`load_catalogue`, :func:`benefit_risk`,
:func:`check_playbook_benefits`.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from panhuo.benefits.errors import BenefitError, BenefitIssue
from panhuo.benefits.schema import BenefitItem, CatalogueFile
from panhuo.errors import PlaybookError
from panhuo.playbooks.yamlmarks import format_path, line_of, load_with_lines

if TYPE_CHECKING:
    from panhuo.config import Workspace

__all__ = [
    "STARTER_CATALOGUE",
    "Catalogue",
    "benefit_risk",
    "benefits_dir",
    "check_playbook_benefits",
    "load_catalogue",
    "parse_catalogue",
    "playbook_benefit_issues",
]

STARTER_CATALOGUE = Path(__file__).with_name("starter_catalogue.yaml")
_MAX_BYTES = 2_000_000


def benefits_dir(ws: Workspace) -> Path:
    return ws.root / "benefits"


def _message(err: Any) -> str:
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        return f"unknown field {err['loc'][-1]!r}"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        return f"{value!r} is not one of {str((err.get('ctx') or {}).get('expected', '')).replace(chr(39), '')}"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def parse_catalogue(text: str, file: str) -> list[tuple[BenefitItem, int | None]]:
    """The items of one catalogue file with the line of each; BenefitError lists every issue."""
    from panhuo.content.wording import find_forbidden

    try:
        data, lines = load_with_lines(text, file)
    except PlaybookError as exc:
        raise BenefitError(exc.issues) from None
    if data is None:
        return []
    if not isinstance(data, dict):
        raise BenefitError([BenefitIssue(file, 1, None, f"expected a mapping with items:, got a {type(data).__name__}")])
    try:
        parsed = CatalogueFile.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line, _ = line_of(lines, loc)
            issues.append(BenefitIssue(file, line, format_path(loc) or None, _message(err)))
        raise BenefitError(issues) from None
    issues, seen, out = [], {}, []
    for i, item in enumerate(parsed.items):
        line = lines.get(("items", i, "id"), lines.get(("items", i)))
        if item.id in seen:
            issues.append(BenefitIssue(file, line, f"items[{i}].id", f"duplicate id {item.id!r} (first on line {seen[item.id]})"))
        seen.setdefault(item.id, line)
        for key in ("zh", "en"):
            for hit in find_forbidden(getattr(item.name, key)):
                issues.append(BenefitIssue(file, lines.get(("items", i, "name", key), line), f"items[{i}].name.{key}",
                                           f"{hit}: a benefit name must not promise returns or no loss"))
        out.append((item, line))
    if issues:
        raise BenefitError(issues)
    return out


def _read(path: Path, shown: str) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BenefitError([BenefitIssue(shown, None, None, f"cannot read: {exc.strerror}")]) from exc
    if len(raw) > _MAX_BYTES:
        raise BenefitError([BenefitIssue(shown, None, None, f"larger than {_MAX_BYTES} bytes")])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BenefitError([BenefitIssue(shown, None, None, f"not UTF-8 text (byte {exc.start})")]) from exc


@dataclass(frozen=True)
class Catalogue:
    """The benefits by id, with the file and line each came from."""

    items: dict[str, BenefitItem] = field(default_factory=dict)
    origin: dict[str, tuple[str, int | None]] = field(default_factory=dict)

    def __contains__(self, benefit_id: object) -> bool:
        return benefit_id in self.items

    def __iter__(self) -> Iterator[BenefitItem]:
        return iter(sorted(self.items.values(), key=lambda b: b.id))

    def __len__(self) -> int:
        return len(self.items)

    def get(self, benefit_id: str) -> BenefitItem:
        """The benefit ``benefit_id``; BenefitError naming close ids when there is none."""
        try:
            return self.items[benefit_id]
        except KeyError:
            close = difflib.get_close_matches(benefit_id, list(self.items), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise BenefitError([BenefitIssue("benefit catalogue", None, None,
                                             f"no benefit {benefit_id!r}{hint}")]) from None

    def risk(self) -> dict[str, int]:
        return {b.id: int(b.risk or 1) for b in self.items.values()}


def load_catalogue(
    ws: Workspace | None = None, *, files: list[Path] | None = None, starter: bool = True
) -> Catalogue:
    """The starter catalogue plus the workspace's ``benefits/*.yaml`` (or the given ``files``)."""
    items: dict[str, BenefitItem] = {}
    origin: dict[str, tuple[str, int | None]] = {}
    if starter:
        for item, line in parse_catalogue(_read(STARTER_CATALOGUE, "panhuo starter catalogue"),
                                          "panhuo starter catalogue"):
            items[item.id], origin[item.id] = item, ("panhuo starter catalogue", line)
    paths = list(files) if files is not None else (
        sorted(benefits_dir(ws).glob("*.yaml")) + sorted(benefits_dir(ws).glob("*.yml")) if ws is not None else []
    )
    own: dict[str, tuple[str, int | None]] = {}
    issues: list[BenefitIssue] = []
    for path in paths:
        shown = str(path.relative_to(ws.root)) if ws is not None and path.is_relative_to(ws.root) else str(path)
        try:
            parsed = parse_catalogue(_read(path, shown), shown)
        except BenefitError as exc:
            issues.extend(exc.issues)
            continue
        for item, line in parsed:
            if item.id in own:
                f, first = own[item.id]
                issues.append(BenefitIssue(shown, line, "id", f"benefit {item.id!r} is also defined in {f} line {first}"))
                continue
            own[item.id] = (shown, line)
            items[item.id], origin[item.id] = item, (shown, line)
    if issues:
        raise BenefitError(issues)
    return Catalogue(items, origin)


def benefit_risk(ws: Workspace | None) -> dict[str, int]:
    """Each benefit's product risk rating as an int 1..5 (R1..R5), for the suitability guardrail."""
    return load_catalogue(ws).risk()


def _playbook_parts(playbook: Any) -> tuple[Any, str, str | None]:
    spec = getattr(playbook, "spec", playbook)
    return spec, getattr(playbook, "source", f"playbook {getattr(spec, 'id', '?')}"), getattr(playbook, "text", None)


def playbook_benefit_issues(playbook: Any, catalogue: Catalogue, *, as_of: dt.date | None = None) -> list[BenefitIssue]:
    """Every benefit id of a playbook (``benefit.items``, ``method.arms[].items``) missing from the catalogue,
    or, with ``as_of``, outside its validity window. ``playbook`` is a LoadedPlaybook or a PlaybookSpec."""
    spec, file, text = _playbook_parts(playbook)
    lines: dict[Any, int] = {}
    if text is not None:
        try:
            _, lines = load_with_lines(text, file)
        except PlaybookError:
            lines = {}
    refs: list[tuple[tuple[Any, ...], str]] = [(("benefit", "items", i), b) for i, b in enumerate(spec.benefit.items)]
    for a, arm in enumerate(spec.method.arms or []):
        refs += [(("method", "arms", a, "items", i), b) for i, b in enumerate(arm.items or [])]
    issues = []
    for path, bid in refs:
        line, _ = line_of(lines, path) if lines else (None, path)
        if bid not in catalogue:
            close = difflib.get_close_matches(bid, list(catalogue.items), n=2)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            issues.append(BenefitIssue(file, line, format_path(path),
                                       f"unknown benefit {bid!r}{hint}: not in the benefit catalogue "
                                       f"(see 'panhuo benefits list')"))
        elif as_of is not None and not catalogue.items[bid].valid.contains(as_of):
            v = catalogue.items[bid].valid
            issues.append(BenefitIssue(file, line, format_path(path), f"benefit {bid!r} is valid {v.valid_from} to "
                                       f"{v.valid_to or 'open'}, not on {as_of}"))
    return issues


def check_playbook_benefits(playbook: Any, catalogue: Catalogue, *, as_of: dt.date | None = None) -> None:
    """BenefitError naming the playbook file, line and field of every unknown (or, with ``as_of``, expired) id."""
    issues = playbook_benefit_issues(playbook, catalogue, as_of=as_of)
    if issues:
        raise BenefitError(issues)
