"""Assignments folded into the decisions: one wide row per candidate instead of two narrow rows.

``decisions`` gains ``grp``, ``arm``, ``propensity`` and ``seed`` (NULL for a candidate blocked before
assignment; a CHECK keeps group, propensity and seed all set or all NULL) and loses its foreign key to
``runs`` (PostgreSQL checks one with a trigger per inserted row: two thirds of the time of writing a
million decisions; the run engine, the only writer, inserts the run before its decisions, and runs are
never deleted). Every ``assignments`` row is copied onto its decision, then the table is dropped;
:class:`panhuo.runs.models.Assignment` and :func:`panhuo.runs.models.assignment_rows` read the
decisions that carry an assignment. An assignment without a decision cannot be folded: the upgrade
then stops with an error naming it, and nothing is changed.

``outbox`` loses ``ix_outbox_status``: ``ix_outbox_due`` (status, send_after) starts with the same
column and serves every read by status, and each message written paid for both.

Downgrade: ``assignments`` is recreated from the decisions that carry an assignment, the columns and
their CHECKs are dropped, the foreign key and ``ix_outbox_status`` are restored.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from panhuo.store.errors import StoreError

__all__: list[str] = []

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COLUMNS = ("grp", "arm", "propensity", "seed")
_GROUPS = "grp IS NULL OR grp IN ('treated', 'holdout', 'global_control')"
_COMPLETE = "(grp IS NULL) = (propensity IS NULL) AND (grp IS NULL) = (seed IS NULL)"
_FK = "fk_decisions_run_id_runs"


def upgrade() -> None:
    conn = op.get_bind()
    orphans = conn.execute(sa.text(
        "SELECT a.run_id, a.customer_id, count(*) OVER () FROM assignments a WHERE NOT EXISTS "
        "(SELECT 1 FROM decisions d WHERE d.run_id = a.run_id AND d.customer_id = a.customer_id) "
        "ORDER BY a.run_id, a.customer_id LIMIT 1")).first()
    if orphans is not None:
        raise StoreError(
            f"migration 0007 cannot fold the assignments into the decisions: {orphans[2]} assignment row(s) have "
            f"no decision, the first run_id={orphans[0]} customer_id={orphans[1]!r}; nothing was changed "
            "(add the missing decisions or delete those assignments, then upgrade again)")
    with op.batch_alter_table("decisions") as b:
        b.add_column(sa.Column("grp", sa.String(20), nullable=True))
        b.add_column(sa.Column("arm", sa.String(64), nullable=True))
        b.add_column(sa.Column("propensity", sa.Float, nullable=True))
        b.add_column(sa.Column("seed", sa.String(64), nullable=True))
        b.drop_constraint(_FK, type_="foreignkey")
        b.create_check_constraint("ck_decisions_grp", _GROUPS)
        b.create_check_constraint("ck_decisions_assignment_complete", _COMPLETE)
    conn.execute(sa.text(
        "UPDATE decisions SET grp = a.grp, arm = a.arm, propensity = a.propensity, seed = a.seed "
        "FROM assignments a WHERE a.run_id = decisions.run_id AND a.customer_id = decisions.customer_id"))
    op.drop_table("assignments")
    op.drop_index("ix_outbox_status", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_status", "outbox", ["status"])
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
    op.execute("INSERT INTO assignments (run_id, customer_id, grp, arm, propensity, seed) "
               "SELECT run_id, customer_id, grp, arm, propensity, seed FROM decisions WHERE grp IS NOT NULL")
    with op.batch_alter_table("decisions") as b:
        b.drop_constraint("ck_decisions_assignment_complete", type_="check")
        b.drop_constraint("ck_decisions_grp", type_="check")
        for col in reversed(_COLUMNS):
            b.drop_column(col)
        b.create_foreign_key(_FK, "runs", ["run_id"], ["id"])
