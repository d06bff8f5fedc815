"""SQLAlchemy models of the service's authentication state: passwords, API keys, sessions, login attempts.

Registered on the store's :class:`~panhuo.store.models.Base` (``panhuo.store`` imports this module),
created by migration ``0006``. Nothing secret is stored in clear: ``user_passwords.password_hash`` is
an argon2id hash; API keys and session ids are 256-bit random tokens stored as their SHA-256
(``key_hash``, ``id_hash``), so a copy of the database lets nobody log in. ``login_attempts`` holds
every login try (user name as typed, client address, time, success) for throttling.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from panhuo.store.models import Base, now_shanghai

__all__ = ["SCOPES", "ApiKey", "LoginAttempt", "UserPassword", "WebSession"]

SCOPES: tuple[str, ...] = ("read", "write")


class UserPassword(Base):
    """The argon2id hash of one user's password (a user without a row cannot log in)."""

    __tablename__ = "user_passwords"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    changed_at: Mapped[dt.datetime] = mapped_column(default=now_shanghai)


class ApiKey(Base):
    """An integration's key: acts as ``user_id`` within ``scope`` (read or write) until revoked."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("scope IN ('read', 'write')", name="scope"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(10))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=now_shanghai)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class WebSession(Base):
    """A console login: the SHA-256 of the opaque cookie value, its user, CSRF token and expiry."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_user_id", "user_id"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=now_shanghai)
    expires_at: Mapped[dt.datetime] = mapped_column()


class LoginAttempt(Base):
    """One login try: the name as typed, the client address, when, and whether it succeeded."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_who", "user_name", "ip", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_name: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column()
    ok: Mapped[bool] = mapped_column()
