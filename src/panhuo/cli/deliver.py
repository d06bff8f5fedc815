"""``panhuo deliver`` (the delivery worker) and ``panhuo calls`` (advisor call tasks: list, record an outcome).

``deliver --once`` drains what is due now and stops; ``--follow`` keeps polling until interrupted.
Providers, which provider serves each channel, rate limits, retries and leases are in ``panhuo.yaml``
under ``delivery:``; credentials only in the environment variables named there.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from panhuo.cli._common import console, progress_bar, workspace
from panhuo.cli._store import AsUser, store

__all__ = ["calls_app", "register"]

calls_app = typer.Typer(name="calls", help="Advisor call tasks from the call channel: list, record an outcome.",
                        no_args_is_help=True)


def deliver_cmd(
    once: Annotated[bool, typer.Option("--once", help="deliver what is due now, then stop (the default)")] = False,
    follow: Annotated[bool, typer.Option("--follow", help="keep delivering as messages fall due (Ctrl-C stops)")] = False,
    worker_id: Annotated[str | None, typer.Option("--workers-id", "--worker-id",
                                                  help="the name rows are claimed under (default host:pid)")] = None,
    batch: Annotated[int | None, typer.Option("--batch", min=1, max=100_000,
                                              help="messages per batch (default delivery.batch, 500)")] = None,
) -> None:
    """Send due outbox messages through the configured providers; call messages become advisor call tasks."""
    import threading

    from panhuo.delivery.worker import DeliveryWorker
    from panhuo.errors import ConfigError

    if once and follow:
        raise ConfigError("--once and --follow exclude each other")
    ws = workspace()
    bar = progress_bar(transient=True)
    task = bar.add_task("delivering", total=None)

    def note(channel: str, outcome: str) -> None:
        bar.advance(task)

    worker = DeliveryWorker(ws, worker_id=worker_id, batch=batch, on_progress=note)  # credentials checked here
    if not follow:
        bar.update(task, total=worker.due_count())
    stop = threading.Event()
    with bar:
        try:
            summary = worker.run(follow=follow, stop=stop)
        except KeyboardInterrupt:
            stop.set()
            raise typer.Exit(130) from None
    t = Table(title=f"Delivery by {summary.worker_id}: {summary.batches} batch(es) in {summary.seconds:.1f}s")
    for col in ("channel", "sent", "call tasks", "retried", "dead", "opted out", "deferred", "skipped"):
        t.add_column(col, justify="left" if col == "channel" else "right")
    for ch, s in sorted(summary.channels.items()):
        t.add_row(ch, str(s.sent), str(s.tasked), str(s.retried), str(s.dead), str(s.suppressed), str(s.deferred),
                  str(s.skipped))
    console.print(t)
    for reason, n in sorted(summary.dead_reasons.items(), key=lambda kv: -kv[1]):
        console.print(Text(f"dead letters: {n} x {reason}", style="red"))
    if summary.done == 0:
        console.print("nothing was due")


@calls_app.command("list")
def calls_list(
    advisor: Annotated[str | None, typer.Option("--advisor", help="only this advisor's tasks")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="only tasks without an outcome")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="at most this many (oldest due first)")] = 200,
) -> None:
    """Call tasks: id, advisor, customer, due trading day, playbook, outcome, script."""
    from sqlalchemy import select

    from panhuo.delivery.models import CallTask

    st = store()
    try:
        with st.session() as s:
            q = select(CallTask).order_by(CallTask.due_date, CallTask.id).limit(limit)
            if advisor is not None:
                q = q.where(CallTask.advisor_id == advisor)
            if open_only:
                q = q.where(CallTask.outcome.is_(None))
            rows = list(s.scalars(q))
    finally:
        st.dispose()
    t = Table(title=f"Call tasks ({len(rows)})")
    for col in ("id", "advisor", "customer", "due", "playbook", "outcome", "script"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(str(r.id), r.advisor_id or "-", r.customer_id, r.due_date.isoformat(), r.playbook_id,
                  r.outcome or "", Text(r.script))
    console.print(t)


@calls_app.command("outcome")
def calls_outcome(
    task_id: Annotated[int, typer.Argument(help="the call task id")],
    outcome: Annotated[str, typer.Argument(help="reached | no_answer | refused | interested")],
    note: Annotated[str | None, typer.Option("--note", help="what the advisor noted")] = None,
    as_user: AsUser = None,
) -> None:
    """Record what came of a call (once more replaces the earlier outcome); written to the audit log."""
    from panhuo.delivery.models import CALL_OUTCOMES, CallTask
    from panhuo.errors import ConfigError, StoreError
    from panhuo.store.audit import record
    from panhuo.store.models import now_shanghai

    if outcome not in CALL_OUTCOMES:
        raise ConfigError(f"outcome {outcome!r} is not one of {', '.join(CALL_OUTCOMES)}")
    st = store()
    try:
        with st.session() as s:
            task = s.get(CallTask, task_id)
            if task is None:
                raise StoreError(f"no call task {task_id}")
            before = {"outcome": task.outcome, "note": task.note}
            task.outcome, task.note = outcome, note
            task.outcome_at, task.outcome_by = now_shanghai(), as_user or task.advisor_id
            record(s, actor=as_user or f"advisor:{task.advisor_id or '-'}", action="call.outcome",
                   entity="call_task", entity_id=str(task_id), before=before, after={"outcome": outcome, "note": note})
    finally:
        st.dispose()
    console.print(f"call task {task_id}: {outcome}")


def register(app: typer.Typer) -> None:
    app.command("deliver")(deliver_cmd)
    app.add_typer(calls_app)
