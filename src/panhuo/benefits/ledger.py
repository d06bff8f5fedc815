"""Issuing benefits: stock and budget reservation in the operational store, atomic and concurrency-safe.

:func:`reserve` runs inside the caller's transaction (the run engine's batch transaction), so a crash
rolls the reservation back together with the outbox rows it pays for::

    with store.session() as s:
        r = reserve(s, item, run_id, customer_ids, at=now)
        ... outbox rows for r.granted only; r.refused[cid] is the reason code of the others ...

How it stays exact:

- one ``benefit_stock`` counter row per benefit (units issued, fen spent) is locked first: created if
  missing with ``INSERT ... ON CONFLICT DO NOTHING``, then read ``SELECT ... FOR UPDATE`` on PostgreSQL;
  on SQLite that first INSERT is a write, so the transaction holds the database's writer lock before it
  reads anything (the store's engine also begins every transaction with ``BEGIN IMMEDIATE``). Concurrent
  reservations of one benefit therefore run one after another, each seeing the previous one's counts;
- customers who already hold a ``benefit_ledger`` row for this (run, benefit) keep it and cost nothing
  again (a retried batch reserves nothing twice; read after the lock, so also across concurrent runs);
- of the others, in the order given, as many are granted as remain under the stock and under the
  budget: ``(budget_fen - spent_fen) // unit_cost_fen`` units, integer fen, never rounded up;
- their ledger rows go in set-based (:func:`panhuo.runs.outbox.insert_ignore`: executemany on SQLite,
  COPY on PostgreSQL) and the counter is bumped by the same count and fen in the same transaction, so
  the counter always equals the ledger's sums (:func:`reconcile` checks);
- the reservation that leaves no unit (stock or budget) writes one audit entry ``benefit.exhausted``;
  later refusals are not logged again until the catalogue raises the limit and it runs out anew.

Reason codes of refused customers: ``benefit_stock_exhausted``, ``benefit_budget_exhausted`` and
``benefit_not_valid`` (``at`` outside the item's validity window, Asia/Shanghai days). Several benefits in
one transaction: one :func:`reserve_all` call, which locks their counters in benefit-id order and takes the
audit log's lock only after the last of them, so concurrent runs cannot deadlock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from panhuo.benefits.models import BenefitStock, IssuedBenefit
from panhuo.benefits.schema import BenefitItem
from panhuo.store.models import SHANGHAI

if TYPE_CHECKING:
    from panhuo.benefits.catalogue import Catalogue
    from panhuo.store.db import Store

__all__ = [
    "EXHAUSTED_ACTION",
    "REASON_BUDGET",
    "REASON_NOT_VALID",
    "REASON_STOCK",
    "Reservation",
    "Usage",
    "allowance",
    "reconcile",
    "reserve",
    "reserve_all",
    "usage",
]

REASON_STOCK = "benefit_stock_exhausted"
REASON_BUDGET = "benefit_budget_exhausted"
REASON_NOT_VALID = "benefit_not_valid"
EXHAUSTED_ACTION = "benefit.exhausted"
_CHUNK = 2000  # customer ids per holder lookup (well under SQLite's and PostgreSQL's bound-parameter limits)


def allowance(
    issued: int, spent_fen: int, *, stock: int | None, budget_fen: int | None, unit_cost_fen: int
) -> tuple[int | None, str | None]:
    """Units that may still be issued (None: unlimited) and the limit that binds (a reason code, or None).

    Stock allows ``stock - issued`` units; the budget ``(budget_fen - spent_fen) // unit_cost_fen``
    (a free benefit is never limited by budget). Neither is ever negative (a catalogue may lower a limit
    below what was already issued). When both bind equally, the stock is named.
    """
    if unit_cost_fen < 0:
        raise ValueError(f"unit cost {unit_cost_fen} fen is negative")
    by_stock = None if stock is None else max(0, stock - issued)
    by_budget = None if budget_fen is None or unit_cost_fen == 0 else max(0, budget_fen - spent_fen) // unit_cost_fen
    if by_stock is None and by_budget is None:
        return None, None
    if by_budget is None or (by_stock is not None and by_stock <= by_budget):
        return by_stock, REASON_STOCK
    return by_budget, REASON_BUDGET


@dataclass(frozen=True)
class Reservation:
    """The outcome of one :func:`reserve` call.

    ``granted``: customers who hold the benefit now, in request order (including those who already
    held it for this run: ``new`` counts only the ones issued by this call); ``refused``: the others,
    customer id -> reason code, in request order; ``remaining_stock`` / ``remaining_budget_fen`` after
    this call (None: unlimited); ``exhausted``: no unit is left; ``logged``: this call wrote the
    ``benefit.exhausted`` audit entry.
    """

    benefit_id: str
    run_id: int
    granted: list[str]
    refused: dict[str, str]
    new: int
    remaining_stock: int | None
    remaining_budget_fen: int | None
    exhausted: bool = False
    logged: bool = False
    spent_fen: int = 0  # fen spent by this call (new x unit cost)
    held: list[str] = field(default_factory=list)  # granted earlier (a retry): part of ``granted``

    @property
    def requested(self) -> int:
        return len(self.granted) + len(self.refused)

    @property
    def refused_ids(self) -> list[str]:
        return list(self.refused)


def _aware(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        raise ValueError("reserve(at=...) needs an aware datetime (Asia/Shanghai); got a naive one")
    return at.astimezone(SHANGHAI)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _lock_counter(session: Session, benefit_id: str, at: dt.datetime) -> tuple[int, int, dt.datetime | None]:
    """Create the counter row if missing and lock it; (issued, spent_fen, exhausted_at) as now committed."""
    dialect = _dialect(session)
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    # a write first: on SQLite it takes the writer lock before the counts are read
    session.execute(insert(BenefitStock).values(benefit_id=benefit_id, issued=0, spent_fen=0, updated_at=at)
                    .on_conflict_do_nothing(index_elements=["benefit_id"]))
    q = select(BenefitStock.issued, BenefitStock.spent_fen, BenefitStock.exhausted_at).where(
        BenefitStock.benefit_id == benefit_id)
    if dialect == "postgresql":
        q = q.with_for_update()
    row = session.execute(q).one()
    return int(row[0]), int(row[1]), row[2]


def _counts(session: Session, benefit_id: str) -> tuple[int, int]:
    """(issued, spent_fen) of a benefit without locking it (0, 0 before its first reservation)."""
    row = session.execute(select(BenefitStock.issued, BenefitStock.spent_fen)
                          .where(BenefitStock.benefit_id == benefit_id)).first()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


def _remaining(item: BenefitItem, issued: int, spent_fen: int) -> tuple[int | None, int | None]:
    return (None if item.stock is None else max(0, item.stock - issued),
            None if item.budget_fen is None else max(0, item.budget_fen - spent_fen))


def _holders(session: Session, run_id: int, benefit_id: str, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` already hold a ledger row for (run, benefit) (PostgreSQL: one array parameter)."""
    if _dialect(session) == "postgresql":
        from sqlalchemy import String, any_, bindparam
        from sqlalchemy.dialects.postgresql import ARRAY

        arr = bindparam("ids", list(ids), type_=ARRAY(String))
        q = select(IssuedBenefit.customer_id).where(IssuedBenefit.run_id == run_id,
                                                    IssuedBenefit.benefit_id == benefit_id,
                                                    IssuedBenefit.customer_id == any_(arr))
        return set(session.execute(q).scalars())
    out: set[str] = set()
    for lo in range(0, len(ids), _CHUNK):
        q = select(IssuedBenefit.customer_id).where(IssuedBenefit.run_id == run_id,
                                                    IssuedBenefit.benefit_id == benefit_id,
                                                    IssuedBenefit.customer_id.in_(ids[lo:lo + _CHUNK]))
        out.update(session.execute(q).scalars())
    return out


