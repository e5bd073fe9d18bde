"""Shared fixtures: one PostgreSQL per run (embedded, or the server of DATABASE_URL), a migrated template
database copied per test, and Temporal's time-skipping and dev servers from the local-stack wheels. Every
Temporal client of the suite encrypts its payloads with the test key ring (tests/codec_fixtures.py)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from devstack.postgres import EmbeddedPostgres, create_database, drop_database
from devstack.temporal import binary, register_search_attributes
from models.search_attributes import ALL_KEYS
from store.db import async_url, create_engine, session_factory
from store.migrate import upgrade_async
from tests.codec_fixtures import CONVERTER, use_test_keys
from tests.temporal_servers import time_skipping_server

use_test_keys()
# The suite traces only where a test asks for it (tests/test_tracing.py), never to a developer's collector.
for _otlp in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
    os.environ.pop(_otlp, None)


def render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[URL]:
    """The PostgreSQL server of this run. With DATABASE_URL set (CI runs the suite against the oldest
    supported PostgreSQL that way) only throwaway databases are created on it, and dropped again."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        yield async_url(configured)
        return
    folder = Path(tempfile.mkdtemp(prefix="callbacks-test-pg-"))
    server = EmbeddedPostgres(folder / "pgdata", delete_on_stop=True)
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
async def template_database(pg_server: URL) -> AsyncIterator[str]:
    """A database migrated to head once per run; each test gets a copy (CREATE DATABASE ... TEMPLATE)."""
    url = await create_database(pg_server, prefix="cbtest_template")
    assert url.database is not None
    try:
        await upgrade_async(render(url))
        yield url.database
    finally:
        await drop_database(pg_server, url.database)


@pytest.fixture
async def database_url(pg_server: URL, template_database: str) -> AsyncIterator[URL]:
    url = await create_database(pg_server, prefix="cbtest", template=template_database)
    try:
        yield url
    finally:
        assert url.database is not None
        await drop_database(pg_server, url.database)


@pytest.fixture
async def sessions(database_url: URL) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url, pool_size=5)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh time-skipping server per test: its clock is global, and a workflow another test left
    waiting (with no worker any more) would stall every later skip."""
    async with time_skipping_server() as env:
        await register_search_attributes(env.client)
        yield env


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=CONVERTER,
        dev_server_existing_path=binary("temporal"),
        search_attributes=ALL_KEYS,
        dev_server_extra_args=["--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000"],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"
