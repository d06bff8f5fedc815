"""Shared pieces of the CLI: the workspace of this invocation, the console, error reporting."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from panhuo.config import Workspace
from panhuo.contract.parse import parse_date
from panhuo.errors import ConfigError, ContractError, PanhuoError

__all__ = [
    "STATE", "console", "err_console", "workspace", "report_error", "parse_date_option", "progress_bar",
    "status_progress", "step_progress", "HANDLED",
]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

HANDLED = (PanhuoError,)


@dataclass
class _State:
    workspace_path: str | None = None
    _ws: Workspace | None = None


STATE = _State()


def workspace() -> Workspace:
    """The workspace of this invocation, created with default settings if it does not exist."""
    if STATE._ws is None:
        STATE._ws = Workspace.open(STATE.workspace_path)
    return STATE._ws


def progress_bar(transient: bool = True) -> Progress:
    """The one progress-bar style of the CLI (description, bar, n/m, elapsed)."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=transient)


def status_progress(bar: Progress):
    """A ``compute_status`` progress callback drawing on ``bar``."""
    task = bar.add_task("account status", total=None)

    def note(day: dt.date, done: int, total: int) -> None:
        bar.update(task, completed=done, total=total, description=f"account status {day.isoformat()}")

    return note


def step_progress(bar: Progress, label: str):  # -> Callable[[str, int, int], None]
    """A ``progress(step, done, total)`` callback (models, uplift, outcome tags) drawing one task on ``bar``."""
    task = bar.add_task(label, total=None)

    def note(step: str, done: int, total: int) -> None:
        bar.update(task, completed=done, total=total or None, description=f"{label}: {step}")

    return note


def parse_date_option(text: str, option: str = "--as-of") -> dt.date:
    """A date given on the command line (``2026-11-24`` or ``20261124``); ConfigError names the option."""
    try:
        return parse_date(text)
    except ValueError as exc:
        raise ConfigError(f"{option} {text!r} {exc}") from exc


def report_error(exc: PanhuoError) -> int:
    """Print an error for a person and return the exit code (2)."""
    if isinstance(exc, ContractError):
        err_console.print(f"[bold red]Input refused: {len(exc.issues)} contract issue(s); nothing was loaded.[/]")
        for issue in exc.issues:
            err_console.print(f"  - {issue}", markup=False)
        if exc.truncated:
            err_console.print("  ... more issues not shown (ingest.max_errors)")
    else:
        err_console.print("[bold red]error:[/]", Text(str(exc)))
    return 2
