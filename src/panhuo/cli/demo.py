"""``panhuo demo``: the whole foundation on a synthetic brokerage, in one command.

generate (default 100k customers) -> ingest -> account status with 12 month-ends of history ->
summary on the terminal -> self-contained HTML overview in ``<workspace>/reports/``.
Later stages extend this command; it stays one command.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated

import typer

from panhuo.cli._common import console, parse_date_option, progress_bar, status_progress, workspace

__all__ = ["register", "run_demo"]


def run_demo(customers: int, seed: int, as_of: dt.date | None, data: Path | None) -> Path:
    """Run the demo in the current workspace; returns the path of the HTML overview."""
    from panhuo.cli.status import print_summary
    from panhuo.contract.ingest import ingest
    from panhuo.engines import connect
    from panhuo.generate import default_as_of, generate_brokerage
    from panhuo.report.overview import write_overview
    from panhuo.status.history import compute_status
    from panhuo.status.summary import summarize

    ws = workspace()
    day = as_of or default_as_of()
    folder = data or ws.root / "demo-data"
    t0 = time.perf_counter()
    console.rule(f"[bold]1/4 generate[/] a synthetic brokerage: {customers:,} customers, seed {seed}, as of {day}")
    with progress_bar() as bar:
        tasks: dict[str, int] = {}

        def note(table: str, done: int, total: int) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(table, total=total)
            bar.update(tasks[table], completed=done, total=total)

        rows = generate_brokerage(folder, customers=customers, seed=seed, as_of=day, progress=note)
    console.print(", ".join(f"{k} {v:,}" for k, v in rows.items()))

    console.rule("[bold]2/4 ingest[/] with full contract validation")
    con = connect(ws.settings.engine, ws.tmp_dir)
    with progress_bar() as bar:
        itasks: dict[str, int] = {}
        stages = {"read": 1, "check": 2, "write": 3, "done": 4}

        def inote(table: str, stage: str) -> None:
            if table not in itasks:
                itasks[table] = bar.add_task(table, total=4)
            bar.update(itasks[table], completed=stages[stage], description=f"{table}: {stage}")

        plan = ingest(ws, folder, con=con, progress=inote)
    console.print(f"load {plan.manifest.load_id}: {sum(plan.rows.values()):,} rows in {plan.manifest.seconds:.1f} s")

    console.rule("[bold]3/4 account status[/] (effective / sleeping / dormant / new_empty) with history")
    with progress_bar() as bar:
        result = compute_status(ws, con, day, backfill=True, progress=status_progress(bar))
    summary = summarize(ws, con, day)
    print_summary(summary, result)
    from panhuo.cli.tags import print_summary_line, tags_progress
    from panhuo.tags import compute_tags

    with progress_bar() as bar:
        print_summary_line(compute_tags(ws, con, day, progress=tags_progress(bar)))

    console.rule("[bold]4/4 overview[/]")
    path = write_overview(ws, con, day, summary=summary)
    console.print(f"HTML overview (offline, zh-CN): [bold]{path}[/]")
    console.print(f"demo finished in {time.perf_counter() - t0:.0f} s; workspace {ws.root}")
    return path


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        customers: Annotated[int, typer.Option("--customers", min=100, help="size of the synthetic brokerage")] = 100_000,
        seed: Annotated[int, typer.Option("--seed", help="random seed (same seed, same brokerage)")] = 7,
        as_of: Annotated[str | None, typer.Option("--as-of", help="as-of date (default: last trading day)")] = None,
        data: Annotated[Path | None, typer.Option("--data", help="where to write the generated tables")] = None,
    ) -> None:
        """Generate a synthetic brokerage, ingest it, compute account status and write the HTML overview."""
        run_demo(customers, seed, parse_date_option(as_of) if as_of else None, data)
