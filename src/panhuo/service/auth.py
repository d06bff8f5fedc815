"""Passwords, console sessions, the login throttle and API keys: the operations the CLI and the API share.

- Passwords are argon2id hashes (``argon2-cffi`` defaults), at least :data:`MIN_PASSWORD` characters;
  a user sets their own, an admin anyone's (``panhuo users passwd``). The hash is rehashed on login
  when argon2's parameters changed.
- Sessions: a login creates a 256-bit random opaque id (the cookie; only its SHA-256 is stored) and a
  CSRF token, valid :data:`SESSION_HOURS` hours; a new login never reuses an id (no fixation).
- Throttle: after :data:`MAX_FAILURES` failed logins for one (name, client address) within
  :data:`THROTTLE_WINDOW`, further tries are refused (:class:`Throttled`) without checking the password.
  Login attempts older than :data:`ATTEMPTS_KEEP` are deleted (:func:`prune_login_attempts`, run by a login
  at most every :data:`PRUNE_EVERY`), so the table stays bounded however many tries an attacker makes.
- API keys: ``phk_`` + 256 random bits, shown once, stored as SHA-256, scope ``read`` or ``write``,
  revocable; created, listed and revoked by an admin.

Every change (password, login, logout, key created or revoked) is in the audit log; nothing secret is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from panhuo.service.models import SCOPES, ApiKey, LoginAttempt, UserPassword, WebSession
from panhuo.store.audit import record
from panhuo.store.errors import AccessDenied, StoreError
from panhuo.store.models import User, now_shanghai
from panhuo.store.users import acting_user, get_user, require_role

__all__ = [
    "ATTEMPTS_KEEP",
    "KEY_PREFIX",
    "MAX_FAILURES",
    "MIN_PASSWORD",
    "SESSION_HOURS",
    "THROTTLE_WINDOW",
    "Authenticated",
    "LoginFailed",
    "NewApiKey",
    "NewSession",
    "Throttled",
    "create_api_key",
    "end_session",
    "key_user",
    "list_api_keys",
    "login",
    "prune_login_attempts",
    "revoke_api_key",
    "session_user",
    "set_password",
    "token_hash",
]

MIN_PASSWORD = 10
MAX_FAILURES = 5
THROTTLE_WINDOW = dt.timedelta(minutes=15)
SESSION_HOURS = 8
KEY_PREFIX = "phk_"
ATTEMPTS_KEEP = dt.timedelta(days=7)  # failed tries stay this long for review, then go
PRUNE_EVERY = dt.timedelta(minutes=10)
_last_prune: dt.datetime | None = None

_hasher = PasswordHasher()
# Verified when the user is unknown or has no password, so the answer takes as long either way.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class LoginFailed(AccessDenied):
    """Wrong name or password, or a disabled user (one message for all, so names cannot be probed)."""


class Throttled(AccessDenied):
    """Too many failed logins for this name from this address; try again later."""


def token_hash(token: str) -> str:
    """The stored form of a session id or API key: SHA-256 hex (they are 256-bit random, so no salt is needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def set_password(session: Session, name: str, password: str, *, actor: str | None) -> None:
    """Set ``name``'s password: the user themself or an admin. Ends the user's open sessions."""
    who = acting_user(session, actor)
    if who.name != name:
        require_role(who, "admin", action="setting another user's password")
    user = get_user(session, name)
    if user is None:
        raise StoreError(f"unknown user {name!r}")
    if len(password) < MIN_PASSWORD:
        raise StoreError(f"a password needs at least {MIN_PASSWORD} characters")
    if password.strip() != password or not password.isprintable():
        raise StoreError("a password cannot start or end with spaces or hold control characters")
    row = session.get(UserPassword, user.id)
    had = row is not None
    if row is None:
        row = UserPassword(user_id=user.id, password_hash=_hasher.hash(password), changed_at=now_shanghai())
        session.add(row)
    else:
        row.password_hash, row.changed_at = _hasher.hash(password), now_shanghai()
    ended = session.execute(delete(WebSession).where(WebSession.user_id == user.id)).rowcount
    session.flush()
    record(session, actor=who.name, action="user.passwd", entity="user", entity_id=name,
           before={"password_set": had}, after={"password_set": True, "sessions_ended": int(ended or 0)})


@dataclass(frozen=True)
class NewSession:
    """A login's result: the cookie value (never stored), the CSRF token, the user and the expiry."""

    session_id: str
    csrf_token: str
    user: User
    expires_at: dt.datetime


def _recent_failures(session: Session, name: str, ip: str, now: dt.datetime) -> int:
    since = now - THROTTLE_WINDOW
    last_ok = session.execute(
        select(func.max(LoginAttempt.at)).where(LoginAttempt.user_name == name, LoginAttempt.ip == ip,
                                                LoginAttempt.ok.is_(True), LoginAttempt.at >= since)
    ).scalar_one_or_none()
    q = select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.user_name == name, LoginAttempt.ip == ip, LoginAttempt.ok.is_(False),
        LoginAttempt.at >= (max(since, last_ok) if last_ok is not None else since))
    return int(session.execute(q).scalar_one())


