"""``panhuo generate``: write a synthetic brokerage (data contract v1) for demos and tests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from panhuo.cli._common import console, parse_date_option

__all__ = ["register", "generate"]


def generate(
    customers: Annotated[int, typer.Option("--customers", "-n", help="number of customers")] = 100_000,
    seed: Annotated[int, typer.Option("--seed", help="random seed: same inputs give byte-identical files")] = 1,
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder, one file per table")] = Path("brokerage"),
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
    encoding: Annotated[str, typer.Option("--encoding", help="utf-8 or gbk (CSV only)")] = "utf-8",
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="YYYY-MM-DD; default: the last trading day before today (Asia/Shanghai)"),
    ] = None,
    years: Annotated[int, typer.Option("--years", help="years of trade history")] = 5,
) -> None:
    """Generate a realistic synthetic brokerage: all eight tables of data contract v1."""
    from panhuo.generate import TABLE_ORDER, default_as_of, generate_brokerage

    day = parse_date_option(as_of) if as_of else default_as_of()
    started = time.perf_counter()
    with Progress(
        TextColumn("{task.description:<20}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("blocks"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        tasks = {name: bar.add_task(name, total=None) for name in TABLE_ORDER}

        def tick(table: str, done: int, total: int) -> None:
            bar.update(tasks[table], completed=done, total=total)

        rows = generate_brokerage(
            out, customers, seed, as_of=day, years=years, fmt=fmt, encoding=encoding, progress=tick
        )
    summary = Table(title=f"{customers:,} customers, as-of {day.isoformat()}, seed {seed} -> {out}")
    summary.add_column("table")
    summary.add_column("rows", justify="right")
    for name, n in rows.items():
        summary.add_row(name, f"{n:,}")
    console.print(summary)
    console.print(f"done in {time.perf_counter() - started:.1f}s")


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
