"""Delivery receipts, SMS replies and opt-outs: the tables and the logic the callback endpoint uses.

Registered on the store's :class:`~panhuo.store.models.Base` (``panhuo.store`` imports this module),
created by migration ``0005``:

- ``delivery_events``: one row per (``ref``, ``event``), unique, so a duplicate receipt inserts
  nothing. ``ref`` is the provider id of a receipt (``msg:<outbox id>`` when the provider sent none)
  or ``reply:<hash of phone, text and time>`` of an SMS reply; ``event`` is ``delivered``, ``failed``,
  ``opened``, ``clicked`` or ``reply``; with the outbox id, customer id, the provider's channel and
  time, the time received and the raw body (a reply's phone masked).
- ``opt_outs``: one row per (customer, channel), unique: the first opt-out is kept
  (``source`` e.g. ``sms_reply``, the reply text, its time).
- ``outbox`` has ``receipt_status`` (NULL, ``delivered`` or ``failed``), ``receipt_at`` and an index
  on ``provider_id``. A receipt moves the state forwards only: ``delivered``/``failed`` set it when it
  is still NULL; ``opened``/``clicked`` prove delivery, so they set ``delivered`` over NULL or
  ``failed``; nothing else changes it (a late ``delivered`` after ``opened`` leaves it as it is).

:func:`record_receipt` and :func:`record_reply` do the writing (idempotent, one short transaction
each); :func:`optout_flags` gives the run engine one ``_optout_<channel>`` boolean per channel for
every customer with an opt-out (:mod:`panhuo.runs.guardrails.consent` honours them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    case,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from panhuo.content.masking import mask_phone
from panhuo.store.models import Base, now_shanghai

__all__ = [
    "OPTOUT_CHANNELS",
    "RECEIPT_EVENTS",
    "STOP_WORDS",
    "DeliveryEvent",
    "OptOut",
    "Outcome",
    "PhoneBook",
    "is_stop",
    "normalise_phone",
    "optout_flags",
    "record_receipt",
    "record_reply",
]

log = logging.getLogger(__name__)

RECEIPT_EVENTS: tuple[str, ...] = ("delivered", "failed", "opened", "clicked")
OPTOUT_CHANNELS: tuple[str, ...] = ("app_push", "sms", "wechat", "call")
STOP_WORDS: tuple[str, ...] = ("t", "td", "退订")


def _outbox() -> Table:
    from panhuo.runs.models import OutboxMessage  # late: the run models import the store, which imports us

    return OutboxMessage.__table__


class DeliveryEvent(Base):
    """One receipt or reply, once: unique by (ref, event)."""

    __tablename__ = "delivery_events"
    __table_args__ = (
        UniqueConstraint("ref", "event", name="uq_delivery_events_ref"),
        Index("ix_delivery_events_outbox_id", "outbox_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(160))
    event: Mapped[str] = mapped_column(String(20))
    outbox_id: Mapped[int | None] = mapped_column(Integer, default=None)
    customer_id: Mapped[str | None] = mapped_column(String(64), default=None)
    channel: Mapped[str] = mapped_column(String(20))
    at: Mapped[dt.datetime | None] = mapped_column(default=None)
    received_at: Mapped[dt.datetime] = mapped_column(default=now_shanghai)
    raw: Mapped[str] = mapped_column(Text)


class OptOut(Base):
    """A customer's refusal of a channel (e.g. an SMS reply of T): the next run's consent guardrail honours it."""

    __tablename__ = "opt_outs"
    __table_args__ = (UniqueConstraint("customer_id", "channel", name="uq_opt_outs_customer_channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text, default=None)
    at: Mapped[dt.datetime] = mapped_column(default=now_shanghai)


@dataclass(frozen=True)
class Outcome:
    """What a callback came to: ``status`` (HTTP code), ``reason`` (refusals), what it changed."""

    status: int
    reason: str = ""
    duplicate: bool = False
    receipt_status: str | None = None
    opted_out: tuple[str, ...] = ()

    def body(self) -> dict[str, Any]:
        if self.status >= 400:
            return {"error": self.reason}
        out: dict[str, Any] = {"ok": True, "duplicate": self.duplicate}
        if self.receipt_status is not None:
            out["receipt_status"] = self.receipt_status
        if self.opted_out:
            out["opted_out"] = list(self.opted_out)
        return out


def _insert_ignore(session: Session, model: type, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when the row was inserted."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(model.__table__).values(**values).on_conflict_do_nothing().returning(model.__table__.c.id)
    return session.execute(stmt).first() is not None


def parse_at(value: Any) -> dt.datetime | None:
    """The provider's ``at`` (ISO 8601; a naive time is Shanghai wall time) as an aware time, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    tz = now_shanghai().tzinfo
    return at.replace(tzinfo=tz) if at.tzinfo is None else at.astimezone(tz)


