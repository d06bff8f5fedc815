"""``panhuo benefits``: the benefit catalogue 权益中台 — list, show one item, validate and add catalogue files.

The catalogue is the shipped starter catalogue plus ``<workspace>/benefits/*.yaml``. Stock levels and
issuing live in the operational store (the run engine); ``list`` shows the catalogue's limits, ``stock``
those limits against what runs have issued (``panhuo.benefits.ledger``).
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


def _rmb(fen: int | None) -> str:
    """Integer fen as RMB with two decimals (exact), ``-`` (unlimited) for None."""
    if fen is None:
        return "-"
    sign, fen = ("-", -fen) if fen < 0 else ("", fen)
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"


def _units(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


@benefits_app.command("stock")
def stock_cmd(benefit_id: Annotated[str | None, typer.Argument(help="one benefit (default: all)")] = None) -> None:
    """Catalogue limits against what runs have issued: stock and budget, issued, spent, remaining (RMB)."""
    from panhuo.benefits import load_catalogue
    from panhuo.benefits.ledger import usage
    from panhuo.cli._store import store
    from panhuo.store.models import now_shanghai

    cat = load_catalogue(workspace())
    st = store()
    try:
        rows = usage(st, benefit_id, catalogue=cat)
    finally:
        st.dispose()
    if benefit_id is not None and not rows:
        cat.get(benefit_id)  # BenefitError naming the unknown id (and close matches)
    today = now_shanghai().date()
    heads = ("id", "unit cost", "stock", "issued", "stock left", "budget", "spent", "budget left", "units left",
             "state")
    lines = []
    for u in rows:
        item = cat.get(u.benefit_id) if u.benefit_id in cat else None
        if item is None:
            state = Text("not in catalogue", style="yellow")
        elif u.units_left == 0:
            state = Text("exhausted", style="bold red")
        elif not item.valid.contains(today):
            state = Text(f"not valid on {today}", style="yellow")
        else:
            state = Text("ok", style="green")
        lines.append((Text(u.benefit_id), "" if u.unit_cost_fen is None else _rmb(u.unit_cost_fen), _units(u.stock),
                      f"{u.issued:,}", _units(u.remaining_stock), _rmb(u.budget_fen), _rmb(u.spent_fen),
                      _rmb(u.remaining_budget_fen), _units(u.units_left), state))
    title = f"Benefit stock and budget 权益库存 ({len(rows)})" if benefit_id is None else f"Benefit {benefit_id} 权益库存"
    t = Table(title=title, caption="money in RMB; - = unlimited")
    if benefit_id is not None:  # one benefit: label / value lines, which fit any terminal
        t.show_header = False
        t.add_column("", style="bold")
        t.add_column("", justify="right")
        for head, cell in zip(heads, lines[0], strict=True):
            t.add_row(head, cell)
    else:
        for head in heads:
            t.add_column(head, justify="left" if head in ("id", "state") else "right", no_wrap=head == "id")
        for line in lines:
            t.add_row(*line)
    console.print(t)


def register(app: typer.Typer) -> None:
    app.add_typer(benefits_app)
