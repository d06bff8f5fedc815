"""Warehouse: find the load in force, read its tables through an engine, write a new load atomically."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from panhuo._io import atomic_write_text, fsync_dir, fsync_tree
from panhuo.contract.schema import CONTRACT_VERSION
from panhuo.errors import WarehouseError

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends import BaseBackend

__all__ = ["Warehouse", "LoadManifest", "LoadTransaction", "TableRecord"]

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class TableRecord:
    """What one contract table of a load holds and where it came from."""

    name: str
    rows: int
    file: str  # the stored Parquet file, relative to the load folder
    source: str  # the input file or catalog table it was read from
    source_format: str  # parquet, csv or catalog
    sha256: str | None = None  # checksum of the input file (None for a catalog table)
    encoding: str | None = None  # CSV encoding detected or given
    custom_columns: list[str] = field(default_factory=list)


@dataclass
class LoadManifest:
    load_id: str
    created_at: str  # ISO, Asia/Shanghai
    source: str
    contract_version: int
    tables: dict[str, TableRecord]
    engine: str = "duckdb"
    seconds: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LoadManifest:
        raw: dict[str, Any] = json.loads(text)
        raw["tables"] = {k: TableRecord(**v) for k, v in raw["tables"].items()}
        return cls(**raw)


def _new_load_id() -> str:
    now = dt.datetime.now(SHANGHAI)
    return now.strftime("%Y%m%dT%H%M%S%f") + "-" + secrets.token_hex(3)  # sorts in load order


class LoadTransaction:
    """A load being written. Files go to ``staging``; ``commit`` makes the load current atomically."""

    def __init__(self, warehouse: Warehouse, source: str, engine: str) -> None:
        self.warehouse = warehouse
        self.load_id = _new_load_id()
        self.source = source
        self.engine = engine
        self.staging = warehouse.root / "loads" / f".{self.load_id}.staging"
        self.staging.mkdir(parents=True)
        self.tables: dict[str, TableRecord] = {}
        self._started = dt.datetime.now(SHANGHAI)

    def path_for(self, table: str) -> Path:
        """Where to write the typed Parquet file of ``table`` inside the staging folder."""
        return self.staging / f"{table}.parquet"

    def record(self, rec: TableRecord) -> None:
        self.tables[rec.name] = rec

    def commit(self) -> LoadManifest:
        manifest = LoadManifest(
            load_id=self.load_id,
            created_at=self._started.isoformat(timespec="seconds"),
            source=self.source,
            contract_version=CONTRACT_VERSION,
            tables=self.tables,
            engine=self.engine,
            seconds=round((dt.datetime.now(SHANGHAI) - self._started).total_seconds(), 3),
        )
        (self.staging / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
        fsync_tree(self.staging)
        final = self.warehouse.root / "loads" / self.load_id
        os.replace(self.staging, final)
        fsync_dir(final.parent)
        atomic_write_text(self.warehouse.root / "CURRENT", self.load_id + "\n")  # the commit point
        self.warehouse.prune()
        return manifest

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


class Warehouse:
    """The analytical store of one workspace."""

    def __init__(self, root: Path, keep_loads: int = 3) -> None:
        self.root = Path(root)
        self.keep_loads = keep_loads

    # -- reading ------------------------------------------------------------------
    @property
    def current_id(self) -> str | None:
        try:
            value = (self.root / "CURRENT").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return value or None

    def manifest(self, load_id: str | None = None) -> LoadManifest:
        load_id = load_id or self.current_id
        if load_id is None:
            raise WarehouseError("nothing is loaded yet: run `panhuo ingest DIR` first")
        path = self.root / "loads" / load_id / "manifest.json"
        try:
            return LoadManifest.from_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise WarehouseError(f"{path}: the load in force has no manifest (damaged warehouse)") from exc

    def loads(self) -> list[LoadManifest]:
        """Every load kept on disk, oldest first."""
        folder = self.root / "loads"
        if not folder.is_dir():
            return []
        out = []
        for p in sorted(folder.iterdir()):
            if p.name.startswith(".") or not (p / "manifest.json").exists():
                continue
            out.append(LoadManifest.from_json((p / "manifest.json").read_text(encoding="utf-8")))
        return out

    def has_table(self, name: str) -> bool:
        return name in self.manifest().tables

    def table_path(self, name: str) -> Path:
        m = self.manifest()
        if name not in m.tables:
            raise WarehouseError(f"the load in force ({m.load_id}) has no table {name!r}")
        return self.root / "loads" / m.load_id / m.tables[name].file

    def table(self, con: BaseBackend, name: str) -> ir.Table:
        """The stored table ``name`` of the load in force, as an Ibis table on ``con``."""
        path = self.table_path(name)
        source = str(path / "*.parquet") if path.is_dir() else str(path)  # Spark writes a folder of parts
        return con.read_parquet(source, table_name=f"panhuo_{name}_{self.current_id}".replace("-", "_"))

    # -- writing ------------------------------------------------------------------
    def begin_load(self, source: str, engine: str = "duckdb") -> LoadTransaction:
        self.clean_staging()
        return LoadTransaction(self, source, engine)

    def clean_staging(self) -> None:
        """Remove what killed loads left behind (never the load in force)."""
        folder = self.root / "loads"
        if folder.is_dir():
            for p in folder.iterdir():
                if p.name.startswith(".") and p.name.endswith(".staging"):
                    shutil.rmtree(p, ignore_errors=True)

    def prune(self) -> None:
        """Keep the newest ``keep_loads`` loads (always the current one)."""
        current = self.current_id
        kept = [m.load_id for m in self.loads()]
        for load_id in kept[: max(0, len(kept) - self.keep_loads)]:
            if load_id != current:
                shutil.rmtree(self.root / "loads" / load_id, ignore_errors=True)
