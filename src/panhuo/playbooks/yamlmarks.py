"""Read YAML and remember on which line every value sits, so errors can name the line.

:func:`load_with_lines` returns the plain data (as ``yaml.safe_load`` would) and a mapping from each
path (a tuple of keys and list indexes) to its 1-based line. Duplicate keys, which PyYAML silently
collapses, are refused. YAML syntax errors become a :class:`PlaybookError` with the line of the problem.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from panhuo.playbooks.errors import PlaybookError, PlaybookIssue

__all__ = ["Path", "format_path", "line_of", "load_with_lines"]

Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """``('method', 'arms', 0, 'id')`` -> ``method.arms[0].id``."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _walk(node: Node, path: Path, lines: dict[Path, int], issues: list[PlaybookIssue], file: str) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            k = key.value if isinstance(key, ScalarNode) else str(key.start_mark)
            line = key.start_mark.line + 1
            if k in seen:
                issues.append(PlaybookIssue(file, line, format_path((*path, k)),
                                            f"duplicate key {k!r} (first on line {seen[k]})"))
                continue
            seen[k] = line
            lines[(*path, k)] = line
            _walk(value, (*path, k), lines, issues, file)
            lines[(*path, k)] = line  # the key's line, not the value's, names the field
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines, issues, file)


def load_with_lines(text: str, file: str) -> tuple[Any, dict[Path, int]]:
    """Parse one YAML document; returns ``(data, lines)``. Raises PlaybookError for bad YAML."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = " ".join(p for p in (exc.context, exc.problem) if p) or "not valid YAML"
        raise PlaybookError([PlaybookIssue(file, line, None, f"invalid YAML: {reason}")]) from exc
    except yaml.YAMLError as exc:
        raise PlaybookError([PlaybookIssue(file, None, None, f"invalid YAML: {exc}")]) from exc
    lines: dict[Path, int] = {}
    issues: list[PlaybookIssue] = []
    if node is not None:
        _walk(node, (), lines, issues, file)
    if issues:
        raise PlaybookError(issues)
    return data, lines


def line_of(lines: dict[Path, int], loc: tuple[Any, ...]) -> tuple[int | None, Path]:
    """The line of the deepest part of ``loc`` present in the file, and the path it resolves to.

    Parts of a pydantic location that are not in the file (a union's tag, a missing field) are
    skipped for the line but kept for the path; a missing field points at its parent's line.
    """
    path: Path = ()
    found: Path = ()
    for part in loc:
        candidate = (*found, part)
        if candidate in lines:
            found = candidate
        path = (*path, part)
    return lines.get(found, lines.get((), None)), path
