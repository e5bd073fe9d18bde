"""Engines and sessions. One engine per process and URL; every query goes through `AsyncSession`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def async_url(url: str | URL) -> URL:
    """Accept the URL forms operators write (`postgres://`, `postgresql://`) and pick the asyncpg driver."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed


def create_engine(url: str | URL, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """`hide_parameters`: a database error's text leaves the values out (a failed write of a callback
    would otherwise carry the customer's name and number into logs and activity failures)."""
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        echo=echo,
        hide_parameters=True,
    )


def create_statement_engine(url: str | URL, *, pool_size: int = 10) -> AsyncEngine:
    """An engine for single statements that commit by themselves (the callback's step write,
    store/callback_writes.py): autocommit, and no pre-ping, which on a transactional connection costs
    three round trips per checkout (BEGIN, ping, ROLLBACK). A connection that died is replaced by the
    pool when its statement fails, and the caller (a retried activity) tries again."""
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        isolation_level="AUTOCOMMIT",
        hide_parameters=True,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session inside one transaction: committed when the block ends, rolled back when it raises."""
    async with sessions() as session, session.begin():
        yield session


async def ping(session: AsyncSession) -> None:
    """The cheapest round trip that proves the database answers (readiness checks)."""
    await session.execute(text("SELECT 1"))
