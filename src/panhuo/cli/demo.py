"""``panhuo demo``: the whole foundation on a synthetic brokerage, in one command.

generate (default 100k customers) -> ingest -> account status with 12 month-ends of history ->
summary on the terminal -> tags -> BG/NBD scores (train + apply) -> tiers (分层, printed) ->
the reactivation propensity model when this panhuo has it -> two starter playbooks written by an
operator, approved by a compliance user (four eyes) and put live, then ``run --due`` at 10:30 on the
as-of day (the funnel of each: candidates -> each guardrail -> holdout -> content -> benefit -> sends,
into the outbox) -> delivery of those runs through the provider simulator started in-process on
loopback (the worker's ``--once``: SMS, app push and WeChat sent to it, the advisor-call playbook's
messages made call tasks; the per-channel summary and one masked archive row printed) -> self-contained HTML overview in ``<workspace>/reports/`` with status, tiers,
P(alive) and expected-trading-days distributions (and the propensity calibration and feature importance) ->
the closed loop: 8 simulated weeks (``panhuo simulate``, in ``<workspace>/closed-loop``) and the report of
each playbook and the programme (``--loop-weeks 0`` skips it).
Later stages extend this command; it stays one command.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from panhuo.cli._common import console, parse_date_option, progress_bar, status_progress, step_progress, workspace

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace
    from panhuo.report.sections import TierSection
    from panhuo.scores.bgnbd import ScoreResult

__all__ = ["DEMO_PLAYBOOKS", "DEMO_USERS", "register", "run_demo", "serve_console"]

#: the starter playbooks the demo puts live and runs (files in the repository's ``playbooks/``)
DEMO_PLAYBOOKS: tuple[str, ...] = ("rescue-effective-to-sleeping", "advisor-call-high-value-sleeping")
#: the demo's people: an admin, an operator who writes playbooks, a compliance reviewer who approves them
DEMO_USERS: tuple[tuple[str, str], ...] = (("demo-admin", "admin"), ("demo-ops", "operator"),
                                           ("demo-compliance", "compliance"))


def run_demo(customers: int, seed: int, as_of: dt.date | None, data: Path | None, *, loop_weeks: int = 8,
             loop_customers: int = 2_000) -> Path:
    """Run the demo in the current workspace; returns the path of the HTML overview."""
    from panhuo.cli.status import print_summary
    from panhuo.contract.ingest import ingest
    from panhuo.engines import connect
    from panhuo.generate import default_as_of, generate_brokerage
    from panhuo.report.overview import write_overview
    from panhuo.status.history import compute_status
    from panhuo.status.summary import summarize

    ws = workspace()
    day = as_of or default_as_of()
    folder = data or ws.root / "demo-data"
    t0 = time.perf_counter()
    console.rule(f"[bold]1/8 generate[/] a synthetic brokerage: {customers:,} customers, seed {seed}, as of {day}")
    with progress_bar() as bar:
        tasks: dict[str, int] = {}

        def note(table: str, done: int, total: int) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(table, total=total)
            bar.update(tasks[table], completed=done, total=total)

        rows = generate_brokerage(folder, customers=customers, seed=seed, as_of=day, progress=note)
    console.print(", ".join(f"{k} {v:,}" for k, v in rows.items()))

    console.rule("[bold]2/8 ingest[/] with full contract validation")
    con = connect(ws.settings.engine, ws.tmp_dir)
    with progress_bar() as bar:
        itasks: dict[str, int] = {}
        stages = {"read": 1, "check": 2, "write": 3, "done": 4}

        def inote(table: str, stage: str) -> None:
            if table not in itasks:
                itasks[table] = bar.add_task(table, total=4)
            bar.update(itasks[table], completed=stages[stage], description=f"{table}: {stage}")

        plan = ingest(ws, folder, con=con, progress=inote)
    console.print(f"load {plan.manifest.load_id}: {sum(plan.rows.values()):,} rows in {plan.manifest.seconds:.1f} s")

    console.rule("[bold]3/8 account status[/] (effective / sleeping / dormant / new_empty) with history")
    with progress_bar() as bar:
        result = compute_status(ws, con, day, backfill=True, progress=status_progress(bar))
    summary = summarize(ws, con, day)
    print_summary(summary, result)
    console.rule("[bold]4/8 tags[/] (every tag of every customer, stored as a dated snapshot)")
    from panhuo.cli.tags import print_summary_line, tags_progress
    from panhuo.tags import compute_tags

    with progress_bar() as bar:
        print_summary_line(compute_tags(ws, con, day, progress=tags_progress(bar)))

    console.rule("[bold]5/8 scores and tiers[/] (BG/NBD P(alive), expected trading days; 分层)")
    _scores(ws, con, day)
    tiers = _tiers(ws, con, day)
    extra = _propensity(ws, con, day)

    console.rule("[bold]6/8 playbooks[/] (written by demo-ops, approved by demo-compliance, run --due)")
    _playbooks(ws, day)

    console.rule("[bold]7/8 deliver[/] through the provider simulator on loopback (deliver --once)")
    _deliver(ws)

    console.rule("[bold]8/8 overview[/]")
    path = write_overview(ws, con, day, summary=summary, tiers=tiers, propensity=extra)
    console.print(f"HTML overview (offline, zh-CN): [bold]{path}[/]")
    if loop_weeks:
        _closed_loop(ws, min(customers, loop_customers), seed, loop_weeks)
    console.print(f"demo finished in {time.perf_counter() - t0:.0f} s; workspace {ws.root}")
    return path


def _closed_loop(ws: Workspace, customers: int, seed: int, weeks: int) -> None:
    """The closed loop (issue 7): ``weeks`` simulated weeks of runs, delivery and responses with Thompson
    sampling learning per tier, then the report of each playbook and the programme (Markdown).

    It plays in its own workspace ``<workspace>/closed-loop`` (same settings) on a brokerage of
    ``customers`` generated as of a day early enough for the weeks to fit the trading calendar, so the
    demo's own data and playbooks stay as they are. See :mod:`panhuo.simulate.loop`.
    """
    from panhuo.measure.report import make_report
    from panhuo.cli.simulate import run_simulation
    from panhuo.config import Workspace
    from panhuo.measure.report import to_markdown

    t0 = time.perf_counter()
    console.rule(f"[bold]closed loop[/]: {weeks} simulated weeks on {customers:,} customers "
                 "(run --due, deliver, responses loaded, Thompson per tier), then the report")
    sub = Workspace.open(ws.root / "closed-loop")
    sub = sub.save(ws.settings)
    summary = run_simulation(sub, weeks, seed=seed, customers=customers)
    for pid, c in summary["cumulative_regret"].items():
        console.print(f"closed loop {pid}: cumulative expected regret {c['policy']:.2f} vs {c['equal_split']:.2f} "
                      f"for an equal split over {summary['weeks_done']} weeks", highlight=False)
    with progress_bar() as bar:
        task = bar.add_task("report", total=None)
        data = make_report(sub, progress=lambda step, d, t: bar.update(task, description=step, completed=d, total=t))
    console.out(to_markdown(data), highlight=False)
    console.print(f"closed loop finished in {time.perf_counter() - t0:.0f} s; its workspace: {sub.root} "
                  f"(panhuo --workspace {sub.root} report --format html)", highlight=False)


def starter_folder() -> Path | None:
    """The repository's starter playbook library (``playbooks/`` next to ``src/``), when there is one."""
    import panhuo

    folder = Path(panhuo.__file__).resolve().parents[2] / "playbooks"
    return folder if folder.is_dir() else None