def prune_login_attempts(session: Session, *, now: dt.datetime | None = None,
                         keep: dt.timedelta = ATTEMPTS_KEEP) -> int:
    """Delete login attempts older than ``keep`` (never younger than the throttle window); returns how many."""
    now = now or now_shanghai()
    cutoff = now - max(keep, THROTTLE_WINDOW)
    return int(session.execute(delete(LoginAttempt).where(LoginAttempt.at < cutoff)).rowcount or 0)


def login(session: Session, name: str, password: str, *, ip: str, now: dt.datetime | None = None) -> NewSession:
    """Check ``name``'s password and open a session; Throttled or LoginFailed (the attempt is recorded either way).

    The caller commits the session even on LoginFailed so the failed attempt counts (see the API). At most
    every :data:`PRUNE_EVERY` a login also deletes the attempts older than :data:`ATTEMPTS_KEEP`.
    """
    global _last_prune
    now = now or now_shanghai()
    name = name[:64]
    if _last_prune is None or not (dt.timedelta(0) <= now - _last_prune < PRUNE_EVERY):
        prune_login_attempts(session, now=now)
        _last_prune = now
    if _recent_failures(session, name, ip, now) >= MAX_FAILURES:
        raise Throttled(f"too many failed logins; try again in {int(THROTTLE_WINDOW.total_seconds() // 60)} minutes")
    user = get_user(session, name)
    row = session.get(UserPassword, user.id) if user is not None else None
    ok = False
    try:
        ok = _hasher.verify(row.password_hash if row is not None else _DUMMY_HASH, password) and row is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    ok = ok and user is not None and user.active
    session.add(LoginAttempt(user_name=name, ip=ip[:64], at=now, ok=ok))
    session.flush()
    if not ok or user is None or row is None:
        raise LoginFailed("wrong user name or password")
    if _hasher.check_needs_rehash(row.password_hash):
        row.password_hash = _hasher.hash(password)
    sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = now + dt.timedelta(hours=SESSION_HOURS)
    session.execute(delete(WebSession).where(WebSession.user_id == user.id, WebSession.expires_at < now))
    session.add(WebSession(id_hash=token_hash(sid), user_id=user.id, csrf_token=csrf, created_at=now,
                           expires_at=expires))
    session.flush()
    record(session, actor=user.name, action="session.login", entity="user", entity_id=user.name,
           after={"ip": ip[:64], "expires_at": expires.isoformat()})
    return NewSession(sid, csrf, user, expires)


@dataclass(frozen=True)
class Authenticated:
    """Who a request acts as: the user, how (``session`` or ``api_key``), the key's scope, the session's CSRF token."""

    user: User
    via: str
    scope: str = "write"
    csrf_token: str | None = None
    key_id: int | None = None
    expires_at: dt.datetime | None = None  # a session's end

    def csrf_ok(self, given: str | None) -> bool:
        return self.csrf_token is not None and given is not None and hmac.compare_digest(self.csrf_token, given)


