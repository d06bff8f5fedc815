"""Find and read the contract's input files: Parquet or CSV (UTF-8, UTF-8 with BOM, GBK).

``discover`` maps a folder to the contract tables (``customers.csv``, ``trades.parquet`` or a folder
``trades/`` of Parquet parts). ``detect_encoding`` reads the whole CSV strictly and says which
encoding decodes it; a non-UTF-8 file is transcoded to UTF-8 in the staging folder before the
engine reads it. ``read_raw`` gives an Ibis table of the file *as it is* (CSV columns as text,
Parquet columns with their own types) plus ``_row``, the 1-based data row, so every refusal can
name its row. Reading files is the one place that knows the engine (it is I/O, not analytics).
"""

from __future__ import annotations

import codecs
import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from panhuo.contract.schema import TABLES
from panhuo.errors import ContractIssue

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends import BaseBackend

__all__ = ["SourceFile", "discover", "discover_catalog", "detect_encoding", "transcode_to_utf8", "sha256_of", "read_raw", "RawReadError"]

ROW = "_row"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class SourceFile:
    table: str
    path: Path
    fmt: str  # "csv", "parquet" or "catalog" (a Spark catalog table; path holds its name)

    @property
    def label(self) -> str:
        return str(self.path) if self.fmt == "catalog" else self.path.name


class RawReadError(Exception):
    """The engine could not read a file at all; carries the issue to report."""

    def __init__(self, issue: ContractIssue) -> None:
        super().__init__(str(issue))
        self.issue = issue


def discover(folder: Path) -> tuple[dict[str, SourceFile], list[ContractIssue]]:
    """Contract tables found in ``folder`` and the issues with what is there."""
    found: dict[str, SourceFile] = {}
    issues: list[ContractIssue] = []
    if not folder.is_dir():
        return {}, [ContractIssue(str(folder), None, None, "is not a folder of contract tables")]
    for name, table in TABLES.items():
        candidates = [
            SourceFile(name, folder / f"{name}.parquet", "parquet"),
            SourceFile(name, folder / f"{name}.csv", "csv"),
            SourceFile(name, folder / name, "parquet"),
        ]
        present = [c for c in candidates if c.path.exists()]
        if len(present) > 1:
            issues.append(ContractIssue(str(folder), None, None,
                                        f"holds table {name} twice: " + ", ".join(p.path.name for p in present)))
        elif present:
            found[name] = present[0]
        elif table.required:
            issues.append(ContractIssue(f"{name}.csv / {name}.parquet", None, None,
                                        f"is missing from {folder} (table {name} is required)"))
    return found, issues


def discover_catalog(con: BaseBackend, database: str) -> tuple[dict[str, SourceFile], list[ContractIssue]]:
    """Contract tables found as ``<database>.<table>`` in the Spark catalog (Hive, Iceberg, ...)."""
    if con.name != "pyspark":
        return {}, [ContractIssue(f"catalog {database}", None, None, "catalog tables need engine spark")]
    spark = con._session
    found: dict[str, SourceFile] = {}
    issues: list[ContractIssue] = []
    for name, table in TABLES.items():
        full = f"{database}.{name}"
        if spark.catalog.tableExists(full):
            found[name] = SourceFile(name, Path(full), "catalog")
        elif table.required:
            issues.append(ContractIssue(full, None, None, f"is missing from catalog {database} (table {name} is required)"))
    return found, issues


def _parquet_parts(src: SourceFile) -> list[Path]:
    if src.path.is_dir():
        return sorted(p for p in src.path.rglob("*.parquet") if not p.name.startswith((".", "_")))
    return [src.path]


def sha256_of(src: SourceFile) -> str | None:
    if src.fmt == "catalog":
        return None
    h = hashlib.sha256()
    for part in _parquet_parts(src) if src.fmt == "parquet" else [src.path]:
        with open(part, "rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                h.update(chunk)
    return h.hexdigest()


def detect_encoding(path: Path, declared: str | None = None) -> str:
    """``utf-8``, ``utf-8-sig`` or ``gb18030`` (a superset of GBK); raises ``RawReadError``.

    A declared encoding is checked, not trusted: a file that does not decode is refused with
    the byte offset where it fails.
    """
    with open(path, "rb") as fh:
        head = fh.read(3)
    if declared in (None, "auto"):
        candidates = ["utf-8-sig"] if head == codecs.BOM_UTF8 else ["utf-8", "gb18030"]
    else:
        candidates = ["gb18030" if declared.lower() in ("gbk", "gb2312", "gb18030") else declared.lower()]
        if candidates[0] == "utf-8" and head == codecs.BOM_UTF8:
            candidates = ["utf-8-sig"]
    failure = ""
    for enc in candidates:
        decoder = codecs.getincrementaldecoder(enc)(errors="strict")
        offset = 0
        try:
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(_CHUNK), b""):
                    decoder.decode(chunk)
                    offset += len(chunk)
                decoder.decode(b"", final=True)
            return enc
        except UnicodeDecodeError as exc:
            failure = f"does not decode as {enc} at byte {offset + exc.start}"
    raise RawReadError(ContractIssue(path.name, None, None, failure + " (use UTF-8 or GBK, or --encoding)"))


