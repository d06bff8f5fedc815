"""Reading definition YAML with line numbers: the node tree, a Source per expression, located errors.

Files are composed with ``yaml.SafeLoader`` (no Python objects are ever constructed from tags) and
the node marks give every value's line and column, so errors read
``segments/vip.yaml line 4, col 17: ...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from panhuo.segments.errors import Location, SegmentError
from panhuo.segments.expr import Source

__all__ = ["Doc", "location_of", "read_docs", "source_of", "validate"]


@dataclass(frozen=True)
class Doc:
    """One definition (a mapping) in a file: its data, its node, and the file's display name and lines."""

    data: dict[str, Any]
    node: yaml.MappingNode
    file: str
    lines: tuple[str, ...]

    def child(self, key: str) -> yaml.Node | None:
        for k, v in self.node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
        return None

    def at(self, *path: str | int) -> Location:
        """The location of the value at ``path`` (the closest existing parent when it is missing)."""
        node: yaml.Node = self.node
        for step in path:
            nxt: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode) and isinstance(step, str):
                nxt = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == step), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
                nxt = node.value[step]
            if nxt is None:
                break
            node = nxt
        return location_of(node, self.file)

    def source(self, *path: str | int) -> Source:
        """The expression at ``path`` placed in the file (for error locations inside the text)."""
        node: yaml.Node = self.node
        for step in path:
            if isinstance(node, yaml.MappingNode):
                node = next(v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == step)
            else:
                node = node.value[step]  # type: ignore[index]
        return source_of(node, self.file, self.lines)


def location_of(node: yaml.Node, file: str) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


def source_of(node: yaml.Node, file: str, lines: tuple[str, ...]) -> Source:
    """A Source for a scalar: each physical line of the scalar is found in its value, so line and
    column stay right for plain, quoted and block (``|``, ``>``) scalars."""
    text = str(node.value)
    m = node.start_mark
    style = getattr(node, "style", None)
    spans: list[tuple[int, int, int]] = []
    first = m.line + (1 if style in ("|", ">") else 0)
    offset = 0
    for ln in range(first, min(node.end_mark.line + 1, len(lines))):
        raw = lines[ln]
        start = m.column if ln == m.line else len(raw) - len(raw.lstrip(" "))
        if ln == m.line and style in ("'", '"'):
            start += 1
        piece = raw[start:].rstrip()
        if style in ("'", '"'):
            piece = piece.rstrip(style)
        probe = piece[:12]
        if not probe:
            continue
        idx = text.find(probe, offset)
        if idx < 0:
            continue
        spans.append((idx, ln + 1, start + 1))
        offset = idx + len(probe)
    if not spans:
        spans = [(0, m.line + 1, m.column + 1 + (1 if style in ("'", '"') else 0))]
    return Source(text, file, spans[0][1], spans[0][2], tuple(spans))


def _check_keys(node: yaml.Node, file: str) -> None:
    """Refuse duplicate keys anywhere (PyYAML would silently keep the last)."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode):
                if k.value in seen:
                    raise SegmentError(f"key '{k.value}' appears twice", location_of(k, file), k.value)
                seen.add(k.value)
            _check_keys(v, file)
    elif isinstance(node, yaml.SequenceNode):
        for v in node.value:
            _check_keys(v, file)


def read_docs(path: Path, display: str, list_key: str) -> list[Doc]:
    """The definitions in one YAML file: a mapping (one definition), a list of mappings, or a mapping
    with a ``list_key`` list (``segments:`` / ``tags:`` / ``tiers:``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SegmentError(f"cannot read: {exc}", Location(display, 1, 1)) from exc
    lines = tuple(text.splitlines())
    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            if root is None:
                raise SegmentError("the file is empty", Location(display, 1, 1))
            _check_keys(root, display)
            data = loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(display, mark.line + 1, mark.column + 1) if mark else Location(display, 1, 1)
        raise SegmentError(f"not valid YAML: {exc.problem or exc.context}", loc) from exc
    except yaml.YAMLError as exc:
        raise SegmentError(f"not valid YAML: {exc}", Location(display, 1, 1)) from exc
    if isinstance(root, yaml.MappingNode) and isinstance(data, dict) and list_key in data:
        inner = next(v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == list_key)
        root, data = inner, data[list_key]
    if isinstance(root, yaml.MappingNode) and isinstance(data, dict):
        return [Doc(data, root, display, lines)]
    if isinstance(root, yaml.SequenceNode) and isinstance(data, list):
        docs = []
        for item_node, item in zip(root.value, data, strict=True):
            if not isinstance(item_node, yaml.MappingNode) or not isinstance(item, dict):
                raise SegmentError("each entry must be a mapping (name: ..., rule: ...)",
                                   location_of(item_node, display))
            docs.append(Doc(item, item_node, display, lines))
        return docs
    raise SegmentError(f"expected a mapping or a list of mappings, found {type(data).__name__}",
                       location_of(root, display))


def validate(model: type[BaseModel], doc: Doc) -> Any:
    """``model.model_validate(doc.data)``; the first error is raised with the field's line and column."""
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        errors = exc.errors()
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        loc = tuple(p for p in first["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        where = doc.at(*loc) if first["type"] != "missing" else doc.at(*loc[:-1])
        msg = first["msg"]
        if first["type"] == "extra_forbidden":
            allowed = ", ".join(model.model_fields)
            msg = f"unknown field (allowed: {allowed})"
        raise SegmentError(f"field {field}: {msg}", where, str(loc[-1]) if loc else None) from exc
