"""Delivery: the outbox's delivery columns and claim index, call tasks, the message archive, the lease row.

``outbox`` gains ``attempts`` (server default 0), ``last_error``, ``provider_id``, ``sent_at``,
``finished_at``, ``claimed_by`` and ``lease_until`` (a worker's claim, reclaimable once it has passed)
and the index ``(status, send_after)`` that due-row claims use. ``call_tasks`` (one per call channel
message, unique by outbox id; outcome NULL until the advisor records one), ``message_archive`` (one
row per message sent, unique by outbox id) and ``delivery_lease`` (the SQLite worker lease).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

__all__: list[str] = []

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_OUTBOX_COLUMNS = ("attempts", "last_error", "provider_id", "sent_at", "finished_at", "claimed_by", "lease_until")


def upgrade() -> None:
    with op.batch_alter_table("outbox") as b:
        b.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")))
        b.add_column(sa.Column("last_error", sa.Text, nullable=True))
        b.add_column(sa.Column("provider_id", sa.String(128), nullable=True))
        b.add_column(sa.Column("sent_at", _TS, nullable=True))
        b.add_column(sa.Column("finished_at", _TS, nullable=True))
        b.add_column(sa.Column("claimed_by", sa.String(64), nullable=True))
        b.add_column(sa.Column("lease_until", _TS, nullable=True))
    op.create_index("ix_outbox_due", "outbox", ["status", "send_after"])
    op.create_table(
        "call_tasks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("outbox_id", sa.Integer, nullable=False),
        sa.Column("playbook_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("advisor_id", sa.String(64), nullable=True),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("script", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=True),
        sa.Column("outcome_at", _TS, nullable=True),
        sa.Column("outcome_by", sa.String(64), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_call_tasks"),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"], name="fk_call_tasks_outbox_id_outbox"),
        sa.UniqueConstraint("outbox_id", name="uq_call_tasks_outbox_id"),
        sa.CheckConstraint("outcome IS NULL OR outcome IN ('reached', 'no_answer', 'refused', 'interested')",
                           name="ck_call_tasks_outcome"),
    )
    op.create_index("ix_call_tasks_advisor_id", "call_tasks", ["advisor_id", "due_date"])
    op.create_table(
        "message_archive",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("outbox_id", sa.Integer, nullable=False),
        sa.Column("playbook_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("provider_id", sa.String(128), nullable=True),
        sa.Column("recipient", sa.String(128), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("sent_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_message_archive"),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"], name="fk_message_archive_outbox_id_outbox"),
        sa.UniqueConstraint("outbox_id", name="uq_message_archive_outbox_id"),
    )
    op.create_index("ix_message_archive_customer_id", "message_archive", ["customer_id", "sent_at"])
    op.create_table(
        "delivery_lease",
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("holder", sa.String(64), nullable=True),
        sa.Column("lease_until", _TS, nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_delivery_lease"),
    )


def downgrade() -> None:
    op.drop_table("delivery_lease")
    op.drop_index("ix_message_archive_customer_id", table_name="message_archive")
    op.drop_table("message_archive")
    op.drop_index("ix_call_tasks_advisor_id", table_name="call_tasks")
    op.drop_table("call_tasks")
    op.drop_index("ix_outbox_due", table_name="outbox")
    with op.batch_alter_table("outbox") as b:
        for col in _OUTBOX_COLUMNS:
            b.drop_column(col)
