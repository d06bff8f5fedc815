"""Ingest gives the same stored tables on DuckDB and on PySpark (same expressions, same files)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from panhuo.config import Workspace
from panhuo.contract.ingest import ingest
from panhuo.errors import ContractError
from panhuo.warehouse import Warehouse
from tests.contract.conftest import GOOD


def _normalised(path: Path) -> pa.Table:
    t = pq.read_table(path)
    cols = {}
    for name in t.column_names:
        c = t.column(name)
        if pa.types.is_timestamp(c.type):
            c = c.cast(pa.timestamp("us"))
        elif pa.types.is_large_string(c.type):
            c = c.cast(pa.string())
        cols[name] = c
    out = pa.table(cols)
    return out.sort_by([(n, "ascending") for n in out.column_names if not pa.types.is_floating(out.schema.field(n).type)])


@pytest.mark.spark
def test_ingest_stores_identical_tables_on_duckdb_and_spark(tmp_path, spark_backend):
    duck = Workspace.open(tmp_path / "duck")
    spark = Workspace.open(tmp_path / "spark")
    a = ingest(duck, GOOD)
    b = ingest(spark, GOOD, con=spark_backend)
    assert a.rows == b.rows
    for table in a.rows:
        left = _normalised(Warehouse(duck.warehouse_dir).table_path(table))
        right = _normalised(Warehouse(spark.warehouse_dir).table_path(table))
        assert left.schema == right.schema, table
        assert left.to_pylist() == right.to_pylist(), table


@pytest.mark.spark
def test_spark_refuses_the_same_rows(tmp_path, spark_backend):
    folder = tmp_path / "in"
    folder.mkdir()
    for p in GOOD.iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    bal = folder / "balances.csv"
    bal.write_text(bal.read_text(encoding="utf-8").replace("50.00", "-50.00").replace("2026-10-31", "2026-13-45"),
                   encoding="utf-8")
    found = []
    for con in (None, spark_backend):
        ws = Workspace.open(tmp_path / f"ws{len(found)}")
        with pytest.raises(ContractError) as info:
            ingest(ws, folder, con=con)
        found.append(sorted(str(i) for i in info.value.issues))
    assert found[0] == found[1]
    assert any("row 1 (line 2), column as_of" in i for i in found[0])


@pytest.mark.spark
def test_ingest_reads_contract_tables_from_the_spark_catalog(tmp_path, spark_backend):
    spark = spark_backend._session
    spark.sql("CREATE DATABASE IF NOT EXISTS crm_export")
    for p in sorted(GOOD.glob("*.csv")):
        df = spark.read.option("header", True).option("multiLine", True).option("escape", '"').csv(str(p))
        df.write.mode("overwrite").saveAsTable(f"crm_export.{p.stem}")
    ws = Workspace.open(tmp_path / "cat")
    plan = ingest(ws, catalog="crm_export", con=spark_backend)
    assert plan.rows["customers"] == 5 and plan.rows["trades"] == 4
    wh = Warehouse(ws.warehouse_dir)
    assert wh.manifest().source == "catalog:crm_export"
    assert wh.manifest().tables["customers"].source_format == "catalog"
    duck = Workspace.open(tmp_path / "duck")
    ingest(duck, GOOD)
    left = _normalised(Warehouse(duck.warehouse_dir).table_path("balances"))
    assert left.to_pylist() == _normalised(wh.table_path("balances")).to_pylist()


def test_catalog_needs_engine_spark(workspace):
    with pytest.raises(ContractError, match="catalog tables need engine spark"):
        ingest(workspace, catalog="crm_export")
