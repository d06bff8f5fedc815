"""The run engine: a live playbook's audience through the guardrails and assignment into the outbox.

``run_playbook(ws, playbook_id, as_of, run_key=None)``:

1. the playbook must be live; its live version is the one used (recorded on the run); its trigger
   must fire at ``as_of`` (:mod:`panhuo.runs.triggers`; ``force`` runs it anyway, and says so);
2. candidates from the user element (:mod:`panhuo.runs.candidates`), limited to the customers the
   trigger is about (lifecycle and behaviour triggers), fetched with the guardrail columns; the global
   control flag, the contact counts and the re-entry gaps are joined on as small Arrow tables;
3. every guardrail over every candidate in one Ibis query (:func:`panhuo.runs.guardrails.apply`);
4. assignment of those who pass (:mod:`panhuo.runs.assignment`);
5. decisions (one per candidate), assignments and outbox rows written in customer-id order, one
   transaction per batch (``runs.batch_size``, default 10k), every insert ON CONFLICT DO NOTHING.

Idempotent and resumable: the run is identified by (playbook, run key) — default run key: the
as-of date — and every row by a key derived from it, so a rerun after a crash (even SIGKILL) writes
only what is missing; batches already committed are skipped (their decisions are counted first).
A run that raises is marked ``failed`` (with the error) and resumes on the next attempt.
:func:`dry_run` computes the same funnel and writes nothing. :func:`run_due` runs every live
playbook whose trigger fires at ``as_of`` (``panhuo run --due``; the scheduler calls it).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pyarrow as pa
from sqlalchemy import func, select

from panhuo.playbooks.errors import LifecycleError
from panhuo.playbooks.schema import PlaybookSpec
from panhuo.calendar import calendar_for
from panhuo.runs import assignment as asg
from panhuo.runs import guardrails, triggers
from panhuo.runs.candidates import candidate_table
from panhuo.runs.guardrails import frequency, pipl, reentry, send_window
from panhuo.runs.models import Assignment, Decision, OutboxMessage, Run
from panhuo.runs.outbox import idempotency_keys, insert_ignore
from panhuo.store.audit import record
from panhuo.store.db import Store, open_store
from panhuo.store.models import Playbook, PlaybookVersion, now_shanghai

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from panhuo.config import Workspace

__all__ = ["DueResult", "NotDue", "Plan", "RunReport", "dry_run", "due_playbooks", "plan_run", "product_risk",
           "run_due", "run_playbook"]


class NotDue(LifecycleError):
    """The playbook's trigger does not fire at the as-of date (nothing was written)."""

Progress = Callable[[int, int], None]


@dataclass
class Plan:
    """Everything decided for one run, one entry per candidate in customer-id order."""

    spec: PlaybookSpec
    version: int
    as_of: dt.date
    run_key: str
    send_at: dt.datetime
    inside_window: bool
    ids: list[str]
    channel: list[str | None]
    guardrail: list[str | None]
    reason: list[str | None]
    group: np.ndarray  # treated | holdout | global_control | "" (blocked)
    arm: np.ndarray
    propensity: np.ndarray
    seed: str = "0"
    warnings: list[str] = field(default_factory=list)
    trigger: str = ""

    @property
    def blocked(self) -> Counter[str]:
        return Counter(g for g in self.guardrail if g is not None)

    @property
    def reasons(self) -> Counter[str]:
        return Counter(r for r in self.reason if r is not None)

    def funnel(self) -> list[tuple[str, int]]:
        """candidates -> after each guardrail -> holdout -> sends."""
        rows = guardrails.funnel(len(self.ids), dict(self.blocked))
        holdout = int((self.group == "holdout").sum())
        rows.append(("holdout", holdout))
        rows.append(("sends", int((self.group == "treated").sum())))
        return rows


