"""Shared fixtures: a workspace in a temporary folder, and an Ibis connection per engine.

``con`` is parametrised over DuckDB and PySpark (one Spark session for the whole run);
data logic tests take it so the same expressions are proven on both engines.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from panhuo.config import Workspace

REPO = Path(__file__).resolve().parents[1]
PANHUO = str(REPO / ".venv" / "bin" / "panhuo") if (REPO / ".venv" / "bin" / "panhuo").exists() else "panhuo"


def _java() -> bool:
    return shutil.which("java") is not None


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.open(tmp_path / "ws")


@pytest.fixture(scope="session")
def spark_backend(tmp_path_factory: pytest.TempPathFactory):
    if not _java():
        pytest.skip("engine spark needs Java 17")
    pytest.importorskip("pyspark")
    from panhuo.config import SparkSettings
    from panhuo.engines.spark import connect

    os.environ.setdefault("PYSPARK_PYTHON", str(Path(os.sys.executable)))
    con = connect(SparkSettings(master="local[2]", driver_memory="2g"), tmp_path_factory.mktemp("spark"))
    yield con


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def con(request: pytest.FixtureRequest, tmp_path: Path):
    """An Ibis backend: DuckDB (fresh) or the session's PySpark."""
    if request.param == "duckdb":
        from panhuo.config import DuckDBSettings
        from panhuo.engines.duckdb import connect

        return connect(DuckDBSettings(memory_limit="1GB"), tmp_path)
    return request.getfixturevalue("spark_backend")
