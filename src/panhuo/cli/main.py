"""The ``panhuo`` command line: one Typer app, one module per command group.

Global options come before the command: ``panhuo --workspace DIR status --as-of 2026-11-20``.
Errors of the PanhuoError family print as a clear message and exit with code 2.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from panhuo import __version__
from panhuo.cli import _common

__all__ = ["app", "main"]

app = typer.Typer(
    name="panhuo",
    help="panhuo 盘活: find sleeping and dormant brokerage accounts and bring them back to trading.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"panhuo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    workspace: Annotated[
        str | None,
        typer.Option("--workspace", "-w", help="workspace folder (default ./.panhuo or $PANHUO_HOME)"),
    ] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
) -> None:
    _common.STATE.workspace_path = workspace


def _register() -> None:
    # One module per command group; each exposes register(app).
    import importlib

    for name in _COMMAND_MODULES:
        importlib.import_module(f"panhuo.cli.{name}").register(app)


_COMMAND_MODULES: tuple[str, ...] = ("generate", "ingest", "status", "tags", "calendar", "demo", "scores", "store", "users", "playbook", "segments", "benefits", "run", "sim", "deliver", "archive", "callbacks", "apikeys", "serve", "report", "simulate", "uplift")


_register()


def main() -> None:
    try:
        app()
    except _common.HANDLED as exc:
        sys.exit(_common.report_error(exc))
