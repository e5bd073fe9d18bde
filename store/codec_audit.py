"""The codec server's audit trail (`codec_audit`, models/tables/audit.py): one row per request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import CodecAudit

# `payload_companies` spells the shared key (payloads of no company) as 0: an array cannot hold NULL
# usefully for queries such as `7 = ANY(payload_companies)`.
SHARED = 0


@dataclass(frozen=True)
class CodecAccess:
    """One request to the codec server, as recorded."""

    operation: str
    granted: bool
    api_key_id: int | None = None
    key_prefix: str | None = None
    role: str | None = None
    key_company_id: int | None = None
    via: str | None = None
    namespace: str | None = None
    workflow_id: str | None = None
    payload_companies: Sequence[int | None] = field(default_factory=tuple)
    payload_count: int = 0
    reason: str | None = None
    origin: str | None = None


def _clip(text: str | None, length: int) -> str | None:
    return text[:length] if text is not None else None


async def record(session: AsyncSession, access: CodecAccess) -> None:
    companies = sorted({SHARED if company is None else company for company in access.payload_companies})
    await session.execute(
        insert(CodecAudit).values(
            operation=access.operation,
            granted=access.granted,
            api_key_id=access.api_key_id,
            key_prefix=_clip(access.key_prefix, 16),
            role=access.role,
            key_company_id=access.key_company_id,
            via=access.via,
            namespace=_clip(access.namespace, 255),
            workflow_id=_clip(access.workflow_id, 255),
            payload_companies=companies,
            payload_count=access.payload_count,
            reason=_clip(access.reason, 255),
            origin=_clip(access.origin, 255),
        )
    )


async def recent(session: AsyncSession, limit: int = 100) -> list[CodecAudit]:
    """The latest entries, newest first (for operators and tests)."""
    return list(await session.scalars(select(CodecAudit).order_by(CodecAudit.id.desc()).limit(limit)))
