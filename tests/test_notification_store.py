"""Notification storage on real PostgreSQL: the migrated schema, the catalogue, settings, the log."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.tables import Base

Sessions = async_sessionmaker[AsyncSession]


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_the_migrated_schema_matches_the_models(sessions: Sessions) -> None:
    async with sessions() as session:
        connection = await session.connection()
        assert await connection.run_sync(_diff) == []
