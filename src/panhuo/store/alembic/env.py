"""Alembic environment of the operational store.

The URL comes from the workspace settings (``store_url`` in ``panhuo.yaml``, as in the
full-stack-fastapi-template), unless the caller hands over a connection
(``config.attributes["connection"]``, what :func:`panhuo.store.upgrade` does) or sets
``sqlalchemy.url``. On PostgreSQL a transaction-scoped advisory lock serialises concurrent upgrades;
on SQLite the store's engine begins every transaction with ``BEGIN IMMEDIATE``, which does the same.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from panhuo.store.models import Base

__all__: list[str] = []

MIGRATION_LOCK = 72_230_001  # pg_advisory_xact_lock key of schema upgrades


def _url() -> str:
    url = context.config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from panhuo.config import Workspace

    return Workspace.open().store_url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from panhuo.store.db import make_engine

    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _offline() -> bool | None:
    """Whether Alembic runs offline; None when this file is imported outside Alembic (e.g. a module walk)."""
    try:
        return context.is_offline_mode()
    except (NameError, AttributeError):  # the context proxy exists only while Alembic runs env.py
        return None


_mode = _offline()
if _mode is True:
    run_migrations_offline()
elif _mode is False:
    run_migrations_online()
