"""The staff console's sessions: one row per sign-in, so that signing out ends the session on the server
(a copied cookie stops working too), not only in the browser that signed out."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base


class ConsoleSessionRow(Base):
    __tablename__ = "console_sessions"

    # The random session id the signed cookie carries (console/session.py).
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_key_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("api_keys.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Signing out deletes the row: a session is live only while its row is here and not expired.
    expires_at: Mapped[datetime]

    __table_args__ = (
        Index("console_sessions_idx_api_key", "api_key_id"),
        Index("console_sessions_idx_expires_at", "expires_at"),
    )
