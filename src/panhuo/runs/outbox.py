"""The transactional outbox: idempotency keys and conflict-ignoring batch inserts.

A message's key is ``sha256(playbook \\x1f customer \\x1f run key)`` (hex): the same customer in the
same playbook run always has the same key, and ``outbox.idempotency_key`` is UNIQUE. Rows are
inserted with ``INSERT ... ON CONFLICT DO NOTHING`` (SQLite: the driver's executemany of tuples;
PostgreSQL: ``COPY`` into a transaction-scoped staging table, then one ``INSERT ... SELECT ... ON
CONFLICT DO NOTHING``; both several times faster than SQLAlchemy row inserts), so a retried batch
writes nothing twice. Both run on the session's own connection, inside its transaction. Decisions and
assignments are keyed by (run, customer) and inserted the same way.
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

__all__ = ["idempotency_key", "idempotency_keys", "insert_ignore"]

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
