"""Playbook runs: runs, assignments, decisions, the transactional outbox, the contact log.

``outbox.idempotency_key`` is UNIQUE: the run engine inserts with ON CONFLICT DO NOTHING, so a
rerun of the same run (same playbook and run key) never writes a message twice.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

__all__: list[str] = []

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("playbook_id", sa.String(64), nullable=False),
        sa.Column("playbook_version", sa.Integer, nullable=False),
        sa.Column("run_key", sa.String(100), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("candidates", sa.Integer, nullable=False),
        sa.Column("holdout", sa.Integer, nullable=False),
        sa.Column("sends", sa.Integer, nullable=False),
        sa.Column("funnel", sa.JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.ForeignKeyConstraint(["playbook_id"], ["playbooks.id"], name="fk_runs_playbook_id_playbooks"),
        sa.UniqueConstraint("playbook_id", "run_key", name="uq_runs_playbook_id_run_key"),
        sa.CheckConstraint("state IN ('running', 'done', 'failed')", name="ck_runs_state"),
    )
    op.create_table(
        "assignments",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("grp", sa.String(20), nullable=False),
        sa.Column("arm", sa.String(64), nullable=True),
        sa.Column("propensity", sa.Float, nullable=False),
        sa.Column("seed", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "customer_id", name="pk_assignments"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_assignments_run_id_runs"),
        sa.CheckConstraint("grp IN ('treated', 'holdout', 'global_control')", name="ck_assignments_grp"),
    )
    op.create_table(
        "decisions",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("guardrail", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(60), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "customer_id", name="pk_decisions"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_decisions_run_id_runs"),
        sa.CheckConstraint("outcome IN ('blocked', 'deferred', 'holdout', 'send')", name="ck_decisions_outcome"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("playbook_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("arm", sa.String(64), nullable=True),
        sa.Column("benefit_id", sa.String(64), nullable=True),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("send_after", _TS, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_outbox_run_id_runs"),
        sa.UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
    )
    op.create_index("ix_outbox_run_id", "outbox", ["run_id"])
    op.create_index("ix_outbox_status", "outbox", ["status"])
    op.create_table(
        "contact_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("sent_at", _TS, nullable=False),
        sa.Column("playbook_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_contact_log"),
    )
    op.create_index("ix_contact_log_customer_id", "contact_log", ["customer_id", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_contact_log_customer_id", table_name="contact_log")
    op.drop_index("ix_outbox_status", table_name="outbox")
    op.drop_index("ix_outbox_run_id", table_name="outbox")
    for table in ("contact_log", "outbox", "decisions", "assignments", "runs"):
        op.drop_table(table)
