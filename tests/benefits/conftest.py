"""Benefit ledger fixtures: a migrated store (SQLite file and PostgreSQL) with a user, a playbook and runs.

``ledger_store`` yields ``(store, run_ids)``; the ledger's rows reference ``runs.id``, so the runs are
real rows (created through the ORM models, as the run engine's own rows are).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from panhuo.benefits.schema import BenefitItem
from panhuo.store import add_user, open_store
from panhuo.store.db import Store
from panhuo.store.models import SHANGHAI, Playbook
from tests.store._pg import pg_database, pg_url, store_url  # noqa: F401  (fixtures)

__all__ = ["AT", "item", "make_runs"]

AT = dt.datetime(2026, 6, 1, 10, 0, tzinfo=SHANGHAI)


def item(bid: str = "fund-trial", *, cost: str = "2.50", stock: int | None = None, budget: str | None = None,
         valid_from: dt.date = dt.date(2026, 1, 1), valid_to: dt.date | None = None) -> BenefitItem:
    """A catalogue item as the catalogue loader would build it."""
    return BenefitItem.model_validate({
        "id": bid, "kind": "level2_trial", "name": {"zh": "体验卡", "en": "trial"}, "unit_cost": cost,
        "stock": stock, "budget": budget, "valid": {"from": valid_from, "to": valid_to}})


def make_runs(store: Store, n: int = 3) -> list[int]:
    """A user, a playbook and ``n`` run rows; returns the run ids."""
    from panhuo.runs.models import Run

    with store.session() as s:
        add_user(s, "root", ["admin"])
        s.add(Playbook(id="bp", name="benefit test", state="live", current_version=1, created_by="root"))
        s.flush()
        runs = [Run(playbook_id="bp", playbook_version=1, run_key=f"k{i}", as_of=dt.date(2026, 6, 1))
                for i in range(n)]
        s.add_all(runs)
        s.flush()
        return [r.id for r in runs]


@pytest.fixture
def ledger_store(store_url: str) -> Iterator[tuple[Store, list[int]]]:  # noqa: F811
    store = open_store(store_url)
    try:
        yield store, make_runs(store)
    finally:
        store.dispose()


@pytest.fixture
def sqlite_ledger(tmp_path) -> Iterator[tuple[Store, list[int]]]:  # noqa: ANN001
    store = open_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        yield store, make_runs(store)
    finally:
        store.dispose()