def _unique(ids: Sequence[str], benefit_id: str) -> list[str]:
    out = list(ids)
    if len(set(out)) != len(out):
        seen: set[str] = set()
        for c in out:
            if c in seen:
                raise ValueError(f"customer {c!r} appears twice in one reservation of benefit {benefit_id!r}")
            seen.add(c)
    return out


def reserve(
    session: Session,
    item: BenefitItem,
    run_id: int,
    customer_ids: Sequence[str],
    *,
    at: dt.datetime,
    actor: str = "system",
) -> Reservation:
    """Reserve ``item`` for ``customer_ids`` (in this order) in run ``run_id``, inside the caller's transaction.

    Customers already holding it in this run keep it; the others are granted while stock and budget
    last, the rest refused with ``benefit_stock_exhausted`` / ``benefit_budget_exhausted``; all new ones
    are refused with ``benefit_not_valid`` when ``at`` (aware) is outside the validity window. Nothing
    is committed here: the caller's transaction commits or rolls back the ledger rows, the counter and
    the audit entry together.

    Raises
    ------
    ValueError
        ``at`` is naive, or a customer id appears twice in ``customer_ids``.
    """
    audits: list[dict[str, Any]] = []
    out = _reserve(session, item, run_id, customer_ids, at=at, actor=actor, audits=audits)
    _write_audits(session, audits)
    return out


