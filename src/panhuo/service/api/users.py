"""Users over the API (admin only): list, add (optionally with a password) and disable, through the functions
``panhuo users add|list|disable|passwd`` call (:mod:`panhuo.store.users`, :func:`panhuo.service.auth.set_password`);
each change is audited there."""

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from panhuo.service import auth
from panhuo.service.deps import API, NotFound, ReadDb, WriteDb, requires
from panhuo.service.models import UserPassword
from panhuo.service.schemas import UserIn, UserOut, errors
from panhuo.store.users import add_user, disable_user, get_user, list_users

__all__ = ["router"]

router = APIRouter(prefix=API, tags=["users"])

AdminReader = requires("admin", action="listing users")
AdminWriter = requires("admin", action="managing users", write=True)


def _user_out(s: Any, u: Any, with_password: set[int] | None = None) -> dict[str, Any]:
    has = (u.id in with_password) if with_password is not None else s.get(UserPassword, u.id) is not None
    return {"name": u.name, "display_name": u.display_name, "roles": u.role_names, "active": u.active,
            "has_password": has, "created_at": u.created_at}


@router.get("/users", response_model=list[UserOut], responses=errors())
def users(_who: AdminReader, s: ReadDb) -> Any:
    """Every user with roles, whether active and whether a password is set."""
    with_pw = set(s.execute(select(UserPassword.user_id)).scalars())
    return [_user_out(s, u, with_pw) for u in list_users(s)]


@router.post("/users", response_model=UserOut, status_code=201, responses=errors(400))
def add(body: UserIn, who: AdminWriter, s: WriteDb) -> Any:
    """Add a user with roles (and a password when given; at least 10 characters)."""
    u = add_user(s, body.name, body.roles, display_name=body.display_name, actor=who.user.name)
    if body.password is not None:
        auth.set_password(s, body.name, body.password, actor=who.user.name)
    return _user_out(s, u)


@router.post("/users/{name}/disable", response_model=UserOut, responses=errors(400, 404))
def disable(name: str, who: AdminWriter, s: WriteDb) -> Any:
    """Disable a user: they can no longer log in or use their keys (the last active admin stays)."""
    if get_user(s, name) is None:
        raise NotFound(f"unknown user {name!r}")
    return _user_out(s, disable_user(s, name, actor=who.user.name))
