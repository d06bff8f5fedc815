"""SQLAlchemy models of delivery: the outbox's delivery columns, call tasks, the message archive, the lease.

Registered on the store's :class:`~panhuo.store.models.Base` (``panhuo.store`` imports this module),
created by migration ``0004``. The ``outbox`` table is declared by the run engine
(:class:`panhuo.runs.models.OutboxMessage`) with delivery's columns, all NULL or with server defaults
so the run engine's inserts need not know them:

- ``attempts``, ``last_error`` (a dead letter's reason), ``provider_id``, ``sent_at``, ``finished_at``;
- ``claimed_by``, ``lease_until``: a worker's claim; a row whose lease has passed is claimable again.

``status`` goes ``pending`` -> ``sent`` | ``dead`` (dead letter, reason in ``last_error``) |
``tasked`` (a call channel message turned into a :class:`CallTask`) | ``suppressed`` (not sent: the
customer opted out of the channel after the run was planned; ``last_error`` ``opted_out:<channel>``;
``status`` has no CHECK constraint, so this state needed no migration). Every message sent (and every
call task created) is archived in ``message_archive`` with its content, time, channel, customer id,
provider id and a masked recipient. ``delivery_lease`` holds the one worker lease of a SQLite store.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from panhuo.store.models import Base, now_shanghai

__all__ = ["CALL_OUTCOMES", "OUTBOX_STATES", "CallTask", "DeliveryLease", "MessageArchive"]  # and `outbox` (module __getattr__)

OUTBOX_STATES: tuple[str, ...] = ("pending", "sent", "dead", "tasked", "suppressed")
CALL_OUTCOMES: tuple[str, ...] = ("reached", "no_answer", "refused", "interested")

def __getattr__(name: str) -> Table:
    if name == "outbox":  # OutboxMessage's table, imported late: panhuo.runs.models imports the store, which imports us
        from panhuo.runs.models import OutboxMessage

        return OutboxMessage.__table__
    raise AttributeError(name)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class CallTask(Base):
    """A call for the customer's advisor (a call channel message): due on the next trading day, outcome later."""

    __tablename__ = "call_tasks"
    __table_args__ = (
        UniqueConstraint("outbox_id", name="uq_call_tasks_outbox_id"),
        Index("ix_call_tasks_advisor_id", "advisor_id", "due_date"),
        CheckConstraint(f"outcome IS NULL OR {_in('outcome', CALL_OUTCOMES)}", name="outcome"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"))
    playbook_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(64))
    advisor_id: Mapped[str | None] = mapped_column(String(64), default=None)
    due_date: Mapped[dt.date] = mapped_column(Date)
    script: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=now_shanghai)
    outcome: Mapped[str | None] = mapped_column(String(20), default=None)
    outcome_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    outcome_by: Mapped[str | None] = mapped_column(String(64), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)


class MessageArchive(Base):
    """Every message sent (content, time, channel, customer, provider id; the recipient masked)."""

    __tablename__ = "message_archive"
    __table_args__ = (
        UniqueConstraint("outbox_id", name="uq_message_archive_outbox_id"),
        Index("ix_message_archive_customer_id", "customer_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"))
    playbook_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(20))
    provider: Mapped[str] = mapped_column(String(64))
    provider_id: Mapped[str | None] = mapped_column(String(128), default=None)
    recipient: Mapped[str] = mapped_column(String(128))  # masked phone, customer id / openid, advisor
    content: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[dt.datetime] = mapped_column()


class DeliveryLease(Base):
    """The worker lease of a SQLite store (one worker at a time); PostgreSQL workers claim rows instead."""

    __tablename__ = "delivery_lease"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_until: Mapped[dt.datetime | None] = mapped_column(default=None)
