"""Where scores and trained score models live: one dated snapshot per score family, versioned models.

Layout::

    <workspace>/warehouse/scores/<family>/<YYYY-MM-DD>.json            # the commit point of a date
    <workspace>/warehouse/scores/<family>/<YYYY-MM-DD>-<token>.parquet  # customer_id + score columns
    <workspace>/models/<family>/<family>-<YYYY-MM-DD>-<token>.json      # a trained model version

A family is one kind of score (``bgnbd`` today; a reactivation-propensity family adds its own folder
and columns later). Each snapshot holds every customer of the load in force with ``customer_id``
and the family's score columns; its JSON names the Parquet file and records the model version,
its parameters and where the data came from. The Parquet file is written first (fresh name,
atomically), then the JSON is replaced atomically, then files no JSON references are removed: a
killed run leaves the previous snapshot of that date in force. :func:`load_scores` joins the
newest snapshot of every family (on or before a date) on ``customer_id``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from panhuo._io import atomic_path, atomic_write_text
from panhuo.errors import WarehouseError

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace

__all__ = [
    "ScoreStore",
    "list_models",
    "load_model",
    "load_scores",
    "models_dir",
    "save_model",
    "score_dates",
    "scores_dir",
]

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FAMILY = re.compile(r"^[a-z][a-z0-9_]*$")


def scores_dir(ws: Workspace) -> Path:
    return ws.warehouse_dir / "scores"


def models_dir(ws: Workspace) -> Path:
    return ws.root / "models"


def _check_family(family: str) -> str:
    if not _FAMILY.match(family):
        raise ValueError(f"score family {family!r} must be lower-case letters, digits and _")
    return family


class ScoreStore:
    """The dated snapshots of one score family (see the module docstring)."""

    def __init__(self, root: Path, family: str) -> None:
        self.family = _check_family(family)
        self.root = Path(root) / family

    @classmethod
    def of(cls, ws: Workspace, family: str) -> ScoreStore:
        return cls(scores_dir(ws), family)

    def dates(self) -> list[dt.date]:
        if not self.root.is_dir():
            return []
        return sorted(dt.date.fromisoformat(p.stem) for p in self.root.glob("*.json") if _DATE.match(p.stem))

    def latest(self, as_of: dt.date | None = None) -> dt.date | None:
        return max((d for d in self.dates() if as_of is None or d <= as_of), default=None)

    def meta(self, day: dt.date) -> dict[str, Any]:
        path = self.root / f"{day.isoformat()}.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise WarehouseError(f"no {self.family} scores stored for {day.isoformat()}") from exc
        except json.JSONDecodeError as exc:
            raise WarehouseError(f"{path}: damaged score metadata: {exc}") from exc
        return data

    def path(self, day: dt.date) -> Path:
        return self.root / self.meta(day)["file"]

    def write(self, day: dt.date, batches: Any, schema: pa.Schema, meta: dict[str, Any]) -> tuple[Path, int]:
        """Store a snapshot for ``day`` from record batches; returns (parquet path, rows)."""
        if "customer_id" not in schema.names:
            raise ValueError(f"a {self.family} score snapshot needs a customer_id column")
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"{day.isoformat()}-{secrets.token_hex(4)}.parquet"
        rows = 0
        with atomic_path(self.root / name) as tmp, pq.ParquetWriter(tmp, schema) as writer:
            for batch in batches:
                table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
                table = table.select(schema.names).cast(schema)
                rows += table.num_rows
                writer.write_table(table)
        record = {
            "family": self.family, "as_of": day.isoformat(), "file": name, "rows": rows,
            "columns": [c for c in schema.names if c != "customer_id"],
            "written_at": dt.datetime.now().isoformat(timespec="seconds"), **meta,
        }
        atomic_write_text(self.root / f"{day.isoformat()}.json",
                          json.dumps(record, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
        self._collect_garbage()
        return self.root / name, rows

    def _collect_garbage(self) -> None:
        keep = {self.meta(d)["file"] for d in self.dates()}
        for p in self.root.glob("*.parquet"):
            if p.name not in keep:
                p.unlink(missing_ok=True)

    def read(self, con: BaseBackend, day: dt.date) -> ir.Table:
        path = self.path(day)
        return con.read_parquet(str(path), table_name=f"panhuo_scores_{self.family}_" + re.sub(r"\W", "_", path.stem))


def score_dates(ws: Workspace, as_of: dt.date | None = None) -> dict[str, dt.date]:
    """The newest stored date (on or before ``as_of``) of every score family."""
    root = scores_dir(ws)
    out: dict[str, dt.date] = {}
    if root.is_dir():
        for p in sorted(root.iterdir()):
            if p.is_dir() and _FAMILY.match(p.name):
                day = ScoreStore(root, p.name).latest(as_of)
                if day is not None:
                    out[p.name] = day
    return out


def load_scores(ws: Workspace, con: BaseBackend, as_of: dt.date | None = None) -> ir.Table:
    """``customer_id`` and every family's score columns, from each family's newest snapshot on or before ``as_of``.

    Families are outer-joined on ``customer_id`` (a customer missing from one family gets nulls there).

    Raises
    ------
    WarehouseError
        No score of any family is stored (on or before ``as_of``).
    """
    dates = score_dates(ws, as_of)
    if not dates:
        when = f" on or before {as_of.isoformat()}" if as_of else ""
        raise WarehouseError(f"no scores stored{when}: run `panhuo scores apply --as-of DATE` first")
    root = scores_dir(ws)
    out: ir.Table | None = None
    for family, day in dates.items():
        t = ScoreStore(root, family).read(con, day)
        if out is None:
            out = t
            continue
        t = t.rename(_cid_r="customer_id")
        j = out.outer_join(t, out.customer_id == t._cid_r)
        cols = [c for c in j.columns if c not in ("customer_id", "_cid_r")]
        out = j.select(j.customer_id.fill_null(j._cid_r).name("customer_id"), *[j[c] for c in cols])
    assert out is not None
    return out


# -- model versions ---------------------------------------------------------------------
def save_model(ws: Workspace, family: str, as_of: dt.date, payload: dict[str, Any]) -> str:
    """Store a trained model of ``family`` as a new version (a JSON file); returns the version id."""
    version = f"{_check_family(family)}-{as_of.isoformat()}-{secrets.token_hex(3)}"
    record = {"family": family, "version": version, "as_of": as_of.isoformat(),
              "trained_at": dt.datetime.now().isoformat(timespec="seconds"), **payload}
    atomic_write_text(models_dir(ws) / family / f"{version}.json",
                      json.dumps(record, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
    return version


def list_models(ws: Workspace, family: str) -> list[dict[str, Any]]:
    """Every stored version of ``family``, oldest training date first (then oldest training time)."""
    folder = models_dir(ws) / _check_family(family)
    out = []
    for p in folder.glob("*.json") if folder.is_dir() else []:
        try:
            out.append(json.loads(p.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise WarehouseError(f"{p}: damaged model file: {exc}") from exc
    return sorted(out, key=lambda m: (m["as_of"], m["trained_at"], m["version"]))


def load_model(
    ws: Workspace, family: str, as_of: dt.date | None = None, version: str | None = None
) -> dict[str, Any]:
    """A stored model: ``version`` when given, else the newest trained on data up to ``as_of``.

    Raises
    ------
    WarehouseError
        No such version, or nothing trained (on or before ``as_of``).
    """
    models = list_models(ws, family)
    if version is not None:
        for m in models:
            if m["version"] == version:
                return m
        raise WarehouseError(f"no {family} model version {version!r} in {models_dir(ws) / family}")
    usable = [m for m in models if as_of is None or dt.date.fromisoformat(m["as_of"]) <= as_of]
    if not usable:
        when = f" on data up to {as_of.isoformat()}" if as_of else ""
        raise WarehouseError(
            f"no {family} model trained{when}: run `panhuo scores train --as-of DATE` first"
        )
    return usable[-1]
