"""``panhuo benefits``: the benefit catalogue 权益中台 — list, show one item, validate and add catalogue files.

The catalogue is the shipped starter catalogue plus ``<workspace>/benefits/*.yaml``. Stock levels and
issuing live in the operational store (the run engine); ``list`` shows the catalogue's limits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from panhuo.cli._common import console, err_console, workspace

__all__ = ["benefits_app", "register"]

benefits_app = typer.Typer(
    name="benefits",
    help="Benefit catalogue 权益中台: list, show, validate (starter catalogue + <workspace>/benefits/*.yaml).",
    no_args_is_help=True,
)


def _money(v: object) -> str:
    return "" if v is None else f"{v}"


@benefits_app.command("list")
def list_cmd(kind: Annotated[str | None, typer.Option("--kind", help="only this kind")] = None) -> None:
    """Every benefit: id, kind, name, risk rating, unit cost, stock, budget, validity, where it is defined."""
    from panhuo.benefits import load_catalogue

    cat = load_catalogue(workspace())
    rows = [b for b in cat if kind is None or b.kind == kind]
    t = Table(title=f"Benefits 权益 ({len(rows)})")
    for col in ("id", "kind", "name", "risk", "unit cost (RMB)", "stock", "budget (RMB)", "valid", "from file"):
        t.add_column(col, overflow="fold", no_wrap=col == "id")
    for b in rows:
        valid = f"{b.valid.valid_from} .. {b.valid.valid_to or ''}"
        t.add_row(Text(b.id), b.kind, Text(b.name.zh), b.risk_label, _money(b.unit_cost),
                  "" if b.stock is None else str(b.stock), _money(b.budget), valid, Text(cat.origin[b.id][0]))
    console.print(t)


@benefits_app.command("show")
def show_cmd(benefit_id: Annotated[str, typer.Argument(help="the benefit id")]) -> None:
    """One benefit with every field (and a coupon's documented price terms)."""
    import yaml

    from panhuo.benefits import load_catalogue

    cat = load_catalogue(workspace())
    b = cat.get(benefit_id)
    file, line = cat.origin[b.id]
    console.print(Text.assemble((b.id, "bold"), "  ", b.name.zh, " / ", b.name.en, f"  ({file} line {line})"))
    data = b.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["risk"] = b.risk_label
    data["unit_cost_fen"] = b.unit_cost_fen
    console.print(Text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False)))


@benefits_app.command("validate")
def validate_cmd(
    files: Annotated[list[Path] | None, typer.Argument(help="catalogue files (default: the workspace's)")] = None,
) -> None:
    """Validate catalogue files (default: starter + workspace); every issue names file, line and field."""
    from panhuo.benefits import BenefitError, load_catalogue

    try:
        cat = load_catalogue(None if files else workspace(), files=files or None)
    except BenefitError as exc:
        for issue in exc.issues:
            err_console.print(Text(str(issue), style="red"))
        err_console.print(f"[bold red]{len(exc.issues)} issue(s): catalogue invalid[/]")
        raise typer.Exit(2) from None
    console.print(f"[green]ok[/] {len(cat)} benefit(s)")


@benefits_app.command("add")
def add_cmd(
    file: Annotated[Path, typer.Argument(help="a catalogue YAML file (items: [...])")],
    replace: Annotated[bool, typer.Option("--replace", help="overwrite a workspace file of the same name")] = False,
) -> None:
    """Validate a catalogue file with the rest of the catalogue and copy it to <workspace>/benefits/."""
    from panhuo._io import atomic_write_text
    from panhuo.benefits import BenefitError, benefits_dir, load_catalogue

    ws = workspace()
    target = benefits_dir(ws) / (file.stem + ".yaml")
    if target.exists() and not replace:
        err_console.print(f"[bold red]error:[/] {target} exists (use --replace to overwrite it)")
        raise typer.Exit(2)
    others = [p for p in sorted(benefits_dir(ws).glob("*.y*ml")) if p.resolve() != target.resolve()]
    try:
        cat = load_catalogue(None, files=[*others, file])
    except BenefitError as exc:
        for issue in exc.issues:
            err_console.print(Text(str(issue), style="red"))
        err_console.print("[bold red]nothing added[/]")
        raise typer.Exit(2) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, file.read_text(encoding="utf-8-sig"))
    console.print(f"[green]added[/] {file} as {target.relative_to(ws.root)}: catalogue now {len(cat)} benefit(s)")


def register(app: typer.Typer) -> None:
    app.add_typer(benefits_app)