def transcode_to_utf8(path: Path, encoding: str, dest: Path) -> Path:
    """Write ``path`` decoded from ``encoding`` as plain UTF-8 to ``dest`` (streaming)."""
    dec = codecs.getincrementaldecoder(encoding)(errors="strict")
    with open(path, "rb") as src, open(dest, "w", encoding="utf-8", newline="") as out:
        for chunk in iter(lambda: src.read(_CHUNK), b""):
            out.write(dec.decode(chunk))
        out.write(dec.decode(b"", final=True))
    return dest


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


# -- engine readers ---------------------------------------------------------------------
_counter = itertools.count()


def _name(table: str) -> str:
    return f"_panhuo_raw_{table}_{next(_counter)}"


def _duckdb_raw(con: BaseBackend, src: SourceFile, path: Path) -> ir.Table:
    import duckdb

    name = _name(src.table)
    try:
        if src.fmt == "csv":
            # The path is bound as a parameter; the table name is generated here, never from input.
            # Row numbers are rowids, so this one statement must keep the file's order.
            (kept,) = con.con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()
            con.con.execute("SET preserve_insertion_order = true")
            try:
                con.con.execute(
                    f'CREATE TEMP TABLE "{name}" AS SELECT * FROM read_csv($path, header = true, '
                    "all_varchar = true, delim = ',', quote = '\"', escape = '\"', strict_mode = true, "
                    "sample_size = -1)",
                    {"path": str(path)},
                )
            finally:
                con.con.execute(f"SET preserve_insertion_order = {'true' if kept else 'false'}")
            return con.sql(f'SELECT rowid + 1 AS {ROW}, * FROM "{name}"')
        parts = [str(p) for p in _parquet_parts(src)]
        if not parts:
            raise RawReadError(ContractIssue(src.label, None, None, "holds no Parquet files"))
        t = con.read_parquet(parts, table_name=name, file_row_number=True, union_by_name=True)
        return t.mutate(**{ROW: t.file_row_number + 1}).drop("file_row_number")
    except duckdb.Error as exc:
        kind = "CSV" if src.fmt == "csv" else "Parquet"
        raise RawReadError(ContractIssue(src.label, None, None, f"cannot be read as {kind}: {_first_line(exc)}")) from exc


def _spark_raw(con: BaseBackend, src: SourceFile, path: Path) -> ir.Table:
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql.types import LongType, StructField, StructType

    spark = con._session
    name = _name(src.table)
    try:
        if src.fmt == "catalog":
            df = spark.table(str(src.path))
            schema = StructType([StructField(ROW, LongType(), False), *df.schema.fields])
            df = df.rdd.zipWithIndex().map(lambda p: (p[1] + 1, *p[0])).toDF(schema)  # row = scan order
        elif src.fmt == "csv":
            df = (spark.read.option("header", True).option("multiLine", True).option("mode", "FAILFAST")
                  .option("escape", '"').option("encoding", "UTF-8").option("inferSchema", False).csv(str(path)))
            schema = StructType([StructField(ROW, LongType(), False), *df.schema.fields])
            df = df.rdd.zipWithIndex().map(lambda p: (p[1] + 1, *p[0])).toDF(schema)
        else:
            parts = [str(p) for p in _parquet_parts(src)]
            df = spark.read.parquet(*parts)
            df = df.select(*[F.col(f"`{c}`") for c in df.columns],
                           (F.col("_metadata.row_index") + 1).alias(ROW))
        df.createOrReplaceTempView(name)
        df.count()  # read now, so an unreadable file is reported here
    except (PySparkException, Exception) as exc:  # py4j errors carry no common base
        kind = {"csv": "CSV", "parquet": "Parquet", "catalog": "a catalog table"}[src.fmt]
        raise RawReadError(ContractIssue(src.label, None, None, f"cannot be read as {kind}: {_first_line(exc)}")) from exc
    return con.table(name)


def read_raw(con: BaseBackend, src: SourceFile, path: Path) -> ir.Table:
    """The file as an Ibis table on ``con`` with ``_row``; raises ``RawReadError``."""
    if src.fmt != "catalog" and path.is_file() and path.stat().st_size == 0:
        raise RawReadError(ContractIssue(src.label, None, None, "is empty (no header row)"))
    if con.name == "duckdb":
        return _duckdb_raw(con, src, path)
    if con.name == "pyspark":
        return _spark_raw(con, src, path)
    raise NotImplementedError(f"reading contract files on engine {con.name}")