def session_user(session: Session, session_id: str, *, now: dt.datetime | None = None) -> Authenticated | None:
    """The active user of an open, unexpired session (None otherwise). Reads only."""
    now = now or now_shanghai()
    ws = session.get(WebSession, token_hash(session_id))
    if ws is None or ws.expires_at <= now:
        return None
    user = session.get(User, ws.user_id)
    if user is None or not user.active:
        return None
    return Authenticated(user=user, via="session", csrf_token=ws.csrf_token, expires_at=ws.expires_at)


def end_session(session: Session, session_id: str) -> bool:
    """Log out: delete the session (True when there was one) and audit it."""
    ws = session.get(WebSession, token_hash(session_id))
    if ws is None:
        return False
    user = session.get(User, ws.user_id)
    session.delete(ws)
    session.flush()
    record(session, actor=user.name if user else "?", action="session.logout", entity="user",
           entity_id=user.name if user else "?")
    return True


@dataclass(frozen=True)
class NewApiKey:
    """A created key: ``secret`` is the full key, shown once and never stored."""

    id: int
    name: str
    user: str
    scope: str
    secret: str


def create_api_key(session: Session, name: str, *, user: str, scope: str, actor: str | None) -> NewApiKey:
    """Create a key acting as ``user`` within ``scope`` (read|write); admin only."""
    admin = acting_user(session, actor)
    require_role(admin, "admin", action="creating an API key")
    if scope not in SCOPES:
        raise StoreError(f"scope {scope!r}: one of {', '.join(SCOPES)}")
    if not name.strip() or len(name) > 100:
        raise StoreError("an API key needs a name of 1-100 characters")
    owner = acting_user(session, user)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(user_id=owner.id, name=name.strip(), scope=scope, prefix=secret[:12], key_hash=token_hash(secret),
                 created_by=admin.name, created_at=now_shanghai())
    session.add(key)
    session.flush()
    record(session, actor=admin.name, action="apikey.create", entity="api_key", entity_id=str(key.id),
           after={"name": key.name, "user": owner.name, "scope": scope, "prefix": key.prefix})
    return NewApiKey(key.id, key.name, owner.name, scope, secret)


def list_api_keys(session: Session) -> list[tuple[ApiKey, str]]:
    """Every key with its user's name (revoked ones too), oldest first."""
    rows = session.execute(select(ApiKey, User.name).join(User, User.id == ApiKey.user_id).order_by(ApiKey.id))
    return [(k, n) for k, n in rows]


def revoke_api_key(session: Session, key_id: int, *, actor: str | None) -> ApiKey:
    """Revoke a key for good; admin only."""
    admin = acting_user(session, actor)
    require_role(admin, "admin", action="revoking an API key")
    key = session.get(ApiKey, key_id)
    if key is None:
        raise StoreError(f"no API key {key_id} (see 'panhuo apikeys list')")
    if key.revoked_at is not None:
        raise StoreError(f"API key {key_id} is already revoked")
    key.revoked_at = now_shanghai()
    session.flush()
    record(session, actor=admin.name, action="apikey.revoke", entity="api_key", entity_id=str(key.id),
           before={"revoked": False}, after={"revoked": True, "name": key.name})
    return key


def key_user(session: Session, secret: str) -> Authenticated | None:
    """The active user of an unrevoked key (None otherwise). Reads only."""
    if not secret.startswith(KEY_PREFIX):
        return None
    key = session.execute(select(ApiKey).where(ApiKey.key_hash == token_hash(secret))).scalar_one_or_none()
    if key is None or key.revoked_at is not None:
        return None
    user = session.get(User, key.user_id)
    if user is None or not user.active:
        return None
    return Authenticated(user=user, via="api_key", scope=key.scope, key_id=key.id)
