"""The notification outbox: the events of a callback step that someone may have to hear about, written in
the step's own transaction and drained by the worker's dispatcher (activities/notification_outbox.py).

A row holds the event as the workflow saw it, without the customer's contact data and without the event's
payload: the dispatcher reads those from the callback's row and its `callback_events` row, which an erasure
blanks and scrubs, so an erasure in between is honoured. It lives until its notification run
is started; `available_at` is the lease of the dispatcher that claimed it (a crashed one's rows come back).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, company_fk


class NotificationOutbox(Base):
    __tablename__ = "notification_outbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = company_fk()
    callback_request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("callback_requests.id", ondelete="CASCADE")
    )
    # The event's `callback_events.seq` (its payload is read from there).
    seq: Mapped[int] = mapped_column(Integer)
    # The NotifyEventWorkflow's id: deterministic, so a row written twice starts one run.
    workflow_id: Mapped[str] = mapped_column(String(255), unique=True)
    event: Mapped[dict[str, Any]]
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    available_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (Index("notification_outbox_idx_available_at", "available_at"),)
