"""``panhuo segments list|show|count|export|tiers``: segments and tiers (分层) over tags and scores.

Segments and custom tags are read from ``<workspace>/segments/*.yaml`` and ``<workspace>/tags/*.yaml``
(plus panhuo's built-in segments); tags come from the tag library, or from ``--tags FILE.parquet``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from panhuo.cli._common import console, parse_date_option, workspace

if TYPE_CHECKING:
    from panhuo.segments.audience import Audience
    from panhuo.segments.tiers import TierRow, TierScheme

__all__ = ["print_tiers", "register", "workspace_tiers"]

AsOf = Annotated[str | None, typer.Option("--as-of", help="tags of this date (default: the latest)")]
TagsFile = Annotated[
    Path | None, typer.Option("--tags", help="read tags from this Parquet snapshot instead of the tag library")
]


def _audience(as_of: str | None, tags: Path | None) -> Audience:
    from panhuo.engines import connect
    from panhuo.segments.audience import audience

    day = parse_date_option(as_of) if as_of else None
    ws = workspace()
    con = connect(ws.settings.engine, ws.tmp_dir)
    return audience(ws, con, day, tags_file=tags)


def _when(aud: Audience) -> str:
    return f" as of {aud.as_of.isoformat()}" if aud.as_of else ""


def register(app: typer.Typer) -> None:
    seg = typer.Typer(help="Segments and tiers (分层): list, show, count, export.", no_args_is_help=True)
    app.add_typer(seg, name="segments")

    @seg.command("list")
    def list_() -> None:
        """List the segments (built-in and the workspace's) and custom tags; checks every file."""
        from panhuo.segments.library import load_library

        lib = load_library(workspace().root)
        t = Table(title="Segments 客群")
        for col in ("name", "zh", "en", "rule", "cap", "defined in"):
            t.add_column(col)
        for s in sorted(lib.segments.values(), key=lambda s: (s.builtin, s.name)):
            t.add_row(s.name, s.zh, s.en, escape(" ".join(s.rule.text.split())),
                      f"{s.cap:,}" if s.cap else "", escape(s.location.file))
        console.print(t)
        if lib.tags:
            c = Table(title="Custom tags 自定义标签")
            for col in ("name", "kind", "zh", "en", "expr"):
                c.add_column(col)
            for tag in sorted(lib.tags.values(), key=lambda x: x.name):
                c.add_row(tag.name, tag.kind, tag.zh, tag.en, escape(" ".join(tag.expr.text.split())))
            console.print(c)

    @seg.command("show")
    def show(name: Annotated[str, typer.Argument(help="segment name")]) -> None:
        """Show one segment: meaning, rule, exclusions, cap and where it is defined."""
        from panhuo.segments.compiler import names_used
        from panhuo.segments.expr import parse
        from panhuo.segments.library import load_library

        lib = load_library(workspace().root)
        s = lib.segment(name)
        console.print(f"[bold]{escape(s.name)}[/]  {escape(s.zh)} / {escape(s.en)}")
        if s.description:
            console.print(escape(s.description))
        console.print(f"rule: {escape(' '.join(s.rule.text.split()))}")
        for ex in s.exclude:
            what = f"segment {ex.segment}" if ex.segment else "expression"
            console.print(f"exclude ({what}): {escape(ex.text)}")
        if s.cap:
            console.print(f"cap: {s.cap:,} (first by customer id)")
        console.print(f"uses: {', '.join(sorted(names_used(parse(s.rule))))}")
        console.print(f"defined in {escape(str(s.location))}")

    @seg.command("count")
    def count(name: Annotated[str, typer.Argument(help="segment name")], as_of: AsOf = None,
              tags: TagsFile = None) -> None:
        """Count the customers in a segment."""
        aud = _audience(as_of, tags)
        n = aud.count(name)
        console.print(f"{name}{_when(aud)}: [bold]{n:,}[/] customers")

    @seg.command("export")
    def export(
        name: Annotated[str, typer.Argument(help="segment name")],
        out: Annotated[Path, typer.Option("--out", help="FILE.parquet or FILE.csv")],
        columns: Annotated[str, typer.Option("--columns", help="tags to export next to customer_id, "
                                                               "comma-separated")] = "",
        as_of: AsOf = None,
        tags: TagsFile = None,
    ) -> None:
        """Export a segment's members: customer_id plus chosen tags (money in RMB, phones masked)."""
        from panhuo.errors import ConfigError
        from panhuo.segments.export import export_segment

        if out.suffix.lower() not in (".parquet", ".csv"):
            raise ConfigError(f"--out {out}: the file must end in .parquet or .csv")
        aud = _audience(as_of, tags)
        chosen = [c.strip() for c in columns.split(",") if c.strip()]
        rows = export_segment(aud, name, out, chosen)
        console.print(f"wrote {rows:,} rows of {name}{_when(aud)} to {out}")

    @seg.command("tiers")
    def tiers(as_of: AsOf = None, tags: TagsFile = None) -> None:
        """Customers, shares and average total assets per tier (分层); first matching tier wins."""
        from panhuo.segments.tiers import tier_summary

        aud = _audience(as_of, tags)
        scheme = workspace_tiers(aud)
        print_tiers(tier_summary(scheme, aud.table, aud.symbols, aud.as_of), _when(aud))


def workspace_tiers(aud: Audience) -> TierScheme:
    """The workspace's ``tiers.yaml`` when it has one, else the scheme shipped with panhuo."""
    from panhuo.segments.tiers import load_tiers

    own = workspace().root / "tiers.yaml"
    return load_tiers(own, aud.symbols, "tiers.yaml") if own.exists() else load_tiers(symbols=aud.symbols)


def print_tiers(rows: list[TierRow], when: str = "") -> None:
    """Print the tier table: customers, share and average total assets per tier, then the total."""
    t = Table(title=f"Tiers 分层{when}")
    for col, just in (("tier", "left"), ("", "left"), ("en", "left"), ("customers", "right"),
                      ("share", "right"), ("avg total assets (RMB)", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    total = sum(r.customers for r in rows)
    for r in rows:
        share = "n/a" if r.share is None else f"{r.share * 100:.1f}%"
        avg = "n/a" if r.avg_total_assets is None else f"{r.avg_total_assets:,.2f}"
        t.add_row(r.id, r.zh, r.en, f"{r.customers:,}", share, avg)
    t.add_row("total", "合计", "", f"{total:,}", "100.0%" if total else "n/a", "", style="bold")
    console.print(t)
