"""``panhuo tags --as-of DATE [--out FILE]`` computes and stores every tag; ``panhuo tags describe`` lists them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from panhuo.cli._common import console, parse_date_option, progress_bar, workspace
from panhuo.errors import ConfigError
from panhuo.warehouse.export import check_export_path

if TYPE_CHECKING:
    from rich.progress import Progress

    from panhuo.tags.describe import TagDistribution

__all__ = ["print_describe", "print_summary_line", "register", "tags_progress"]


def tags_progress(bar: Progress):
    """A ``compute_tags`` progress callback drawing on ``bar``."""
    task = bar.add_task("tags: checking inputs", total=None)

    def note(stage: str, done: int, total: int) -> None:
        label = "tags: checking inputs" if stage == "inputs" else "tags: computing and writing"
        bar.update(task, completed=done, total=total or None, description=label)

    return note


def _value(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.4g}"
    if isinstance(v, (int, Decimal)) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _distribution(d: TagDistribution) -> str:
    if d.spec.kind in ("money", "int", "float"):
        return f"{_value(d.minimum)} / {_value(d.median)} / {_value(d.maximum)}"
    if d.spec.kind == "date":
        return f"{_value(d.minimum)} .. {_value(d.maximum)}"
    return ", ".join(f"{_value(v)} {n / d.rows:.0%}" for v, n in d.top) if d.rows else "-"


def print_describe(day: Any, dists: list[TagDistribution]) -> None:
    """Print every tag, by group, with kind, meanings (zh, en), null share and distribution."""
    rows = dists[0].rows if dists else 0
    t = Table(
        title=f"Tags 标签 as of {day.isoformat()}: {rows:,} customers",
        caption="numbers: min / median / max (money in RMB); dates: earliest .. latest; text and flags: top values",
    )
    t.add_column("tag", no_wrap=True)
    t.add_column("kind")
    t.add_column("含义 / meaning", overflow="fold")
    t.add_column("null", justify="right")
    t.add_column("distribution", overflow="fold")
    group = None
    for d in dists:
        s = d.spec
        if s.group != group:
            if group is not None:
                t.add_section()
            t.add_row(f"[bold]{s.group}[/]", "", "", "", "")
            group = s.group
        t.add_row(s.name, s.kind, f"{s.zh} {escape(s.en)}", f"{d.null_share:.0%}", escape(_distribution(d)))
    console.print(t)


def register(app: typer.Typer) -> None:
    tags_app = typer.Typer(
        invoke_without_command=True,
        help="Customer tags 标签: `panhuo tags --as-of DATE [--out FILE]` computes and stores them; "
        "`panhuo tags describe` lists them.",
    )

    @tags_app.callback()
    def tags(
        ctx: typer.Context,
        as_of: Annotated[str | None, typer.Option("--as-of", help="the date to compute (2026-11-24 or 20261124)")] = None,
        out: Annotated[
            Path | None, typer.Option("--out", help="also export the tags to FILE.parquet or FILE.csv (money exact)")
        ] = None,
    ) -> None:
        """Compute every tag at --as-of and store the dated snapshot (needs `panhuo status --as-of` first)."""
        if ctx.invoked_subcommand is not None:
            return
        if as_of is None:
            raise ConfigError("panhuo tags: give --as-of DATE (or `panhuo tags describe`)")
        from panhuo.engines import connect
        from panhuo.tags.export import export_tags
        from panhuo.tags.store import compute_tags

        day = parse_date_option(as_of)
        if out is not None:
            check_export_path(out)  # before any work
        ws = workspace()
        con = connect(ws.settings.engine, ws.tmp_dir)
        with progress_bar() as bar:
            result = compute_tags(ws, con, day, progress=tags_progress(bar))
        print_summary_line(result)
        if out is not None:
            rows = export_tags(ws, con, out, day)
            console.print(f"wrote {rows:,} rows to {out}")

    @tags_app.command("describe")
    def describe(
        as_of: Annotated[
            str | None, typer.Option("--as-of", help="describe the snapshot on or before this date (default: latest)")
        ] = None,
    ) -> None:
        """List every tag with group, kind, meaning (zh, en) and its distribution."""
        from panhuo.engines import connect
        from panhuo.tags.describe import describe_tags

        ws = workspace()
        con = connect(ws.settings.engine, ws.tmp_dir)
        day, dists = describe_tags(ws, con, parse_date_option(as_of) if as_of else None)
        print_describe(day, dists)

    app.add_typer(tags_app, name="tags")


def print_summary_line(result: Any) -> None:
    """One line about a ``TagResult``."""
    from panhuo.tags import TAGS

    console.print(
        f"tags 标签 as of {result.as_of.isoformat()}: {len(TAGS)} tags for {result.customers:,} customers "
        f"in {result.seconds:.1f} s (load {escape(result.load_id)}) -> {result.path}"
    )
