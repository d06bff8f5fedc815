"""SQLAlchemy models of benefit issuing: the ledger of issued benefits and the per-benefit stock counter.

Registered on the store's :class:`~panhuo.store.models.Base` (``panhuo.store`` imports this module),
created by migration ``0003``. ``benefit_ledger`` holds one row per (run, customer, benefit) issued,
with the unit cost in fen at issue time; ``benefit_stock`` holds one counter row per benefit (units
issued, fen spent) that concurrent reservations serialise on, plus the catalogue limits seen by the
last reservation and when the benefit was found exhausted. Money is integer fen; times Asia/Shanghai.
The arithmetic and the locking live in :mod:`panhuo.benefits.ledger`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from panhuo.store.models import Base, now_shanghai

__all__ = ["BenefitStock", "IssuedBenefit"]


class IssuedBenefit(Base):
    """One benefit issued to one customer in one run; the primary key makes a retried batch issue nothing twice."""

    __tablename__ = "benefit_ledger"
    __table_args__ = (
        CheckConstraint("unit_cost_fen >= 0", name="unit_cost_fen_non_negative"),
        Index("ix_benefit_ledger_benefit_id", "benefit_id"),
    )

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    benefit_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit_cost_fen: Mapped[int] = mapped_column(BigInteger)
    issued_at: Mapped[dt.datetime] = mapped_column(default=now_shanghai)


class BenefitStock(Base):
    """Units issued and fen spent of one benefit (the sums of its ledger rows); the row reservations lock."""

    __tablename__ = "benefit_stock"
    __table_args__ = (
        CheckConstraint("issued >= 0", name="issued_non_negative"),
        CheckConstraint("spent_fen >= 0", name="spent_fen_non_negative"),
    )

    benefit_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    issued: Mapped[int] = mapped_column(Integer, default=0)
    spent_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    stock: Mapped[int | None] = mapped_column(Integer, default=None)  # the limits the last reservation applied
    budget_fen: Mapped[int | None] = mapped_column(BigInteger, default=None)
    exhausted_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now_shanghai)
