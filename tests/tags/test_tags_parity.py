"""Every tag of the tiny brokerage is identical on DuckDB and PySpark."""

from __future__ import annotations

from panhuo.tags import compute_tags
from tests.tags.conftest import AS_OF, rows_by_id


def test_all_tags_same_on_every_engine(con, tiny, fresh) -> None:
    from tests.tags.conftest import tiny_tables

    ws = fresh(con, tiny_tables())
    got = rows_by_id(compute_tags(ws, con, AS_OF).table)
    assert got.keys() == tiny[2].keys()
    for cid, row in tiny[2].items():
        assert got[cid] == row, cid
