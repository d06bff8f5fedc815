"""Playbook fixtures: store URLs on SQLite and PostgreSQL (tests/store/_pg.py) and users."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from panhuo.store import Store, add_user, open_store
from tests.store._pg import pg_database, pg_url, store_url  # noqa: F401  (fixtures)

__all__: list[str] = []


@pytest.fixture
def people(store_url: str) -> Iterator[Store]:  # noqa: F811
    """A migrated store with admin ``root``, operators ``ops`` and ``ops2``, compliance ``cmp``,
    ``cmp_ops`` (compliance and operator), a viewer ``view`` and a disabled operator ``gone``."""
    store = open_store(store_url)
    with store.session() as s:
        add_user(s, "root", ["admin"])
        for name, roles in [("ops", ["operator"]), ("ops2", ["operator"]), ("cmp", ["compliance"]),
                            ("cmp_ops", ["compliance", "operator"]), ("view", ["viewer"]), ("gone", ["operator"])]:
            add_user(s, name, roles, actor="root")
    from panhuo.store.users import disable_user

    with store.session() as s:
        disable_user(s, "gone", actor="root")
    yield store
    store.dispose()
