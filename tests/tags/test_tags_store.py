"""Storage: dated snapshots written atomically with their load id, history and retention, load_tags,
clear errors when the status is missing or stale, and no leakage of rows after as_of."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from panhuo.errors import WarehouseError
from panhuo.status.history import compute_status
from panhuo.tags import TAG_SCHEMA, compute_tags, load_tags, tag_snapshots
from panhuo.warehouse import Warehouse
from tests.status.conftest import D
from tests.tags.conftest import AS_OF, clean, rows_by_id, tiny_tables, write_load


def test_snapshot_file_schema_and_load_id(tiny) -> None:
    ws, _con, _tags = tiny
    path = ws.warehouse_dir / "tags" / "2026-11-24.parquet"
    assert pq.read_schema(path).remove_metadata() == TAG_SCHEMA
    meta = json.loads(pq.read_metadata(path).metadata[b"panhuo.tags"])
    assert meta["load_id"] == Warehouse(ws.warehouse_dir).current_id
    assert meta["customers"] == 6 and meta["as_of"] == "2026-11-24"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary left


def test_no_leakage_rows_after_as_of_change_nothing(tiny, duck, fresh) -> None:
    ws = fresh(duck, clean(tiny_tables()))
    got = rows_by_id(compute_tags(ws, duck, AS_OF).table)
    assert got == tiny[2]


def test_history_load_tags_and_retention(duck, fresh) -> None:
    ws = fresh(duck, tiny_tables())
    ws = ws.save(ws.settings.model_copy(update={"tags": ws.settings.tags.model_copy(update={"keep_snapshots": 2})}))
    for day in ("2026-11-24", "2026-08-31"):
        compute_tags(ws, duck, D(day))
    assert [s.as_of for s in tag_snapshots(ws)] == [D("2026-08-31"), D("2026-11-24")]
    t = load_tags(ws, duck, D("2026-10-01"))
    assert t.as_of.max().to_pyarrow().as_py() == D("2026-08-31")
    assert "total_assets_fen" in t.columns and "total_assets" not in t.columns
    assert load_tags(ws, duck).as_of.max().to_pyarrow().as_py() == AS_OF
    with pytest.raises(WarehouseError, match="no tags computed on or before 2026-08-30"):
        load_tags(ws, duck, D("2026-08-30"))
    compute_status(ws, duck, D("2026-09-30"), backfill=False)
    res = compute_tags(ws, duck, D("2026-09-30"))
    assert res.pruned == [D("2026-08-31")]
    assert [s.as_of for s in tag_snapshots(ws)] == [D("2026-09-30"), D("2026-11-24")]


def test_tags_need_the_status_of_the_same_day(duck, fresh) -> None:
    ws = fresh(duck, tiny_tables())
    with pytest.raises(WarehouseError, match=r"run `panhuo status --as-of 2026-11-23` first"):
        compute_tags(ws, duck, D("2026-11-23"))
    assert not (ws.warehouse_dir / "tags" / "2026-11-23.parquet").exists()


def test_tags_refuse_a_status_from_another_load(duck, fresh) -> None:
    ws = fresh(duck, tiny_tables())
    write_load(ws, tiny_tables())  # a newer load; the status is from the previous one
    with pytest.raises(WarehouseError, match="was computed from load .* is in force"):
        compute_tags(ws, duck, AS_OF)


def test_nothing_loaded(duck, workspace) -> None:
    with pytest.raises(WarehouseError, match="ingest"):
        compute_tags(workspace, duck, AS_OF)


@pytest.mark.parametrize("size", [1, 2, 4])
def test_customer_ranges_give_the_same_tags_as_one_query(tiny, duck, fresh, size) -> None:
    """A base larger than ``tags.batch_customers`` is computed range by range: same rows, same values."""
    ws = fresh(duck, tiny_tables())
    ws = ws.save(ws.settings.model_copy(update={"tags": ws.settings.tags.model_copy(update={"batch_customers": size})}))
    seen: list[tuple[str, int, int]] = []
    res = compute_tags(ws, duck, AS_OF, progress=lambda s, d, n: seen.append((s, d, n)))
    assert rows_by_id(res.table) == tiny[2]
    assert res.customers == 6
    assert len([s for s in seen if s[0] == "tags"]) > 1 + (6 // size > 1)  # the bar moves range by range


def test_customer_ranges_cover_every_id_once(duck) -> None:
    import ibis

    from panhuo.tags.store import customer_ranges

    ids = [f"C{i:05d}" for i in range(0, 1000, 7)]
    t = duck.create_table("cr_ids", ibis.memtable({"customer_id": ids}).to_pyarrow())
    assert customer_ranges(t, len(ids), len(ids)) == [(None, None)]
    ranges = customer_ranges(t, len(ids), 40)
    assert len(ranges) == 4 and ranges[0][0] is None and ranges[-1][1] is None
    for (_lo, hi), (lo2, _hi) in zip(ranges, ranges[1:]):
        assert hi == lo2
    owners = [[k for k, (lo, hi) in enumerate(ranges) if (lo is None or i >= lo) and (hi is None or i < hi)]
              for i in ids]
    assert all(len(o) == 1 for o in owners)
    sizes = [sum(1 for o in owners if o == [k]) for k in range(4)]
    assert max(sizes) - min(sizes) <= 1 + len(ids) % 4, sizes
