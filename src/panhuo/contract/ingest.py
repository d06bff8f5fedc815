"""Ingest: validate a folder of contract tables completely, then store it as one atomic load.

Steps per table: read the file as it is (``readers``), check the header (required columns present,
extra columns kept as custom attributes), convert every column (``columns``), collect refusals
row by row, check unique keys and that every row's customer exists. Issues are collected across
all tables (up to ``ingest.max_errors``) and raised once as a ``ContractError``; only a load with no
issue is written, into a staging folder, and made current in one atomic step
(``panhuo.warehouse``). A process killed at any point leaves the previous load in force.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import ibis.expr.datatypes as dt

from panhuo.contract.columns import convert_columns
from panhuo.contract.readers import (
    ROW,
    RawReadError,
    SourceFile,
    detect_encoding,
    discover,
    discover_catalog,
    read_raw,
    sha256_of,
    transcode_to_utf8,
)
from panhuo.contract.schema import TABLES, Table
from panhuo.errors import ConfigError, ContractError, ContractIssue
from panhuo.warehouse import LoadManifest, TableRecord, Warehouse

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace

__all__ = ["ingest", "IngestPlan", "Progress"]

#: progress(table, stage) with stage one of "read", "check", "write", "done"
Progress = Callable[[str, str], None]

_STORED_TYPES = {
    "id": dt.string, "text": dt.string, "json": dt.string, "enum": dt.string, "money": dt.int64,
    "number": dt.float64, "int": dt.int64, "date": dt.date, "timestamp": dt.Timestamp(scale=6),
    "bool": dt.boolean,
}


class _Issues:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: list[ContractIssue] = []
        self.truncated = False

    @property
    def room(self) -> int:
        return max(0, self.limit - len(self.items))

    def add(self, issue: ContractIssue) -> None:
        if self.room:
            self.items.append(issue)
        else:
            self.truncated = True


@dataclass
class IngestPlan:
    """What a successful ingest stored."""

    manifest: LoadManifest
    rows: dict[str, int]


def _header(table: Table, raw: ir.Table, src: SourceFile, issues: _Issues) -> tuple[dict[str, str], list[str]]:
    """Map contract column -> raw column name, and the custom columns."""
    by_norm: dict[str, str] = {}
    for name in raw.columns:
        if name == ROW:
            continue
        norm = name.strip().lower()
        if norm in by_norm:
            issues.add(ContractIssue(src.label, None, name, "appears twice in the header"))
        by_norm[norm] = name
    mapping = {c.name: by_norm[c.name] for c in table.columns if c.name in by_norm}
    for c in table.columns:
        if c.required and c.name not in mapping:
            issues.add(ContractIssue(src.label, None, c.name, "is missing (required column)"))
    stored = {c.stored for c in table.columns} | {ROW}
    custom = []
    for norm, name in by_norm.items():
        if norm in mapping:
            continue
        if norm in stored:
            issues.add(ContractIssue(src.label, None, name, "clashes with a stored column name; rename it"))
            continue
        custom.append(name)
    return mapping, custom


def _typed(
    table: Table, raw: ir.Table, mapping: dict[str, str], custom: list[str]
) -> tuple[ir.Table, dict[str, str]]:
    """Converted columns (custom ones as they are), and per contract column present its reason column."""
    wide, names = convert_columns(raw, {mapping[c.name]: c for c in table.columns if c.name in mapping})
    values: dict[str, ir.Value] = {ROW: wide[ROW], **{c: wide[c] for c in custom}}
    reasons: dict[str, str] = {}
    for c in table.columns:
        if c.name in mapping:
            value, why = names[mapping[c.name]]
            values[c.stored] = wide[value].cast(_STORED_TYPES[c.kind])
            values[f"_why_{c.name}"] = wide[why]
            reasons[c.name] = f"_why_{c.name}"
        else:
            values[c.stored] = ibis.null(_STORED_TYPES[c.kind])
    return wide.select(**values), reasons


def _line(src: SourceFile, row: int | None) -> int | None:
    return row + 1 if (src.fmt == "csv" and row is not None) else None


def _collect_value_issues(
    typed: ir.Table, raw: ir.Table, mapping: dict[str, str], reasons: dict[str, str], src: SourceFile,
    issues: _Issues,
) -> None:
    if not reasons:
        return
    any_bad = ibis.or_(*[typed[r].notnull() for r in reasons.values()])
    cols = [ROW, *reasons.values()]
    bad = typed.filter(any_bad).select(*cols).order_by(ROW).limit(issues.room + 1).to_pyarrow().to_pylist()
    if not bad:
        return
    # The input values, for the message, only for the refused rows.
    wanted = [rec[ROW] for rec in bad]
    shown = raw.filter(raw[ROW].isin(wanted)).select(
        ROW, **{f"_raw_{c}": raw[mapping[c]].cast(dt.string) for c in reasons}
    )
    values = {r[ROW]: r for r in shown.to_pyarrow().to_pylist()}
    for rec in bad:
        for col, why in reasons.items():
            if rec[why] is not None:
                value = values[rec[ROW]][f"_raw_{col}"]
                issues.add(ContractIssue(src.label, rec[ROW], col, rec[why], value=value, line=_line(src, rec[ROW])))


def _collect_json_issues(table: Table, typed: ir.Table, src: SourceFile, issues: _Issues) -> None:
    for c in table.columns:
        if c.kind != "json":
            continue
        rows = typed.filter(typed[c.stored].notnull()).select(ROW, c.stored).order_by(ROW).to_pyarrow().to_pylist()
        if issues.truncated:
            return
        for rec in rows:
            try:
                json.loads(rec[c.stored])
            except ValueError as exc:
                issues.add(ContractIssue(src.label, rec[ROW], c.name, f"is not valid JSON ({exc.msg})",
                                         value=rec[c.stored][:80], line=_line(src, rec[ROW])))


def _collect_key_issues(table: Table, typed: ir.Table, src: SourceFile, issues: _Issues) -> None:
    if not table.key:
        return
    keys = [TABLES[table.name].column(k).stored for k in table.key]
    # Fast path: one hash aggregation says whether any key repeats (about 2x cheaper than the
    # window below on 13M balances rows); the window that names the rows runs only when one does.
    present = typed.filter(ibis.and_(*[typed[k].notnull() for k in keys]))
    per_key = present.group_by(keys).agg(_n=present.count())
    if per_key.filter(per_key._n > 1).count().to_pyarrow().as_py() == 0:
        return
    first = typed[ROW].min().over(group_by=keys)
    dup = typed.select(ROW, *keys, _first=first)
    dup = dup.filter((dup[ROW] != dup._first) & ibis.and_(*[dup[k].notnull() for k in keys]))
    for rec in dup.order_by(ROW).limit(issues.room + 1).to_pyarrow().to_pylist():
        value = "/".join(str(rec[k]) for k in keys)
        issues.add(ContractIssue(src.label, rec[ROW], ",".join(table.key),
                                 f"is a duplicate {'/'.join(table.key)} (first on row {rec['_first']})",
                                 value=value, line=_line(src, rec[ROW])))


def _known_ids(customers: ir.Table) -> ir.Table:
    """The distinct customer ids of a converted customers table (for the reference check)."""
    return customers.select(_known_id=customers.customer_id).filter(ibis._._known_id.notnull()).distinct()


def _collect_reference_issues(typed: ir.Table, known: ir.Table, src: SourceFile, issues: _Issues) -> None:
    cand = typed.filter(typed.customer_id.notnull()).select(ROW, "customer_id")
    orphans = cand.anti_join(known, cand.customer_id == known._known_id)
    for rec in orphans.order_by(ROW).limit(issues.room + 1).to_pyarrow().to_pylist():
        issues.add(ContractIssue(src.label, rec[ROW], "customer_id", "is not a customer in customers",
                                 value=rec["customer_id"], line=_line(src, rec[ROW])))


def _check_rows(table: Table, typed: ir.Table, src: SourceFile, issues: _Issues) -> None:
    if table.name == "customers" and typed.count().to_pyarrow().as_py() == 0:
        issues.add(ContractIssue(src.label, None, None, "has no rows"))


def ingest(
    ws: Workspace,
    source: Path | None = None,
    *,
    catalog: str | None = None,
    con: BaseBackend | None = None,
    encoding: str | None = None,
    progress: Progress | None = None,
) -> IngestPlan:
    """Validate every contract table in folder ``source`` (or Spark ``catalog`` database) and store them.

    Raises
    ------
    ContractError
        With every issue found (up to ``ingest.max_errors``); the warehouse is unchanged.
    """
    from panhuo.engines import connect

    if (source is None) == (catalog is None):
        raise ConfigError("give either a folder of contract files or --catalog DATABASE")
    settings = ws.settings
    con = con or connect(settings.engine, ws.tmp_dir)
    note = progress or (lambda _t, _s: None)
    issues = _Issues(settings.ingest.max_errors)
    warehouse = Warehouse(ws.warehouse_dir, keep_loads=settings.ingest.keep_loads)
    started = time.perf_counter()

    if catalog is not None:
        files, found_issues = discover_catalog(con, catalog)
        label = f"catalog:{catalog}"
    else:
        source = Path(source)
        files, found_issues = discover(source)
        label = str(source.resolve())
    for i in found_issues:
        issues.add(i)
    if found_issues:
        raise ContractError(issues.items, issues.truncated)

    tx = warehouse.begin_load(label, engine=con.name)
    scratch = tx.staging / "_input"
    scratch.mkdir()
    known: ir.Table | None = None
    try:
        for name, table in TABLES.items():
            src = files.get(name)
            if src is None:
                continue
            note(name, "read")
            path, enc = src.path, None
            try:
                if src.fmt == "csv":
                    enc = detect_encoding(src.path, encoding or settings.ingest.encoding)
                    if enc != "utf-8":
                        path = transcode_to_utf8(src.path, enc, scratch / f"{name}.csv")
                raw = read_raw(con, src, path)
            except RawReadError as exc:
                issues.add(exc.issue)
                continue
            note(name, "check")
            mapping, custom = _header(table, raw, src, issues)
            if any(c.required and c.name not in mapping for c in table.columns):
                continue
            # Convert once (cached: a temp table on DuckDB, a persisted frame on Spark); every check
            # and the write read the cache instead of converting the input again.
            expr, reasons = _typed(table, raw, mapping, custom)
            typed = expr.cache()
            try:
                _check_rows(table, typed, src, issues)
                _collect_value_issues(typed, raw, mapping, reasons, src, issues)
                _collect_json_issues(table, typed, src, issues)
                _collect_key_issues(table, typed, src, issues)
                if table.references_customers and known is not None:
                    _collect_reference_issues(typed, known, src, issues)
                if name == "customers":
                    known = _known_ids(typed).cache()
                if not (issues.items or issues.truncated):  # nothing refused so far: store it now
                    note(name, "write")
                    out = tx.path_for(name)
                    con.to_parquet(typed.select(*[c.stored for c in table.columns], *custom), out)
                    tx.record(TableRecord(
                        name=name, rows=_parquet_rows(out), file=out.name, source=str(src.path),
                        source_format=src.fmt, sha256=sha256_of(src), encoding=enc, custom_columns=custom,
                    ))
            finally:
                typed.release()
            note(name, "done")
        if issues.items or issues.truncated:
            raise ContractError(issues.items, issues.truncated)
        rows = {name: rec.rows for name, rec in tx.tables.items()}
        shutil.rmtree(scratch, ignore_errors=True)
        manifest = tx.commit()
    except BaseException:
        tx.abort()
        raise
    finally:
        if known is not None:
            known.release()
    manifest.seconds = round(time.perf_counter() - started, 3)
    return IngestPlan(manifest=manifest, rows=rows)


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
