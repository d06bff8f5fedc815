"""Users: bootstrap admin, admin-only changes, roles, disabling, and who may act."""

from __future__ import annotations

import pytest

from panhuo.store import db
from panhuo.store.audit import iter_audit, verify_audit
from panhuo.store.errors import AccessDenied, StoreError
from panhuo.store.users import acting_user, add_user, disable_user, get_user, list_users

__all__: list[str] = []


@pytest.fixture
def store(store_url: str):
    s = db.open_store(store_url)
    yield s
    s.dispose()


def test_first_user_becomes_admin_without_actor(store: db.Store) -> None:
    with store.session() as s:
        u = add_user(s, "root", ["operator"], display_name="管理员")
        assert u.role_names == ["admin", "operator"]
    with store.session() as s:
        (entry,) = list(iter_audit(s))
        assert (entry.actor, entry.action, entry.entity_id) == ("root", "user.add", "root")
        assert entry.after is not None and entry.after["roles"] == ["admin", "operator"]


def test_later_users_need_an_active_admin(store: db.Store) -> None:
    with store.session() as s:
        add_user(s, "root", ["admin"])
        add_user(s, "ops", ["operator"], actor="root")
    with pytest.raises(AccessDenied, match="no acting user"), store.session() as s:
        add_user(s, "x", ["viewer"])
    with pytest.raises(AccessDenied, match="admin role"), store.session() as s:
        add_user(s, "x", ["viewer"], actor="ops")
    with pytest.raises(AccessDenied, match="unknown user"), store.session() as s:
        add_user(s, "x", ["viewer"], actor="nobody")
    with store.session() as s:
        assert [u.name for u in list_users(s)] == ["ops", "root"]


@pytest.mark.parametrize(("name", "roles", "match"), [
    ("bad name", ["viewer"], "user name"),
    ("x", ["superuser"], "unknown role"),
    ("x", [], "at least one role"),
    ("root", ["viewer"], "exists"),
])
def test_bad_user_is_refused(store: db.Store, name: str, roles: list[str], match: str) -> None:
    with store.session() as s:
        add_user(s, "root", ["admin"])
    with pytest.raises(StoreError, match=match), store.session() as s:
        add_user(s, name, roles, actor="root")


def test_disabled_user_cannot_act_and_last_admin_stays(store: db.Store) -> None:
    with store.session() as s:
        add_user(s, "root", ["admin"])
        add_user(s, "ops", ["operator"], actor="root")
        disable_user(s, "ops", actor="root")
    with pytest.raises(AccessDenied, match="disabled"), store.session() as s:
        acting_user(s, "ops")
    with pytest.raises(StoreError, match="last active admin"), store.session() as s:
        disable_user(s, "root", actor="root")
    with store.session() as s:
        ops = get_user(s, "ops")
        assert ops is not None and not ops.active
        assert verify_audit(s).checked == 3
