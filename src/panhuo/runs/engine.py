"""The run engine: a live playbook's audience through the guardrails and assignment into the outbox.

``run_playbook(ws, playbook_id, as_of, run_key=None)``:

1. the playbook must be live; its live version is the one used (recorded on the run); its trigger
   must fire at ``as_of`` (:mod:`panhuo.runs.triggers`; ``force`` runs it anyway, and says so);
2. candidates from the user element (:mod:`panhuo.runs.candidates`), limited to the customers the
   trigger is about (lifecycle and behaviour triggers), fetched with the guardrail columns; the global
   control flag, the contact counts, the re-entry gaps and the opt-outs are joined on as small Arrow tables;
3. every guardrail over every candidate in one Ibis query (:func:`panhuo.runs.guardrails.apply`); a
   fresh run queries its first ``HEAD_CHUNKS * CHUNK`` candidates (by customer id) first and the rest after they
   are handed to the writer, so the first outbox row does not wait for a query over a million;
4. assignment of those who pass (:mod:`panhuo.runs.assignment`);
5. decisions (one per candidate, carrying the assignment of those who reached it) and outbox rows
   written in customer-id order, one transaction per batch (``runs.batch_size``, default 10k). Global
   control, assignment, rows and content are done per slice of candidates (``CHUNK``) after the
   guardrail query, so the first batch commits soon after it; on PostgreSQL each batch's COPY text is
   encoded as it is built and a writer thread commits batch k while batch k+1 is built, and a batch no
   attempt can have written yet is COPYed straight into the tables (:class:`_Writer`); otherwise every
   insert is ON CONFLICT DO NOTHING.

Idempotent and resumable: the run is identified by (playbook, run key) — default run key: the
as-of date — and every row by a key derived from it, so a rerun after a crash (even SIGKILL) writes
only what is missing; batches already committed are skipped (their decisions are counted first).
A run that raises is marked ``failed`` (with the error) and resumes on the next attempt.
:func:`dry_run` computes the same funnel and writes nothing. :func:`run_due` runs every live
playbook whose trigger fires at ``as_of`` (``panhuo run --due``; the scheduler calls it).
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections import Counter
from collections.abc import Callable, Sequence
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
from panhuo.delivery.events import optout_flags
from panhuo.runs import assignment as asg
from panhuo.runs import guardrails, triggers
from panhuo.runs.candidates import candidate_table
from panhuo.runs.guardrails import frequency, pipl, reentry, send_window
from panhuo.runs.models import Decision, OutboxMessage, Run
from panhuo.runs.outbox import (
    copy_column,
    copy_escape,
    copy_ids,
    copy_text,
    idempotency_keys,
    insert_ignore,
    sqlite_insert_ignore,
    sqlite_time,
)
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


@dataclass
class _Query:
    """The guardrail query's result for every candidate (ordered by customer id) and what :meth:`plan`
    needs to turn a slice of it into a :class:`Plan` (global control and assignment, per slice)."""

    spec: PlaybookSpec
    version: int
    as_of: dt.date
    run_key: str
    send_at: dt.datetime
    inside_window: bool
    settings: Any
    out: pa.Table
    warnings: list[str]
    trigger: str
    ws: Any = None  # Thompson allocation reads the posteriors and tiers of this workspace
    total: int = -1  # candidates in all (``out`` may hold only the first of them: see ``rest``)
    rest: Callable[[], pa.Table] | None = None  # the query of the candidates after ``out``'s, if pending

    def __post_init__(self) -> None:
        if self.total < 0:
            self.total = self.out.num_rows

    def __len__(self) -> int:
        """Candidates in ``out`` so far (all of them once :attr:`pending` is false)."""
        return self.out.num_rows

    @property
    def pending(self) -> bool:
        return self.rest is not None

    def complete(self) -> None:
        """Run the query of the remaining candidates and append them to ``out`` (customer-id order holds:
        they all come after the first part's)."""
        if self.rest is not None:
            rest, self.rest = self.rest, None
            self.out = pa.concat_tables([self.out, rest().cast(self.out.schema)])

    def plan(self, lo: int = 0, hi: int | None = None) -> Plan:
        """The plan of candidates ``lo:hi`` (every per-customer draw depends on that customer alone, so
        a slice is planned exactly as it is inside the whole)."""
        settings, spec = self.settings, self.spec
        hi = len(self) if hi is None else hi
        part = self.out.slice(lo, max(0, hi - lo))
        ids = part.column("customer_id").to_pylist()
        guard = part.column("guardrail").to_pylist()
        reason = part.column("reason").to_pylist()
        # global control is the first guardrail: it overrides whatever the query found (which ran without it)
        for i in np.flatnonzero(asg.global_control(ids, settings.global_salt, settings.global_control_share)):
            guard[i] = reason[i] = "global_control"
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
            allowed = np.column_stack([np.asarray(part.column(f"_arm_ok_{j}").to_numpy(zero_copy_only=False),
                                                  dtype=bool)[ok] for j in range(len(arms))])
            a = asg.assign(pick, spec.id, settings.seed, spec.method.holdout, arms, allowed,
                           probs=asg.customer_probabilities(self.ws, spec, pick, self.as_of))
            group[ok], arm[ok], prop[ok] = a.group, a.arm, a.propensity
        return Plan(spec=spec, version=self.version, as_of=self.as_of, run_key=self.run_key, send_at=self.send_at,
                    inside_window=self.inside_window, ids=ids, channel=part.column("channel").to_pylist(),
                    guardrail=guard, reason=reason, group=group, arm=arm, propensity=prop, seed=settings.seed,
                    warnings=list(self.warnings), trigger=self.trigger)


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
    return _query(ws, store, spec, version, as_of, run_key, now=now, benefit_risk=benefit_risk,
                  tags_file=tags_file, exclude_run=exclude_run, con=con, firing=firing).plan()


def _query(
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
    head: int | None = None,
) -> _Query:
    """Every guardrail over every candidate in one query (global control excepted: its stable hash is
    drawn per slice in :meth:`_Query.plan`, which gives the same first blocking rule since it comes first).

    ``head``: when there are more than ``SPLIT * head`` candidates, run the query over the first ``head``
    (by customer id) only and leave the rest to :meth:`_Query.complete`, so a run writes its first
    batches before the query over a million candidates has run (fewer: one query, cheaper than two). Every rule and joined column depends on the customer alone (a repeated customer
    falls wholly on one side of the split), so the two parts are exactly the whole query's rows.
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
    columns = [*cand_expr.columns, "_gc"]
    with store.session() as s:
        counts = frequency.contact_counts(s, send_at, exclude_run)
        gaps = reentry.entry_gaps(s, spec.id, as_of, cal, exclude_run)
        optouts = optout_flags(s)  # opt-outs (an SMS reply of T): the consent guardrail honours them
    c = frequency.pivot(ibis.memtable(counts)).rename(_cid="customer_id")
    g = ibis.memtable(gaps).rename(_gid="customer_id")
    o = ibis.memtable(optouts).rename(_oid="customer_id")

    def guarded(cands: Any) -> pa.Table:
        t = cands.mutate(_gc=ibis.literal(False))
        t = t.left_join(c, t.customer_id == c._cid).drop("_cid")
        t = t.left_join(g, t.customer_id == g._gid).drop("_gid")
        t = t.left_join(o, t.customer_id == o._oid).drop("_oid")
        t = t.mutate(_dup=ibis.row_number().over(group_by=t.customer_id, order_by=t.customer_id) > 0)
        return con.to_pyarrow(guardrails.apply(t, ctx).order_by("customer_id", "guardrail"))

    total, rest = -1, None
    if head is None:
        out = guarded(cand_expr)
    else:
        ids = cand_expr.select("customer_id")
        total = int(con.execute(ids.count()))
        if total <= SPLIT * head:
            out = guarded(cand_expr)
        else:  # the head-th customer id splits the candidates (a null id sorts last: in the rest)
            kth = con.execute(ids.order_by("customer_id").limit(1, offset=head - 1)).iloc[0, 0]
            out = guarded(cand_expr.filter(cand_expr.customer_id <= kth))

            def rest() -> pa.Table:
                return guarded(cand_expr.filter((cand_expr.customer_id > kth) | cand_expr.customer_id.isnull()))
    warn = pipl.warning(columns, ctx)
    return _Query(spec=spec, version=version, as_of=as_of, run_key=run_key, send_at=send_at, inside_window=inside,
                  settings=settings, out=out, warnings=[warn] if warn else [],
                  trigger=("" if firing.fires else "does not fire: ") + firing.why, ws=ws, total=total, rest=rest)


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
        b = _batch(_Columns(plan), 0, len(plan.ids), None)
        builder.prepare(b.o_ids)
        rejected = _render(builder, b)
        b.refuse(CONTENT, rejected)
        with store.session() as s:
            refused = benefits.estimate(s, b.o_ids, b.benefit, plan.send_at)
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


def _resume_point(store: Store, run_id: int, ids: Sequence[str], decided: int | None = None) -> int:
    """How many leading candidates an earlier attempt of this run already wrote (0 when unsure).

    Batches commit in customer-id order, so the decisions written are a prefix of ``ids`` of length
    ``k`` = their count; the prefix is trusted only if ``ids[k-1]`` has a decision and ``ids[k]`` has
    none (the candidate set may have changed, e.g. tags recomputed). Otherwise the run starts over,
    which is still exact: every insert ignores rows that exist.
    """
    k = _decided(store, run_id) if decided is None else decided
    with store.session() as s:
        if k == 0 or k > len(ids):
            return 0

        def has(cid: str) -> bool:
            q = select(Decision.customer_id).where(Decision.run_id == run_id, Decision.customer_id == cid)
            return s.execute(q).first() is not None

        return k if has(ids[k - 1]) and (k == len(ids) or not has(ids[k])) else 0


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

    def estimate(self, session: Any, customer_ids: Sequence[str], benefit_ids: Sequence[str | None], at: dt.datetime
                 ) -> dict[str, str]:
        """What :meth:`issue` would refuse now, from the stock and budget left (reserves nothing)."""
        from panhuo.benefits.ledger import REASON_BUDGET, REASON_NOT_VALID, REASON_STOCK, usage

        day = at.astimezone(now_shanghai().tzinfo).date()
        refused: dict[str, str] = {}
        wanted: dict[str, list[str]] = {}
        for cid, bid in zip(customer_ids, benefit_ids, strict=True):
            wanted.setdefault(bid, []).append(cid)  # type: ignore[arg-type]
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

    def issue(self, session: Any, run_id: int, customer_ids: Sequence[str], benefit_ids: Sequence[str | None],
              at: dt.datetime) -> dict[str, str]:
        """Reserve the benefits of ``outbox``'s messages; customer id -> reason code of those refused."""
        from panhuo.benefits.ledger import REASON_NOT_VALID, reserve_all

        wanted: dict[str, list[str]] = {}
        for cid, bid in zip(customer_ids, benefit_ids, strict=True):
            wanted.setdefault(bid, []).append(cid)  # type: ignore[arg-type]
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



class _Batch:
    """The rows of one batch, column-wise: decisions (one per candidate, with the assignment of those who
    reached it) and outbox messages; ``blocks`` is their COPY text (PostgreSQL), encoded before the batch
    is handed to the writer thread."""

    __slots__ = ("arm", "benefit", "blocks", "channel", "content", "grp", "guard", "ids", "keys", "o_arm",
                 "o_ids", "o_pos", "outcome", "prop", "reason")

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.guard: list[str] = []
        self.outcome: list[str] = []
        self.reason: list[str] = []
        self.grp: list[str | None] = []  # None: blocked before assignment (no group, arm, propensity, seed)
        self.arm: list[str | None] = []
        self.prop: list[float | None] = []
        self.o_ids: list[str] = []
        self.o_pos: list[int] = []  # the message's decision (index into ids)
        self.channel: list[str] = []
        self.o_arm: list[str | None] = []
        self.benefit: list[str | None] = []
        self.content: list[str | None] = []
        self.keys: list[str] = []
        self.blocks: list[tuple[Any, tuple[str, ...], str]] | None = None

    def refuse(self, guardrail: str, refused: dict[str, str]) -> None:
        """Mark the refused customers' send decisions blocked by ``guardrail``; drop their messages
        (their assignment stays: they were assigned, then not sent)."""
        if not refused:
            return
        self.blocks = None  # encoded before the refusal: stale
        keep = []
        for j, cid in enumerate(self.o_ids):
            why = refused.get(cid)
            if why is None:
                keep.append(j)
                continue
            p = self.o_pos[j]
            if self.outcome[p] in ("send", "deferred"):
                self.guard[p], self.outcome[p], self.reason[p] = guardrail, "blocked", why
        n = len(self.o_ids)
        for name in ("o_ids", "o_pos", "channel", "o_arm", "benefit", "content", "keys"):
            col = getattr(self, name)
            if len(col) == n:
                setattr(self, name, [col[j] for j in keep])
            elif col:  # keys are filled in after the content refusals
                raise AssertionError(name)


class _Columns:
    """One plan's columns as Python lists (converted once, read per batch)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.group = plan.group.tolist()
        self.arm = plan.arm.tolist()
        self.prop = plan.propensity.tolist()
        spec = plan.spec
        default = spec.benefit.items
        self.items = {a.id: ((a.items or None) or default) for a in spec.method.arms or []}
        self.default_item = default[0] if default else None
        if plan.inside_window:
            self.send = ("assignment", "send", "ok")
        else:
            self.send = ("send_window", "deferred", send_window.DEFER_REASON)


def _batch(cols: _Columns, lo: int, hi: int, last: str | None) -> _Batch:
    """Rows of candidates ``lo:hi`` of ``cols``' plan; a customer equal to the one before (``last``, then
    each other) is a repeat in the candidates (blocked by one_per_run): its first row is the one kept."""
    plan, b = cols.plan, _Batch()
    ids, guard, reason, channel = plan.ids, plan.guardrail, plan.reason, plan.channel
    group, arm, prop, items, default_item = cols.group, cols.arm, cols.prop, cols.items, cols.default_item
    send_g, send_o, send_r = cols.send
    d_ids, d_g, d_o, d_r, d_grp, d_arm, d_prop = b.ids, b.guard, b.outcome, b.reason, b.grp, b.arm, b.prop
    for i in range(lo, hi):
        cid = ids[i]
        if cid == last:
            continue
        last = cid
        g, grp = guard[i], group[i]
        if g is not None:
            d_g.append(g)
            d_o.append("blocked")
            d_r.append(reason[i])
        elif grp == "holdout":
            d_g.append("assignment")
            d_o.append("holdout")
            d_r.append("holdout")
        else:
            a = arm[i]
            b.o_pos.append(len(d_ids))
            d_g.append(send_g)
            d_o.append(send_o)
            d_r.append(send_r)
            b.o_ids.append(cid)
            b.channel.append(channel[i] or "")
            b.o_arm.append(a)
            its = items.get(a) if a is not None else None
            b.benefit.append(its[0] if its else default_item)
        d_ids.append(cid)
        if grp:
            d_grp.append(grp)
            d_arm.append(arm[i])
            d_prop.append(prop[i])
        else:
            d_grp.append(None)
            d_arm.append(None)
            d_prop.append(None)
    return b


def _render(builder: Any, b: _Batch) -> dict[str, str]:
    """Fill in each message's content; customer id -> reason code of the messages that must not be sent."""
    if not b.o_ids:
        return {}
    built = builder.build(b.o_ids, b.channel, b.benefit)
    rejected: dict[str, str] = {}
    for cid, content, problem in zip(b.o_ids, built.contents, built.problems, strict=True):
        if problem is not None or content is None:
            rejected[cid] = problem.reason if problem is not None else "content_render_failed"
    b.content = list(built.contents)
    return rejected


