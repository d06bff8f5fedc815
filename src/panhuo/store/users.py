"""Users and roles in the store, and who is acting.

Roles (issue 8): ``viewer``, ``operator`` (writes playbooks, runs dry runs), ``compliance``
(approves or rejects), ``advisor`` (own customers' tasks), ``admin`` (users, settings).

Bootstrap: on an empty store the very first user may be added without an acting user and always
becomes ``admin`` (plus any roles given). From then on only an active admin adds or disables users.
The last active admin cannot be disabled. Users are never deleted (the audit log names them).
Every change is in the audit log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from panhuo.store.audit import record
from panhuo.store.errors import AccessDenied, StoreError
from panhuo.store.models import ROLES, User, UserRole

__all__ = [
    "USER_NAME",
    "acting_user",
    "add_user",
    "count_users",
    "disable_user",
    "get_user",
    "list_users",
    "require_role",
    "user_snapshot",
]

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def user_snapshot(user: User) -> dict[str, object]:
    """The audited view of a user."""
    return {"name": user.name, "display_name": user.display_name, "roles": user.role_names, "active": user.active}


def count_users(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(User)).scalar_one())


def get_user(session: Session, name: str) -> User | None:
    return session.execute(select(User).where(User.name == name)).scalar_one_or_none()


def list_users(session: Session, *, include_inactive: bool = True) -> list[User]:
    q = select(User).order_by(User.name)
    if not include_inactive:
        q = q.where(User.active.is_(True))
    return list(session.execute(q).scalars())


def acting_user(session: Session, name: str | None) -> User:
    """The active user named ``name``; AccessDenied when none is given, unknown or disabled."""
    if not name:
        raise AccessDenied("no acting user: pass --as USER or set PANHUO_USER")
    user = get_user(session, name)
    if user is None:
        raise AccessDenied(f"unknown user {name!r} (see 'panhuo users list')")
    if not user.active:
        raise AccessDenied(f"user {name!r} is disabled")
    return user


def require_role(user: User, *roles: str, action: str) -> None:
    """AccessDenied unless ``user`` has one of ``roles``."""
    if not user.has_role(*roles):
        need = " or ".join(roles)
        raise AccessDenied(f"{action} needs the {need} role; {user.name!r} has {', '.join(user.role_names) or 'none'}")


def _check_roles(roles: Iterable[str]) -> list[str]:
    out = sorted(set(roles))
    bad = [r for r in out if r not in ROLES]
    if bad:
        raise StoreError(f"unknown role {bad[0]!r}: roles are {', '.join(ROLES)}")
    return out


def add_user(
    session: Session,
    name: str,
    roles: Iterable[str],
    *,
    display_name: str = "",
    actor: str | None = None,
) -> User:
    """Add a user. ``actor`` must be an active admin, except for the first user of an empty store.

    Raises
    ------
    AccessDenied
        No actor (store not empty), actor unknown, disabled or not admin.
    StoreError
        Bad name, unknown role, or a user of that name exists.
    """
    if not USER_NAME.match(name):
        raise StoreError(f"user name {name!r}: letters, digits and . _ @ - only, 1-64 characters")
    wanted = _check_roles(roles)
    if count_users(session) == 0:
        wanted = sorted(set(wanted) | {"admin"})
        by = actor or name
    else:
        admin = acting_user(session, actor)
        require_role(admin, "admin", action="adding a user")
        by = admin.name
    if not wanted:
        raise StoreError("give at least one role (--role)")
    if get_user(session, name) is not None:
        raise StoreError(f"user {name!r} exists")
    user = User(name=name, display_name=display_name, active=True, roles=[UserRole(role=r) for r in wanted])
    session.add(user)
    session.flush()
    record(session, actor=by, action="user.add", entity="user", entity_id=name, after=user_snapshot(user))
    return user


def disable_user(session: Session, name: str, *, actor: str | None) -> User:
    """Disable a user (admin only). The last active admin stays."""
    admin = acting_user(session, actor)
    require_role(admin, "admin", action="disabling a user")
    user = get_user(session, name)
    if user is None:
        raise StoreError(f"unknown user {name!r}")
    if not user.active:
        raise StoreError(f"user {name!r} is already disabled")
    if user.has_role("admin"):
        admins = [u for u in list_users(session, include_inactive=False) if u.has_role("admin")]
        if len(admins) <= 1:
            raise StoreError(f"{name!r} is the last active admin; add another admin first")
    before = user_snapshot(user)
    user.active = False
    session.flush()
    record(session, actor=admin.name, action="user.disable", entity="user", entity_id=name,
           before=before, after=user_snapshot(user))
    return user
