"""The sandboxed Jinja2 environment and the static checks every template passes before it is used.

The environment is :class:`jinja2.sandbox.ImmutableSandboxedEnvironment` with
:class:`jinja2.StrictUndefined` (a missing value is an error, never an empty string), autoescape off
(messages are plain text, not HTML), no loader (no include/import/extends), no globals (no
``range``, ``cycler``, ``joiner``, ``lipsum``, ``namespace``, ``dict``) and a short list of filters.

On top of the sandbox, :func:`static_issues` refuses, with the template line:

- attribute and item access (``x.y``, ``x['y']``) and calls (``x()``): template variables are plain
  values, so this is never needed and closes the ``''.__class__.__mro__`` family of escapes;
- ``**`` and ``*`` (a ``9**9**9`` or ``'x' * 10**9`` would stall the renderer), loops (nested loops
  multiply), and the ``replace`` filter is not offered (chained replacements grow text exponentially);
- macros, call blocks, include/import/extends;
- every variable that is not in the whitelist (tag names from :data:`panhuo.tags.TAGS`, the
  ``<tag>_fen`` of money tags, and :data:`MESSAGE_VARIABLES`) and every unknown filter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from panhuo.content.masking import format_fen, mask_name, mask_phone

__all__ = [
    "MESSAGE_VARIABLES",
    "StaticIssue",
    "allowed_variables",
    "literal_text",
    "make_environment",
    "parse",
    "static_issues",
]

#: variables every message has besides the tags; ``phone`` and ``customer_name`` arrive masked
MESSAGE_VARIABLES: dict[str, str] = {
    "brokerage_name": "券商名称 (content.brokerage_name)",
    "benefit_name": "权益名称 (the playbook's first benefit, zh)",
    "link": "链接 (content.link, else content.default_link)",
    "phone": "手机号 (always masked: 138****1234)",
    "customer_name": "客户姓名 (always masked: 张*)",
}

_SAFE_FILTERS = ("abs", "default", "int", "length", "lower", "round", "string", "trim", "truncate", "upper")
_REFUSED: dict[type[nodes.Node], str] = {
    nodes.Getattr: "attribute access (x.y) is not allowed in a message template",
    nodes.Getitem: "item access (x[...]) is not allowed in a message template",
    nodes.Call: "calls (x(...)) are not allowed in a message template",
    nodes.Pow: "'**' is not allowed in a message template",
    nodes.Mul: "'*' is not allowed in a message template",
    nodes.For: "loops are not allowed in a message template (variables are single values)",
    nodes.Macro: "macros are not allowed in a message template",
    nodes.CallBlock: "call blocks are not allowed in a message template",
    nodes.Include: "include is not allowed in a message template",
    nodes.Import: "import is not allowed in a message template",
    nodes.FromImport: "import is not allowed in a message template",
    nodes.Extends: "extends is not allowed in a message template",
}


def _yuan(fen: object) -> str:
    return format_fen(fen)


def make_environment() -> ImmutableSandboxedEnvironment:
    """A fresh sandboxed environment with the safe filters plus ``mask_phone``, ``mask_name`` and ``yuan``."""
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    env.globals.clear()
    filters = {name: env.filters[name] for name in _SAFE_FILTERS}
    filters.update(mask_phone=mask_phone, mask_name=mask_name, yuan=_yuan)
    env.filters = filters
    return env


def allowed_variables() -> frozenset[str]:
    """Tag names (``panhuo.tags.TAGS``), ``<tag>_fen`` of money tags, and :data:`MESSAGE_VARIABLES`."""
    from panhuo.tags.catalogue import TAGS  # imported on use: the tag modules bring Ibis

    names = set(MESSAGE_VARIABLES)
    for spec in TAGS:
        names.add(spec.name)
        names.add(spec.stored)
    return frozenset(names)


@dataclass(frozen=True)
class StaticIssue:
    """A problem at 1-based ``line`` of a template; ``variable`` when it is an unknown name."""

    line: int | None
    reason: str
    variable: str | None = None


def parse(env: ImmutableSandboxedEnvironment, text: str) -> tuple[nodes.Template | None, StaticIssue | None]:
    """The template's syntax tree, or the syntax error with its line."""
    try:
        return env.parse(text), None
    except TemplateSyntaxError as exc:
        return None, StaticIssue(exc.lineno, f"template syntax: {exc.message}")


def _stored_names(tree: nodes.Template) -> set[str]:
    return {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}


def static_issues(
    env: ImmutableSandboxedEnvironment, text: str, allowed: Iterable[str] | None = None
) -> list[StaticIssue]:
    """Every static problem of template ``text``: syntax, refused constructs, unknown variables and filters."""
    tree, err = parse(env, text)
    if tree is None:
        return [err] if err else []
    allowed_set = frozenset(allowed) if allowed is not None else allowed_variables()
    local = _stored_names(tree)
    issues: list[StaticIssue] = []
    for node in tree.find_all(nodes.Node):
        for kind, reason in _REFUSED.items():
            if isinstance(node, kind):
                issues.append(StaticIssue(node.lineno, reason))
        if isinstance(node, nodes.Name) and node.ctx == "load" and node.name not in allowed_set | local:
            import difflib

            close = difflib.get_close_matches(node.name, sorted(allowed_set), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            issues.append(StaticIssue(node.lineno, f"unknown variable {node.name!r}{hint}: variables are tag names "
                                                   f"and {', '.join(MESSAGE_VARIABLES)}", node.name))
        if isinstance(node, nodes.Filter) and node.name not in env.filters:
            issues.append(StaticIssue(node.lineno, f"unknown filter {node.name!r}: one of {', '.join(sorted(env.filters))}"))
    issues.sort(key=lambda i: (i.line or 0, i.reason))
    return list(dict.fromkeys(issues))


_KEYWORDS = frozenset({"if", "else", "elif", "and", "or", "not", "is", "in", "true", "false", "none", "True", "False",
                       "None"})


def literal_text(env: ImmutableSandboxedEnvironment, text: str) -> tuple[str, list[int]]:
    """The template's fixed text with the string literals of its tags spliced in where they stand, and
    the template line of each character.

    ``保{{ '' }}本`` and ``{{ '稳' }}{{ '赚' }}`` read ``保本`` and ``稳赚``, so the wording check sees
    phrases assembled from pieces; an expression that holds a variable leaves a break (U+0000), so
    ``保{{ benefit_name }}本`` is not read as ``保本``. Comments are dropped (the source check sees them).
    """
    out: list[str] = []
    lines: list[int] = []

    def add(value: str, line: int) -> None:
        for ch in value:
            out.append(ch)
            lines.append(line)
            if ch == "\n":
                line += 1

    try:
        tokens = [(t.lineno, t.type, t.value) for t in env.lexer.tokenize(text)]  # string values unescaped
    except TemplateSyntaxError:
        return "", []
    in_var, dynamic = False, False
    for lineno, kind, value in tokens:
        if kind == "data":
            add(value, lineno)
        elif kind == "variable_begin":
            in_var, dynamic = True, False
        elif kind == "variable_end":
            if dynamic:
                add("\x00", lineno)
            in_var = False
        elif kind == "string":
            add(str(value), lineno)
        elif kind == "name" and in_var and value not in _KEYWORDS:
            dynamic = True
    return "".join(out), lines
