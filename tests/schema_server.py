"""The real API on loopback in a process of its own, for Schemathesis (tests/test_api_schema.py).

Schemathesis calls synchronously (`requests`) and compiles generators while it runs; the app, its database
engine, the Temporal dev server, the in-process worker and the fake Cal.com run in a child process, so
neither blocks or races the other. The child prints one JSON line (its URL and an admin key) when it
serves, and stops when its standard input closes (also when the test process dies).

`fuzz_key` is an admin key of a fresh tenant. Its id is moved far past the ids Schemathesis generates, so
a generated `DELETE /v1/keys/{id}` never names it (a key cannot revoke itself anyway: 409).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.engine import URL, make_url
from temporalio.testing import WorkflowEnvironment

from devstack.calcom_fake import FakeCalcom, RateLimitConfig, serve_fake
from devstack.postgres import create_database, drop_database
from devstack.temporal import binary
from models.search_attributes import ALL_KEYS
from models.tables import ApiKey
from store.db import create_engine, session_factory, transaction
from tests.api_fixtures import running_api, serve_api
from tests.calcom_fixtures import sample_event_types
from tests.codec_fixtures import CONVERTER, use_test_keys
from tests.factories import add_staff, make_tenant

FUZZ_KEY_ID = 900_000_001
ROOT = Path(__file__).parent.parent
READY = '{"url"'


@dataclass
class LiveApi:
    url: str
    fuzz_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.fuzz_key}"}


async def _serve(pg_server: URL, template: str) -> None:
    url = await create_database(pg_server, prefix="cbschema", template=template)
    engine = create_engine(url, pool_size=5)
    # The dev server, not the time-skipping one: generated requests wait on Updates, which a time-skipping
    # server would answer only after skipping time.
    env = await WorkflowEnvironment.start_local(
        data_converter=CONVERTER, dev_server_existing_path=binary("temporal"), search_attributes=ALL_KEYS
    )
    try:
        sessions = session_factory(engine)
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
                print(json.dumps({"url": base, "key": key}), flush=True)
                await asyncio.to_thread(sys.stdin.read)  # until the test closes our standard input
    finally:
        await env.shutdown()
        await engine.dispose()
        assert url.database is not None
        await drop_database(pg_server, url.database)


@contextmanager
def live_api(pg_server: URL, template: str) -> Iterator[LiveApi]:
    server_url = pg_server.render_as_string(hide_password=False)
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.schema_server", server_url, template],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        # The Temporal dev server the child starts writes to the same stdout: skip its lines.
        for line in child.stdout:
            if line.startswith(READY):
                started = json.loads(line)
                break
        else:
            raise RuntimeError(f"the API process ended before serving (exit code {child.wait()})")
        yield LiveApi(started["url"], started["key"])
    finally:
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.close()
        child.stdout.close()
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()  # our own child, by its handle
            child.wait()


if __name__ == "__main__":
    use_test_keys()
    asyncio.run(_serve(make_url(sys.argv[1]), sys.argv[2]))
