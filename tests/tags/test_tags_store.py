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
