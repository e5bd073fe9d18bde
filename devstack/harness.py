"""What the benchmarks (`bench/`) and the chaos runs (`chaos/`) share: a PostgreSQL server for the run
(embedded, or DATABASE_URL's server, where only throwaway databases are made), throwaway databases, the
Temporal dev server tuned as in `devstack/temporal.py`, a payload key per run and free loopback ports.

Everything here cleans up after itself, also when the body raises: a database is dropped, an embedded
server stopped and its folder removed, a dev server stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.engine import URL
from temporalio.converter import DataConverter

from config import Settings
from devstack.postgres import EmbeddedPostgres, create_database, drop_database
from devstack.temporal import register_search_attributes, start_dev_server, wait_for_server
from store.db import async_url
from wiring import data_converter


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the caller binds it soon after)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def codec_env(keys: str) -> dict[str, str]:
    """The environment that gives a child process (worker, API) the run's payload key ring."""
    return {"CALLBACKS_CODEC_KEYS": keys}


def converter_for(keys: str) -> DataConverter:
    """The engine's data converter (wiring.data_converter) with the run's key ring."""
    return data_converter(Settings(codec_keys=SecretStr(keys)))


@contextlib.asynccontextmanager
async def embedded_postgres(prefix: str) -> AsyncIterator[EmbeddedPostgres]:
    """A PostgreSQL server of its own in a temporary folder, stopped and removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}-pg-"))
    server: EmbeddedPostgres | None = None
    try:
        server = EmbeddedPostgres(folder / "pgdata", delete_on_stop=True)
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.asynccontextmanager
async def postgres_server(prefix: str) -> AsyncIterator[URL]:
    """The run's PostgreSQL server: DATABASE_URL's when set (nothing but throwaway databases is made on
    it), else an embedded one of its own."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        yield async_url(configured)
        return
    async with embedded_postgres(prefix) as server:
        yield server.url


@contextlib.asynccontextmanager
async def throwaway_database(server: URL, prefix: str, *, template: str | None = None) -> AsyncIterator[URL]:
    """A fresh database on `server` (a copy of `template` when given), dropped afterwards."""
    url = await create_database(server, prefix=prefix, template=template)
    try:
        yield url
    finally:
        assert url.database is not None
        await drop_database(server, url.database)


@contextlib.asynccontextmanager
async def postgres(prefix: str = "bench") -> AsyncIterator[URL]:
    """A throwaway database on the run's PostgreSQL server."""
    async with postgres_server(prefix) as server, throwaway_database(server, prefix) as url:
        yield url


async def stop_process(process: subprocess.Popen[bytes], seconds: float = 20) -> None:
    """SIGTERM, then SIGKILL when it is still there after `seconds`."""
    if process.poll() is None:
        process.terminate()
    try:
        await asyncio.to_thread(process.wait, seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        await asyncio.to_thread(process.wait, 10)


@contextlib.asynccontextmanager
async def temporal_dev_server(
    *, db_filename: Path | None = None, log: Path | None = None
) -> AsyncIterator[str]:
    """The Temporal dev server on a free port (in memory unless `db_filename`), with the measured tuning
    (transfer poll rate) and our search attributes; yields its address."""
    port = free_port()
    process = start_dev_server(port=port, ui_port=None, db_filename=db_filename, log=log)
    try:
        client = await wait_for_server(f"127.0.0.1:{port}")
        await register_search_attributes(client)
        yield f"127.0.0.1:{port}"
    finally:
        await stop_process(process)
