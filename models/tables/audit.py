"""Security audit of the codec server (api/codec_server.py): who asked to decode (or encode) Temporal
payloads, of which companies, for which workflow, when, and whether it was allowed.

Not a tenant table: an attempt by one company's key on another company's payloads must stay on record
when either company is deleted, so the ids are plain values, not foreign keys. No personal data: the
payloads themselves are never stored, only their companies and counts.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Index, Integer, String, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, one_of

CODEC_OPERATIONS = ("decode", "encode")


class CodecAudit(Base):
    __tablename__ = "codec_audit"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(server_default=func.now())
    operation: Mapped[str] = mapped_column(String(16))
    granted: Mapped[bool] = mapped_column(Boolean)
    # Who: the API key (id and public prefix), its role and company (None: super_admin, or no valid key).
    api_key_id: Mapped[int | None] = mapped_column(BigInteger)
    key_prefix: Mapped[str | None] = mapped_column(String(16))
    role: Mapped[str | None] = mapped_column(String(16))
    key_company_id: Mapped[int | None] = mapped_column(BigInteger)
    # How the key was presented: `bearer` (CLI, scripts) or `session` (the console's sign-in cookie).
    via: Mapped[str | None] = mapped_column(String(16))
    # Which: the namespace and workflow the caller named (the Temporal UI sends X-Namespace only).
    namespace: Mapped[str | None] = mapped_column(String(255))
    workflow_id: Mapped[str | None] = mapped_column(String(255))
    # What: the companies of the encrypted payloads asked for (0 stands for the shared key).
    payload_companies: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default="{}")
    payload_count: Mapped[int] = mapped_column(Integer, server_default="0")
    reason: Mapped[str | None] = mapped_column(String(255))
    origin: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        CheckConstraint(one_of("operation", CODEC_OPERATIONS), name="operation"),
        Index("codec_audit_idx_occurred_at", "occurred_at"),
        Index("codec_audit_idx_key_company", "key_company_id", "occurred_at"),
    )
