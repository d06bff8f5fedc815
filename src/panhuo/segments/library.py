"""Custom tags and segments defined in YAML, validated on load, compiled to Ibis on use.

Workspace files (one definition per file, a list, or a ``tags:``/``segments:`` list)::

    <workspace>/tags/active_rich.yaml          <workspace>/segments/vip.yaml
    name: recent_login                         name: sleeping_rich
    zh: 近30日登录                              zh: 高净值沉睡
    en: logged in within 30 days               en: sleeping, once rich
    kind: bool                                 description: past assets over 100k
    expr: days_since(last_login) <= 30         rule: status = 'sleeping' and total_assets_365d_ago >= 100000
                                               exclude: [dormant, "not consent_sms"]
                                               cap: 50000

A custom tag is an expression over built-in tags, scores and other custom tags (``kind`` as for
built-in tags; a money tag is written in RMB and stored in fen). A segment is a rule (true/false)
minus its exclusions: each is the name of another segment or an expression. A segment's membership
is ``rule and not any exclusion``; an excluded segment counts with its own exclusions but not its
cap. ``cap`` keeps the first N members by customer id. Built-in segments (one per account status,
``sleeping_alive`` and the audiences of the starter playbooks, in ``builtin_segments.yaml``) ship with
panhuo; a workspace segment of the same name replaces one.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from panhuo.segments._yaml import Doc, read_docs, validate
from panhuo.segments.compiler import check, compile_expr, compile_rule, names_used
from panhuo.segments.errors import Location, SegmentError
from panhuo.segments.expr import Source, parse
from panhuo.segments.symbols import Symbol, SymbolTable, builtin_symbols

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["CustomTag", "Exclusion", "Library", "Segment", "SegmentFile", "TagFile", "load_library"]

_NAME = r"^[a-z][a-z0-9_]{0,62}$"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BUILTIN_FILE = "builtin_segments.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TagFile(_Model):
    """A custom tag as written in ``tags/*.yaml``."""

    name: str = Field(pattern=_NAME)
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    kind: Literal["money", "int", "float", "bool", "date", "string"]
    expr: str = Field(min_length=1)
    description: str = ""


class SegmentFile(_Model):
    """A segment as written in ``segments/*.yaml``."""

    name: str = Field(pattern=_NAME)
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    description: str = ""
    rule: str = Field(min_length=1)
    exclude: list[str] = Field(default_factory=list)
    cap: int | None = Field(None, ge=1)


@dataclass(frozen=True)
class CustomTag:
    name: str
    zh: str
    en: str
    kind: str
    expr: Source
    location: Location
    description: str = ""

    @property
    def column(self) -> str:
        return f"{self.name}_fen" if self.kind == "money" else self.name


@dataclass(frozen=True)
class Exclusion:
    """One entry of ``exclude:``: another segment's name, or an expression."""

    text: str
    source: Source
    location: Location
    segment: str | None = None  # set by Library.check when the entry names a segment


@dataclass(frozen=True)
class Segment:
    name: str
    zh: str
    en: str
    description: str
    rule: Source
    exclude: tuple[Exclusion, ...]
    cap: int | None
    location: Location
    builtin: bool = False


@dataclass
class Library:
    """The custom tags and segments of a workspace (plus the built-in segments)."""

    tags: dict[str, CustomTag] = field(default_factory=dict)
    segments: dict[str, Segment] = field(default_factory=dict)
    _checked: bool = False

    # -------------------------------------------------------------------------------- lookups
    def segment(self, name: str) -> Segment:
        seg = self.segments.get(name)
        if seg is None:
            close = difflib.get_close_matches(name, list(self.segments), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise SegmentError(f"unknown segment '{name}'{hint}; known: {', '.join(sorted(self.segments))}")
        return seg

    def symbols(self, base: SymbolTable | None = None) -> SymbolTable:
        """``base`` (default: the built-in tags and scores) plus the custom tags."""
        base = builtin_symbols() if base is None else base
        return base.with_symbols(Symbol(t.name, t.kind, t.column, t.zh, t.en) for t in self.tags.values())

    # ----------------------------------------------------------------------------- validation
    def tag_order(self) -> list[CustomTag]:
        """Custom tags in dependency order; a cycle is an error naming the file and line."""
        order: list[CustomTag] = []
        state: dict[str, int] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == 2:
                return
            tag = self.tags[name]
            if state.get(name) == 1:
                chain = " -> ".join([*path[path.index(name):], name])
                raise SegmentError(f"custom tags refer to each other in a cycle: {chain}", tag.location, name)
            state[name] = 1
            for dep in sorted(names_used(parse(tag.expr)) & set(self.tags)):
                visit(dep, [*path, name])
            state[name] = 2
            order.append(tag)

        for name in sorted(self.tags):
            visit(name, [])
        return order

    def check(self, base: SymbolTable | None = None) -> None:
        """Type-check every custom tag and segment, resolve exclusions, refuse cycles."""
        symbols = self.symbols(base)
        for tag in self.tag_order():
            check(tag.expr, symbols, want=tag.kind)
        for name, seg in list(self.segments.items()):
            check(seg.rule, symbols, want="bool")
            resolved = []
            for ex in seg.exclude:
                text = ex.text.strip()
                if _IDENT.match(text) and text in self.segments:
                    resolved.append(Exclusion(ex.text, ex.source, ex.location, segment=text))
                    continue
                if _IDENT.match(text) and text not in symbols:
                    close = difflib.get_close_matches(text, list(self.segments), n=1)
                    hint = f" (did you mean {close[0]}?)" if close else ""
                    raise SegmentError(f"unknown segment '{text}' in exclude{hint}", ex.location, text)
                check(ex.source, symbols, want="bool")
                resolved.append(ex)
            self.segments[name] = Segment(seg.name, seg.zh, seg.en, seg.description, seg.rule, tuple(resolved),
                                          seg.cap, seg.location, seg.builtin)
        self._cycles()
        self._checked = True

    def _cycles(self) -> None:
        state: dict[str, int] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == 2:
                return
            seg = self.segments[name]
            if state.get(name) == 1:
                chain = " -> ".join([*path[path.index(name):], name])
                raise SegmentError(f"segments exclude each other in a cycle: {chain}", seg.location, name)
            state[name] = 1
            for ex in seg.exclude:
                if ex.segment is not None:
                    visit(ex.segment, [*path, name])
            state[name] = 2

        for name in sorted(self.segments):
            visit(name, [])

    # ---------------------------------------------------------------------------- compiling
    def extend(self, table: ir.Table, base: SymbolTable, as_of: dt.date | None = None) -> ir.Table:
        """``table`` with one column per custom tag (money as int64 fen), in dependency order."""
        symbols = self.symbols(base)
        for tag in self.tag_order():
            value, _ = compile_expr(tag.expr, table, symbols, as_of=as_of, want=tag.kind)
            if tag.kind in ("money", "int"):
                value = value.round().cast("int64") if value.type().is_floating() else value.cast("int64")
            elif tag.kind == "float":
                value = value.cast("float64")
            table = table.mutate(**{tag.column: value})
        return table

    def predicate(
        self, name: str, table: ir.Table, symbols: SymbolTable, as_of: dt.date | None = None
    ) -> ir.BooleanValue:
        """Membership of segment ``name``: its rule and none of its exclusions (never null)."""
        if not self._checked:
            self.check()
        return self._predicate(self.segment(name), table, symbols, as_of)

    def _predicate(self, seg: Segment, table: ir.Table, symbols: SymbolTable, as_of: dt.date | None
                   ) -> ir.BooleanValue:
        pred = compile_rule(seg.rule, table, symbols, as_of=as_of)
        for ex in seg.exclude:
            other = (self._predicate(self.segments[ex.segment], table, symbols, as_of) if ex.segment
                     else compile_rule(ex.source, table, symbols, as_of=as_of))
            pred = pred & ~other
        return pred

    def members(self, name: str, table: ir.Table, symbols: SymbolTable, as_of: dt.date | None = None
                ) -> ir.Table:
        """The rows of ``table`` in segment ``name`` (at most ``cap``, by customer id)."""
        seg = self.segment(name)
        rows = table.filter(self.predicate(name, table, symbols, as_of))
        if seg.cap is not None:
            rows = rows.order_by("customer_id").limit(seg.cap)
        return rows

    def count(self, name: str, table: ir.Table, symbols: SymbolTable, as_of: dt.date | None = None) -> int:
        """How many customers segment ``name`` holds (after its cap)."""
        n = int(table.filter(self.predicate(name, table, symbols, as_of)).count().execute())
        cap = self.segment(name).cap
        return min(n, cap) if cap is not None else n


def _segment_of(doc: Doc, builtin: bool) -> Segment:
    spec: SegmentFile = validate(SegmentFile, doc)
    exclude = tuple(
        Exclusion(text, doc.source("exclude", i), doc.at("exclude", i)) for i, text in enumerate(spec.exclude)
    )
    return Segment(spec.name, spec.zh, spec.en, spec.description, doc.source("rule"), exclude, spec.cap,
                   doc.at("name"), builtin)


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".yaml", ".yml") and p.is_file())


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def load_library(root: Path | None, *, builtin: bool = True, base: SymbolTable | None = None) -> Library:
    """Read ``<root>/tags/*.yaml`` and ``<root>/segments/*.yaml`` (``root`` is the workspace) and check them.

    Raises
    ------
    SegmentError
        Malformed YAML, a missing or unknown field, a duplicate name, an unknown tag or segment, a
        type mismatch or a cycle; the message names the file, line and column.
    """
    lib = Library()
    if builtin:
        text = resources.files("panhuo.segments").joinpath(BUILTIN_FILE)
        with resources.as_file(text) as path:
            for doc in read_docs(path, f"panhuo/segments/{BUILTIN_FILE}", "segments"):
                seg = _segment_of(doc, builtin=True)
                lib.segments[seg.name] = seg
    known = builtin_symbols() if base is None else base
    if root is not None:
        for path in _files(root / "tags"):
            for doc in read_docs(path, _display(path, root), "tags"):
                spec: TagFile = validate(TagFile, doc)
                where = doc.at("name")
                if spec.name in known:
                    raise SegmentError(f"custom tag '{spec.name}' has the name of a built-in tag", where, spec.name)
                if spec.name in lib.tags:
                    raise SegmentError(f"custom tag '{spec.name}' is already defined in "
                                       f"{lib.tags[spec.name].location}", where, spec.name)
                lib.tags[spec.name] = CustomTag(spec.name, spec.zh, spec.en, spec.kind, doc.source("expr"), where,
                                                spec.description)
        for path in _files(root / "segments"):
            for doc in read_docs(path, _display(path, root), "segments"):
                seg = _segment_of(doc, builtin=False)
                prev = lib.segments.get(seg.name)
                if prev is not None and not prev.builtin:
                    raise SegmentError(f"segment '{seg.name}' is already defined in {prev.location}",
                                       seg.location, seg.name)
                lib.segments[seg.name] = seg
    lib.check(base)
    return lib
