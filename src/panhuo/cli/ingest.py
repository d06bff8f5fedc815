"""``panhuo ingest DIR``: validate the contract tables in DIR and store them as one atomic load."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from panhuo.cli._common import console, progress_bar, workspace

__all__ = ["register", "ingest_command", "loads_command"]

_STAGES = {"read": 1, "check": 2, "write": 3, "done": 4}


def ingest_command(
    source: Annotated[
        Path | None, typer.Argument(help="folder with customers, balances, trades, ... (.csv or .parquet)")
    ] = None,
    catalog: Annotated[
        str | None, typer.Option("--catalog", help="read <DATABASE>.<table> from the Spark catalog (engine spark)")
    ] = None,
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="CSV encoding: auto (default), utf-8, utf-8-sig, gbk")
    ] = None,
) -> None:
    """Validate every contract table in SOURCE (or --catalog DATABASE) and store them, all or nothing."""
    from panhuo.contract.ingest import ingest

    ws = workspace()
    with progress_bar() as bar:
        tasks: dict[str, int] = {}

        def note(table: str, stage: str) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(table, total=4)
            bar.update(tasks[table], completed=_STAGES[stage], description=f"{table}: {stage}")

        plan = ingest(ws, source, catalog=catalog, encoding=encoding, progress=note)
    m = plan.manifest
    out = Table(title=f"Load {m.load_id} stored ({m.seconds:.1f} s)", title_justify="left")
    out.add_column("table")
    out.add_column("rows", justify="right")
    out.add_column("source")
    out.add_column("encoding")
    out.add_column("custom columns")
    for name, rec in m.tables.items():
        src = rec.source if rec.source_format == "catalog" else Path(rec.source).name
        out.add_row(name, f"{rec.rows:,}", src, rec.encoding or "-", ", ".join(rec.custom_columns))
    console.print(out)


def loads_command() -> None:
    """List the loads kept in the warehouse (newest last); the one in force is marked."""
    from panhuo.warehouse import Warehouse

    ws = workspace()
    wh = Warehouse(ws.warehouse_dir, ws.settings.ingest.keep_loads)
    current = wh.current_id
    out = Table(title=f"Loads in {ws.warehouse_dir}", title_justify="left")
    for col in ("load id", "in force", "loaded at", "engine", "seconds", "rows", "source"):
        out.add_column(col, justify="right" if col in ("seconds", "rows") else "left")
    for m in wh.loads():
        rows = sum(t.rows for t in m.tables.values())
        out.add_row(m.load_id, "*" if m.load_id == current else "", m.created_at, m.engine,
                    f"{m.seconds:.1f}" if m.seconds is not None else "-", f"{rows:,}", m.source)
    console.print(out)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest_command)
    app.command("loads")(loads_command)
