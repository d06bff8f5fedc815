"""``panhuo run PLAYBOOK`` and ``panhuo playbook dry-run PLAYBOOK``: the run engine from the command line.

``run`` runs a live playbook at ``--as-of`` (default: today in Asia/Shanghai): guardrails, assignment,
decisions and the outbox, with a progress bar and the funnel. It is idempotent: the same
``--run-key`` (default: the as-of date) never writes a message twice, and a run that was killed
resumes where its last committed batch ended. ``playbook dry-run`` prints the funnel and writes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from panhuo.cli._common import console, parse_date_option, progress_bar, workspace
from panhuo.cli._store import AsUser

if TYPE_CHECKING:
    from panhuo.runs.engine import RunReport

__all__ = ["dry_run_cmd", "print_funnel", "register", "run_cmd"]

PlaybookId = Annotated[str, typer.Argument(help="the playbook id (its 'id:' field)")]
AsOf = Annotated[str | None, typer.Option("--as-of", help="the date the audience is taken at (default: today)")]


def _as_of(text: str | None) -> dt.date:
    from panhuo.store.models import now_shanghai

    return parse_date_option(text) if text else now_shanghai().date()


def print_funnel(report: RunReport, title: str) -> None:
    """The funnel (candidates -> after each guardrail -> holdout -> sends) and the reason codes."""
    t = Table(title=title)
    t.add_column("stage")
    t.add_column("customers", justify="right")
    for stage, n in report.funnel:
        t.add_row(stage, f"{n:,}")
    console.print(t)
    if report.reasons:
        r = Table(title="Refusals by reason code")
        r.add_column("reason")
        r.add_column("customers", justify="right")
        for reason, n in sorted(report.reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            r.add_row(reason, f"{n:,}")
        console.print(r)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    if report.send_at is not None:
        when = report.send_at.strftime("%Y-%m-%d %H:%M")
        console.print(f"send {'deferred to' if report.deferred else 'at'} {when} (Asia/Shanghai)")


def run_cmd(
    playbook_id: PlaybookId,
    as_of: AsOf = None,
    run_key: Annotated[str | None, typer.Option("--run-key", help="identifies the run (default: the as-of date)")] = None,
    as_user: AsUser = None,
) -> None:
    """Run a LIVE playbook: guardrails, holdout and arms, decisions and the outbox (idempotent, resumable)."""
    from panhuo.runs.engine import run_playbook

    day = _as_of(as_of)
    with progress_bar() as bar:
        task = bar.add_task(f"run {playbook_id} {day.isoformat()}", total=None)

        def note(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = run_playbook(workspace(), playbook_id, day, run_key, actor=as_user, progress=note)
    print_funnel(report, f"Run {report.playbook_id} v{report.version} as of {day.isoformat()} "
                         f"(run key {report.run_key}, run {report.run_id})")
    resumed = f"; resumed after {report.skipped:,} customers already written" if report.skipped else ""
    console.print(f"outbox: {report.written:,} message(s) submitted this time{resumed}")


def dry_run_cmd(playbook_id: PlaybookId, as_of: AsOf = None) -> None:
    """The funnel a run would produce (live version, else the latest); writes nothing."""
    from panhuo.runs.engine import dry_run

    day = _as_of(as_of)
    with console.status(f"dry run {playbook_id} {day.isoformat()}"):
        report = dry_run(workspace(), playbook_id, day)
    print_funnel(report, f"Dry run {report.playbook_id} v{report.version} as of {day.isoformat()} (nothing written)")


def register(app: typer.Typer) -> None:
    from panhuo.cli.playbook import playbook_app

    app.command("run")(run_cmd)
    playbook_app.command("dry-run")(dry_run_cmd)