_LIFECYCLE = ("new", "draft", "in_review", "approved", "live")


def _playbooks(ws: Workspace, day: dt.date) -> None:
    """Put the demo playbooks live through the four-eyes lifecycle, then run what is due at 10:30 on ``day``."""
    from panhuo.cli.run import run_due_with_progress
    from panhuo.playbooks import repository
    from panhuo.playbooks.loader import load_playbook
    from panhuo.store import add_user, open_store
    from panhuo.store.models import SHANGHAI
    from panhuo.store.users import get_user

    folder = starter_folder()
    if folder is None:
        console.print("starter playbooks not found (run the demo from a clone of the repository): step skipped")
        return
    store = open_store(ws)
    try:
        with store.session() as s:
            for name, role in DEMO_USERS:
                if get_user(s, name) is None:
                    add_user(s, name, [role], actor=None if role == "admin" else "demo-admin")
        for pid in DEMO_PLAYBOOKS:
            with store.session() as s:
                pb = repository.list_playbooks(s)
                state = {p.id: p.state for p in pb}.get(pid)
            if state is not None and state not in _LIFECYCLE[:-1]:  # live already, or paused/retired: leave it
                console.print(f"{pid}: {state}")
                continue
            todo = _LIFECYCLE[_LIFECYCLE.index(state or "new"):]  # what an earlier, cut-short demo left
            for action in todo[:-1]:
                with store.session() as s:
                    if action == "new":
                        repository.add_version(s, load_playbook(folder / f"{pid}.yaml"), actor="demo-ops")
                    elif action == "draft":
                        repository.submit(s, pid, actor="demo-ops")
                    elif action == "in_review":
                        repository.approve(s, pid, actor="demo-compliance", note="demo: reviewed")
                    else:
                        repository.activate(s, pid, actor="demo-ops")
            console.print(f"{pid}: added by demo-ops, approved by demo-compliance, live")
    finally:
        store.dispose()
    results = run_due_with_progress(ws, day, "demo-ops", now=dt.datetime.combine(day, dt.time(10, 30),
                                                                                tzinfo=SHANGHAI))
    _sample_messages(ws, [r.report.run_id for r in results if r.report is not None and r.report.run_id])


