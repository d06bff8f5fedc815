"""Migration 0003 (benefit ledger and stock counter) up and down on SQLite and PostgreSQL, with data around it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from panhuo.store import db

__all__: list[str] = []

BENEFIT_TABLES = {"benefit_ledger", "benefit_stock"}


def _tables(url: str) -> set[str]:
    engine = db.make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_0003_up_and_down_keeps_the_run_tables(store_url: str) -> None:
    assert db.upgrade(store_url, "0002") == "0002"
    assert not BENEFIT_TABLES & _tables(store_url)
    engine = db.make_engine(store_url)
    try:
        with engine.begin() as c:  # a run written before the upgrade survives it and the downgrade
            c.execute(text("INSERT INTO users (name, display_name, active, created_at) VALUES ('u', '', true, :t)"),
                      {"t": dt.datetime(2026, 6, 1, 10)})
            c.execute(text("INSERT INTO playbooks (id, name, state, current_version, created_by, created_at, "
                           "updated_at) VALUES ('p', 'p', 'live', 1, 'u', :t, :t)"), {"t": dt.datetime(2026, 6, 1)})
            c.execute(text("INSERT INTO runs (playbook_id, playbook_version, run_key, as_of, started_at, state, "
                           "candidates, holdout, sends) VALUES ('p', 1, 'k', :d, :t, 'done', 0, 0, 0)"),
                      {"d": dt.date(2026, 6, 1), "t": dt.datetime(2026, 6, 1)})
        assert db.upgrade(engine, "0003") == "0003"
        assert BENEFIT_TABLES <= _tables(store_url)
        with engine.begin() as c:
            run_id = c.execute(text("SELECT id FROM runs")).scalar_one()
            row = {"r": run_id, "t": dt.datetime(2026, 6, 1, 10)}
            c.execute(text("INSERT INTO benefit_ledger VALUES (:r, 'c1', 'b', 350, :t)"), row)
            c.execute(text("INSERT INTO benefit_stock (benefit_id, issued, spent_fen, updated_at) "
                           "VALUES ('b', 1, 350, :t)"), row)
        with pytest.raises(IntegrityError), engine.begin() as c:  # one row per (run, customer, benefit)
            c.execute(text("INSERT INTO benefit_ledger VALUES (:r, 'c1', 'b', 350, :t)"), row)
        with pytest.raises(IntegrityError), engine.begin() as c:  # the ledger belongs to a real run
            c.execute(text("INSERT INTO benefit_ledger VALUES (:r, 'c2', 'b', 350, :t)"), {**row, "r": run_id + 99})
        with pytest.raises(IntegrityError), engine.begin() as c:  # counters never go negative
            c.execute(text("UPDATE benefit_stock SET spent_fen = -1"))
        assert db.downgrade(engine, "0002") == "0002"
        assert not BENEFIT_TABLES & _tables(store_url)
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM runs")).scalar_one() == 1
        assert db.upgrade(engine, "0003") == "0003"
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM benefit_ledger")).scalar_one() == 0
    finally:
        engine.dispose()
