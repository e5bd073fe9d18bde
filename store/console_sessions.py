"""The console's sessions on the server: opened at sign-in, checked on every request, ended at sign-out."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import ConsoleSessionRow


async def open_session(session: AsyncSession, session_id: str, api_key_id: int, expires_at: datetime) -> None:
    session.add(ConsoleSessionRow(id=session_id, api_key_id=api_key_id, expires_at=expires_at))
    await session.flush()


async def is_live(session: AsyncSession, session_id: str, api_key_id: int, now: datetime) -> bool:
    """Whether the session was opened for this key, has not been ended and has not expired."""
    found = await session.scalar(
        select(ConsoleSessionRow.id).where(
            ConsoleSessionRow.id == session_id,
            ConsoleSessionRow.api_key_id == api_key_id,
            ConsoleSessionRow.expires_at > now,
        )
    )
    return found is not None


async def end_session(session: AsyncSession, session_id: str, now: datetime) -> None:
    """Sign-out: the session's row goes (and, on the way, the rows of sessions that have expired)."""
    await session.execute(
        delete(ConsoleSessionRow).where(
            or_(ConsoleSessionRow.id == session_id, ConsoleSessionRow.expires_at <= now)
        )
    )
