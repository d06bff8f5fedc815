"""The outbox ``content`` of a playbook run: every message rendered set-based, personal data masked.

The run engine builds one :class:`MessageBuilder` per run and calls :meth:`MessageBuilder.build`
per batch of messages::

    builder = MessageBuilder(ws, spec, as_of, yaml_text=version.yaml_text, con=con)
    builder.prepare(ids_to_send)                       # optional: one tag query for the whole run
    out = builder.build(customer_ids, channels, benefit_ids)
    out.contents[i]   # the outbox content (compact JSON) or None when the message must not be sent
    out.problems[i]   # None, or MessageProblem(reason="content_too_long" | ..., detail="file line N, field F: ...")

Construction loads the benefit catalogue (names), merges the playbook's ``content:`` section with a
default template for every channel the playbook (or one of its arms) uses and has no template for
(built from the playbook name and ``{{ benefit_name }}``), and checks and compiles it once through
:class:`panhuo.content.ContentRenderer` (ContentError when a template fails the content review: the
run cannot send anything). It also finds the variables the templates use, so only those tag columns
are read, for all customers of a batch (or of :meth:`prepare`) in one query, never one per customer;
the phone number (masked before any template sees it) is read only when a template uses ``phone``.

A message is rendered once per distinct (channel, benefit, values of the variables its templates
use): templates that use a few low-cardinality tags (``asset_band``, ``province``) render a handful
of times for a million customers. A rendered message that breaks a length rule (SMS segments, push
title/body length) or whose rendered text carries a forbidden phrase is not sent: its content is
None and its problem names the reason code (:data:`REASONS`) and every issue.

``content`` per channel (``json.dumps(..., ensure_ascii=False)``, compact)::

    app_push  {"title": "...", "body": "..."}
    sms       {"text": "【盘活证券】...回T退订"}
    wechat    {"template_id": "...", "data": {"first": "...", "remark": "..."}}
    call      {"script": "..."}
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import meta

from panhuo.content.errors import ContentError, ContentIssue
from panhuo.content.masking import format_fen, mask_name, mask_phone
from panhuo.content.render import ContentRenderer, RenderedMessage, template_sources
from panhuo.content.sandbox import make_environment
from panhuo.content.spec import ContentSpec

if TYPE_CHECKING:
    from ibis import BaseBackend

    from panhuo.config import ContentSettings, Workspace
    from panhuo.playbooks.schema import PlaybookSpec

__all__ = [
    "CHANNEL_ORDER",
    "GUARDRAIL",
    "REASONS",
    "BuiltMessages",
    "MessageBuilder",
    "MessageProblem",
    "default_content",
    "effective_content",
    "message_content",
    "playbook_channels",
]

#: the guardrail name a rejected message's decision is logged under
GUARDRAIL = "content"
#: reason codes of a message that must not be sent (each fits ``decisions.reason``)
REASONS: tuple[str, ...] = ("content_too_long", "content_forbidden_wording", "content_render_failed")
CHANNEL_ORDER: tuple[str, ...] = ("app_push", "sms", "wechat", "call")
#: the WeChat template id of the default wechat message (register it on the official account)
DEFAULT_WECHAT_TEMPLATE = "PANHUO-DEFAULT"
_CACHE_MAX = 200_000  # distinct rendered messages kept; beyond that new ones are rendered, not cached
_PERSONAL = frozenset({"phone", "customer_name"})
_CONSTANT = frozenset({"brokerage_name", "link", "benefit_name"})


@dataclass(frozen=True)
class MessageProblem:
    """Why one message is not sent: a reason code of :data:`REASONS` and every issue (file, line, field)."""

    reason: str
    detail: str
    issues: tuple[ContentIssue, ...] = ()

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


@dataclass
class BuiltMessages:
    """One entry per message asked for, in order: the outbox content, or None and the problem."""

    contents: list[str | None] = field(default_factory=list)
    problems: list[MessageProblem | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.contents)

    @property
    def rejected(self) -> Counter[str]:
        """Rejected messages per reason code."""
        return Counter(p.reason for p in self.problems if p is not None)


def playbook_channels(spec: PlaybookSpec) -> list[str]:
    """Every channel a run of ``spec`` can send on: its channel element and its arms' channels."""
    used = set(spec.channel.channels) | {a.channel for a in spec.method.arms or [] if a.channel}
    return [c for c in CHANNEL_ORDER if c in used]


def _literal(text: str) -> str:
    """Text safe to put in a template as fixed text (no Jinja delimiters)."""
    return text.replace("{", "(").replace("}", ")").replace("\n", " ").strip()


