"""Callbacks: delivery receipts and replies (``delivery_events``), opt-outs, the outbox's receipt state.

``delivery_events`` holds one row per (ref, event) — unique, so a duplicate receipt inserts nothing —
with the outbox id, customer id, channel, the provider's time, the time received and the raw body.
``opt_outs`` holds one row per (customer, channel) (source, text, time). ``outbox`` gains
``receipt_status`` (NULL, ``delivered``, ``failed``), ``receipt_at`` and an index on ``provider_id``
(receipts are looked up by it). See :mod:`panhuo.delivery.events`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

__all__: list[str] = []

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("outbox") as b:
        b.add_column(sa.Column("receipt_status", sa.String(20), nullable=True))
        b.add_column(sa.Column("receipt_at", _TS, nullable=True))
    op.create_index("ix_outbox_provider_id", "outbox", ["provider_id"])
    op.create_table(
        "delivery_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ref", sa.String(160), nullable=False),
        sa.Column("event", sa.String(20), nullable=False),
        sa.Column("outbox_id", sa.Integer, nullable=True),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("at", _TS, nullable=True),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_events"),
        sa.UniqueConstraint("ref", "event", name="uq_delivery_events_ref"),
    )
    op.create_index("ix_delivery_events_outbox_id", "delivery_events", ["outbox_id"])
    op.create_table(
        "opt_outs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("text", sa.Text, nullable=True),
        sa.Column("at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_opt_outs"),
        sa.UniqueConstraint("customer_id", "channel", name="uq_opt_outs_customer_channel"),
    )


def downgrade() -> None:
    op.drop_table("opt_outs")
    op.drop_index("ix_delivery_events_outbox_id", table_name="delivery_events")
    op.drop_table("delivery_events")
    op.drop_index("ix_outbox_provider_id", table_name="outbox")
    with op.batch_alter_table("outbox") as b:
        b.drop_column("receipt_at")
        b.drop_column("receipt_status")
