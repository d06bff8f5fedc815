"""``panhuo run PLAYBOOK|--due``, ``panhuo scheduler`` and ``panhuo playbook dry-run``: the run engine from
the command line.

``run PLAYBOOK`` runs a live playbook at ``--as-of`` (default: today in Asia/Shanghai) when its trigger
fires then (``--force``: even if not): guardrails, assignment, decisions and the outbox, with a
progress bar and the funnel. It is idempotent: the same ``--run-key`` (default: the as-of date) never
writes a message twice, and a run that was killed resumes where its last committed batch ended.
``run --due`` runs every live playbook whose trigger fires at the as-of date; ``scheduler`` calls it
every ``--interval`` seconds for today (Asia/Shanghai) until stopped (Ctrl-C or SIGTERM end it
between runs; a run cut short resumes next time). ``playbook dry-run`` prints the funnel and writes
nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from panhuo.cli._common import console, parse_date_option, progress_bar, workspace
from panhuo.cli._store import AsUser

if TYPE_CHECKING:
    from panhuo.config import Workspace
    from panhuo.runs.engine import DueResult, RunReport

__all__ = ["dry_run_cmd", "print_due", "print_funnel", "register", "run_cmd", "run_due_with_progress", "scheduler_cmd"]

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
    if report.trigger:
        console.print(f"trigger: {report.trigger}")
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    if report.send_at is not None:
        when = report.send_at.strftime("%Y-%m-%d %H:%M")
        console.print(f"send {'deferred to' if report.deferred else 'at'} {when} (Asia/Shanghai)")


def _print_run(report: RunReport, day: dt.date) -> None:
    print_funnel(report, f"Run {report.playbook_id} v{report.version} as of {day.isoformat()} "
                         f"(run key {report.run_key}, run {report.run_id})")
    resumed = f"; resumed after {report.skipped:,} customers already written" if report.skipped else ""
    console.print(f"outbox: {report.written:,} message(s) submitted this time{resumed}")


_STATE_STYLE = {"ran": "green", "due": "green", "done": "dim", "not_due": "dim", "waiting": "yellow", "failed": "red"}


def print_due(results: list[DueResult], day: dt.date) -> None:
    """One line per live playbook: what ``--due`` decided and why."""
    t = Table(title=f"Live playbooks at {day.isoformat()}")
    t.add_column("playbook")
    t.add_column("state")
    t.add_column("why")
    t.add_column("sends", justify="right")
    for r in results:
        sends = f"{dict(r.report.funnel).get('sends', 0):,}" if r.report else ""
        t.add_row(r.playbook_id, f"[{_STATE_STYLE.get(r.state, '')}]{r.state}[/]", r.why, sends)
    console.print(t)
    if not results:
        console.print("no live playbooks (see 'panhuo playbook list')")


def run_due_with_progress(ws: Workspace, day: dt.date, as_user: str | None, now: dt.datetime | None = None
                          ) -> list[DueResult]:
    """``run_due`` with a progress bar per playbook, then each run's funnel and the table of live playbooks."""
    from panhuo.runs.engine import run_due

    with progress_bar() as bar:
        tasks: dict[str, int] = {}

        def note(pid: str, done: int, total: int) -> None:
            if pid not in tasks:
                tasks[pid] = bar.add_task(f"run {pid} {day.isoformat()}", total=None)
            bar.update(tasks[pid], completed=done, total=total)

        results = run_due(ws, day, actor=as_user, now=now, progress=note)
    for r in results:
        if r.report is not None:
            _print_run(r.report, day)
    print_due(results, day)
    return results


def run_cmd(
    playbook_id: Annotated[str | None, typer.Argument(help="the playbook id (its 'id:' field); omit with --due")] = None,
    as_of: AsOf = None,
    due: Annotated[bool, typer.Option("--due", help="run every live playbook whose trigger fires at --as-of")] = False,
    force: Annotated[bool, typer.Option("--force", help="run PLAYBOOK even if its trigger does not fire")] = False,
    run_key: Annotated[str | None, typer.Option("--run-key", help="identifies the run (default: the as-of date)")] = None,
    as_user: AsUser = None,
) -> None:
    """Run a LIVE playbook (or --due: every live playbook whose trigger fires): guardrails, holdout and arms,
    decisions and the outbox (idempotent, resumable)."""
    from panhuo.errors import ConfigError
    from panhuo.runs.engine import run_playbook

    day = _as_of(as_of)
    if due == (playbook_id is not None):
        raise ConfigError("give a PLAYBOOK id or --due (every live playbook whose trigger fires), not both")
    if due:
        if force or run_key:
            raise ConfigError("--force and --run-key apply to one PLAYBOOK, not to --due")
        results = run_due_with_progress(workspace(), day, as_user)
        if any(r.state == "failed" for r in results):
            raise typer.Exit(1)
        return
    assert playbook_id is not None
    with progress_bar() as bar:
        task = bar.add_task(f"run {playbook_id} {day.isoformat()}", total=None)

        def note(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = run_playbook(workspace(), playbook_id, day, run_key, actor=as_user, progress=note, force=force)
    _print_run(report, day)


def scheduler_cmd(
    interval: Annotated[float, typer.Option("--interval", min=1, help="seconds between checks")] = 60.0,
    once: Annotated[bool, typer.Option("--once", help="check once and exit (for cron or systemd timers)")] = False,
    as_user: AsUser = None,
) -> None:
    """Every --interval seconds, run the live playbooks that are due today (Asia/Shanghai) — `run --due` in a
    loop. Stops on Ctrl-C or SIGTERM, between runs."""
    import signal
    import threading

    from panhuo.calendar import calendar_for
    from panhuo.store.models import now_shanghai

    stop = threading.Event()

    def _stop(_sig: int, _frame: object) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _stop)
    actor = as_user or "scheduler"
    try:
        while not stop.is_set():
            day = now_shanghai().date()
            if calendar_for(workspace()).is_trading_day(day):
                run_due_with_progress(workspace(), day, actor)
            else:
                console.print(f"{day.isoformat()} is not a trading day: nothing runs")
            if once:
                break
            stop.wait(interval)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    console.print("scheduler stopped")


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
    app.command("scheduler")(scheduler_cmd)
    playbook_app.command("dry-run")(dry_run_cmd)