def _sample_messages(ws: Workspace, run_ids: list[int]) -> None:
    """One outbox message of each run, as queued for delivery (personal data masked)."""
    from sqlalchemy import select

    from panhuo.runs.models import OutboxMessage
    from panhuo.store import open_store

    store = open_store(ws)
    try:
        with store.session() as s:
            for run_id in run_ids:
                m = s.execute(select(OutboxMessage).where(OutboxMessage.run_id == run_id)
                              .order_by(OutboxMessage.customer_id).limit(1)).scalar_one_or_none()
                if m is not None:
                    console.print(f"outbox sample of {m.playbook_id} ({m.channel}, benefit {m.benefit_id}): "
                                  f"{m.content}", highlight=False)
    finally:
        store.dispose()


def _deliver(ws: Workspace) -> None:
    """Deliver the demo's outbox through the provider simulator, started in-process on loopback.

    The workspace's providers point at the simulator for this step only (the settings file is not
    changed); its bearer token is made up here and handed to the worker as its environment. The
    worker drains what is due (``deliver --once``), with the demo's clock at the latest send time so
    messages the runs scheduled for later in the as-of day are due too. Prints one line per channel
    and one archive row (the recipient masked).
    """
    import dataclasses
    import secrets

    from sqlalchemy import func, select

    from panhuo.config import DeliveryProvider
    from panhuo.delivery.models import MessageArchive
    from panhuo.delivery.sim import SimServer
    from panhuo.delivery.worker import DeliveryWorker
    from panhuo.runs.models import OutboxMessage
    from panhuo.store import open_store
    from panhuo.store.models import now_shanghai

    store = open_store(ws)
    try:
        with store.session() as s:
            latest = s.execute(select(func.max(OutboxMessage.send_after))
                               .where(OutboxMessage.status == "pending")).scalar_one_or_none()
        if latest is None:
            console.print("nothing in the outbox to deliver")
            return
        token = secrets.token_hex(16)
        with SimServer(token=token) as sim:
            d = ws.settings.delivery
            names = sorted({p for p in d.channels.values() if p in d.providers})
            providers = {**d.providers, **{n: DeliveryProvider(base_url=sim.url, token_env="PANHUO_DEMO_SIM_TOKEN",
                                                              timeout=5.0, rate_per_second=5000, concurrency=32,
                                                              max_attempts=3) for n in names}}
            settings = ws.settings.model_copy(update={"delivery": d.model_copy(update={"providers": providers})})
            demo_ws = dataclasses.replace(ws, settings=settings)

            def clock() -> dt.datetime:
                return max(now_shanghai(), latest)

            worker = DeliveryWorker(demo_ws, store=store, worker_id="demo", env={"PANHUO_DEMO_SIM_TOKEN": token},
                                    clock=clock)
            with progress_bar(transient=True) as bar:
                task = bar.add_task("delivering", total=worker.due_count())
                worker.on_progress = lambda channel, outcome: bar.advance(task)
                summary = worker.run()
            stats = sim.stats()
        console.print(f"provider simulator at {sim.url}: {summary.done:,} messages in {summary.seconds:.1f} s, "
                      f"{sum(stats['delivered'].values()):,} delivered there", highlight=False)
        for ch, c in sorted(summary.channels.items()):
            console.print(f"delivered {ch}: sent {c.sent}, dead {c.dead}, tasked {c.tasked}, "
                          f"opted out {c.suppressed}, deferred {c.deferred}", highlight=False)
        with store.session() as s:
            row = s.execute(select(MessageArchive).order_by((MessageArchive.channel != "sms"), MessageArchive.id)
                            .limit(1)).scalar_one_or_none()
            if row is not None:
                console.print(f"archive sample: {row.channel} via {row.provider} to {row.recipient} at "
                              f"{row.sent_at:%Y-%m-%d %H:%M:%S}, provider id {row.provider_id}: {row.content}",
                              highlight=False)
    finally:
        store.dispose()



