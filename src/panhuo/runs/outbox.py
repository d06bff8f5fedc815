"""The transactional outbox: idempotency keys and conflict-ignoring batch inserts.

A message's key is ``sha256(playbook \\x1f customer \\x1f run key)`` (hex): the same customer in the
same playbook run always has the same key, and ``outbox.idempotency_key`` is UNIQUE. Rows are
inserted with ``INSERT ... ON CONFLICT DO NOTHING`` (SQLite: the driver's executemany of tuples;
PostgreSQL: ``COPY`` into a transaction-scoped staging table, then one ``INSERT ... SELECT ... ON
CONFLICT DO NOTHING``; both several times faster than SQLAlchemy row inserts), so a retried batch
writes nothing twice. Both run on the session's own connection, inside its transaction. Decisions
(carrying their assignments) are keyed by (run, customer) and inserted the same way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session

from panhuo.store.models import SHANGHAI

__all__ = ["copy_column", "copy_escape", "copy_ids", "copy_text", "idempotency_key", "idempotency_keys", "insert_ignore",
           "sqlite_insert_ignore", "sqlite_time"]

_SEP = "\x1f"


def idempotency_key(playbook_id: str, customer_id: str, run_key: str) -> str:
    """The outbox key of one message: hex sha256 of (playbook, customer, run key)."""
    return hashlib.sha256(f"{playbook_id}{_SEP}{customer_id}{_SEP}{run_key}".encode()).hexdigest()


def idempotency_keys(playbook_id: str, customer_ids: Sequence[str], run_key: str) -> list[str]:
    """:func:`idempotency_key` for many customers."""
    sha = hashlib.sha256
    return [sha(f"{playbook_id}{_SEP}{c}{_SEP}{run_key}".encode()).hexdigest() for c in customer_ids]


def insert_ignore(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``table``, silently skipping rows whose key already exists."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        _copy_ignore(session, table, rows)
        return
    cols = list(rows[0])
    sql = (f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
           "ON CONFLICT DO NOTHING")
    raw = session.connection().connection.driver_connection  # sqlite3, inside this transaction
    assert raw is not None
    raw.executemany(sql, _sqlite_tuples(rows, cols))


def _sqlite_tuples(rows: Sequence[dict[str, Any]], cols: list[str]) -> list[tuple[Any, ...]]:
    """Rows as tuples the way SQLAlchemy binds them on SQLite: aware times as Shanghai wall-clock text
    (:class:`~panhuo.store.models.ShanghaiDateTime`), each distinct time converted once."""
    get = itemgetter(*cols)
    data = [get(r) for r in rows]
    times = [i for i, c in enumerate(cols) if isinstance(rows[0][c], dt.datetime)]
    if not times:
        return data
    memo: dict[dt.datetime, str] = {}

    def text(v: dt.datetime | None) -> str | None:
        if v is None:
            return None
        out = memo.get(v)
        if out is None:
            out = memo[v] = v.astimezone(SHANGHAI).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        return out

    fixed = []
    for t in data:
        row = list(t)
        for i in times:
            row[i] = text(row[i])
        fixed.append(tuple(row))
    return fixed


def _copy_ignore(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """PostgreSQL: COPY ``rows`` into a temporary staging table (emptied at commit) and insert from it."""
    cols = list(rows[0])
    stage = f"_stage_{table.name}"
    names = ", ".join(cols)
    raw = session.connection().connection.driver_connection  # the psycopg 3 connection of this transaction
    assert raw is not None
    with raw.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table.name} INCLUDING DEFAULTS) "
                    "ON COMMIT DELETE ROWS")
        cur.execute(f"TRUNCATE {stage}")
        get = itemgetter(*cols)
        with cur.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(get(row))
        cur.execute(f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage} ON CONFLICT DO NOTHING")


# -- column-wise writers (the run engine's batches) ------------------------------------------------
def copy_escape(value: Any) -> str:
    """One value in PostgreSQL's COPY text format (``\\N`` for None; backslash, tab, CR and LF escaped)."""
    if value is None:
        return "\\N"
    s = value if isinstance(value, str) else str(value)
    if "\\" in s or "\t" in s or "\n" in s or "\r" in s:
        s = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return s


def copy_column(values: Sequence[Any]) -> list[str]:
    """:func:`copy_escape` of a column, each distinct value escaped once (vocabulary columns)."""
    memo = {v: copy_escape(v) for v in set(values)}
    return [memo[v] for v in values]


def copy_ids(values: Sequence[str]) -> Sequence[str]:
    """A column of plain strings (ids, keys) as COPY text: returned as is unless one needs escaping."""
    joined = "".join(values)
    if "\\" in joined or "\t" in joined or "\n" in joined or "\r" in joined:
        return [copy_escape(v) for v in values]
    return values


def copy_text(session: Session, table: Table, cols: Sequence[str], block: str, *, ignore: bool) -> None:
    """PostgreSQL: ``block`` (COPY text format, one line per row) into ``table``.

    ``ignore``: through the staging table and ``ON CONFLICT DO NOTHING`` (rows may exist); otherwise a
    plain ``COPY`` into the table (the caller knows no row can exist: a duplicate raises UniqueViolation).
    """
    if not block:
        return
    names = ", ".join(cols)
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur:
        target = table.name
        if ignore:
            target = f"_stage_{table.name}"
            cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {target} (LIKE {table.name} INCLUDING DEFAULTS) "
                        "ON COMMIT DELETE ROWS")
            cur.execute(f"TRUNCATE {target}")
        with cur.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
            copy.write(block)
        if ignore:
            cur.execute(f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {target} ON CONFLICT DO NOTHING")


def sqlite_time(value: dt.datetime | None) -> str | None:
    """An aware time as SQLite stores it (:class:`~panhuo.store.models.ShanghaiDateTime`: Shanghai wall clock)."""
    if value is None:
        return None
    return value.astimezone(SHANGHAI).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def sqlite_insert_ignore(session: Session, table: Table, cols: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """SQLite: ``rows`` (tuples in ``cols`` order, times already as :func:`sqlite_time` text) ON CONFLICT DO NOTHING."""
    if not rows:
        return
    sql = (f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
           "ON CONFLICT DO NOTHING")
    raw = session.connection().connection.driver_connection
    assert raw is not None
    raw.executemany(sql, rows)