def default_content(spec: PlaybookSpec, settings: ContentSettings | None = None,
                    channels: Sequence[str] | None = None) -> ContentSpec:
    """Default templates for ``channels`` (default: every channel of the playbook), from its name and
    ``{{ benefit_name }}``; they pass the same content review as written templates."""
    from panhuo.config import ContentSettings

    s = settings or ContentSettings()
    name = _literal(spec.name)
    wanted = list(channels) if channels is not None else playbook_channels(spec)
    parts: dict[str, Any] = {}
    if "app_push" in wanted:
        parts["app_push"] = {"title": name[: s.push_title_max],
                             "body": "{{ benefit_name }}已为您准备好，打开App即可查看。"}
    if "sms" in wanted:
        parts["sms"] = {"template": "{{ brokerage_name }}：{{ benefit_name }}已为您准备好，详情请点击{{ link }}"}
    if "wechat" in wanted:
        parts["wechat"] = {"template_id": DEFAULT_WECHAT_TEMPLATE,
                           "data": {"first": name, "keyword1": "{{ benefit_name }}", "remark": "点击查看详情"}}
    if "call" in wanted:
        parts["call"] = {"script": "您好，我是{{ brokerage_name }}的客户经理。我们为您准备了{{ benefit_name }}，"
                                   "想了解您近期的投资安排，看看是否能帮上忙。"}
    return ContentSpec.model_validate(parts)


def effective_content(spec: PlaybookSpec, settings: ContentSettings | None = None) -> ContentSpec:
    """The playbook's ``content:`` section plus a default template for every channel it uses and has none for."""
    content: ContentSpec | None = getattr(spec, "content", None)
    have = content.channels() if content is not None else []
    missing = [c for c in playbook_channels(spec) if c not in have]
    if not missing:
        assert content is not None
        return content
    merged = content.model_dump(exclude_none=True) if content is not None else {}
    merged.update(default_content(spec, settings, missing).model_dump(exclude_none=True))
    return ContentSpec.model_validate(merged)


def message_content(msg: RenderedMessage) -> str:
    """The outbox ``content`` of one rendered message: compact JSON of its channel's parts."""
    if msg.channel == "sms":
        obj: dict[str, Any] = {"text": msg.parts.get("template", "")}
    elif msg.channel == "wechat":
        obj = {"template_id": msg.parts.get("template_id", ""),
               "data": {k[len("data."):]: v for k, v in msg.parts.items() if k.startswith("data.")}}
    elif msg.channel == "call":
        obj = {"script": msg.parts.get("script", "")}
    else:
        obj = {k: msg.parts[k] for k in ("title", "body") if k in msg.parts}
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _classify(issues: Sequence[ContentIssue]) -> str:
    reasons = " ".join(i.reason for i in issues)
    if "forbidden wording" in reasons:
        return "content_forbidden_wording"
    return "content_too_long"


@dataclass(frozen=True)
class _Var:
    """How one template variable is made from a tag column: the column and how it is shown."""

    name: str
    column: str
    kind: str  # money | money_fen | date | plain

    def value(self, raw: Any) -> Any:
        """Exactly as :func:`panhuo.content.message_variables` shows it."""
        if self.kind == "money_fen":
            return None if raw is None else int(raw)
        if raw is None:
            return ""
        if self.kind == "money":
            return format_fen(int(raw))
        if self.kind == "date" and isinstance(raw, dt.date):
            return raw.isoformat()
        return raw


def _tag_vars(names: set[str]) -> list[_Var]:
    from panhuo.tags.catalogue import TAGS

    out: list[_Var] = []
    for spec in TAGS:
        if spec.name in names:
            kind = "money" if spec.kind == "money" else "date" if spec.kind == "date" else "plain"
            out.append(_Var(spec.name, spec.stored, kind))
        if spec.kind == "money" and spec.stored in names:
            out.append(_Var(spec.stored, spec.stored, "money_fen"))
    return out


