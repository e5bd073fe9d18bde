"""The stuck mark of a callback whose workflow cannot get a database step through (models/stuck.py).

A table of its own, without foreign keys: writing the mark must not wait for the callback's row (a lock
held on it may be the very reason the step fails) nor for the rows it points at. The workflow deletes the
mark when the step succeeds, and every successful write of the callback deletes it too
(activities/callbacks.py), so a mark outlives its trouble only for a callback that is never written again.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, one_of

STUCK_STEPS = ("prepare", "candidates", "persist")


class CallbackStuckRow(Base):
    __tablename__ = "callback_stuck"

    callback_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(BigInteger)
    workflow_id: Mapped[str | None] = mapped_column(String(255))
    step: Mapped[str] = mapped_column(String(32))
    since: Mapped[datetime]
    failed_rounds: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(String(200))
    gave_up_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint(one_of("step", STUCK_STEPS), name="step"),
        Index("callback_stuck_idx_company", "company_id"),
    )
