"""``panhuo tags`` end to end through the real command line: compute, export exactly, describe, errors."""

from __future__ import annotations

import csv
import datetime as dt
import subprocess
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from panhuo.generate import generate_brokerage
from panhuo.tags import TAGS
from tests.conftest import PANHUO

AS_OF = "2026-11-24"


def _panhuo(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([PANHUO, *args], check=False, capture_output=True, text=True)
    if ok:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("tags_cli")
    generate_brokerage(root / "data", customers=300, seed=5, as_of=dt.date(2026, 11, 24))
    args = ["--workspace", str(root / "ws")]
    _panhuo(*args, "ingest", str(root / "data"))
    return args


def test_tags_before_status_is_a_clear_error(ws) -> None:
    out = _panhuo(*ws, "tags", "--as-of", AS_OF, ok=False)
    assert out.returncode == 2
    assert "panhuo status --as-of 2026-11-24" in out.stderr


def test_tags_compute_export_and_describe(ws, tmp_path: Path) -> None:
    _panhuo(*ws, "status", "--as-of", AS_OF, "--no-backfill")
    out = _panhuo(*ws, "tags", "--as-of", AS_OF, "--out", str(tmp_path / "tags.parquet"))
    assert f"{len(TAGS)} tags for 300 customers" in out.stdout.replace("\n", " ")
    stored = pq.read_table(Path(ws[1]) / "warehouse" / "tags" / f"{AS_OF}.parquet")
    exported = pq.read_table(tmp_path / "tags.parquet")
    assert exported.num_rows == stored.num_rows == 300
    assert str(exported.schema.field("total_assets").type) == "decimal128(18, 2)"
    fen = dict(zip(stored["customer_id"].to_pylist(), stored["traded_amount_365d_fen"].to_pylist(), strict=True))
    for cid, rmb in zip(exported["customer_id"].to_pylist(), exported["traded_amount_365d"].to_pylist(), strict=True):
        assert rmb == Decimal(fen[cid]) / 100

    _panhuo(*ws, "tags", "--as-of", "20261124", "--out", str(tmp_path / "tags.csv"))
    with (tmp_path / "tags.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 300
    assert all(r["total_assets"].split(".")[1].__len__() == 2 for r in rows)

    desc = _panhuo(*ws, "tags", "describe").stdout
    for word in ("total_assets", "总资产", "preferred_market", "responses_365d", "reachability"):
        assert word in desc


def test_tags_options_are_checked(ws, tmp_path: Path) -> None:
    assert "--as-of" in _panhuo(*ws, "tags", ok=False).stderr
    assert ".parquet or .csv" in _panhuo(*ws, "tags", "--as-of", AS_OF, "--out", str(tmp_path / "x.json"), ok=False).stderr
    assert "2026-13-01" in _panhuo(*ws, "tags", "--as-of", "2026-13-01", ok=False).stderr
