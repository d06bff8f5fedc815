"""``panhuo status --as-of DATE``: compute and store account status, print the summary, export it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from panhuo.cli._common import console, parse_date_option, progress_bar, status_progress, workspace
from panhuo.warehouse.export import check_export_path

if TYPE_CHECKING:
    from panhuo.status.history import StatusResult
    from panhuo.status.summary import StatusSummary

__all__ = ["register", "print_summary"]


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f}%"


def print_summary(summary: StatusSummary, result: StatusResult | None = None) -> None:
    """Print a summary as Rich tables."""
    from panhuo.status.rules import STATUS_ZH, STATUSES

    if result is not None and result.backfilled:
        first, last = result.backfilled[0], result.backfilled[-1]
        console.print(f"backfilled {len(result.backfilled)} month-end(s): {first} .. {last}")
    t = Table(title=f"Account status as of {summary.as_of.isoformat()}")
    t.add_column("status")
    t.add_column("", style="dim")
    t.add_column("customers", justify="right")
    t.add_column("share", justify="right")
    for s in STATUSES:
        t.add_row(s, STATUS_ZH[s], f"{summary.counts.get(s, 0):,}", _pct(summary.share(s)))
    t.add_row("total", "合计", f"{summary.customers:,}", "100.0%" if summary.customers else "n/a", style="bold")
    console.print(t)
    console.print(f"effective share 有效户占比: [bold]{_pct(summary.effective_share)}[/]")
    console.print(f"active share (app MAU / customers) 活跃占比: [bold]{_pct(summary.active_share)}[/]")

    b = Table(title="Asset bands 资产分层")
    b.add_column("band")
    b.add_column("customers", justify="right")
    b.add_column("share", justify="right")
    for band in summary.bands:
        b.add_row(band.label, f"{band.customers:,}", _pct(band.share))
    console.print(b)

    br = Table(title=f"Top {len(summary.branches)} branches by customers 营业部")
    br.add_column("branch")
    br.add_column("customers", justify="right")
    br.add_column("effective", justify="right")
    br.add_column("effective share", justify="right")
    for row in summary.branches:
        name = escape(row.branch_id) if row.branch_id is not None else "(none)"
        br.add_row(name, f"{row.customers:,}", f"{row.effective:,}", _pct(row.effective_share))
    console.print(br)

    tr = Table(title=f"Transitions on {summary.as_of.isoformat()} 状态变化: {summary.transitions_total:,}")
    tr.add_column("from")
    tr.add_column("to")
    tr.add_column("customers", justify="right")
    for row in summary.transitions:
        tr.add_row(row.from_status or "(new)", row.to_status or "(gone)", f"{row.customers:,}")
    console.print(tr)


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status(
        as_of: Annotated[str, typer.Option("--as-of", help="the date to compute (2025-06-30 or 20250630)")],
        out: Annotated[
            Path | None, typer.Option("--out", help="also export customer status to FILE.parquet or FILE.csv")
        ] = None,
        no_backfill: Annotated[
            bool, typer.Option("--no-backfill", help="on the first run, do not backfill the previous 12 month-ends")
        ] = False,
        html: Annotated[
            bool, typer.Option("--html", help="also write the HTML overview to <workspace>/reports/")
        ] = False,
    ) -> None:
        """Compute account status (effective, sleeping, dormant, new_empty) at --as-of and keep its history."""
        from panhuo.engines import connect
        from panhuo.status.export import export_status
        from panhuo.status.history import compute_status
        from panhuo.status.summary import summarize

        day = parse_date_option(as_of)
        if out is not None:
            check_export_path(out)  # before any work
        ws = workspace()
        con = connect(ws.settings.engine, ws.tmp_dir)
        with progress_bar() as bar:
            result = compute_status(ws, con, day, backfill=not no_backfill, progress=status_progress(bar))
        summary = summarize(ws, con, day)
        print_summary(summary, result)
        if out is not None:
            rows = export_status(ws, con, out, day)
            console.print(f"wrote {rows:,} rows to {out}")
        if html:
            from panhuo.report.overview import write_overview

            path = write_overview(ws, con, day, summary=summary)
            console.print(f"wrote {path}")
