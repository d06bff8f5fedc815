"""SQLAlchemy 2 models of the operational store (typed ``Mapped[...]`` columns).

Tables: ``users`` + ``user_roles``, ``playbooks`` + ``playbook_versions`` (immutable, one row per
edit), ``audit_log`` (append-only, hash-chained). Times are timezone-aware Asia/Shanghai
(:class:`ShanghaiDateTime`); money, when it arrives, is integer fen. The schema itself is created
by the Alembic migrations in ``panhuo/store/alembic/versions``, never by ``create_all``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "PLAYBOOK_STATES",
    "ROLES",
    "SHANGHAI",
    "AuditEntry",
    "Base",
    "Playbook",
    "PlaybookVersion",
    "ShanghaiDateTime",
    "User",
    "UserRole",
    "now_shanghai",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROLES: tuple[str, ...] = ("viewer", "operator", "compliance", "advisor", "admin")
PLAYBOOK_STATES: tuple[str, ...] = ("draft", "in_review", "approved", "live", "paused", "retired")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def now_shanghai() -> dt.datetime:
    """The current time, aware, in Asia/Shanghai."""
    return dt.datetime.now(SHANGHAI)


class ShanghaiDateTime(TypeDecorator[dt.datetime]):
    """An aware datetime that always reads back in Asia/Shanghai, on SQLite and PostgreSQL alike.

    PostgreSQL stores ``timestamptz``; SQLite stores the Shanghai wall time (no zone), which is
    re-attached on read. Naive datetimes are refused on write.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: the store keeps aware Asia/Shanghai times")
        value = value.astimezone(SHANGHAI)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=SHANGHAI)
        return value.astimezone(SHANGHAI)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: ShanghaiDateTime, dict[str, Any]: JSON}  # noqa: RUF012


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class User(Base):
    """A person who uses panhuo; roles in :class:`UserRole`. Users are disabled, never deleted."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=now_shanghai)
    roles: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin", order_by="UserRole.role"
    )

    @property
    def role_names(self) -> list[str]:
        return sorted(r.role for r in self.roles)

    def has_role(self, *roles: str) -> bool:
        return any(r.role in roles for r in self.roles)

    def __repr__(self) -> str:
        return f"User({self.name!r}, roles={self.role_names}, active={self.active})"


class UserRole(Base):
    """One role of one user: viewer, operator, compliance, advisor or admin."""

    __tablename__ = "user_roles"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    user: Mapped[User] = relationship(back_populates="roles")


class Playbook(Base):
    """A playbook's identity and lifecycle state; its content lives in :class:`PlaybookVersion`.

    ``current_version`` is the latest edit, ``review_version`` the version submitted (and, once
    approved, the one that goes live), ``live_version`` the version runs use while ``state`` is live.
    """

    __tablename__ = "playbooks"
    __table_args__ = (CheckConstraint(_in("state", PLAYBOOK_STATES), name="state"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20), default="draft")
    current_version: Mapped[int] = mapped_column(Integer)
    review_version: Mapped[int | None] = mapped_column(Integer, default=None)
    live_version: Mapped[int | None] = mapped_column(Integer, default=None)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.name"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now_shanghai)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now_shanghai)
    versions: Mapped[list[PlaybookVersion]] = relationship(
        back_populates="playbook", order_by="PlaybookVersion.version", lazy="selectin"
    )

    def version(self, number: int) -> PlaybookVersion | None:
        return next((v for v in self.versions if v.version == number), None)


class PlaybookVersion(Base):
    """One immutable version of a playbook: the YAML as written, its parsed form and its hash."""

    __tablename__ = "playbook_versions"
    __table_args__ = (
        ForeignKeyConstraint(["playbook_id"], ["playbooks.id"], name="fk_playbook_versions_playbook"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    playbook_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    yaml_text: Mapped[str] = mapped_column(Text)
    parsed: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(500), default="")
    author: Mapped[str] = mapped_column(ForeignKey("users.name"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now_shanghai)
    playbook: Mapped[Playbook] = relationship(back_populates="versions")


class AuditEntry(Base):
    """One append-only audit record; ``hash`` chains it to the previous one (see ``store.audit``)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(200))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