class MessageBuilder:
    """Render the outbox content of one playbook run, many messages at a time (see the module docstring).

    Parameters
    ----------
    ws
        The workspace: settings (``content``), benefit catalogue, ``templates/``, warehouse and tags.
    spec
        The playbook version being run.
    as_of
        The tag snapshot used is the latest on or before this date (as the run's audience).
    yaml_text, file
        The playbook's YAML text and the name to give it in issues (file line numbers).
    con
        An Ibis backend (default: a new connection to the workspace's engine, opened on first use).
    tags_file
        A tag snapshot file to read instead of the stored snapshots (as ``panhuo run --tags-file``).

    Raises
    ------
    ContentError
        A template fails the content review (forbidden wording, unknown variable, sandbox, length of
        the fixed text): nothing of this playbook can be sent.
    """

    def __init__(
        self,
        ws: Workspace,
        spec: PlaybookSpec,
        as_of: dt.date,
        *,
        yaml_text: str | None = None,
        file: str | None = None,
        con: BaseBackend | None = None,
        tags_file: Path | None = None,
    ) -> None:
        from panhuo.benefits import load_catalogue

        self.ws, self.spec, self.as_of, self.tags_file = ws, spec, as_of, tags_file
        self._con = con
        self.settings = ws.settings.content
        self.file = file or f"playbook {spec.id}"
        self.content = effective_content(spec, self.settings)
        templates_dir = ws.root / "templates"
        self.renderer = ContentRenderer(self.content, self.settings, file=self.file, yaml_text=yaml_text,
                                        templates_dir=templates_dir)
        catalogue = load_catalogue(ws)
        self._benefit_names = {b.id: b.name.zh for b in catalogue}
        own = getattr(spec, "content", None)
        self.link = (own.link if own is not None else None) or self.settings.default_link
        env = make_environment()
        sources, _ = template_sources(self.content, file=self.file, yaml_text=yaml_text, templates_dir=templates_dir)
        used: dict[str, set[str]] = {}
        for src in sources:
            used.setdefault(src.channel, set()).update(meta.find_undeclared_variables(env.parse(src.text)))
        self.channels = list(used)
        all_used = set().union(*used.values()) if used else set()
        self._tag_vars = _tag_vars(all_used)
        by_name = {v.name: i for i, v in enumerate(self._tag_vars)}
        # per channel: the tag variables (index into the row) and the personal variables it needs
        self._plan = {ch: ([by_name[n] for n in sorted(names) if n in by_name],
                           sorted(names & _PERSONAL), "benefit_name" in names) for ch, names in used.items()}
        self._personal_needed = sorted(all_used & _PERSONAL)
        self._rows: dict[str, tuple[Any, ...]] = {}
        self._personal: dict[str, dict[str, str]] = {}
        self._cache: dict[tuple[Any, ...], tuple[str | None, MessageProblem | None]] = {}
        self.rendered = 0  # messages actually rendered (the rest came from the cache)

    # ----------------------------------------------------------------------------------- data access
    @property
    def columns(self) -> list[str]:
        """The tag columns the templates need (stored names)."""
        return list(dict.fromkeys(v.column for v in self._tag_vars))

    @property
    def personal_fields(self) -> list[str]:
        """The personal variables the templates use (read from the warehouse, masked)."""
        return list(self._personal_needed)

    def _connection(self) -> BaseBackend:
        if self._con is None:
            from panhuo.engines import connect

            self._con = connect(self.ws.settings.engine, self.ws.tmp_dir)
        return self._con

    def prepare(self, customer_ids: Sequence[str]) -> None:
        """Read what the templates need for ``customer_ids`` (one query for the tags, one for the phones);
        :meth:`build` reads what is missing itself, one query per call."""
        todo = [c for c in dict.fromkeys(customer_ids) if c not in self._rows]
        if not todo:
            return
        if self._tag_vars:
            self._read_tags(todo)
        if self._personal_needed:
            self._read_personal(todo)
        for cid in todo:
            self._rows.setdefault(cid, ())

    def _ids_table(self, ids: list[str]) -> Any:
        import ibis
        import pyarrow as pa

        return ibis.memtable(pa.table({"_mid": pa.array(ids, pa.string())}))

    def _read_tags(self, ids: list[str]) -> None:
        con = self._connection()
        if self.tags_file is not None:
            from panhuo.segments import read_tags_file

            t, _ = read_tags_file(con, self.tags_file, self.as_of)
        else:
            from panhuo.tags import load_tags

            t = load_tags(self.ws, con, self.as_of)
        have = [c for c in self.columns if c in t.columns]
        want = self._ids_table(ids)
        t = t.select(*have, _mid=t.customer_id.cast("string"))
        q = t.join(want, "_mid")
        table = con.to_pyarrow(q)
        cols = {c: table.column(c).to_pylist() for c in have}
        keys = table.column("_mid").to_pylist()
        empty = [None] * len(keys)
        data = [cols.get(v.column, empty) for v in self._tag_vars]
        for i, cid in enumerate(keys):
            self._rows[cid] = tuple(col[i] for col in data)

    def _read_personal(self, ids: list[str]) -> None:
        from panhuo.errors import WarehouseError
        from panhuo.warehouse import Warehouse

        found: dict[str, dict[str, str]] = {}
        try:
            wh = Warehouse(self.ws.warehouse_dir)
            if wh.has_table("customers"):
                con = self._connection()
                c = wh.table(con, "customers")
                name_col = next((n for n in ("customer_name", "name") if n in c.columns), None)
                cols = {"phone": "phone" if "phone" in c.columns else None, "customer_name": name_col}
                sel = {k: c[v].cast("string") for k, v in cols.items() if v is not None and k in self._personal_needed}
                if sel:
                    c = c.select(_mid=c.customer_id.cast("string"), **sel).join(self._ids_table(ids), "_mid")
                    for row in con.to_pyarrow(c).to_pylist():
                        found[row.pop("_mid")] = row
        except WarehouseError:
            found = {}
        for cid in ids:
            row = found.get(cid, {})
            self._personal[cid] = {"phone": mask_phone(row.get("phone")),
                                   "customer_name": mask_name(row.get("customer_name"))}

    # ----------------------------------------------------------------------------------- rendering
    def benefit_name(self, benefit_id: str | None) -> str:
        """The zh name of a benefit (its id when the catalogue has none)."""
        if not benefit_id:
            return ""
        return self._benefit_names.get(benefit_id, benefit_id)

    def build(
        self, customer_ids: Sequence[str], channels: Sequence[str | None], benefit_ids: Sequence[str | None]
    ) -> BuiltMessages:
        """The content of each message (customer, channel, benefit), aligned with the inputs."""
        if not len(customer_ids) == len(channels) == len(benefit_ids):
            raise ValueError(f"customer_ids, channels and benefit_ids differ in length: {len(customer_ids)}, "
                             f"{len(channels)}, {len(benefit_ids)}")
        self.prepare(customer_ids)
        out = BuiltMessages()
        contents, problems = out.contents, out.problems
        rows, cache, plan = self._rows, self._cache, self._plan
        for cid, channel, bid in zip(customer_ids, channels, benefit_ids, strict=True):
            p = plan.get(channel or "")
            if p is None:
                contents.append(None)
                problems.append(MessageProblem("content_render_failed",
                                               f"no template for channel {channel!r} (templates: "
                                               f"{', '.join(self.channels)})"))
                continue
            idx, personal, uses_benefit = p
            row = rows.get(cid, ())
            values = tuple(row[i] if row else None for i in idx)
            if personal:
                pv = self._personal.get(cid, {})
                values += tuple(pv.get(n, "") for n in personal)
            key = (channel, bid if uses_benefit else None, values)
            hit = cache.get(key)
            if hit is None:
                hit = self._render(channel or "", bid, idx, personal, values)
                if len(cache) < _CACHE_MAX:
                    cache[key] = hit
            contents.append(hit[0])
            problems.append(hit[1])
        return out

    def _render(self, channel: str, bid: str | None, idx: list[int], personal: list[str],
                values: tuple[Any, ...]) -> tuple[str | None, MessageProblem | None]:
        self.rendered += 1
        tag_vars = self._tag_vars
        variables: dict[str, Any] = {"brokerage_name": self.settings.brokerage_name, "link": self.link,
                                     "benefit_name": self.benefit_name(bid)}
        for j, i in enumerate(idx):
            v = tag_vars[i]
            variables[v.name] = v.value(values[j])
        for j, name in enumerate(personal):
            variables[name] = values[len(idx) + j]
        try:
            msgs = self.renderer.render(variables, channels=[channel])
        except ContentError as exc:
            return None, MessageProblem("content_render_failed", "; ".join(map(str, exc.issues)), tuple(exc.issues))
        except Exception as exc:  # noqa: BLE001 - a value a template cannot take (e.g. arithmetic on ""): not sent
            issue = ContentIssue(self.file, None, f"content.{channel}", f"cannot render: {type(exc).__name__}: {exc}")
            return None, MessageProblem("content_render_failed", str(issue), (issue,))
        msg = msgs[0]
        if msg.problems:
            return None, MessageProblem(_classify(msg.problems), "; ".join(map(str, msg.problems)), tuple(msg.problems))
        return message_content(msg), None

    def render_one(self, variables: Mapping[str, Any], channel: str) -> RenderedMessage:
        """One channel rendered with full variables (as :func:`panhuo.content.message_variables` makes them)."""
        return self.renderer.render(variables, channels=[channel])[0]