def _write_audits(session: Session, audits: list[dict[str, Any]]) -> None:
    """The ``benefit.exhausted`` entries, written after every counter lock of the transaction is held: the
    audit log's own lock (an advisory lock on PostgreSQL) is always taken last, so a reservation never
    waits for a counter while holding it (no lock-order deadlock with another run's reservation)."""
    if audits:
        from panhuo.store.audit import record

        for entry in audits:
            record(session, **entry)


def _reserve(
    session: Session,
    item: BenefitItem,
    run_id: int,
    customer_ids: Sequence[str],
    *,
    at: dt.datetime,
    actor: str,
    audits: list[dict[str, Any]],
) -> Reservation:
    at = _aware(at)
    ids = _unique(customer_ids, item.id)
    cost = item.unit_cost_fen
    valid = item.valid.contains(at.date())
    if not ids or not valid:  # nothing to issue: no lock, no write
        issued, spent = _counts(session, item.id)
        held_ids = [c for c in ids if c in _holders(session, run_id, item.id, ids)]
        refused = {c: REASON_NOT_VALID for c in ids if c not in set(held_ids)}
        return Reservation(item.id, run_id, held_ids, refused, 0, *_remaining(item, issued, spent), held=held_ids)
    issued, spent, exhausted_at = _lock_counter(session, item.id, at)
    held = _holders(session, run_id, item.id, ids)
    new = [c for c in ids if c not in held]
    limits: dict[str, Any] = {"stock": item.stock, "budget_fen": item.budget_fen, "unit_cost_fen": cost}
    left, binding = allowance(issued, spent, **limits)
    n = len(new) if left is None else min(len(new), left)
    grant, refuse = new[:n], new[n:]
    if grant:
        from panhuo.runs.outbox import insert_ignore

        insert_ignore(session, IssuedBenefit.__table__, [  # type: ignore[arg-type]
            {"run_id": run_id, "customer_id": c, "benefit_id": item.id, "unit_cost_fen": cost, "issued_at": at}
            for c in grant])
    issued_after, spent_after = issued + n, spent + n * cost
    left_after, binding_after = allowance(issued_after, spent_after, **limits)
    exhausted = left_after == 0
    # exhausted already (and logged) only if no unit was left before this call under today's limits too:
    # a catalogue that raised the stock or budget since then makes a new exhaustion worth a new entry
    was_exhausted = exhausted_at is not None and left == 0
    logged = exhausted and not was_exhausted
    mark = (exhausted_at if was_exhausted else at) if exhausted else None
    if grant or mark != exhausted_at:
        session.execute(update(BenefitStock).where(BenefitStock.benefit_id == item.id).values(
            issued=BenefitStock.issued + n, spent_fen=BenefitStock.spent_fen + n * cost, stock=item.stock,
            budget_fen=item.budget_fen, exhausted_at=mark, updated_at=at))
    if logged:
        audits.append({"actor": actor, "action": EXHAUSTED_ACTION, "entity": "benefit", "entity_id": item.id,
                       "after": {"reason": binding_after, "run_id": run_id, "issued": issued_after,
                                 "spent_fen": spent_after, "stock": item.stock, "budget_fen": item.budget_fen,
                                 "unit_cost_fen": cost, "refused_in_this_batch": len(refuse)}})
    held_ids = [c for c in ids if c in held]
    refused = dict.fromkeys(refuse, binding or REASON_STOCK)
    granted = [c for c in ids if c not in refused] if refused else ids
    return Reservation(item.id, run_id, granted, refused, n, *_remaining(item, issued_after, spent_after),
                       exhausted=exhausted, logged=logged, spent_fen=n * cost, held=held_ids)


def reserve_all(
    session: Session,
    requests: Iterable[tuple[BenefitItem, Sequence[str]]],
    run_id: int,
    *,
    at: dt.datetime,
    actor: str = "system",
) -> dict[str, Reservation]:
    """:func:`reserve` for several benefits in one transaction, locking their counters in benefit-id order
    and writing the audit entries after the last lock, so concurrent runs cannot deadlock.

    Use one call per transaction (not several :func:`reserve` calls, and before any other audit entry
    of the transaction): that keeps every transaction's locks in the same global order. Returns
    benefit id -> :class:`Reservation`, in benefit-id order. Raises ValueError when one benefit appears
    twice (merge its customers first).
    """
    reqs = sorted(requests, key=lambda r: r[0].id)
    if len({it.id for it, _ in reqs}) != len(reqs):
        dup = next(a.id for (a, _), (b, _) in zip(reqs, reqs[1:], strict=False) if a.id == b.id)
        raise ValueError(f"benefit {dup!r} appears twice in one reserve_all call")
    out: dict[str, Reservation] = {}
    audits: list[dict[str, Any]] = []
    for item, ids in reqs:
        out[item.id] = _reserve(session, item, run_id, ids, at=at, actor=actor, audits=audits)
    _write_audits(session, audits)
    return out


