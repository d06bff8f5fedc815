"""``panhuo users add|list|disable|passwd``: the people who use panhuo, their roles and their console passwords.

Roles: viewer, operator, compliance, advisor, admin. Bootstrap: the very first user of an empty store
is added without ``--as`` and becomes admin; after that, adding or disabling users needs ``--as`` an
admin (or ``PANHUO_USER``). ``passwd`` sets a password for logging in to ``panhuo serve`` (a user their
own, an admin anyone's); it is read from a hidden prompt, or from standard input when that is not a
terminal, never from the command line. Every change is in the audit log.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from panhuo.cli._common import console
from panhuo.cli._store import AsUser, store

_ROLES = "viewer, operator, compliance, advisor, admin"

__all__ = ["register", "users_app"]

users_app = typer.Typer(name="users", help="Users and roles (viewer, operator, compliance, advisor, admin).",
                        no_args_is_help=True)


@users_app.command("add")
def add_cmd(
    name: Annotated[str, typer.Argument(help="login name (letters, digits, . _ @ -)")],
    role: Annotated[list[str], typer.Option("--role", "-r", help=f"one of {_ROLES}; repeat for more")],
    display: Annotated[str, typer.Option("--display", help="display name, e.g. 张三")] = "",
    as_user: AsUser = None,
) -> None:
    """Add a user (needs --as an admin; the first user of an empty store becomes admin without it)."""
    from panhuo.store.users import add_user

    with store().session() as s:
        user = add_user(s, name, role, display_name=display, actor=as_user)
        roles = ", ".join(user.role_names)
    console.print(f"added user [bold]{escape(name)}[/] ({roles})")


@users_app.command("list")
def list_cmd() -> None:
    """Every user with roles and whether active."""
    from panhuo.store.users import list_users

    with store().session() as s:
        users = list_users(s)
        t = Table(title=f"Users 用户 ({len(users)})")
        for col in ("name", "display name", "roles", "active", "created (Asia/Shanghai)"):
            t.add_column(col)
        for u in users:
            t.add_row(Text(u.name), Text(u.display_name), ", ".join(u.role_names),
                      "yes" if u.active else "[red]disabled[/]", u.created_at.strftime("%Y-%m-%d %H:%M"))
    console.print(t)


@users_app.command("disable")
def disable_cmd(name: Annotated[str, typer.Argument(help="the user to disable")], as_user: AsUser = None) -> None:
    """Disable a user (admin only); the user stays in the audit log and can no longer act."""
    from panhuo.store.users import disable_user

    with store().session() as s:
        disable_user(s, name, actor=as_user)
    console.print(f"disabled user [bold]{escape(name)}[/]")


def _read_password() -> str:
    import sys

    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    return typer.prompt("new password", hide_input=True, confirmation_prompt=True)


@users_app.command("passwd")
def passwd_cmd(name: Annotated[str, typer.Argument(help="whose password")], as_user: AsUser = None) -> None:
    """Set a user's console password (yourself, or anyone as an admin); read from a prompt or stdin, never argv.
    Ends the user's open console sessions."""
    from panhuo.service.auth import set_password

    password = _read_password()
    with store().session() as s:
        set_password(s, name, password, actor=as_user)
    console.print(f"password set for [bold]{escape(name)}[/]")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app)
