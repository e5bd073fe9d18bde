"""Policies per company, branch, service or staff member: the rows the hierarchical merge reads."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import (
    CONFIGURABLE_TYPES,
    POLICY_TYPES,
    Base,
    SoftDelete,
    Timestamps,
    company_fk,
    one_of,
)


class PolicyConfiguration(Timestamps, SoftDelete, Base):
    """A policy of one entity. Trigger `policy_configurations_notify` (migration 0002) NOTIFYs channel
    `policy_changed` on every change, so every process's policy cache drops it (store/settings_cache.py)."""

    __tablename__ = "policy_configurations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = company_fk()
    configurable_type: Mapped[str] = mapped_column(String(16))
    configurable_id: Mapped[str] = mapped_column(String(64))
    policy_type: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    is_override: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    overrides_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("policy_configurations.id", ondelete="SET NULL")
    )

    __table_args__ = (
        CheckConstraint(one_of("configurable_type", CONFIGURABLE_TYPES), name="configurable_type"),
        CheckConstraint(one_of("policy_type", POLICY_TYPES), name="policy_type"),
        Index(
            "unique_policy_per_entity",
            "company_id",
            "configurable_type",
            "configurable_id",
            "policy_type",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("policy_configurations_idx_company", "company_id"),
        Index("idx_polymorphic_config", "company_id", "configurable_type", "configurable_id"),
        Index("idx_policy_type", "company_id", "policy_type"),
        Index("idx_override_chain", "is_override", "overrides_id"),
        Index("policy_configurations_idx_overrides_id", "overrides_id"),
    )
