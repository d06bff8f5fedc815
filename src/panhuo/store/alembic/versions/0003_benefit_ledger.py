"""Benefit issuing: the ledger of issued benefits and the per-benefit stock counter.

``benefit_ledger`` has one row per (run, customer, benefit) (its primary key), so a retried batch
issues nothing twice; ``benefit_stock`` has one counter row per benefit (units issued, fen spent),
the row concurrent reservations lock (see ``panhuo.benefits.ledger``). Money is integer fen.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

__all__: list[str] = []

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "benefit_ledger",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("benefit_id", sa.String(64), nullable=False),
        sa.Column("unit_cost_fen", sa.BigInteger, nullable=False),
        sa.Column("issued_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "customer_id", "benefit_id", name="pk_benefit_ledger"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_benefit_ledger_run_id_runs"),
        sa.CheckConstraint("unit_cost_fen >= 0", name="ck_benefit_ledger_unit_cost_fen_non_negative"),
    )
    op.create_index("ix_benefit_ledger_benefit_id", "benefit_ledger", ["benefit_id"])
    op.create_table(
        "benefit_stock",
        sa.Column("benefit_id", sa.String(64), nullable=False),
        sa.Column("issued", sa.Integer, nullable=False),
        sa.Column("spent_fen", sa.BigInteger, nullable=False),
        sa.Column("stock", sa.Integer, nullable=True),
        sa.Column("budget_fen", sa.BigInteger, nullable=True),
        sa.Column("exhausted_at", _TS, nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("benefit_id", name="pk_benefit_stock"),
        sa.CheckConstraint("issued >= 0", name="ck_benefit_stock_issued_non_negative"),
        sa.CheckConstraint("spent_fen >= 0", name="ck_benefit_stock_spent_fen_non_negative"),
    )


def downgrade() -> None:
    op.drop_table("benefit_stock")
    op.drop_index("ix_benefit_ledger_benefit_id", table_name="benefit_ledger")
    op.drop_table("benefit_ledger")