def _scores(ws: Workspace, con: BaseBackend, day: dt.date) -> ScoreResult:
    """Train BG/NBD on trading days up to ``day`` and score every customer (one pass: fit, store, apply)."""
    from panhuo.scores.bgnbd import score_bgnbd

    with progress_bar() as bar:
        result = score_bgnbd(ws, con, day, progress=step_progress(bar, "BG/NBD train + apply"))
    mean = "n/a" if result.mean_p_alive is None else f"{result.mean_p_alive:.3f}"
    console.print(f"BG/NBD model {result.version}: scored {result.scored:,} of {result.customers:,} customers "
                  f"(the others never traded); mean P(alive) {mean}")
    return result


def _tiers(ws: Workspace, con: BaseBackend, day: dt.date) -> TierSection:
    """Assign every customer to a tier (first match wins), print the tier table, keep it for the overview."""
    from panhuo.cli.segments import print_tiers, workspace_tiers
    from panhuo.report.sections import TierSection
    from panhuo.segments.audience import audience
    from panhuo.segments.tiers import tier_summary

    with progress_bar() as bar:
        task = bar.add_task("tiers 分层", total=2)
        aud = audience(ws, con, day)
        scheme = workspace_tiers(aud)
        bar.update(task, completed=1)
        rows = tier_summary(scheme, aud.table, aud.symbols, aud.as_of)
        bar.update(task, completed=2)
    print_tiers(rows, f" as of {day.isoformat()}")
    return TierSection(scheme=scheme, rows=rows)


