"""SQLAlchemy models of playbook runs: runs, decisions (with their assignments), the outbox and the contact log.

Registered on the store's :class:`~panhuo.store.models.Base` (``panhuo.store`` imports this module),
created by migrations ``0002`` and ``0007``. One ``runs`` row per (playbook, run key); one ``decisions``
row per candidate per run: the deciding guardrail and its reason code, or the holdout/send outcome, and,
for a customer who reached assignment, the assignment on the same row (group, arm, propensity, seed;
NULL otherwise). Until migration ``0007`` the assignments were a table of their own; folding them into
the decision (one wide row per candidate instead of two narrow ones) is what lets a run over a million
candidates write at close to a plain COPY. :class:`Assignment` and :func:`assignment_rows` read them
as before. One ``outbox`` row per message, unique by its idempotency key; ``contact_log`` holds messages
actually sent (written by delivery) and feeds the frequency caps. Money, when it appears, is integer fen.

``decisions.run_id`` carries no foreign key (since ``0007``): PostgreSQL checks a foreign key with a
trigger per inserted row, which cost two thirds of the time of writing a million decisions. Its
integrity comes from the one writer: the run engine inserts the ``runs`` row in its own transaction
before any decision, and runs are never deleted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Select,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from panhuo.store.models import Base, ShanghaiDateTime, now_shanghai

__all__ = [
    "GROUPS", "OUTCOMES", "RUN_STATES", "Assignment", "ContactLog", "Decision", "OutboxMessage", "Run", "assignment_rows",
]

RUN_STATES: tuple[str, ...] = ("running", "done", "failed")
GROUPS: tuple[str, ...] = ("treated", "holdout", "global_control")
OUTCOMES: tuple[str, ...] = ("blocked", "deferred", "holdout", "send")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Run(Base):
    """One run of one playbook version at one as-of date; ``run_key`` makes reruns the same run."""

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("playbook_id", "run_key", name="uq_runs_playbook_id_run_key"),
        CheckConstraint(_in("state", RUN_STATES), name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    playbook_id: Mapped[str] = mapped_column(String(64), ForeignKey("playbooks.id"))
    playbook_version: Mapped[int] = mapped_column(Integer)
    run_key: Mapped[str] = mapped_column(String(100))
    as_of: Mapped[dt.date] = mapped_column(Date)
    started_at: Mapped[dt.datetime] = mapped_column(default=now_shanghai)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    state: Mapped[str] = mapped_column(String(20), default="running")
    candidates: Mapped[int] = mapped_column(Integer, default=0)
    holdout: Mapped[int] = mapped_column(Integer, default=0)
    sends: Mapped[int] = mapped_column(Integer, default=0)
    funnel: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class Decision(Base):
    """The decision on one candidate in one run: the guardrail that decided, its outcome and reason code,
    and the candidate's assignment when they reached it (``grp`` NULL otherwise: blocked before it)."""

    __tablename__ = "decisions"
    __table_args__ = (
        CheckConstraint(_in("outcome", OUTCOMES), name="outcome"),
        CheckConstraint(f"grp IS NULL OR {_in('grp', GROUPS)}", name="grp"),
        CheckConstraint("(grp IS NULL) = (propensity IS NULL) AND (grp IS NULL) = (seed IS NULL)",
                        name="assignment_complete"),
    )

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # runs.id; no foreign key (see above)
    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    guardrail: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(60))
    grp: Mapped[str | None] = mapped_column(String(20), default=None)
    arm: Mapped[str | None] = mapped_column(String(64), default=None)
    propensity: Mapped[float | None] = mapped_column(Float, default=None)
    seed: Mapped[str | None] = mapped_column(String(64), default=None)


_D = Decision.__table__.c
#: the assignments: the decisions of the customers who reached assignment (read-only)
ASSIGNMENTS = (select(_D.run_id, _D.customer_id, _D.grp, _D.arm, _D.propensity, _D.seed)
               .where(_D.grp.is_not(None)).subquery("assignments"))


class Assignment(Base):
    """Group and arm of one customer in one run, with the probability of that assignment (propensity).

    Read-only: mapped onto the decisions that carry an assignment (:data:`ASSIGNMENTS`); the run engine
    writes them as part of the decision.
    """

    __table__ = ASSIGNMENTS
    __mapper_args__ = {"primary_key": [ASSIGNMENTS.c.run_id, ASSIGNMENTS.c.customer_id]}

    run_id: Mapped[int]
    customer_id: Mapped[str]
    grp: Mapped[str]
    arm: Mapped[str | None]
    propensity: Mapped[float]
    seed: Mapped[str]


def assignment_rows(run_ids: list[int]) -> Select[Any]:
    """The assignments of the given runs as rows (run_id, customer_id, grp, arm, propensity, seed).

    The one way other stages (measurement, learning, simulation) read assignments, ordered by run and
    customer, so how the run engine stores them may change underneath without touching its readers
    (since migration 0007 they are columns of the decisions).
    """
    d = _D
    return (select(d.run_id, d.customer_id, d.grp, d.arm, d.propensity, d.seed)
            .where(d.run_id.in_(list(run_ids)), d.grp.is_not(None)).order_by(d.run_id, d.customer_id))


class OutboxMessage(Base):
    """One message to deliver (transactional outbox); ``idempotency_key`` = sha256(playbook, customer, run key).

    Reads by status use ``ix_outbox_due`` (status, send_after); a status-only index was dropped in 0007.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
        Index("ix_outbox_run_id", "run_id"),
        Index("ix_outbox_due", "status", "send_after"),
        Index("ix_outbox_provider_id", "provider_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    playbook_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(20))
    arm: Mapped[str | None] = mapped_column(String(64), default=None)
    benefit_id: Mapped[str | None] = mapped_column(String(64), default=None)
    content: Mapped[str] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    send_after: Mapped[dt.datetime] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=now_shanghai)
    # Delivery's columns (panhuo.delivery.worker, migration 0004), all with server defaults or NULL so the
    # run engine's inserts need not name them: a worker's claim and what happened when it sent.
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text, default=None)  # a dead letter's reason
    provider_id: Mapped[str | None] = mapped_column(String(128), default=None)
    sent_at: Mapped[dt.datetime | None] = mapped_column(ShanghaiDateTime, default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(ShanghaiDateTime, default=None)
    claimed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_until: Mapped[dt.datetime | None] = mapped_column(ShanghaiDateTime, default=None)
    # The provider's receipts (panhuo.delivery.events, migration 0005): NULL, delivered or failed.
    receipt_status: Mapped[str | None] = mapped_column(String(20), default=None)
    receipt_at: Mapped[dt.datetime | None] = mapped_column(ShanghaiDateTime, default=None)


class ContactLog(Base):
    """A message actually sent to a customer (written by delivery); read by the frequency caps."""

    __tablename__ = "contact_log"
    __table_args__ = (Index("ix_contact_log_customer_id", "customer_id", "sent_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(20))
    sent_at: Mapped[dt.datetime] = mapped_column()
    playbook_id: Mapped[str | None] = mapped_column(String(64), default=None)