@dataclass
class RunReport:
    """What a run (or dry run) did."""

    playbook_id: str
    version: int
    as_of: dt.date
    run_key: str
    funnel: list[tuple[str, int]]
    reasons: dict[str, int]
    run_id: int | None = None
    written: int = 0  # outbox rows this invocation inserted
    skipped: int = 0  # candidates already written by an earlier, interrupted attempt
    send_at: dt.datetime | None = None
    deferred: bool = False
    warnings: list[str] = field(default_factory=list)
    trigger: str = ""  # why the trigger fired (or, for a dry run or a forced run, why not)


def _load_spec(store: Store, playbook_id: str, *, live_only: bool) -> tuple[PlaybookSpec, int]:
    with store.session() as s:
        pb = s.get(Playbook, playbook_id)
        if pb is None:
            raise LifecycleError(f"no playbook {playbook_id!r} (see 'panhuo playbook list')")
        if pb.state != "live" or pb.live_version is None:
            if live_only:
                raise LifecycleError(f"playbook {playbook_id!r} is {pb.state}, not live: only a live playbook runs "
                                     f"(approve and activate it first); nothing was written")
            number = pb.live_version or pb.current_version
        else:
            number = pb.live_version
        v = s.get(PlaybookVersion, (playbook_id, number))
        assert v is not None
        return PlaybookSpec.model_validate(v.parsed), number


def product_risk(ws: Workspace) -> dict[str, str]:
    """Risk ratings of the product offers: the benefit catalogue's ``product`` items, plus ``runs.benefit_risk``.

    Only products make an offer subject to suitability; content kinds (news, education, ...) carry R1
    in the catalogue but are not product offers. Settings win over the catalogue for the same id.
    """
    ratings: dict[str, str] = {}
    try:
        from panhuo.benefits.catalogue import load_catalogue
    except ImportError:  # the catalogue is optional: settings alone then
        load_catalogue = None  # type: ignore[assignment]
    if load_catalogue is not None:
        ratings = {b.id: f"R{int(b.risk)}" for b in load_catalogue(ws) if b.kind == "product" and b.risk}
    return {**ratings, **ws.settings.runs.benefit_risk}


def plan_run(
    ws: Workspace,
    store: Store,
    spec: PlaybookSpec,
    version: int,
    as_of: dt.date,
    run_key: str,
    *,
    now: dt.datetime | None = None,
    benefit_risk: dict[str, str] | None = None,
    tags_file: Path | None = None,
    exclude_run: int | None = None,
    con: BaseBackend | None = None,
    firing: triggers.Firing | None = None,
) -> Plan:
    """Candidates, guardrails and assignment for one run, set-based; reads the store, writes nothing.

    ``firing`` (from :func:`panhuo.runs.triggers.evaluate` on the same ``con``) limits the candidates
    to the customers the trigger is about; None evaluates the trigger here.
    """
    from panhuo.engines import connect

    settings = ws.settings.runs
    cal = calendar_for(ws)
    now = (now or now_shanghai()).astimezone(now_shanghai().tzinfo)
    send_at, inside = send_window.send_time(spec, now, cal)
    ctx = guardrails.GuardContext(spec=spec, settings=settings, now=now, send_at=send_at, inside_window=inside,
                                  benefit_risk=benefit_risk if benefit_risk is not None else product_risk(ws))
    if con is None:
        con = connect(ws.settings.engine, ws.tmp_dir)
        firing = None
    if firing is None:
        firing = triggers.evaluate(ws, con, spec, as_of, cal)
    cand_expr = candidate_table(ws, con, spec, as_of, tags_file=tags_file)
    if firing.audience is not None:
        cand_expr = cand_expr.semi_join(firing.audience, "customer_id")
    cand = cand_expr.to_pyarrow()
    ids_all = cand.column("customer_id").to_pylist()
    gc = asg.global_control(ids_all, settings.global_salt, settings.global_control_share)
    cand = cand.append_column("_gc", pa.array(gc, pa.bool_()))
    with store.session() as s:
        counts = frequency.contact_counts(s, send_at, exclude_run)
        gaps = reentry.entry_gaps(s, spec.id, as_of, cal, exclude_run)
    t = ibis.memtable(cand)
    c = frequency.pivot(ibis.memtable(counts)).rename(_cid="customer_id")
    t = t.left_join(c, t.customer_id == c._cid).drop("_cid")
    g = ibis.memtable(gaps).rename(_gid="customer_id")
    t = t.left_join(g, t.customer_id == g._gid).drop("_gid")
    t = t.mutate(_dup=ibis.row_number().over(group_by=t.customer_id, order_by=t.customer_id) > 0)
    out = con.to_pyarrow(guardrails.apply(t, ctx).order_by("customer_id", "guardrail"))
    ids = out.column("customer_id").to_pylist()
    guard = out.column("guardrail").to_pylist()
    n = len(ids)
    group = np.full(n, "", dtype=object)
    arm = np.full(n, None, dtype=object)
    prop = np.zeros(n, dtype=np.float64)
    gcm = np.array([g == "global_control" for g in guard], dtype=bool)
    group[gcm], prop[gcm] = "global_control", settings.global_control_share
    ok = np.array([g is None for g in guard], dtype=bool)
    if ok.any():
        pick = [ids[i] for i in np.flatnonzero(ok)]
        arms = asg.arm_probabilities(spec)
        allowed = np.column_stack([np.asarray(out.column(f"_arm_ok_{j}").to_numpy(zero_copy_only=False),
                                              dtype=bool)[ok] for j in range(len(arms))])
        a = asg.assign(pick, spec.id, settings.seed, spec.method.holdout, arms, allowed)
        group[ok], arm[ok], prop[ok] = a.group, a.arm, a.propensity
    warn = pipl.warning(list(cand.column_names), ctx)
    return Plan(spec=spec, version=version, as_of=as_of, run_key=run_key, send_at=send_at, inside_window=inside,
                ids=ids, channel=out.column("channel").to_pylist(), guardrail=guard,
                reason=out.column("reason").to_pylist(), group=group, arm=arm, propensity=prop, seed=settings.seed,
                warnings=[warn] if warn else [], trigger=("" if firing.fires else "does not fire: ") + firing.why)


