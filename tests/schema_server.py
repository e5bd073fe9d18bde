"""The real API on loopback in a thread of its own, for Schemathesis: its calls are synchronous
(`requests`), so the app, its database engine, Temporal's time-skipping server and the in-process worker
run in another event loop than the one the calls would block.

`fuzz_key` is an admin key of the tenant `tenant`. Its id is moved far past the ids Schemathesis
generates, so a generated `DELETE /v1/keys/{id}` never names it (a key cannot revoke itself anyway: 409).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.engine import URL
from temporalio.testing import WorkflowEnvironment

from devstack.calcom_fake import FakeCalcom, RateLimitConfig, serve_fake
from devstack.postgres import create_database, drop_database
from devstack.temporal import binary
from models.search_attributes import ALL_KEYS
from models.tables import ApiKey
from store.db import create_engine, session_factory, transaction
from tests.api_fixtures import running_api, serve_api
from tests.calcom_fixtures import sample_event_types
from tests.codec_fixtures import CONVERTER
from tests.factories import Tenant, add_staff, make_tenant

FUZZ_KEY_ID = 900_000_001


@dataclass
class LiveApi:
    url: str
    fuzz_key: str
    tenant: Tenant

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.fuzz_key}"}


async def _serve(
    pg_server: URL, template: str, ready: list[LiveApi], started: threading.Event, stop: threading.Event
) -> None:
    url = await create_database(pg_server, prefix="cbschema", template=template)
    engine = create_engine(url, pool_size=5)
    # The dev server, not the time-skipping one: generated requests wait on Updates, which a time-skipping
    # server would answer only after skipping time.
    env = await WorkflowEnvironment.start_local(
        data_converter=CONVERTER, dev_server_existing_path=binary("temporal"), search_attributes=ALL_KEYS
    )
    try:
        sessions = session_factory(engine)
        # No creation rate limit: every generated request is to reach the validation and the engine.
        # The fake Cal.com answers the slot lookups (the sample event types; others are its 404s).
        fake = FakeCalcom(sample_event_types(), rate_limit=RateLimitConfig(limit=1_000_000))
        async with (
            serve_fake(fake) as calcom_url,
            running_api(
                env.client,
                sessions,
                "schema-fuzz",
                calcom_url=calcom_url,
                api_create_burst=1_000_000,
                api_create_rate_per_minute=1e9,
            ) as api,
        ):
            tenant = await make_tenant(sessions)
            await add_staff(sessions, tenant)
            key = await api.key("admin", tenant, name="schemathesis")
            async with transaction(sessions) as session:
                await session.execute(
                    update(ApiKey).where(ApiKey.name == "schemathesis").values(id=FUZZ_KEY_ID)
                )
            async with serve_api(api.app) as base:
                ready.append(LiveApi(base, key, tenant))
                started.set()
                await asyncio.to_thread(stop.wait)  # set by `live_api` when the tests are done
    finally:
        await env.shutdown()
        await engine.dispose()
        assert url.database is not None
        await drop_database(pg_server, url.database)


@contextmanager
def live_api(pg_server: URL, template: str) -> Iterator[LiveApi]:
    ready: list[LiveApi] = []
    started, stop = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(_serve(pg_server, template, ready, started, stop))
        except BaseException as exc:  # raised again in the test's thread
            failure.append(exc)
        finally:
            started.set()

    thread = threading.Thread(target=run, name="schema-api", daemon=True)
    thread.start()
    try:
        started.wait(timeout=180)
        if failure or not ready:
            raise RuntimeError("the API did not start") from (failure[0] if failure else None)
        yield ready[0]
    finally:
        stop.set()
        thread.join(timeout=60)
        if failure:
            raise failure[0]
