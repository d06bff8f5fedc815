"""A small generated brokerage for the console tests: ingested, with status history and tags, plus the service users.

:func:`console_copy` gives each test module its own copy of one build per session;
:func:`build_console_workspace` adds to a copy of the service tests' template workspace (users with
passwords, a playbook in review, a draft and a finished run: ``tests/service/conftest.py``) a
synthetic brokerage of :data:`CUSTOMERS` customers as of :data:`AS_OF`, ingested, with account status
(12 month-ends of history) and tags, so every console page has data. About 5 s.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

from panhuo.config import Workspace

__all__ = ["AS_OF", "CUSTOMERS", "build_console_workspace", "console_copy", "customer_ids"]

AS_OF = dt.date(2026, 11, 24)
CUSTOMERS = 300


def build_console_workspace(template: Path, target: Path) -> Path:
    """Copy ``template`` to ``target`` and add the generated, ingested brokerage with status and tags."""
    from panhuo.contract.ingest import ingest
    from panhuo.engines import connect
    from panhuo.generate import generate_brokerage
    from panhuo.status.history import compute_status
    from panhuo.tags import compute_tags

    shutil.copytree(template, target)
    ws = Workspace.open(target, create=False)
    data = target.parent / (target.name + "-data")
    generate_brokerage(data, customers=CUSTOMERS, seed=7, as_of=AS_OF)
    con = connect(ws.settings.engine, ws.tmp_dir)
    ingest(ws, data, con=con)
    compute_status(ws, con, AS_OF, backfill=True)
    compute_tags(ws, con, AS_OF)
    shutil.rmtree(data)
    return target


def console_copy(template: Path, tmp_path_factory: Any, name: str) -> Path:
    """A private copy (``<basetemp>/<name>/ws``) of the session's console workspace, built on first use.

    The generated workspace is built once per test session (and xdist worker) under the session's base
    temporary folder and shared by the console's test modules; each gets its own copy to write into.
    """
    base = Path(tmp_path_factory.getbasetemp()) / "console-template"
    if not (base / ".built").exists():
        if base.exists():
            shutil.rmtree(base)  # a build cut short earlier in this session
        build_console_workspace(template, base / "ws")
        (base / ".built").touch()
    target = tmp_path_factory.mktemp(name) / "ws"
    shutil.copytree(base / "ws", target)
    return target


def customer_ids(root: Path, n: int = 3) -> list[str]:
    """The first ``n`` customer ids of the workspace's current load."""
    from panhuo.warehouse.store import Warehouse

    import pyarrow.dataset as ds

    wh = Warehouse(root / "warehouse")
    table = ds.dataset(wh.table_path("customers")).to_table(columns=["customer_id"])
    return sorted(table.column("customer_id").to_pylist())[:n]