def _report(plan: Plan, **kw: Any) -> RunReport:
    return RunReport(playbook_id=plan.spec.id, version=plan.version, as_of=plan.as_of, run_key=plan.run_key,
                     funnel=plan.funnel(), reasons=dict(plan.reasons), send_at=plan.send_at,
                     deferred=not plan.inside_window, warnings=list(plan.warnings), trigger=plan.trigger, **kw)


def dry_run(
    ws: Workspace, playbook_id: str, as_of: dt.date, run_key: str | None = None, *, now: dt.datetime | None = None,
    benefit_risk: dict[str, str] | None = None, tags_file: Path | None = None,
) -> RunReport:
    """The funnel a run would produce now (the live version, else the latest); writes nothing."""
    store = open_store(ws)
    try:
        spec, version = _load_spec(store, playbook_id, live_only=False)
        key = run_key or as_of.isoformat()
        with store.session() as s:  # a run already under this key: its own queued messages are not "other" contacts
            old = s.execute(select(Run.id).where(Run.playbook_id == playbook_id, Run.run_key == key)).scalar_one_or_none()
        plan = plan_run(ws, store, spec, version, as_of, key, now=now, benefit_risk=benefit_risk,
                        tags_file=tags_file, exclude_run=old)
        report = _report(plan)
        # what writing would refuse: content rendered for real, benefits against the stock left (estimate)
        builder = _builder(ws, store, spec, version, as_of, None, tags_file)
        benefits = _Benefits(ws, spec, "dry-run")
        report.warnings.extend(benefits.warnings())
        _, _, outbox = _rows(plan, Run(id=0), 0, len(plan.ids), [""] * len(plan.ids), now_shanghai())
        builder.prepare([o["customer_id"] for o in outbox])
        rejected = _render(builder, outbox)
        outbox = [o for o in outbox if o["customer_id"] not in rejected]
        with store.session() as s:
            refused = benefits.estimate(s, outbox, plan.send_at)
        late: Counter[tuple[str, str]] = Counter()
        late.update((CONTENT, r) for r in rejected.values())
        late.update((_Benefits.GUARDRAIL, r) for r in refused.values())
        _add_late_stages(report, [(g, r, n) for (g, r), n in late.items()])
        return report
    finally:
        store.dispose()


