"""Migration 0007 (assignments folded into the decisions, a redundant outbox index dropped) up and down on
SQLite and PostgreSQL, with data.

A run written under 0006 (decisions and a separate assignments table) reads the same through
``assignment_rows`` after the upgrade, and the same assignments table comes back on the downgrade. An
assignment without a decision stops the upgrade with an error naming it, and nothing changes.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from panhuo.runs.models import assignment_rows
from panhuo.store import db
from panhuo.store.errors import StoreError

__all__: list[str] = []

DECISIONS = [  # run 1: (customer, guardrail, outcome, reason)
    ("c1", "assignment", "send", "ok"),
    ("c2", "assignment", "holdout", "holdout"),
    ("c3", "global_control", "blocked", "global_control"),
    ("c4", "consent", "blocked", "no_consent"),
    ("c5", "content", "blocked", "sms_too_long"),  # assigned and treated, then refused its content
]
ASSIGNMENTS = [  # run 1: (customer, grp, arm, propensity, seed)
    ("c1", "treated", "main", 0.855, "s1"),
    ("c2", "holdout", None, 0.1, "s1"),
    ("c3", "global_control", None, 0.05, "s1"),
    ("c5", "treated", "main", 0.855, "s1"),
]


def _seed_0006(engine: Engine, *, orphan: bool = False) -> int:
    """A playbook, a run and its decisions and assignments as 0006 stored them; returns the run id."""
    t = dt.datetime(2026, 6, 1, 10)
    with engine.begin() as c:
        c.execute(text("INSERT INTO users (name, display_name, active, created_at) VALUES ('u', '', true, :t)"),
                  {"t": t})
        c.execute(text("INSERT INTO playbooks (id, name, state, current_version, created_by, created_at, "
                       "updated_at) VALUES ('p', 'p', 'live', 1, 'u', :t, :t)"), {"t": t})
        c.execute(text("INSERT INTO runs (playbook_id, playbook_version, run_key, as_of, started_at, state, "
                       "candidates, holdout, sends) VALUES ('p', 1, 'k', :d, :t, 'done', 5, 1, 1)"),
                  {"d": dt.date(2026, 6, 1), "t": t})
        run_id = c.execute(text("SELECT id FROM runs")).scalar_one()
        for cid, g, o, r in DECISIONS:
            c.execute(text("INSERT INTO decisions VALUES (:r, :c, :g, :o, :why)"),
                      {"r": run_id, "c": cid, "g": g, "o": o, "why": r})
        for cid, grp, arm, p, seed in ASSIGNMENTS + ([("c9", "treated", "main", 0.9, "s1")] if orphan else []):
            c.execute(text("INSERT INTO assignments VALUES (:r, :c, :g, :a, :p, :s)"),
                      {"r": run_id, "c": cid, "g": grp, "a": arm, "p": p, "s": seed})
    return run_id


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _columns(engine: Engine, table: str) -> list[str]:
    return [c["name"] for c in inspect(engine).get_columns(table)]


def test_0007_folds_the_assignments_into_the_decisions_and_back(store_url: str) -> None:
    assert db.upgrade(store_url, "0006") == "0006"
    engine = db.make_engine(store_url)
    try:
        run_id = _seed_0006(engine)
        expected = [(run_id, *a) for a in ASSIGNMENTS]
        assert db.upgrade(engine, "0007") == "0007"
        assert "assignments" not in _tables(engine)
        assert _columns(engine, "decisions")[-4:] == ["grp", "arm", "propensity", "seed"]
        assert not inspect(engine).get_foreign_keys("decisions")
        outbox_ix = {ix["name"] for ix in inspect(engine).get_indexes("outbox")}
        assert "ix_outbox_due" in outbox_ix and "ix_outbox_status" not in outbox_ix  # its prefix serves status
        with engine.connect() as c:
            assert [tuple(r) for r in c.execute(assignment_rows([run_id]))] == expected
            # the decisions themselves are unchanged; a decision without an assignment carries none
            assert c.execute(text("SELECT customer_id, guardrail, outcome, reason, grp FROM decisions "
                                  "ORDER BY customer_id")).all() == [(*d, g) for d, g in zip(
                DECISIONS, ["treated", "holdout", "global_control", None, "treated"], strict=True)]
        with pytest.raises(IntegrityError), engine.begin() as c:  # an unknown group
            c.execute(text("INSERT INTO decisions VALUES (:r, 'c7', 'assignment', 'send', 'ok', 'x', NULL, 0.5, 's')"),
                      {"r": run_id})
        with pytest.raises(IntegrityError), engine.begin() as c:  # a group without its propensity and seed
            c.execute(text("INSERT INTO decisions VALUES (:r, 'c7', 'assignment', 'send', 'ok', 'treated', "
                           "'main', NULL, NULL)"), {"r": run_id})
        assert db.downgrade(engine, "0006") == "0006"
        assert "assignments" in _tables(engine)
        assert _columns(engine, "decisions") == ["run_id", "customer_id", "guardrail", "outcome", "reason"]
        assert [fk["name"] for fk in inspect(engine).get_foreign_keys("decisions")] == ["fk_decisions_run_id_runs"]
        assert "ix_outbox_status" in {ix["name"] for ix in inspect(engine).get_indexes("outbox")}
        with engine.connect() as c:
            assert [tuple(r) for r in c.execute(text(
                "SELECT run_id, customer_id, grp, arm, propensity, seed FROM assignments "
                "ORDER BY run_id, customer_id"))] == expected
            assert c.execute(text("SELECT count(*) FROM decisions")).scalar_one() == len(DECISIONS)
        with pytest.raises(IntegrityError), engine.begin() as c:  # the outcome CHECK survived both ways
            c.execute(text("INSERT INTO decisions VALUES (:r, 'c8', 'x', 'maybe', 'x')"), {"r": run_id})
        assert db.upgrade(engine, "head") == db.head()
        with engine.connect() as c:
            assert [tuple(r) for r in c.execute(assignment_rows([run_id]))] == expected
    finally:
        engine.dispose()


def test_0007_refuses_an_assignment_without_a_decision_and_changes_nothing(store_url: str) -> None:
    assert db.upgrade(store_url, "0006") == "0006"
    engine = db.make_engine(store_url)
    try:
        _seed_0006(engine, orphan=True)
        with pytest.raises(StoreError, match=r"1 assignment row\(s\) have no decision.*customer_id='c9'"):
            db.upgrade(engine, "0007")
        assert db.current(engine) == "0006"
        assert "assignments" in _tables(engine)
        assert _columns(engine, "decisions") == ["run_id", "customer_id", "guardrail", "outcome", "reason"]
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM assignments")).scalar_one() == len(ASSIGNMENTS) + 1
    finally:
        engine.dispose()
