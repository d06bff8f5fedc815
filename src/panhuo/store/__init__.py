"""The operational store: users, playbooks and their versions, the audit log (SQLAlchemy 2 + Alembic).

SQLite by default, PostgreSQL by setting ``store_url`` in ``panhuo.yaml``. :func:`open_store`
migrates the schema on first use; ``panhuo store upgrade|current`` does it by hand.
"""

from __future__ import annotations

from panhuo.runs import models as _run_models  # noqa: F401  (registers the run tables on Base; migration 0002)
from panhuo.benefits import models as _benefit_models  # noqa: F401  (benefit ledger and stock; migration 0003)
from panhuo.delivery import models as _delivery_models  # noqa: F401  (delivery columns, call tasks, archive; 0004)
from panhuo.delivery import events as _delivery_events  # noqa: F401  (receipts, replies, opt-outs; 0005)
from panhuo.service import models as _service_models  # noqa: F401  (passwords, API keys, sessions, logins; 0006)
from panhuo.store.audit import AuditVerification, iter_audit, record, verify_audit
from panhuo.store.db import Store, current, head, make_engine, open_store, upgrade
from panhuo.store.errors import AccessDenied, StoreError
from panhuo.store.models import (
    ROLES,
    AuditEntry,
    Base,
    Playbook,
    PlaybookVersion,
    User,
    UserRole,
)
from panhuo.store.users import acting_user, add_user, disable_user, get_user, list_users, require_role

__all__ = [
    "ROLES",
    "AccessDenied",
    "AuditEntry",
    "AuditVerification",
    "Base",
    "Playbook",
    "PlaybookVersion",
    "Store",
    "StoreError",
    "User",
    "UserRole",
    "acting_user",
    "add_user",
    "current",
    "disable_user",
    "get_user",
    "head",
    "iter_audit",
    "list_users",
    "make_engine",
    "open_store",
    "record",
    "require_role",
    "upgrade",
    "verify_audit",
]