def _raw(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


def record_receipt(session: Session, data: dict[str, Any]) -> Outcome:
    """Record a delivery receipt ``{provider_id, message_id, channel, event, at}`` (validated by the caller).

    404 when neither the provider id nor the message id names an outbox row (or they name different
    rows); otherwise 200, ``duplicate`` when the (ref, event) row was there already (nothing changed).
    """
    outbox = _outbox()
    provider_id = data.get("provider_id") or None
    message_id = data.get("message_id")
    ev = data["event"]
    row = None
    if provider_id:
        row = session.execute(select(outbox.c.id, outbox.c.provider_id, outbox.c.customer_id, outbox.c.channel)
                              .where(outbox.c.provider_id == provider_id).limit(1)).first()
    if row is None and message_id is not None and str(message_id).isdigit():
        # the receipt may come before the worker has stored the provider id: the message id is the outbox id
        row = session.execute(select(outbox.c.id, outbox.c.provider_id, outbox.c.customer_id, outbox.c.channel)
                              .where(outbox.c.id == int(str(message_id)))).first()
        if row is not None and provider_id and row.provider_id not in (None, provider_id):
            return Outcome(404, f"message {message_id} was sent as {row.provider_id}, not {provider_id}")
    if row is None:
        return Outcome(404, f"unknown message: provider id {provider_id!r}, message id {message_id!r}")
    ref = provider_id or f"msg:{row.id}"
    at = parse_at(data.get("at"))
    inserted = _insert_ignore(session, DeliveryEvent, {
        "ref": ref, "event": ev, "outbox_id": row.id, "customer_id": row.customer_id,
        "channel": str(data.get("channel") or row.channel)[:20], "at": at, "received_at": now_shanghai(),
        "raw": _raw(data)})
    if inserted:
        new = "failed" if ev == "failed" else "delivered"
        allowed = [None] if ev in ("delivered", "failed") else [None, "failed"]
        cond = or_(outbox.c.receipt_status.is_(None), outbox.c.receipt_status.in_([a for a in allowed if a]))
        session.execute(update(outbox).where(and_(outbox.c.id == row.id, cond))
                        .values(receipt_status=new, receipt_at=at or now_shanghai()))
    state = session.execute(select(outbox.c.receipt_status).where(outbox.c.id == row.id)).scalar_one()
    return Outcome(200, duplicate=not inserted, receipt_status=state)


def normalise_phone(phone: Any) -> str:
    """The digits of a mainland mobile number, without a ``+86``/``86`` prefix ('' when there are none)."""
    digits = "".join(c for c in str(phone or "") if c.isdigit() and c.isascii())
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


def is_stop(text: Any, stop_words: Iterable[str] = STOP_WORDS) -> bool:
    """Whether a reply's text, stripped and case-folded, is one of ``stop_words`` (T, TD, 退订)."""
    return isinstance(text, str) and text.strip().casefold() in {w.strip().casefold() for w in stop_words}


class PhoneBook:
    """Phone -> customer ids from the warehouse ``customers`` table, re-read when a new load is in force."""

    def __init__(self, warehouse_dir: Path | None) -> None:
        self.warehouse_dir = warehouse_dir
        self._load: str | None = None
        self._index: dict[str, list[str]] = {}

    def customers(self, phone: Any) -> list[str]:
        digits = normalise_phone(phone)
        if not digits or self.warehouse_dir is None:
            return []
        self._refresh()
        return list(self._index.get(digits, ()))

    def _refresh(self) -> None:
        import pyarrow.dataset as ds

        from panhuo.errors import WarehouseError
        from panhuo.warehouse import Warehouse

        try:
            wh = Warehouse(self.warehouse_dir)
            load = wh.current_id
            if load == self._load:
                return
            if load is None or not wh.has_table("customers"):
                self._load, self._index = load, {}
                return
            data = ds.dataset(str(wh.table_path("customers")), format="parquet")
        except WarehouseError:
            return
        index: dict[str, list[str]] = {}
        if "phone" in data.schema.names:
            table = data.to_table(columns=["customer_id", "phone"])
            for cid, phone in zip(table.column("customer_id").to_pylist(), table.column("phone").to_pylist()):
                digits = normalise_phone(phone)
                if digits and cid is not None:
                    index.setdefault(digits, []).append(str(cid))
        self._load, self._index = load, index


def record_reply(session: Session, data: dict[str, Any], customers: Sequence[str],
                 stop_words: Iterable[str] = STOP_WORDS) -> Outcome:
    """Record an SMS reply ``{phone, text, at}`` of ``customers`` (those owning the phone).

    404 when no customer has the phone. A stop word records an SMS opt-out for each of them (the
    first opt-out of a customer is kept); every reply is recorded once as a ``reply`` event.
    """
    phone = normalise_phone(data.get("phone"))
    text = str(data.get("text") or "")
    if not customers:
        return Outcome(404, f"no customer has the phone {mask_phone(phone)}")
    at = parse_at(data.get("at")) or now_shanghai()
    ref = "reply:" + hashlib.sha256(f"{phone}\x1f{text}\x1f{data.get('at')}".encode()).hexdigest()[:40]
    masked = {**data, "phone": mask_phone(phone)}
    inserted = _insert_ignore(session, DeliveryEvent, {
        "ref": ref, "event": "reply", "outbox_id": None, "customer_id": customers[0],
        "channel": "sms", "at": at, "received_at": now_shanghai(), "raw": _raw(masked)})
    opted: list[str] = []
    if is_stop(text, stop_words):
        for cid in dict.fromkeys(customers):
            _insert_ignore(session, OptOut, {"customer_id": cid, "channel": "sms", "source": "sms_reply",
                                             "text": text[:200], "at": at})
            opted.append(cid)
    return Outcome(200, duplicate=not inserted, opted_out=tuple(opted))


def optout_flags(session: Session, channels: Sequence[str] = OPTOUT_CHANNELS) -> Any:
    """``customer_id, _optout_<channel>...`` (booleans) of every customer with an opt-out: one grouped query."""
    import pyarrow as pa

    cols = [func.max(case((OptOut.channel == c, 1), else_=0)).label(c) for c in channels]
    rows = session.execute(select(OptOut.customer_id, *cols).group_by(OptOut.customer_id)).all()
    out: dict[str, Any] = {"customer_id": pa.array([r[0] for r in rows], pa.string())}
    for i, c in enumerate(channels, start=1):
        out[f"_optout_{c}"] = pa.array([bool(r[i]) for r in rows], pa.bool_())
    return pa.table(out)
