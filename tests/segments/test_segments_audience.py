"""The audience (tags snapshot + scores + custom tags), as-of handling, and export with masked phones."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from panhuo.errors import WarehouseError
from panhuo.segments.audience import attach_scores, audience
from panhuo.segments.export import export_segment, mask_phone
from tests.segments.conftest import AS_OF, tags_arrow, write_tags

__all__: list[str] = []


def _two_dates(path: Path) -> Path:
    old = tags_arrow(as_of=dt.date(2025, 12, 31))
    new = tags_arrow(as_of=AS_OF)
    old = old.set_column(old.schema.get_field_index("status"), "status", pa.array(["sleeping"] * old.num_rows))
    return write_tags(path, pa.concat_tables([old, new]))


def test_audience_picks_the_snapshot_on_or_before_as_of(workspace, duck_con, tmp_path: Path) -> None:
    path = _two_dates(tmp_path / "tags.parquet")
    latest = audience(workspace, duck_con, None, tags_file=path)
    assert latest.as_of == AS_OF and latest.count("sleeping") < 60
    older = audience(workspace, duck_con, dt.date(2026, 1, 15), tags_file=path)
    assert older.as_of == dt.date(2025, 12, 31) and older.count("sleeping") == 60


def test_as_of_before_any_data_is_a_clear_error(workspace, duck_con, tmp_path: Path) -> None:
    path = write_tags(tmp_path / "tags.parquet")
    with pytest.raises(WarehouseError, match="no tags on or before 2020-01-01 .first snapshot: 2026-01-30."):
        audience(workspace, duck_con, dt.date(2020, 1, 1), tags_file=path)


def test_scores_attach_by_customer(duck_con, tmp_path: Path) -> None:
    tags = duck_con.read_parquet(str(write_tags(tmp_path / "t.parquet", tags_arrow(as_of=None))))
    pq.write_table(pa.table({"customer_id": ["c0001", "c0002"], "p_alive": [0.9, 0.1]}), tmp_path / "s.parquet")
    joined = attach_scores(tags, duck_con.read_parquet(str(tmp_path / "s.parquet")))
    rows = {r["customer_id"]: r["p_alive"] for r in joined.select("customer_id", "p_alive").to_pyarrow().to_pylist()}
    assert len(rows) == 60 and rows["c0001"] == 0.9 and rows["c0003"] is None


def test_mask_phone() -> None:
    assert mask_phone("13812341234") == "138****1234"
    assert mask_phone("+8613812341234") == "+86*******1234"
    assert mask_phone("12345") == "***45" and mask_phone(None) is None


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_has_ids_money_in_rmb_and_masked_phones(workspace, duck_con, tmp_path: Path, suffix: str) -> None:
    aud = audience(workspace, duck_con, None, tags_file=write_tags(tmp_path / "tags.parquet"))
    out = tmp_path / f"dormant{suffix}"
    n = export_segment(aud, "dormant", out, ["total_assets", "phone", "age"])
    if suffix == ".csv":
        text = out.read_text(encoding="utf-8")
        assert "13800000002" not in text and "138****0002" in text
        assert text.splitlines()[0] == '"customer_id","total_assets","phone","age"'
        assert n == len(text.splitlines()) - 1
    else:
        t = pq.read_table(out)
        assert t.schema.field("total_assets").type == pa.decimal128(18, 2)
        assert all("****" in p for p in t.column("phone").to_pylist())
        assert t.num_rows == n == aud.count("dormant")


def _store_snapshot(workspace, day: dt.date = AS_OF) -> None:
    """A hand-built snapshot placed where the tag library keeps its snapshots."""
    from panhuo.tags.store import tags_dir

    folder = tags_dir(workspace)
    folder.mkdir(parents=True, exist_ok=True)
    write_tags(folder / f"{day.isoformat()}.parquet", tags_arrow(as_of=None))


def test_audience_reads_the_tag_library_snapshot(workspace, duck_con) -> None:
    pytest.importorskip("panhuo.tags.store")
    _store_snapshot(workspace)
    aud = audience(workspace, duck_con, dt.date(2026, 2, 1))
    assert aud.as_of == AS_OF and "as_of" not in aud.table.columns
    assert aud.count("dormant") == sum(1 for r in tags_arrow(as_of=None).to_pylist() if r["status"] == "dormant")
    with pytest.raises(WarehouseError, match="on or before 2020-01-01"):
        audience(workspace, duck_con, dt.date(2020, 1, 1))
