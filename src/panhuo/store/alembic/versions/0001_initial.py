"""Initial operational store: users and roles, playbooks and their versions, the audit log.

``playbook_versions`` and ``audit_log`` are append-only: database triggers refuse UPDATE and DELETE
on both (SQLite and PostgreSQL), on top of the audit hash chain that detects edits made anyway.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

__all__: list[str] = []

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ROLES = "'viewer', 'operator', 'compliance', 'advisor', 'admin'"
_STATES = "'draft', 'in_review', 'approved', 'live', 'paused', 'retired'"
_TS = sa.DateTime(timezone=True)
APPEND_ONLY = ("playbook_versions", "audit_log")


def _append_only(table: str) -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            f"""CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '{table} is append-only'; END $$"""
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
        )
    else:
        for verb in ("update", "delete"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb} BEFORE {verb.upper()} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def _drop_append_only(table: str) -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
    else:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_table(
        "user_roles",
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "role", name="pk_user_roles"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_user_roles_user_id_users", ondelete="CASCADE"),
        sa.CheckConstraint(f"role IN ({_ROLES})", name="ck_user_roles_role"),
    )
    op.create_table(
        "playbooks",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("current_version", sa.Integer, nullable=False),
        sa.Column("review_version", sa.Integer, nullable=True),
        sa.Column("live_version", sa.Integer, nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_playbooks"),
        sa.ForeignKeyConstraint(["created_by"], ["users.name"], name="fk_playbooks_created_by_users"),
        sa.CheckConstraint(f"state IN ({_STATES})", name="ck_playbooks_state"),
    )
    op.create_table(
        "playbook_versions",
        sa.Column("playbook_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("yaml_text", sa.Text, nullable=False),
        sa.Column("parsed", sa.JSON, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("playbook_id", "version", name="pk_playbook_versions"),
        sa.ForeignKeyConstraint(["playbook_id"], ["playbooks.id"], name="fk_playbook_versions_playbook"),
        sa.ForeignKeyConstraint(["author"], ["users.name"], name="fk_playbook_versions_author_users"),
        sa.CheckConstraint("version >= 1", name="ck_playbook_versions_version_positive"),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("entity_id", sa.String(200), nullable=False),
        sa.Column("before", sa.JSON, nullable=True),
        sa.Column("after", sa.JSON, nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_log"),
        sa.UniqueConstraint("hash", name="uq_audit_log_hash"),
    )
    op.create_index("ix_audit_log_entity", "audit_log", ["entity", "entity_id"])
    for table in APPEND_ONLY:
        _append_only(table)


def downgrade() -> None:
    for table in APPEND_ONLY:
        _drop_append_only(table)
    op.drop_index("ix_audit_log_entity", table_name="audit_log")
    for table in ("audit_log", "playbook_versions", "playbooks", "user_roles", "users"):
        op.drop_table(table)