def _run_row(store: Store, playbook_id: str, version: int, as_of: dt.date, run_key: str, actor: str) -> Run:
    with store.session() as s:
        insert_ignore(s, Run.__table__, [{  # type: ignore[arg-type]
            "playbook_id": playbook_id, "playbook_version": version, "run_key": run_key, "as_of": as_of,
            "started_at": now_shanghai(), "state": "running", "candidates": 0, "holdout": 0, "sends": 0,
        }])
        run = s.execute(select(Run).where(Run.playbook_id == playbook_id, Run.run_key == run_key)).scalar_one()
        if run.as_of != as_of:
            raise LifecycleError(f"run key {run_key!r} of {playbook_id!r} was used for as-of {run.as_of}, "
                                 f"not {as_of}: pick another --run-key")
        if run.state == "failed":  # the next attempt resumes it
            run.state, run.finished_at = "running", None
        if run.state == "running" and run.finished_at is None:
            record(s, actor=actor, action="run.attempt", entity="run", entity_id=f"{playbook_id}/{run_key}",
                   after={"run_id": run.id, "version": run.playbook_version, "as_of": as_of.isoformat()})
        return run


def _fail(store: Store, run_id: int, entity: str, actor: str, exc: BaseException) -> None:
    """Mark the run failed with the error (kept in ``funnel.error``) and audit it; never raises."""
    try:
        with store.session() as s:
            row = s.get(Run, run_id)
            if row is None or row.state == "done":
                return
            error = f"{type(exc).__name__}: {exc}"[:2000]
            row.state, row.finished_at = "failed", now_shanghai()
            row.funnel = {**(row.funnel or {}), "error": error}
            record(s, actor=actor, action="run.fail", entity="run", entity_id=entity,
                   after={"run_id": run_id, "error": error})
    except Exception:  # noqa: BLE001 - the original error is what the caller must see
        pass


def _resume_point(store: Store, run_id: int, ids: list[str]) -> int:
    """How many leading candidates an earlier attempt of this run already wrote (0 when unsure).

    Batches commit in customer-id order, so the decisions written are a prefix of ``ids`` of length
    ``k`` = their count; the prefix is trusted only if ``ids[k-1]`` has a decision and ``ids[k]`` has
    none (the candidate set may have changed, e.g. tags recomputed). Otherwise the run starts over,
    which is still exact: every insert ignores rows that exist.
    """
    with store.session() as s:
        k = int(s.execute(select(func.count()).select_from(Decision).where(Decision.run_id == run_id)).scalar_one())
        if k == 0 or k > len(ids):
            return 0

        def has(cid: str) -> bool:
            q = select(Decision.customer_id).where(Decision.run_id == run_id, Decision.customer_id == cid)
            return s.execute(q).first() is not None

        return k if has(ids[k - 1]) and (k == len(ids) or not has(ids[k])) else 0


