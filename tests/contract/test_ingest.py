"""Ingest end to end: what is accepted, what is refused (with file, row and column), and atomicity."""

from __future__ import annotations

import codecs
import json
import subprocess
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from panhuo.contract.ingest import ingest
from panhuo.errors import ContractError
from panhuo.warehouse import Warehouse
from tests.conftest import PANHUO
from tests.contract.conftest import warehouse_fingerprint


def _stored(ws, table: str) -> pa.Table:
    return pq.read_table(Warehouse(ws.warehouse_dir).table_path(table))


def _refused(ws, folder: Path) -> ContractError:
    before = warehouse_fingerprint(ws.warehouse_dir)
    with pytest.raises(ContractError) as info:
        ingest(ws, folder)
    assert warehouse_fingerprint(ws.warehouse_dir) == before, "a refused load changed the store"
    return info.value


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_good_folder_is_stored_with_exact_money_and_custom_columns(workspace, good_dir):
    plan = ingest(workspace, good_dir)
    assert plan.rows == {"customers": 5, "balances": 6, "trades": 4, "app_events": 3,
                         "contact_permissions": 4, "market_events": 2}
    bal = _stored(workspace, "balances").to_pylist()
    assert bal[0]["cash_fen"] == 150050 and bal[2]["securities_value_fen"] == 200010
    cust = _stored(workspace, "customers")
    assert "vip_note" in cust.column_names
    assert plan.manifest.tables["customers"].custom_columns == ["vip_note"]
    ids = cust.column("customer_id").to_pylist()
    assert "x'); DROP TABLE customers;--" in ids
    assert cust.column("gender").to_pylist() == ["M", "F", "M", "F", "U"]
    trades = _stored(workspace, "trades").to_pylist()
    assert trades[1]["side"] == "sell" and str(trades[1]["trade_date"]) == "2026-11-19"


def test_each_successful_load_is_recorded(workspace, good_dir):
    first = ingest(workspace, good_dir).manifest
    second = ingest(workspace, good_dir).manifest
    wh = Warehouse(workspace.warehouse_dir)
    assert wh.current_id == second.load_id != first.load_id
    rec = wh.manifest().tables["customers"]
    assert rec.rows == 5 and len(rec.sha256) == 64 and rec.source_format == "csv"
    assert [m.load_id for m in wh.loads()] == [first.load_id, second.load_id]


def test_gbk_csv_is_detected(workspace, good_dir):
    p = good_dir / "customers.csv"
    p.write_bytes(p.read_text(encoding="utf-8").encode("gbk"))
    plan = ingest(workspace, good_dir)
    assert plan.manifest.tables["customers"].encoding == "gb18030"
    assert "广东省" in _stored(workspace, "customers").column("province").to_pylist()


def test_utf8_bom_csv_is_accepted(workspace, good_dir):
    p = good_dir / "balances.csv"
    p.write_bytes(codecs.BOM_UTF8 + p.read_bytes())
    plan = ingest(workspace, good_dir)
    assert plan.manifest.tables["balances"].encoding == "utf-8-sig"
    assert _stored(workspace, "balances").column("customer_id").to_pylist()[0] == "C0001"


def test_declared_encoding_that_does_not_decode_is_refused(workspace, good_dir):
    p = good_dir / "customers.csv"
    p.write_bytes(p.read_text(encoding="utf-8").encode("gbk"))
    err = _refused_with(workspace, good_dir, encoding="utf-8")
    assert "customers.csv" in str(err) and "does not decode as utf-8" in str(err)


def _refused_with(ws, folder, **kw) -> ContractError:
    before = warehouse_fingerprint(ws.warehouse_dir)
    with pytest.raises(ContractError) as info:
        ingest(ws, folder, **kw)
    assert warehouse_fingerprint(ws.warehouse_dir) == before
    return info.value


