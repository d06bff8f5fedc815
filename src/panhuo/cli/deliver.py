"""``panhuo deliver`` (the delivery worker) and ``panhuo calls`` (advisor call tasks: list, record an outcome).

``deliver --once`` drains what is due now and stops; ``--follow`` keeps polling until interrupted.
``--workers N`` (PostgreSQL only) runs N worker processes side by side (``FOR UPDATE SKIP LOCKED``
claims), named ``<id>/1`` .. ``<id>/N``, with one progress bar and one summary for all of them.
Providers, which provider serves each channel, rate limits, retries and leases are in ``panhuo.yaml``
under ``delivery:``; credentials only in the environment variables named there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from panhuo.cli._common import console, progress_bar, workspace
from panhuo.cli._store import AsUser, store

if TYPE_CHECKING:
    from panhuo.delivery.worker import DeliverySummary

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
    workers: Annotated[int, typer.Option("--workers", min=1, max=32,
                                         help="worker processes side by side (PostgreSQL only)")] = 1,
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
    if workers > 1 and not worker.on_postgresql:
        raise ConfigError(f"--workers {workers} needs a PostgreSQL store; on SQLite one worker runs at a time "
                          "(it holds the store's delivery lease)")
    if not follow:
        bar.update(task, total=worker.due_count())
    with bar:
        if workers > 1:
            worker.store.dispose()
            summary = _run_processes(ws.root, worker.worker_id, batch, follow, workers,
                                     lambda n: bar.advance(task, n))
        else:
            stop = threading.Event()
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


def _child(root: str, worker_id: str, batch: int | None, follow: bool, events: Any, stop: Any) -> None:
    """One worker process of ``--workers N``: progress counts every 0.2 s, then its summary, on ``events``."""
    import dataclasses
    import signal
    import time
    from pathlib import Path

    from panhuo.config import Workspace
    from panhuo.delivery.worker import DeliveryWorker

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us through ``stop``
    done, last = 0, time.monotonic()

    def note(channel: str, outcome: str) -> None:
        nonlocal done, last
        done += 1
        if time.monotonic() - last >= 0.2:
            events.put(("progress", done))
            done, last = 0, time.monotonic()

    try:
        summary = DeliveryWorker(Workspace.open(Path(root)), worker_id=worker_id, batch=batch,
                                 on_progress=note).run(follow=follow, stop=stop)
    except Exception as exc:  # reported by the parent, which exits non-zero
        events.put(("error", f"{worker_id}: {type(exc).__name__}: {exc}"))
        raise SystemExit(1) from None
    events.put(("progress", done))
    events.put(("summary", dataclasses.asdict(summary)))


def _run_processes(root: Any, base_id: str, batch: int | None, follow: bool, n: int,
                   advance: Any) -> DeliverySummary:
    """Run ``n`` worker processes until they finish (``--once``) or Ctrl-C (``--follow``); one summary."""
    import multiprocessing as mp
    import queue

    from panhuo.delivery.worker import DeliverySummary
    from panhuo.errors import DeliveryError

    ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited database connections or threads
    events, stop = ctx.Queue(), ctx.Event()
    ids = [f"{base_id}/{k}"[-64:] for k in range(1, n + 1)]
    procs = [ctx.Process(target=_child, args=(str(root), wid, batch, follow, events, stop), name=wid, daemon=False)
             for wid in ids]
    for p in procs:
        p.start()
    total = DeliverySummary(f"{n} workers ({ids[0]} .. {ids[-1]})")
    errors: list[str] = []
    summaries = 0
    interrupted = False

    def take(block: bool) -> bool:
        nonlocal summaries
        try:
            kind, value = events.get(timeout=0.2) if block else events.get_nowait()
        except queue.Empty:
            return False
        if kind == "progress":
            advance(value)
        elif kind == "error":
            errors.append(value)
        else:
            summaries += 1
            total.batches += value["batches"]
            total.seconds = max(total.seconds, value["seconds"])
            for reason, k in value["dead_reasons"].items():
                total.dead_reasons[reason] = total.dead_reasons.get(reason, 0) + k
            for ch, counts in value["channels"].items():
                st = total.of(ch)
                for name, k in counts.items():
                    setattr(st, name, getattr(st, name) + k)
        return True

    try:
        while any(p.is_alive() for p in procs):
            try:
                take(block=True)
            except KeyboardInterrupt:
                interrupted = True
                stop.set()
        for p in procs:
            p.join()
        while take(block=False):
            pass
    finally:
        stop.set()
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    if errors or any(p.exitcode != 0 for p in procs):
        raise DeliveryError("delivery worker(s) failed: " + ("; ".join(errors) or ", ".join(
            f"{p.name} exit {p.exitcode}" for p in procs if p.exitcode != 0)))
    if interrupted:
        raise typer.Exit(130)
    return total


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
    from panhuo.delivery.calls import record_call_outcome

    st = store()
    try:
        with st.session() as s:
            record_call_outcome(s, task_id, outcome, note, actor=as_user)
    finally:
        st.dispose()
    console.print(f"call task {task_id}: {outcome}")


def register(app: typer.Typer) -> None:
    app.command("deliver")(deliver_cmd)
    app.add_typer(calls_app)
