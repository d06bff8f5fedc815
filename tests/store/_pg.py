"""Store fixtures shared by tests/store and tests/playbooks: a SQLite or PostgreSQL store URL.

PostgreSQL: a session-wide database ``panhuo_test_<random>`` is created on the server at
``$PANHUO_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``) and dropped at the
end; each test starts from an empty ``public`` schema. When no server answers, the PostgreSQL cases
are skipped with the reason.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PG_ADMIN", "pg_admin_url", "pg_database", "pg_url", "store_url"]

PG_ADMIN = os.environ.get("PANHUO_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_admin_url() -> str:
    return PG_ADMIN


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database for this test session (skips when no server answers)."""
    psycopg = pytest.importorskip("psycopg")
    from sqlalchemy.engine import make_url

    admin = make_url(PG_ADMIN)
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        conn = psycopg.connect(dsn, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers at {admin.host}:{admin.port} ({PG_ADMIN}): {exc}".strip())
    name = f"panhuo_test_{secrets.token_hex(5)}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
    finally:
        from panhuo.store import db

        db._MIGRATED.clear()
        with psycopg.connect(dsn, connect_timeout=3, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The session database with an empty public schema."""
    import psycopg
    from sqlalchemy.engine import make_url

    from panhuo.store import db

    dsn = make_url(pg_database).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    db._MIGRATED.clear()
    return pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store on SQLite (a file in tmp_path) and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'panhuo.db'}"
    return request.getfixturevalue("pg_url")