def _propensity(ws: Workspace, con: BaseBackend, day: dt.date) -> dict[str, Any] | None:
    """Train and apply the reactivation propensity model and return its report, when panhuo has that model.

    The model lives in ``panhuo.scores.propensity`` (``train_propensity``, ``score_propensity``,
    ``propensity_report``); when this installation does not have it, the demo skips the step.
    """
    if importlib.util.find_spec("panhuo.scores.propensity") is None:
        console.print("reactivation propensity model: not in this version of panhuo (step skipped)")
        return None
    from panhuo.scores import propensity

    needed = ("train_propensity", "score_propensity", "propensity_report")
    missing = [n for n in needed if not hasattr(propensity, n)]
    if missing:
        console.print(f"reactivation propensity model: incomplete here (no {', '.join(missing)}; step skipped)")
        return None
    with progress_bar() as bar:
        propensity.train_propensity(ws, con, day, progress=step_progress(bar, "propensity train"))
        propensity.score_propensity(ws, con, day, progress=step_progress(bar, "propensity apply"))
    report: dict[str, Any] = propensity.propensity_report(ws)
    auc = (report.get("holdout") or {}).get("auc")
    console.print(f"reactivation propensity model {report.get('version')}: holdout AUC "
                  f"{'n/a' if auc is None else f'{auc:.3f}'} (calibration and feature importance in the overview)")
    return report


def serve_console(ws: Workspace, host: str = "127.0.0.1", port: int = 8000) -> None:
    """The demo's last step: the web console and API (``panhuo serve``) over the demo brokerage, until Ctrl-C.

    ``demo-ops`` (operator) and ``demo-compliance`` (compliance) get fresh random passwords, printed once and
    labelled demo only (set again on every run; the store keeps only their argon2 hashes). Loopback only,
    so the session cookie goes over plain HTTP. Listens on ``port`` when it is free, else on one the OS picks.
    """
    import secrets
    import socket

    import uvicorn

    from panhuo.service.app import create_app
    from panhuo.service.auth import set_password
    from panhuo.store import add_user, open_store
    from panhuo.store.users import get_user

    store = open_store(ws)
    creds: list[tuple[str, str, str]] = []
    try:
        with store.session() as s:
            for name, role in DEMO_USERS:
                if get_user(s, name) is None:
                    add_user(s, name, [role], actor=None if role == "admin" else "demo-admin")
        with store.session() as s:
            for name, role in DEMO_USERS:
                if role in ("operator", "compliance"):
                    password = "demo-" + secrets.token_urlsafe(9)
                    set_password(s, name, password, actor="demo-admin")
                    creds.append((role, name, password))
    finally:
        store.dispose()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            probe.bind((host, 0))
        port = probe.getsockname()[1]
    console.rule(f"[bold]console[/] 控制台 on {host}:{port} (Ctrl-C stops it; --no-serve skips this step)")
    console.print(f"open http://{host}:{port}/console/ and log in as (demo only, not for real use):", highlight=False)
    for role, name, password in creds:
        console.print(f"  {role:<10} {name:<16} password {password}", highlight=False)
    uvicorn.run(create_app(ws, cookie_secure=False), host=host, port=port, log_level="warning", access_log=False)


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        customers: Annotated[int, typer.Option("--customers", min=100, help="size of the synthetic brokerage")] = 100_000,
        seed: Annotated[int, typer.Option("--seed", help="random seed (same seed, same brokerage)")] = 7,
        as_of: Annotated[str | None, typer.Option("--as-of", help="as-of date (default: last trading day)")] = None,
        data: Annotated[Path | None, typer.Option("--data", help="where to write the generated tables")] = None,
        serve: Annotated[bool | None, typer.Option(
            "--serve/--no-serve", help="end by serving the console on 127.0.0.1 with demo users "
                                      "(default: when run in a terminal)")] = None,
        loop_weeks: Annotated[int, typer.Option("--loop-weeks", min=0, max=26,
                                                help="weeks of the closed loop at the end (0: skip it)")] = 8,
        loop_customers: Annotated[int, typer.Option("--loop-customers", min=100,
                                                    help="customers of the closed loop (at most --customers)")] = 2_000,
    ) -> None:
        """Generate a synthetic brokerage, ingest it, compute account status and write the HTML overview."""
        run_demo(customers, seed, parse_date_option(as_of) if as_of else None, data, loop_weeks=loop_weeks,
                 loop_customers=loop_customers)
        if serve if serve is not None else (sys.stdin.isatty() and sys.stdout.isatty()):
            serve_console(workspace())
