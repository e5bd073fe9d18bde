"""Alembic is the only way the schema changes: the migrated schema equals the models, and the chain
runs down to nothing and up again."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL

from devstack.postgres import create_database, drop_database
from models.tables import Base
from store.db import create_engine
from store.migrate import downgrade, upgrade


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


async def _diff(url: URL) -> list[Any]:
    engine = create_engine(url, pool_size=1)

    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    try:
        async with engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await engine.dispose()


async def _tables(url: URL) -> set[str]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
            return {name for (name,) in rows.all()}
    finally:
        await engine.dispose()


async def test_migrated_schema_equals_the_models_and_downgrade_upgrade_round_trips(pg_server: URL) -> None:
    url = await create_database(pg_server, prefix="cbtest_migrations")
    assert url.database is not None
    try:
        await asyncio.to_thread(upgrade, _render(url))
        assert await _diff(url) == []
        assert set(Base.metadata.tables) <= await _tables(url)

        await asyncio.to_thread(downgrade, _render(url), "base")
        assert await _tables(url) == {"alembic_version"}

        await asyncio.to_thread(upgrade, _render(url))
        assert await _diff(url) == []
    finally:
        await drop_database(pg_server, url.database)