@pytest.mark.parametrize(
    ("file", "old", "new", "row", "column", "reason"),
    [
        ("customers.csv", "C0002,20180715", "C0001,20180715", 2, "customer_id", "duplicate"),
        ("balances.csv", "C0003,2026-11-20,50.00", "C0003,2026-11-20,-50.00", 4, "cash", "is negative"),
        ("balances.csv", "C0002,2026-11-20,300", "C0002,2026-13-45,300", 3, "as_of", "not a valid calendar date"),
        ("customers.csv", "B002,,C2", "B002,,C9", 2, "risk_level", "is not one of C1, C2, C3, C4, C5"),
        ("trades.csv", "stock,buy,100", "stock,hold,100", 1, "side", "is not one of buy, sell"),
        ("trades.csv", "2400.00,5.00", "12.3.4,5.00", 2, "amount", "is not a number"),
        ("balances.csv", "C0002,2026-11-20,300", "C0002,2026-11-20,12.345", 3, "cash", "whole number of fen"),
        ("balances.csv", "C0004,2026-11-20", "C9999,2026-11-20", 5, "customer_id", "is not a customer"),
        ("trades.csv", "C0002,2024-03-04,SZ", "C0002,2024-03-04,NY", 3, "market", "is not one of"),
        ("contact_permissions.csv", "C0002,wechat,0", "C0002,fax,0", 3, "channel", "is not one of"),
        ("customers.csv", "C0001,2015-03-02", ",2015-03-02", 1, "customer_id", "is empty"),
    ],
)
def test_bad_value_is_refused_with_file_row_and_column(workspace, good_dir, file, old, new, row, column, reason):
    _edit(good_dir / file, old, new)
    err = _refused(workspace, good_dir)
    hits = [i for i in err.issues if i.file == file and i.row == row and i.column == column]
    assert hits, [str(i) for i in err.issues]
    assert reason in hits[0].reason
    assert hits[0].line == row + 1  # CSV: the header is line 1


def test_missing_required_column_is_refused(workspace, good_dir):
    p = good_dir / "trades.csv"
    lines = p.read_text(encoding="utf-8").splitlines()
    p.write_text("\n".join(",".join(line.split(",")[:-1]) for line in lines) + "\n", encoding="utf-8")
    err = _refused(workspace, good_dir)
    assert any(i.file == "trades.csv" and i.column == "commission" and "missing" in i.reason for i in err.issues)


def test_missing_required_table_and_empty_file_are_refused(workspace, good_dir):
    (good_dir / "trades.csv").unlink()
    (good_dir / "app_events.csv").write_bytes(b"")
    err = _refused(workspace, good_dir)
    text = str(err)
    assert "trades" in text and "required" in text


def test_empty_file_is_refused(workspace, good_dir):
    (good_dir / "app_events.csv").write_bytes(b"")
    err = _refused(workspace, good_dir)
    assert any(i.file == "app_events.csv" and "empty" in i.reason for i in err.issues)


