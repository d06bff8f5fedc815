"""``panhuo store upgrade|current`` (schema migrations) and ``panhuo audit verify|list`` (the audit log)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from panhuo.cli._common import console, err_console, workspace
from panhuo.cli._store import store

__all__ = ["audit_app", "register", "store_app"]

store_app = typer.Typer(name="store", help="The operational store (SQLite or PostgreSQL): schema migrations.",
                        no_args_is_help=True)
audit_app = typer.Typer(name="audit", help="The append-only, hash-chained audit log.", no_args_is_help=True)


@store_app.command("upgrade")
def upgrade_cmd() -> None:
    """Migrate the store to the newest schema (every command also does this on first use)."""
    from panhuo.store import db

    url = workspace().store_url
    before = db.current(url)
    after = db.upgrade(url)
    shown = db.normalise_url(url).render_as_string(hide_password=True)
    if before == after:
        console.print(f"store {shown}: already at revision [bold]{after}[/]")
    else:
        console.print(f"store {shown}: upgraded {before or '(empty)'} -> [bold]{after}[/]")


@store_app.command("current")
def current_cmd() -> None:
    """Show the store's URL, its schema revision and the newest revision this panhuo ships."""
    from panhuo.store import db

    url = workspace().store_url
    rev, head = db.current(url), db.head()
    shown = db.normalise_url(url).render_as_string(hide_password=True)
    console.print(f"store    {shown}")
    console.print(f"revision {rev or '(empty: no schema yet)'}")
    console.print(f"head     {head}" + ("" if rev == head else "  [yellow](run 'panhuo store upgrade')[/]"))


@audit_app.command("verify")
def verify_cmd() -> None:
    """Walk the hash chain; exit code 1 and the first broken seq when an entry was altered or removed."""
    from panhuo.store.audit import verify_audit

    with store().session() as s:
        result = verify_audit(s)
    if result.ok:
        console.print(f"[green]{result}[/]")
        return
    err_console.print(f"[bold red]{result}[/]")
    raise typer.Exit(1)


def _changes(before: dict[str, object] | None, after: dict[str, object] | None, width: int = 90) -> str:
    """``state: draft -> in_review; reason: ...``: what an entry changed (all of ``after`` for a creation)."""
    before, after = before or {}, after or {}
    parts = []
    for key in sorted(set(before) | set(after), key=lambda k: (k not in ("state", "reason"), k)):
        old, new = before.get(key), after.get(key)
        if key in before and old == new:
            continue
        parts.append(f"{key}: {old} -> {new}" if key in before else f"{key}: {new}")
    text = "; ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


@audit_app.command("list")
def list_cmd(
    entity: Annotated[str | None, typer.Option("--entity", help="user, playbook, ...")] = None,
    entity_id: Annotated[str | None, typer.Option("--id", help="the entity's id")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="entries made by this user")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="newest N entries")] = 50,
) -> None:
    """The newest audit entries (who, when, what, before -> after)."""
    from panhuo.store.audit import count_audit, iter_audit

    with store().session() as s:
        total = count_audit(s)
        rows = list(iter_audit(s, entity=entity, entity_id=entity_id, actor=actor, limit=limit))
        t = Table(title=f"Audit log 审计日志 ({len(rows)} shown of {total})")
        for col in ("seq", "at (Asia/Shanghai)", "actor", "action", "entity", "change (before -> after)"):
            t.add_column(col, overflow="fold")
        for e in rows:
            t.add_row(str(e.seq), e.at.strftime("%Y-%m-%d %H:%M:%S"), Text(e.actor), Text(e.action),
                      Text(f"{e.entity}:{e.entity_id}"), Text(_changes(e.before, e.after)))
    console.print(t)


def register(app: typer.Typer) -> None:
    app.add_typer(store_app)
    app.add_typer(audit_app)
