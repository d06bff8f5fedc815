"""Migrations from an empty database on SQLite and PostgreSQL; the models match them; store settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from panhuo.config import Workspace
from panhuo.store import db
from panhuo.store.errors import StoreError
from panhuo.store.models import Base

__all__: list[str] = []

TABLES = {"users", "user_roles", "playbooks", "playbook_versions", "audit_log", "alembic_version"}


def test_upgrade_from_empty_reaches_head(store_url: str) -> None:
    assert db.current(store_url) is None
    assert db.upgrade(store_url) == db.head()
    engine = db.make_engine(store_url)
    try:
        assert TABLES <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_head_constant_matches_the_shipped_migrations() -> None:
    assert db.HEAD == db.head()


def test_upgrade_twice_is_a_no_op(store_url: str) -> None:
    db.upgrade(store_url)
    assert db.upgrade(store_url) == db.head()


def test_downgrade_to_empty_and_up_again(store_url: str) -> None:
    db.upgrade(store_url)
    assert db.downgrade(store_url, "base") is None
    engine = db.make_engine(store_url)
    try:
        assert not (TABLES - {"alembic_version"}) & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert db.upgrade(store_url) == db.head()


def test_models_match_migrations(store_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    db.upgrade(store_url)
    engine = db.make_engine(store_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_sqlite_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    store = db.open_store(url)
    try:
        with store.session() as s:
            assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        store.dispose()


def test_fresh_workspace_store_is_migrated_on_first_use(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "fresh")
    assert ws.store_url == f"sqlite:///{tmp_path / 'fresh'}/panhuo.db"
    store = db.open_store(ws)
    try:
        assert db.current(store.engine) == db.head()
    finally:
        store.dispose()


def test_bare_postgresql_url_means_psycopg3() -> None:
    assert db.normalise_url("postgresql://u@h/d").drivername == "postgresql+psycopg"


@pytest.mark.parametrize("url", ["not a url", "mysql://u@h/d"])
def test_bad_store_url_is_a_clear_error(url: str) -> None:
    with pytest.raises(StoreError, match="store_url"):
        db.normalise_url(url)