def test_truncated_parquet_is_refused(workspace, good_dir, tmp_path):
    (good_dir / "trades.csv").unlink()
    full = tmp_path / "t.parquet"
    pq.write_table(pa.table({"customer_id": ["C0001"] * 100, "trade_date": ["2026-11-18"] * 100,
                             "market": ["SH"] * 100, "asset_class": ["stock"] * 100, "side": ["buy"] * 100,
                             "amount": [1.0] * 100, "commission": [5.0] * 100}), full)
    data = full.read_bytes()
    (good_dir / "trades.parquet").write_bytes(data[: len(data) // 2])
    err = _refused(workspace, good_dir)
    assert any(i.file == "trades.parquet" and "cannot be read as Parquet" in i.reason for i in err.issues)


def test_errors_are_collected_across_tables_up_to_the_limit(workspace, good_dir):
    _edit(good_dir / "balances.csv", "50.00", "-50.00")
    _edit(good_dir / "trades.csv", "stock,buy", "stock,hold")
    err = _refused(workspace, good_dir)
    assert {i.file for i in err.issues} >= {"balances.csv", "trades.csv"}
    ws = workspace.save(workspace.settings.model_copy(update={"ingest": workspace.settings.ingest.model_copy(update={"max_errors": 1})}))
    err = _refused(ws, good_dir)
    assert len(err.issues) == 1 and err.truncated


def _parquet_folder(tmp_path: Path, money: pa.Array, dates: pa.Array | None = None) -> Path:
    folder = tmp_path / "pq"
    folder.mkdir()
    ids = pa.array(["A", "B", "C"], pa.large_string())
    pq.write_table(pa.table({"customer_id": ids, "open_date": pa.array(["2020-01-01", "20200102", "2020-1-3"])}),
                   folder / "customers.parquet")
    dates = dates if dates is not None else pa.array([20261120, 20261120, 20261120], pa.int64())
    pq.write_table(pa.table({"customer_id": ids, "as_of": dates, "cash": money, "securities_value": money,
                             "product_value": money}), folder / "balances.parquet")
    pq.write_table(pa.table({"customer_id": pa.array([], pa.string()), "trade_date": pa.array([], pa.date32()),
                             "market": pa.array([], pa.string()), "asset_class": pa.array([], pa.string()),
                             "side": pa.array([], pa.string()), "amount": pa.array([], pa.float64()),
                             "commission": pa.array([], pa.float64())}), folder / "trades.parquet")
    pq.write_table(pa.table({"customer_id": ["A"], "event_time": pa.array(["2026-11-20 10:00:00"]),
                             "event": ["login"]}), folder / "app_events.parquet")
    pq.write_table(pa.table({"customer_id": ["A"], "channel": ["SMS"], "allowed": [True]}),
                   folder / "contact_permissions.parquet")
    return folder


@pytest.mark.parametrize(
    ("money", "fen"),
    [
        (pa.array([Decimal("1.10"), Decimal("0.00"), Decimal("12345.67")], pa.decimal128(18, 2)), [110, 0, 1234567]),
        (pa.array([Decimal("1.100"), Decimal("0"), Decimal("2.5")], pa.decimal128(20, 3)), [110, 0, 250]),
        (pa.array([1, 0, 100000], pa.int64()), [100, 0, 10000000]),
        (pa.array([0.1 + 0.2, 19.99, 1e9 + 0.01], pa.float64()), [30, 1999, 100000000001]),
        (pa.array(["1.10", "0", "7.5"], pa.large_string()), [110, 0, 750]),
    ],
)
def test_parquet_money_types_are_accepted_exactly(workspace, tmp_path, money, fen):
    ingest(workspace, _parquet_folder(tmp_path, money))
    bal = _stored(workspace, "balances")
    assert bal.column("cash_fen").to_pylist() == fen
    assert bal.column("as_of").type == pa.date32()


def test_parquet_float_that_is_not_whole_fen_is_refused(workspace, tmp_path):
    err = _refused(workspace, _parquet_folder(tmp_path, pa.array([1.0, 12.345, 3.0], pa.float64())))
    assert any(i.file == "balances.parquet" and i.row == 2 and i.column == "cash" and "fen" in i.reason
               for i in err.issues)


def test_parquet_decimal_with_fraction_of_fen_is_refused(workspace, tmp_path):
    money = pa.array([Decimal("1.001"), Decimal("0"), Decimal("2")], pa.decimal128(20, 3))
    err = _refused(workspace, _parquet_folder(tmp_path, money))
    assert any(i.row == 1 and i.column == "cash" for i in err.issues)


def test_cli_ingest_refuses_with_named_issue_and_exit_code(tmp_path, good_dir):
    _edit(good_dir / "customers.csv", "B002,,C2", "B002,,C9")
    out = subprocess.run([PANHUO, "--workspace", str(tmp_path / "ws"), "ingest", str(good_dir)],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "customers.csv row 2 (line 3), column risk_level: 'C9' is not one of C1, C2, C3, C4, C5" in out.stderr
    assert not (tmp_path / "ws" / "warehouse" / "CURRENT").exists()


def test_cli_ingest_from_a_fresh_directory(tmp_path, good_dir):
    out = subprocess.run([PANHUO, "ingest", str(good_dir)], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    manifest = json.loads(next((tmp_path / ".panhuo" / "warehouse" / "loads").glob("*/manifest.json")).read_text())
    assert manifest["tables"]["customers"]["rows"] == 5


def test_cli_loads_lists_every_kept_load(tmp_path, good_dir):
    ws = ["--workspace", str(tmp_path / "ws")]
    for _ in range(2):
        assert subprocess.run([PANHUO, *ws, "ingest", str(good_dir)], capture_output=True).returncode == 0
    out = subprocess.run([PANHUO, *ws, "loads"], capture_output=True, text=True, env={"COLUMNS": "200", "PATH": ""})
    assert out.returncode == 0, out.stderr
    ids = [m.load_id for m in Warehouse(tmp_path / "ws" / "warehouse").loads()]
    assert len(ids) == 2 and all(i in out.stdout for i in ids)
    assert out.stdout.count("*") == 1
