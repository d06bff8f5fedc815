"""Engines, migrations and sessions of the operational store.

SQLite by default (``sqlite:///{workspace}/panhuo.db``: WAL journal, foreign keys on, a busy
timeout, and ``BEGIN IMMEDIATE`` so writers queue instead of failing), PostgreSQL by setting
``store_url`` (``postgresql+psycopg://user@host/db``; a bare ``postgresql://`` URL is read as psycopg 3).
The schema is created and upgraded by the Alembic migrations shipped in ``panhuo/store/alembic``;
:func:`open_store` runs them on first use, so every command works from a fresh, empty directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from panhuo.store.errors import StoreError

if TYPE_CHECKING:
    from panhuo.config import Workspace

__all__ = ["ALEMBIC_DIR", "HEAD", "Store", "current", "downgrade", "head", "make_engine", "normalise_url", "open_store", "upgrade"]

ALEMBIC_DIR = Path(__file__).resolve().parent / "alembic"
HEAD = "0007"  # the newest revision in alembic/versions (a test keeps the two equal)
SQLITE_BUSY_MS = 30_000
READ_ONLY = "panhuo_read_only"  # execution option of Store.read_session's engine


def normalise_url(url: str) -> URL:
    """Parse a store URL; ``postgresql://`` means psycopg 3. Raises StoreError for a bad URL."""
    try:
        u = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"store_url {url!r} is not a database URL: {exc}") from exc
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(f"store_url {url!r}: only SQLite and PostgreSQL are supported")
    return u


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" below start transactions
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # a read-only unit of work (Store.read_session) takes no writer lock: WAL readers run side by side
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


def make_engine(url: str | URL) -> Engine:
    """A SQLAlchemy engine for the store with panhuo's connection settings."""
    u = normalise_url(url) if isinstance(url, str) else url
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(u, connect_args={"timeout": SQLITE_BUSY_MS / 1000})
        _sqlite_setup(engine)
        return engine
    return create_engine(u, pool_pre_ping=True)


def _alembic_config(connection: Any = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest migration revision shipped with this panhuo."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(_alembic_config()).get_heads()
    return heads[0]


def _describe(url: str | URL) -> str:
    u = normalise_url(url) if isinstance(url, str) else url
    return u.render_as_string(hide_password=True)


def upgrade(url: str | URL | Engine, revision: str = "head") -> str:
    """Migrate the store at ``url`` to ``revision`` (default: the newest); returns the revision now in force."""
    from alembic import command

    engine = url if isinstance(url, Engine) else make_engine(url)
    try:
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn), revision)
        return current(engine) or ""
    except OperationalError as exc:
        raise StoreError(f"cannot migrate the store at {_describe(engine.url)}: {exc.orig}") from exc
    finally:
        if not isinstance(url, Engine):
            engine.dispose()


def downgrade(url: str | URL | Engine, revision: str = "base") -> str | None:
    """Migrate the store at ``url`` down to ``revision`` (default: empty); returns the revision now in force."""
    from alembic import command

    engine = url if isinstance(url, Engine) else make_engine(url)
    try:
        with engine.begin() as conn:
            command.downgrade(_alembic_config(conn), revision)
        return current(engine)
    finally:
        if not isinstance(url, Engine):
            engine.dispose()


def current(url: str | URL | Engine) -> str | None:
    """The migration revision of the store at ``url`` (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    engine = url if isinstance(url, Engine) else make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        raise StoreError(f"cannot open the store at {_describe(engine.url)}: {exc.orig}") from exc
    finally:
        if not isinstance(url, Engine):
            engine.dispose()


@dataclass
class Store:
    """An open, migrated store: an engine and a session factory."""

    engine: Engine
    _factory: sessionmaker[Session] = field(init=False, repr=False)
    _read_factory: sessionmaker[Session] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        self._read_factory = sessionmaker(self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back on any error."""
        with self._factory.begin() as s:
            yield s

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A unit of work that only reads: on SQLite a deferred ``BEGIN`` (no writer lock, so reads never queue
        behind each other or a writer); always rolled back when the block ends. Never write in it."""
        s = self._read_factory()
        try:
            yield s
        finally:
            s.rollback()
            s.close()

    def dispose(self) -> None:
        self.engine.dispose()


_MIGRATED: set[str] = set()


def _stored_revision(engine: Engine) -> str | None:
    """The revision in ``alembic_version`` with one plain query (None when there is no such table)."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:
        return None
    return rows[0] if len(rows) == 1 else None


def open_store(target: str | Workspace, *, migrate: bool = True) -> Store:
    """Open the store of a workspace (or at a URL), upgrading its schema on first use in this process."""
    url = target if isinstance(target, str) else target.store_url
    engine = make_engine(url)
    key = engine.url.render_as_string(hide_password=False)
    if migrate and key not in _MIGRATED:
        if _stored_revision(engine) != HEAD:  # the common case skips loading Alembic at all
            upgrade(engine)
        _MIGRATED.add(key)
    return Store(engine)