@dataclass(frozen=True)
class Usage:
    """Issued units and spent fen of one benefit against its limits (None: unlimited).

    The limits come from the catalogue when one is given, else from the last reservation;
    ``in_catalogue`` is None when no catalogue was consulted.
    """

    benefit_id: str
    issued: int
    spent_fen: int
    stock: int | None
    budget_fen: int | None
    unit_cost_fen: int | None
    exhausted_at: dt.datetime | None = None
    in_catalogue: bool | None = None

    @property
    def remaining_stock(self) -> int | None:
        return None if self.stock is None else max(0, self.stock - self.issued)

    @property
    def remaining_budget_fen(self) -> int | None:
        return None if self.budget_fen is None else max(0, self.budget_fen - self.spent_fen)

    @property
    def units_left(self) -> int | None:
        """Units that may still be issued under both limits (None: unlimited, or the unit cost is unknown)."""
        if self.unit_cost_fen is None:
            return self.remaining_stock
        return allowance(self.issued, self.spent_fen, stock=self.stock, budget_fen=self.budget_fen,
                         unit_cost_fen=self.unit_cost_fen)[0]


def _usage(session: Session, benefit_id: str | None, catalogue: Catalogue | Iterable[BenefitItem] | None
           ) -> list[Usage]:
    q = select(BenefitStock)
    if benefit_id is not None:
        q = q.where(BenefitStock.benefit_id == benefit_id)
    counters = {r.benefit_id: r for r in session.execute(q).scalars()}
    items = {} if catalogue is None else {b.id: b for b in catalogue if benefit_id is None or b.id == benefit_id}
    out = []
    for bid in sorted(set(counters) | set(items)):
        c, b = counters.get(bid), items.get(bid)
        issued, spent = (c.issued, c.spent_fen) if c is not None else (0, 0)
        if b is not None:
            out.append(Usage(bid, issued, spent, b.stock, b.budget_fen, b.unit_cost_fen,
                             c.exhausted_at if c is not None else None, True))
        else:
            assert c is not None
            out.append(Usage(bid, issued, spent, c.stock, c.budget_fen, None, c.exhausted_at,
                             None if catalogue is None else False))
    return out


def usage(
    source: Session | Store,
    benefit_id: str | None = None,
    *,
    catalogue: Catalogue | Iterable[BenefitItem] | None = None,
) -> list[Usage]:
    """Per benefit (sorted by id): issued units, spent fen and remaining stock/budget.

    ``source``: a session (read in its transaction) or a store. With ``catalogue``, every catalogue item
    is listed (0 issued when never reserved) with the catalogue's current limits, plus benefits issued
    earlier that the catalogue no longer has; without it, the benefits ever reserved, with the limits
    their last reservation applied. ``benefit_id`` narrows to one benefit ([] when it is unknown).
    """
    if isinstance(source, Session):
        return _usage(source, benefit_id, catalogue)
    with source.session() as s:
        return _usage(s, benefit_id, catalogue)


def reconcile(session: Session) -> dict[str, tuple[int, int, int, int]]:
    """Benefits whose counter differs from the sums of their ledger rows:
    id -> (ledger units, ledger fen, counter units, counter fen). Empty when every counter is exact."""
    from sqlalchemy import func

    sums = {r[0]: (int(r[1]), int(r[2])) for r in session.execute(
        select(IssuedBenefit.benefit_id, func.count(), func.coalesce(func.sum(IssuedBenefit.unit_cost_fen), 0))
        .group_by(IssuedBenefit.benefit_id))}
    counters = {r[0]: (int(r[1]), int(r[2])) for r in session.execute(
        select(BenefitStock.benefit_id, BenefitStock.issued, BenefitStock.spent_fen))}
    out = {}
    for bid in sorted(set(sums) | set(counters)):
        ledger, counter = sums.get(bid, (0, 0)), counters.get(bid, (0, 0))
        if ledger != counter:
            out[bid] = (*ledger, *counter)
    return out
