"""The reactivation propensity model gives the same features, model and scores on DuckDB and PySpark."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from panhuo.config import Workspace
from panhuo.contract.ingest import ingest
from panhuo.engines import connect
from panhuo.generate import generate_brokerage
from panhuo.scores.propensity import score_propensity, train_propensity
from panhuo.status import compute_status

AS_OF = dt.date(2026, 11, 24)
OPTIONS = {"n_estimators": 30}


@pytest.mark.spark
@pytest.mark.slow
def test_propensity_is_identical_on_duckdb_and_spark(tmp_path: Path, spark_backend) -> None:
    data = tmp_path / "brokerage"
    generate_brokerage(data, customers=1500, seed=9, as_of=AS_OF)
    results = []
    for name in ("duckdb", "spark"):
        ws = Workspace.open(tmp_path / name)
        con = spark_backend if name == "spark" else connect(ws.settings.engine, ws.tmp_dir)
        ingest(ws, data, con=con)
        compute_status(ws, con, AS_OF, backfill=False)
        trained = train_propensity(ws, con, AS_OF, options=OPTIONS, check_leakage=False)
        scored = score_propensity(ws, con, AS_OF)
        table = pq.read_table(scored.path).sort_by("customer_id")
        results.append((trained, scored, table))
    (a, sa, ta), (b, sb, tb) = results
    assert a.anchors == b.anchors
    assert a.holdout["auc"] == pytest.approx(b.holdout["auc"], abs=1e-12)
    assert a.feature_importance == b.feature_importance
    assert sa.scored == sb.scored > 0
    assert ta.column("customer_id").to_pylist() == tb.column("customer_id").to_pylist()
    left = ta.column("reactivation_propensity").to_pylist()
    right = tb.column("reactivation_propensity").to_pylist()
    assert [x is None for x in left] == [y is None for y in right]  # the same customers scored
    pairs = [(x, y) for x, y in zip(left, right, strict=True) if x is not None]
    assert len(pairs) == sa.scored
    assert [x for x, _ in pairs] == pytest.approx([y for _, y in pairs], abs=1e-12)