DECISION_COLS = ("run_id", "customer_id", "guardrail", "outcome", "reason", "grp", "arm", "propensity", "seed")
OUTBOX_COLS = ("run_id", "playbook_id", "customer_id", "channel", "arm", "benefit_id", "content",
               "idempotency_key", "status", "send_after", "created_at")


class _Writer:
    """Writes batches, one transaction each, every row of a batch or none.

    PostgreSQL: the batch's COPY text is encoded by the thread that built it (:meth:`encode`), so the
    writer thread only sends it. Each batch transaction first takes a transaction-level advisory lock on
    the run, so two attempts of the same run never write at the same time. A batch no earlier attempt can
    have written (this invocation found the run without decisions, or a probe under the lock finds none of
    the batch's customers) is COPYed straight into the tables; otherwise through the staging tables with
    ``ON CONFLICT DO NOTHING``. The fast path runs under a savepoint: should a row exist after all (the
    UNIQUE keys refuse it), the batch falls back to the staging path and so does every later batch.
    SQLite: the driver's executemany, ``ON CONFLICT DO NOTHING``.
    """

    LOCK_CLASS = 0x70616E68  # "panh": advisory lock namespace of the run engine (key: run id)

    def __init__(self, store: Store, run_id: int, plan: _Query, benefits: _Benefits, created: dt.datetime,
                 *, fresh: bool) -> None:
        self.store, self.run_id, self.benefits, self.created = store, run_id, benefits, created
        self.playbook_id, self.seed, self.send_at = plan.spec.id, plan.settings.seed, plan.send_at
        self.pg = store.engine.dialect.name == "postgresql"
        self.fresh = fresh
        self.fast = 0  # batches written by the fast path (for tests)

    def encode(self, b: _Batch) -> None:
        """PostgreSQL: the batch's COPY text, ahead of :meth:`write` (a later refusal encodes it again)."""
        if self.pg:
            b.blocks = self._blocks(b)

    def write(self, b: _Batch) -> int:
        """One batch in one transaction: benefits reserved first, then the rows; returns the messages written."""
        with self.store.session() as s:
            if self.pg:
                s.connection().exec_driver_sql(
                    f"SELECT pg_advisory_xact_lock({self.LOCK_CLASS}, {int(self.run_id)})")
            # benefits first: their counters are the first locks after the run's (no deadlock)
            b.refuse(_Benefits.GUARDRAIL, self.benefits.issue(s, self.run_id, b.o_ids, b.benefit, self.created))
            if self.pg:
                self._pg(s, b)
            else:
                self._sqlite(s, b)
        return len(b.o_ids)

    def _exists(self, s: Any, b: _Batch) -> bool:
        raw = s.connection().connection.driver_connection
        row = raw.execute("SELECT EXISTS (SELECT 1 FROM decisions WHERE run_id = %s AND customer_id = ANY(%s)) "
                          "OR EXISTS (SELECT 1 FROM outbox WHERE idempotency_key = ANY(%s))",
                          (self.run_id, b.ids, b.keys)).fetchone()
        return bool(row[0])

    def _blocks(self, b: _Batch) -> list[tuple[Any, tuple[str, ...], str]]:
        """COPY text of the batch's decisions and outbox rows. A decision's columns after the customer come
        from a small vocabulary (guardrail, outcome, reason, group, arm, propensity): each distinct one is
        encoded once."""
        rid, seed = str(int(self.run_id)), copy_escape(self.seed)
        keys = list(zip(b.guard, b.outcome, b.reason, b.grp, b.arm, b.prop, strict=True))
        tails = {k: "\t".join([*(copy_escape(v) for v in k[:5]), "\\N" if k[5] is None else repr(k[5]),
                                "\\N" if k[3] is None else seed]) for k in set(keys)}
        blocks = [(Decision.__table__, DECISION_COLS, "".join([
            f"{rid}\t{c}\t{tails[k]}\n" for c, k in zip(copy_ids(b.ids), keys, strict=True)]))]
        if b.o_ids:
            pb, send, created = (copy_column([v])[0] for v in (self.playbook_id, self.send_at.isoformat(),
                                                                self.created.isoformat()))
            blocks.append((OutboxMessage.__table__, OUTBOX_COLS, "".join([
                f"{rid}\t{pb}\t{c}\t{ch}\t{a}\t{bid}\t{text}\t{k}\tpending\t{send}\t{created}\n"
                for c, ch, a, bid, text, k in zip(copy_ids(b.o_ids), copy_column(b.channel), copy_column(b.o_arm),
                                                  copy_column(b.benefit), copy_column(b.content), copy_ids(b.keys),
                                                  strict=True)])))
        return blocks

    def _pg(self, s: Any, b: _Batch) -> None:
        blocks = b.blocks if b.blocks is not None else self._blocks(b)
        fast = self.fresh or not self._exists(s, b)
        if fast:
            from psycopg import errors

            raw = s.connection().connection.driver_connection
            raw.execute("SAVEPOINT panhuo_fast_copy")
            try:
                for table, cols, block in blocks:
                    copy_text(s, table, cols, block, ignore=False)  # type: ignore[arg-type]
            except errors.UniqueViolation:  # written by another attempt after all: the exact path
                raw.execute("ROLLBACK TO SAVEPOINT panhuo_fast_copy")
                self.fresh, fast = False, False
            else:
                raw.execute("RELEASE SAVEPOINT panhuo_fast_copy")
                self.fast += 1
        if not fast:
            for table, cols, block in blocks:
                copy_text(s, table, cols, block, ignore=True)  # type: ignore[arg-type]

    def _sqlite(self, s: Any, b: _Batch) -> None:
        rid, seed = self.run_id, self.seed
        sqlite_insert_ignore(s, Decision.__table__, DECISION_COLS, list(zip(  # type: ignore[arg-type]
            [rid] * len(b.ids), b.ids, b.guard, b.outcome, b.reason, b.grp, b.arm, b.prop,
            [None if g is None else seed for g in b.grp], strict=True)))
        n = len(b.o_ids)
        send, created = sqlite_time(self.send_at), sqlite_time(self.created)
        sqlite_insert_ignore(s, OutboxMessage.__table__, OUTBOX_COLS, list(zip(  # type: ignore[arg-type]
            [rid] * n, [self.playbook_id] * n, b.o_ids, b.channel, b.o_arm, b.benefit, b.content, b.keys,
            ["pending"] * n, [send] * n, [created] * n, strict=True)))


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
    """Run a live playbook at ``as_of``: decisions (with the assignments) and outbox rows, idempotent and resumable.

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


class _Totals:
    """The funnel of a run summed over its plan slices (the same numbers as the whole plan's)."""

    def __init__(self, q: _Query) -> None:
        self.q = q
        self.candidates = 0
        self.blocked: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.holdout = 0
        self.sends = 0

    def add(self, plan: Plan) -> None:
        self.candidates += len(plan.ids)
        self.blocked.update(g for g in plan.guardrail if g is not None)
        self.reasons.update(r for r in plan.reason if r is not None)
        self.holdout += int((plan.group == "holdout").sum())
        self.sends += int((plan.group == "treated").sum())

    def report(self, **kw: Any) -> RunReport:
        q = self.q
        funnel = guardrails.funnel(self.candidates, dict(self.blocked))
        funnel += [("holdout", self.holdout), ("sends", self.sends)]
        return RunReport(playbook_id=q.spec.id, version=q.version, as_of=q.as_of, run_key=q.run_key, funnel=funnel,
                         reasons=dict(self.reasons), send_at=q.send_at, deferred=not q.inside_window,
                         warnings=list(q.warnings), trigger=q.trigger, **kw)


class _Pipe:
    """Batches written by a second thread while the next ones are planned and built (PostgreSQL: the
    server inserts batch k while Python builds batch k+1); in order, one transaction each.

    Up to ``depth`` built batches wait for the writer: the engine passes the first query's worth, so
    those batches are all handed over before the query of the remaining candidates runs, and the
    writer has them to write meanwhile."""

    def __init__(self, write: Callable[[_Batch], int], progress: Callable[[int], None], threaded: bool,
                 depth: int = 2) -> None:
        self.write, self.progress = write, progress
        self.written = 0
        self.err: BaseException | None = None
        self.thread: threading.Thread | None = None
        if threaded:
            self.q: queue.Queue[tuple[int, _Batch] | None] = queue.Queue(maxsize=max(1, depth))
            self.thread = threading.Thread(target=self._loop, name="panhuo-run-writer", daemon=True)
            self.thread.start()

    def _one(self, hi: int, b: _Batch) -> None:
        self.written += self.write(b)
        self.progress(hi)

    def _loop(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.err is None:  # after an error the rest is drained, not written
                try:
                    self._one(*item)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                    self.err = exc

    def put(self, hi: int, b: _Batch) -> None:
        if self.thread is None:
            self._one(hi, b)
            return
        while True:
            if self.err is not None:
                raise self.err
            try:
                self.q.put((hi, b), timeout=0.2)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Wait for every batch handed over; raises the writer's error."""
        if self.thread is not None:
            self.q.put(None)
            self.thread.join()
            self.thread = None
        if self.err is not None:
            raise self.err


def _execute(ws: Workspace, store: Store, spec: PlaybookSpec, version: int, as_of: dt.date, key: str, run: Run,
             con: BaseBackend, firing: triggers.Firing, builder: Any, *, actor: str | None, now: dt.datetime | None,
             benefit_risk: dict[str, str] | None, tags_file: Path | None, progress: Progress | None) -> RunReport:
    """Plan the run and write what an earlier attempt did not, batch by batch.

    The guardrail query runs over the first ``HEAD_CHUNKS * CHUNK`` candidates, then (once they are
    handed to the writer, which writes them meanwhile) over the rest; global control, assignment, rows and content are done per slice of ``CHUNK``
    candidates in customer-id order, so the first batch commits soon after the first query whatever the
    number of candidates, and (PostgreSQL) a writer thread commits batch k while batch k+1 is built.
    """
    playbook_id = spec.id
    size = ws.settings.runs.batch_size
    chunk = size * max(1, CHUNK // size)
    decided = _decided(store, run.id)
    # a fresh run queries its first chunks first, so its first batch commits before the rest is queried
    # (and the writer has those chunks to write while it is); a resumed one needs every candidate's place
    # in the order to find where the last attempt stopped
    head = HEAD_CHUNKS * chunk
    q = _query(ws, store, spec, version, as_of, key, now=now, benefit_risk=benefit_risk, tags_file=tags_file,
               exclude_run=run.id, con=con, firing=firing, head=None if decided else head)
    n = q.total
    ids = q.out.column("customer_id")
    done = min(_resume_point(store, run.id, _Ids(ids), decided), n)
    created = now_shanghai()
    benefits = _Benefits(ws, spec, actor or "system")
    q.warnings.extend(benefits.warnings())
    totals = _Totals(q)
    for lo in range(0, done, chunk):  # written by an earlier attempt: counted, not written
        totals.add(q.plan(lo, min(lo + chunk, done)))
    writer = _Writer(store, run.id, q, benefits, created, fresh=decided == 0)
    pipe = _Pipe(writer.write, (lambda hi: progress(hi, n)) if progress else (lambda hi: None),
                 threaded=writer.pg, depth=head // size)
    if progress:
        progress(done, n)
    last: str | None = ids[done - 1].as_py() if done else None
    try:
        clo = done
        while clo < len(q) or q.pending:
            if clo >= len(q):  # the first part is handed over: now the query of the rest
                q.complete()
                continue
            plan = q.plan(clo, min(clo + chunk, len(q)))
            totals.add(plan)
            cols = _Columns(plan)
            builder.prepare([c for c, g, grp in zip(plan.ids, plan.guardrail, cols.group, strict=True)
                             if g is None and grp == "treated"])
            for lo in range(0, len(plan.ids), size):
                hi = min(lo + size, len(plan.ids))
                b = _batch(cols, lo, hi, last)
                last = plan.ids[hi - 1]
                b.refuse(CONTENT, _render(builder, b))
                b.keys = idempotency_keys(playbook_id, b.o_ids, key)
                writer.encode(b)
                pipe.put(clo + hi, b)
            clo += len(plan.ids)
    finally:
        pipe.close()
    report = totals.report(run_id=run.id, written=pipe.written, skipped=done)
    _late_stages(store, run.id, report)
    _finish(store, run, n, report, actor or "system")
    return report


#: candidates planned (global control, assignment, content reads) at a time while a run is written
CHUNK = 50_000
#: a fresh run with more than SPLIT * HEAD_CHUNKS * CHUNK candidates queries its first HEAD_CHUNKS chunks
#: apart from the rest
HEAD_CHUNKS = 2
SPLIT = 4


class _Ids:
    """``ids[i]`` of a pyarrow column, as Python strings (no full conversion)."""

    def __init__(self, col: pa.ChunkedArray) -> None:
        self.col = col

    def __len__(self) -> int:
        return len(self.col)

    def __getitem__(self, i: int) -> str:
        return self.col[i].as_py()


def _decided(store: Store, run_id: int) -> int:
    """How many decisions the run holds (written by earlier attempts)."""
    with store.session() as s:
        return int(s.execute(select(func.count()).select_from(Decision).where(Decision.run_id == run_id)).scalar_one())


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


def _finish(store: Store, run: Run, candidates: int, report: RunReport, actor: str) -> None:
    funnel = dict(report.funnel)
    with store.session() as s:
        row = s.get(Run, run.id)
        assert row is not None
        first = row.state != "done"
        row.state, row.finished_at = "done", now_shanghai()
        row.candidates, row.holdout, row.sends = candidates, funnel["holdout"], funnel["sends"]
        row.funnel = {"stages": [[k, v] for k, v in report.funnel], "reasons": report.reasons,
                      "trigger": report.trigger}
        if first:
            record(s, actor=actor, action="run.finish", entity="run", entity_id=f"{report.playbook_id}/{report.run_key}",
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
