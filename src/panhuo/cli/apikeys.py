"""``panhuo apikeys create|list|revoke``: API keys for integrations calling ``panhuo serve``.

A key acts as one user within a scope (``read``: GET only; ``write``: also changes, still limited by
the user's roles). ``create`` prints the key once; only its SHA-256 is stored, so a lost key is
revoked and replaced. Creating, listing and revoking keys needs ``--as`` an admin; every change is
in the audit log.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from panhuo.cli._common import console, err_console
from panhuo.cli._store import AsUser, store

__all__ = ["apikeys_app", "register"]

apikeys_app = typer.Typer(name="apikeys", help="API keys for integrations (shown once, stored hashed, revocable).",
                          no_args_is_help=True)


@apikeys_app.command("create")
def create_cmd(
    name: Annotated[str, typer.Argument(help="what the key is for, e.g. crm-sync")],
    user: Annotated[str, typer.Option("--user", help="the user the key acts as")],
    scope: Annotated[str, typer.Option("--scope", help="read or write")] = "read",
    as_user: AsUser = None,
) -> None:
    """Create a key (admin); the key is printed once and cannot be shown again."""
    from panhuo.service.auth import create_api_key

    with store().session() as s:
        key = create_api_key(s, name, user=user, scope=scope, actor=as_user)
    console.print(f"API key {key.id} [bold]{escape(key.name)}[/] acting as {escape(key.user)} ({key.scope}):")
    typer.echo(key.secret)
    err_console.print("[yellow]copy it now: it is shown only once (only its hash is stored)[/]")


@apikeys_app.command("list")
def list_cmd(as_user: AsUser = None) -> None:
    """Every key: id, name, user, scope, prefix, created, revoked (admin)."""
    from panhuo.service.auth import list_api_keys
    from panhuo.store.users import acting_user, require_role

    with store().session() as s:
        require_role(acting_user(s, as_user), "admin", action="listing API keys")
        rows = list_api_keys(s)
        t = Table(title=f"API keys ({len(rows)})")
        for col in ("id", "name", "user", "scope", "prefix", "created by", "created (Asia/Shanghai)", "revoked"):
            t.add_column(col)
        for k, user in rows:
            t.add_row(str(k.id), Text(k.name), Text(user), k.scope, k.prefix + "…", Text(k.created_by),
                      k.created_at.strftime("%Y-%m-%d %H:%M"),
                      k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "")
    console.print(t)


@apikeys_app.command("revoke")
def revoke_cmd(key_id: Annotated[int, typer.Argument(help="the key's id (see 'apikeys list')")],
               as_user: AsUser = None) -> None:
    """Revoke a key for good (admin); requests with it are refused from now on."""
    from panhuo.service.auth import revoke_api_key

    with store().session() as s:
        key = revoke_api_key(s, key_id, actor=as_user)
        name = key.name
    console.print(f"revoked API key {key_id} [bold]{escape(name)}[/]")


def register(app: typer.Typer) -> None:
    app.add_typer(apikeys_app)