def _rows(plan: Plan, run: Run, lo: int, hi: int, keys: list[str], created: dt.datetime
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    spec, decisions, assigns, outbox = plan.spec, [], [], []
    arms = {a.id: a for a in spec.method.arms or []}
    for i in range(lo, hi):
        cid, grp = plan.ids[i], plan.group[i]
        if plan.guardrail[i] is not None:
            decisions.append({"run_id": run.id, "customer_id": cid, "guardrail": plan.guardrail[i],
                              "outcome": "blocked", "reason": plan.reason[i]})
        elif grp == "holdout":
            decisions.append({"run_id": run.id, "customer_id": cid, "guardrail": "assignment",
                              "outcome": "holdout", "reason": "holdout"})
        else:
            deferred = not plan.inside_window
            decisions.append({"run_id": run.id, "customer_id": cid, "guardrail": "send_window" if deferred
                              else "assignment", "outcome": "deferred" if deferred else "send",
                              "reason": send_window.DEFER_REASON if deferred else "ok"})
            a = arms.get(plan.arm[i] or "")
            items = (a.items if a is not None and a.items else None) or spec.benefit.items
            channel = plan.channel[i] or ""
            outbox.append({"run_id": run.id, "playbook_id": spec.id, "customer_id": cid, "channel": channel,
                           "arm": plan.arm[i], "benefit_id": items[0],
                           "content": None,  # rendered per batch (panhuo.content.messages)
                           "idempotency_key": keys[i - lo], "status": "pending", "send_after": plan.send_at,
                           "created_at": created})
        if grp:
            assigns.append({"run_id": run.id, "customer_id": cid, "grp": grp, "arm": plan.arm[i],
                            "propensity": float(plan.propensity[i]), "seed": plan.seed})
    return decisions, assigns, outbox


CONTENT = "content"
#: refusals decided while the batches are written: a message's content, then its benefit
LATE_STAGES: tuple[str, ...] = (CONTENT, "benefit")


class _Benefits:
    """Issuing the benefits of one run's messages, inside each batch's transaction (:mod:`panhuo.benefits.ledger`).

    A catalogue item with a stock, a budget or a unit cost is reserved (atomic, never overdrawn, also under
    concurrent runs); a free unlimited item is only checked against its validity window (no counter to
    lock); an id the catalogue does not know is issued unmanaged and the run warns once. A customer whose
    benefit is refused gets no message: the decision says ``blocked`` by ``benefit`` with the reason code.
    """

    GUARDRAIL = "benefit"

    def __init__(self, ws: Workspace, spec: PlaybookSpec, actor: str) -> None:
        from panhuo.benefits.catalogue import load_catalogue

        self.catalogue = load_catalogue(ws)
        self.actor = actor
        ids = set(spec.benefit.items) | {i for a in spec.method.arms or [] for i in (a.items or [])}
        self.unknown = sorted(i for i in ids if i not in self.catalogue)

    def warnings(self) -> list[str]:
        if not self.unknown:
            return []
        return [f"benefit(s) {', '.join(self.unknown)} not in the benefit catalogue: issued without stock or "
                "budget control (add them with 'panhuo benefits add')"]

    def estimate(self, session: Any, outbox: list[dict[str, Any]], at: dt.datetime) -> dict[str, str]:
        """What :meth:`issue` would refuse now, from the stock and budget left (reserves nothing)."""
        from panhuo.benefits.ledger import REASON_BUDGET, REASON_NOT_VALID, REASON_STOCK, usage

        day = at.astimezone(now_shanghai().tzinfo).date()
        refused: dict[str, str] = {}
        wanted: dict[str, list[str]] = {}
        for o in outbox:
            wanted.setdefault(o["benefit_id"], []).append(o["customer_id"])
        for bid, ids in wanted.items():
            if bid not in self.catalogue:
                continue
            item = self.catalogue.get(bid)
            if not item.valid.contains(day):
                refused.update(dict.fromkeys(ids, REASON_NOT_VALID))
                continue
            found = usage(session, bid, catalogue=[item])
            left = found[0].units_left if found else None
            if left is not None and left < len(ids):
                u = found[0]
                reason = REASON_STOCK if u.remaining_stock is not None and u.remaining_stock <= left else REASON_BUDGET
                refused.update(dict.fromkeys(ids[left:], reason))
        return refused

    def issue(self, session: Any, run_id: int, outbox: list[dict[str, Any]], at: dt.datetime) -> dict[str, str]:
        """Reserve the benefits of ``outbox``'s messages; customer id -> reason code of those refused."""
        from panhuo.benefits.ledger import REASON_NOT_VALID, reserve_all

        wanted: dict[str, list[str]] = {}
        for o in outbox:
            wanted.setdefault(o["benefit_id"], []).append(o["customer_id"])
        refused: dict[str, str] = {}
        requests = []
        for bid, ids in wanted.items():
            if bid not in self.catalogue:
                continue
            item = self.catalogue.get(bid)
            if item.stock is None and item.budget is None and item.unit_cost_fen == 0:
                if not item.valid.contains(at.astimezone(now_shanghai().tzinfo).date()):
                    refused.update(dict.fromkeys(ids, REASON_NOT_VALID))
                continue
            requests.append((item, ids))
        if requests:
            for res in reserve_all(session, requests, run_id, at=at, actor=self.actor).values():
                refused.update(res.refused)
        return refused



def _block(guardrail: str, refused: dict[str, str], decisions: list[dict[str, Any]], outbox: list[dict[str, Any]]
           ) -> list[dict[str, Any]]:
    """Mark the refused customers' send decisions blocked by ``guardrail``; the outbox without their messages."""
    if not refused:
        return outbox
    for d in decisions:
        reason = refused.get(d["customer_id"])
        if reason is not None and d["outcome"] in ("send", "deferred"):
            d.update(guardrail=guardrail, outcome="blocked", reason=reason)
    return [o for o in outbox if o["customer_id"] not in refused]


def _render(builder: Any, outbox: list[dict[str, Any]]) -> dict[str, str]:
    """Fill in each message's content; customer id -> reason code of the messages that must not be sent."""
    if not outbox:
        return {}
    built = builder.build([o["customer_id"] for o in outbox], [o["channel"] for o in outbox],
                          [o["benefit_id"] for o in outbox])
    rejected: dict[str, str] = {}
    for o, content, problem in zip(outbox, built.contents, built.problems, strict=True):
        if problem is not None or content is None:
            rejected[o["customer_id"]] = problem.reason if problem is not None else "content_render_failed"
        else:
            o["content"] = content
    return rejected


def run_playbook(
    ws: Workspace,
    playbook_id: str,
    as_of: dt.date,
    run_key: str | None = None,
    *,
    actor: str | None = None,
    now: dt.datetime | None = None,
    benefit_risk: dict[str, str] | None = None,
    tags_file: Path | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> RunReport:
    """Run a live playbook at ``as_of``: decisions, assignments and outbox rows, idempotent and resumable.

    The trigger must fire at ``as_of``; ``force`` runs the playbook when it does not (the run's audit
    entry and report say so). A run that raises is marked ``failed``; running it again resumes it.

    Raises
    ------
    LifecycleError
        The playbook does not exist or is not live (nothing is written).
    NotDue
        The trigger does not fire at ``as_of`` and ``force`` is not set (nothing is written).
    """
    from panhuo.engines import connect

    key = run_key or as_of.isoformat()
    store = open_store(ws)
    try:
        spec, version = _load_spec(store, playbook_id, live_only=True)
        with store.session() as s:
            old = s.execute(select(Run).where(Run.playbook_id == playbook_id, Run.run_key == key)).scalar_one_or_none()
            if old is not None:
                version = old.playbook_version  # a resumed run keeps the version it started with
                spec = PlaybookSpec.model_validate(s.get(PlaybookVersion, (playbook_id, version)).parsed)  # type: ignore[union-attr]
        con = connect(ws.settings.engine, ws.tmp_dir)
        firing = triggers.evaluate(ws, con, spec, as_of)
        if not firing.fires and not force:
            raise NotDue(f"playbook {playbook_id!r} is not due at {as_of}: {firing.why}; nothing was written "
                         "(--force runs it anyway)")
        builder = _builder(ws, store, spec, version, as_of, con, tags_file)  # a content error writes nothing
        run = _run_row(store, playbook_id, version, as_of, key, actor or "system")
        try:
            return _execute(ws, store, spec, version, as_of, key, run, con, firing, builder, actor=actor, now=now,
                            benefit_risk=benefit_risk, tags_file=tags_file, progress=progress)
        except BaseException as exc:
            _fail(store, run.id, f"{playbook_id}/{key}", actor or "system", exc)
            raise
    finally:
        store.dispose()


def _builder(ws: Workspace, store: Store, spec: PlaybookSpec, version: int, as_of: dt.date, con: BaseBackend,
             tags_file: Path | None) -> Any:
    """The run's message renderer (:class:`panhuo.content.messages.MessageBuilder`); ContentError when a
    template fails the content review."""
    from panhuo.content.messages import MessageBuilder

    with store.session() as s:
        v = s.get(PlaybookVersion, (spec.id, version))
        text = v.yaml_text if v is not None else None
    return MessageBuilder(ws, spec, as_of, yaml_text=text, file=f"playbook {spec.id} v{version}", con=con,
                          tags_file=tags_file)


def _execute(ws: Workspace, store: Store, spec: PlaybookSpec, version: int, as_of: dt.date, key: str, run: Run,
             con: BaseBackend, firing: triggers.Firing, builder: Any, *, actor: str | None, now: dt.datetime | None,
             benefit_risk: dict[str, str] | None, tags_file: Path | None, progress: Progress | None) -> RunReport:
    """Plan the run and write what an earlier attempt did not, batch by batch."""
    playbook_id = spec.id
    plan = plan_run(ws, store, spec, version, as_of, key, now=now, benefit_risk=benefit_risk,
                    tags_file=tags_file, exclude_run=run.id, con=con, firing=firing)
    done = _resume_point(store, run.id, plan.ids)
    n, size, written = len(plan.ids), ws.settings.runs.batch_size, 0
    created = now_shanghai()
    benefits = _Benefits(ws, spec, actor or "system")
    plan.warnings.extend(benefits.warnings())
    builder.prepare([plan.ids[i] for i in range(min(done, n), n) if plan.guardrail[i] is None
                     and plan.group[i] == "treated"])
    if progress:
        progress(min(done, n), n)
    for lo in range(min(done, n), n, size):
        hi = min(lo + size, n)
        keys = idempotency_keys(playbook_id, plan.ids[lo:hi], key)
        decisions, assigns, outbox = _rows(plan, run, lo, hi, keys, created)
        outbox = _block(CONTENT, _render(builder, outbox), decisions, outbox)
        with store.session() as s:
            # benefits first: their counters are the first locks of the transaction (no deadlock)
            refused = benefits.issue(s, run.id, outbox, created)
            outbox = _block(_Benefits.GUARDRAIL, refused, decisions, outbox)
            insert_ignore(s, Decision.__table__, decisions)  # type: ignore[arg-type]
            insert_ignore(s, Assignment.__table__, assigns)  # type: ignore[arg-type]
            insert_ignore(s, OutboxMessage.__table__, outbox)  # type: ignore[arg-type]
        written += len(outbox)
        if progress:
            progress(hi, n)
    report = _report(plan, run_id=run.id, written=written, skipped=min(done, n))
    _late_stages(store, run.id, report)
    _finish(store, run, plan, report, actor or "system")
    return report


def _late_stages(store: Store, run_id: int, report: RunReport) -> None:
    """Count the refusals decided while writing (content, then benefit; all attempts of the run, from the
    stored decisions) into the report's funnel, between holdout and sends, and its reasons."""
    with store.session() as s:
        rows = s.execute(select(Decision.guardrail, Decision.reason, func.count()).where(
            Decision.run_id == run_id, Decision.guardrail.in_(LATE_STAGES)).group_by(
            Decision.guardrail, Decision.reason)).all()
    _add_late_stages(report, [(str(g), str(r), int(n)) for g, r, n in rows])


def _add_late_stages(report: RunReport, rows: list[tuple[str, str, int]]) -> None:
    """``(guardrail, reason, count)`` of the late stages into the funnel (between holdout and sends) and reasons."""
    by_stage = Counter({str(g): 0 for g in LATE_STAGES})
    reasons = dict(report.reasons)
    for guardrail, reason, count in rows:
        by_stage[str(guardrail)] += int(count)
        reasons[str(reason)] = reasons.get(str(reason), 0) + int(count)
    left = dict(report.funnel)["sends"]
    stages = [(k, v) for k, v in report.funnel if k != "sends"]
    for stage in LATE_STAGES:
        left -= by_stage[stage]
        stages.append((f"after {stage}", left))
    report.funnel = [*stages, ("sends", left)]
    report.reasons = reasons


def _finish(store: Store, run: Run, plan: Plan, report: RunReport, actor: str) -> None:
    funnel = dict(report.funnel)
    with store.session() as s:
        row = s.get(Run, run.id)
        assert row is not None
        first = row.state != "done"
        row.state, row.finished_at = "done", now_shanghai()
        row.candidates, row.holdout, row.sends = len(plan.ids), funnel["holdout"], funnel["sends"]
        row.funnel = {"stages": [[k, v] for k, v in report.funnel], "reasons": report.reasons,
                      "trigger": report.trigger}
        if first:
            record(s, actor=actor, action="run.finish", entity="run", entity_id=f"{plan.spec.id}/{plan.run_key}",
                   after={"run_id": run.id, "funnel": row.funnel})


@dataclass
class DueResult:
    """What ``run --due`` decided for one live playbook: ``state`` is ``ran``, ``not_due``, ``waiting``
    (fires today, but before its ``at`` time), ``done`` (already ran under this run key) or ``failed``."""

    playbook_id: str
    state: str
    why: str
    report: RunReport | None = None


def due_playbooks(ws: Workspace, as_of: dt.date, now: dt.datetime | None = None) -> list[DueResult]:
    """Every live playbook with whether it is due at ``as_of`` (its trigger fires, its ``at`` time has come
    when ``as_of`` is today, and it has not run under the run key ``as_of`` yet); runs nothing."""
    from panhuo.engines import connect
    from panhuo.playbooks.repository import list_playbooks
    from panhuo.playbooks.schema import ScheduleTiming, minutes

    now = (now or now_shanghai()).astimezone(now_shanghai().tzinfo)
    cal = calendar_for(ws)
    con = connect(ws.settings.engine, ws.tmp_dir)
    store = open_store(ws)
    out: list[DueResult] = []
    try:
        with store.session() as s:
            live = [(pb.id, pb.live_version) for pb in list_playbooks(s, state="live")]
            done = {r.playbook_id for r in s.execute(select(Run).where(Run.run_key == as_of.isoformat(),
                                                                        Run.state == "done")).scalars()}
        for pid, _version in sorted(live):
            spec, _ = _load_spec(store, pid, live_only=True)
            if pid in done:
                out.append(DueResult(pid, "done", f"already ran under run key {as_of.isoformat()}"))
                continue
            firing = triggers.evaluate(ws, con, spec, as_of, cal)
            if not firing.fires:
                out.append(DueResult(pid, "not_due", firing.why))
                continue
            timing = spec.timing
            at = timing.at if isinstance(timing, ScheduleTiming) and timing.at else None
            if at and as_of == now.date() and now.hour * 60 + now.minute < minutes(at):
                out.append(DueResult(pid, "waiting", f"{firing.why}; waiting until {at}"))
                continue
            out.append(DueResult(pid, "due", firing.why))
    finally:
        store.dispose()
    return out


def run_due(ws: Workspace, as_of: dt.date, *, actor: str | None = None, now: dt.datetime | None = None,
            progress: Callable[[str, int, int], None] | None = None) -> list[DueResult]:
    """Run every live playbook that is due at ``as_of`` (see :func:`due_playbooks`), one after another.

    A playbook that fails is marked ``failed`` (its run resumes next time) and the others still run.
    ``progress(playbook_id, done, total)`` follows each run.
    """
    results = due_playbooks(ws, as_of, now)
    for r in results:
        if r.state != "due":
            continue
        note = (lambda d, n, _p=r.playbook_id: progress(_p, d, n)) if progress else None
        try:
            r.report = run_playbook(ws, r.playbook_id, as_of, actor=actor, now=now, progress=note)
            r.state = "ran"
        except NotDue as exc:  # the data changed between the check and the run
            r.state, r.why = "not_due", str(exc)
        except Exception as exc:  # noqa: BLE001 - reported per playbook; the run row says failed
            r.state, r.why = "failed", f"{type(exc).__name__}: {exc}"
    return results
