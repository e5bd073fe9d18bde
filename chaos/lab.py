"""Where a scenario runs: the run's shared servers (`Stack`) and one scenario's own world (`Lab`).

The stack starts what the scenarios share, once and only when first needed: a PostgreSQL server (embedded,
or DATABASE_URL's, where only throwaway databases are made) with a migrated template database, and the
Temporal dev server. Each scenario gets a `Lab`: a fresh copy of the template database, a task queue of
its own, a Temporal client with the run's payload key, and helpers that start the production worker and
API as processes and the fakes as HTTP servers. Everything a lab starts is stopped when the scenario
ends, whether it held, failed or raised; a scenario that stops or kills a server gets one of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from chaos.scenario import Scenario
from chaos.servers import DevServer
from devstack.calcom_fake import FakeCalcom, serve_fake
from devstack.harness import (
    codec_env,
    converter_for,
    embedded_postgres,
    free_port,
    postgres_server,
    temporal_dev_server,
    throwaway_database,
)
from devstack.postgres import EmbeddedPostgres, create_database
from devstack.processes import api_process, child_process, engine_env, worker_command
from devstack.temporal import wait_for_server
from starter.appointments import AppointmentClient
from starter.client import CallbackClient
from store.db import create_engine, session_factory
from store.migrate import upgrade_async
from telemetry.asgi_server import serve_asgi

# Nothing listens on port 9 (discard) of the loopback: an outside service a scenario does not use.
NOWHERE = "http://127.0.0.1:9"

# What every worker and API child gets unless the scenario says otherwise: no quiet hours (a run at
# night must not hold mails until morning), quiet logs, unreachable outside services.
CHILD_DEFAULTS = {
    "CALCOM_BASE_URL": NOWHERE,
    "CALCOM_API_KEY": "cal_chaos_unused",
    "SMTP_URL": "smtp://127.0.0.1:9",
    "CALLBACKS_NOTIFY_SMS_GATEWAY_URL": f"{NOWHERE}/messages",
    "CALLBACKS_NOTIFY_QUIET_HOURS_START": "00:00",
    "CALLBACKS_NOTIFY_QUIET_HOURS_END": "00:00",
    "CALLBACKS_LOG_LEVEL": "WARNING",
    "CALLBACKS_API_CREATE_RATE_PER_MINUTE": "1000000",
    "CALLBACKS_API_CREATE_BURST": "1000000",
    "CALLBACKS_WORKER_GRACEFUL_SHUTDOWN_SECONDS": "2",
}


def render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


class Stack:
    """The servers the scenarios of one run share, started on first use and stopped by `aclose`."""

    def __init__(self, folder: Path, codec_keys: str) -> None:
        self.folder = folder
        self.codec_keys = codec_keys
        self._exit = contextlib.AsyncExitStack()
        self._postgres: tuple[URL, str] | None = None
        self._temporal: str | None = None

    async def postgres(self) -> tuple[URL, str]:
        """The PostgreSQL server and the name of its migrated template database."""
        if self._postgres is None:
            server = await self._exit.enter_async_context(postgres_server("chaos"))
            template = await self._exit.enter_async_context(throwaway_database(server, "chaos_template"))
            await upgrade_async(render(template))
            assert template.database is not None
            self._postgres = (server, template.database)
        return self._postgres

    async def temporal(self) -> str:
        if self._temporal is None:
            self._temporal = await self._exit.enter_async_context(
                temporal_dev_server(log=self.folder / "temporal.log")
            )
        return self._temporal

    async def aclose(self) -> None:
        await self._exit.aclose()


@dataclass
class Lab:
    name: str
    folder: Path
    task_queue: str
    codec_keys: str
    database_url: str
    sessions: async_sessionmaker[AsyncSession]
    temporal_address: str
    client: Client
    exit: contextlib.AsyncExitStack
    postgres: EmbeddedPostgres | None = None  # the lab's own server (own_postgres)
    temporal_server: DevServer | None = None  # the lab's own dev server (own_temporal)
    _children: int = field(default=0)

    @property
    def callbacks(self) -> CallbackClient:
        return CallbackClient(self.client, self.task_queue)

    @property
    def appointments(self) -> AppointmentClient:
        return AppointmentClient(self.client, self.task_queue)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return engine_env(
            database_url=self.database_url,
            temporal_address=self.temporal_address,
            task_queue=self.task_queue,
            extra={**CHILD_DEFAULTS, **codec_env(self.codec_keys), **(extra or {})},
        )

    def _log(self, kind: str) -> Path:
        self._children += 1
        return self.folder / f"{kind}-{self._children}.log"

    async def start_worker(
        self, extra: Mapping[str, str] | None = None, *, ready: bool = True
    ) -> subprocess.Popen[bytes]:
        """`python -m worker` for this lab's task queue, killed when the lab closes; with `ready`, returns
        once it polls the task queue."""
        process = self.exit.enter_context(
            child_process(worker_command(), self.env(extra), log=self._log("worker"))
        )
        if ready:
            await self.until_polling(process)
        return process

    async def until_polling(self, process: subprocess.Popen[bytes], within_seconds: float = 90) -> None:
        """Wait until the worker `process` polls this lab's task queue (Temporal lists it as a poller)."""
        prefix = f"{process.pid}@"
        deadline = asyncio.get_running_loop().time() + within_seconds
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the worker exited with {process.returncode} before it polled")
            with contextlib.suppress(Exception):
                described = await self.client.workflow_service.describe_task_queue(
                    DescribeTaskQueueRequest(
                        namespace=self.client.namespace,
                        task_queue=TaskQueue(name=self.task_queue),
                        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                    )
                )
                if any(poller.identity.startswith(prefix) for poller in described.pollers):
                    return
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"the worker {process.pid} did not poll within {within_seconds:g} s")
            await asyncio.sleep(0.2)

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        """SIGKILL, as the kernel's OOM killer or a lost machine would."""
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    async def start_api(self, extra: Mapping[str, str] | None = None) -> str:
        """The API (`callbacks api`, wiring.web.create_app) as a process; returns its base URL."""
        return await self.exit.enter_async_context(
            api_process(self.env(extra), free_port(), log=self._log("api"), stop="kill")
        )

    async def serve_calcom(self, fake: FakeCalcom) -> str:
        """The fake Cal.com as a real HTTP server on loopback, in this process."""
        return await self.exit.enter_async_context(serve_fake(fake))

    async def serve(self, app: Any, port: int = 0) -> str:
        return await self.exit.enter_async_context(serve_asgi(app, port=port))


# Every scenario's database starts its company ids here, so that on the shared Temporal server the
# tenant-scoped workflow ids of one scenario (`c<company>.appointment-<id>`, …) never meet those of an
# earlier one (an appointment's workflow idles for minutes after its last request).
_COMPANY_IDS = itertools.count(start=1000, step=1000)


async def _own_company_ids(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("SELECT setval('companies_id_seq', :start, false)"), {"start": next(_COMPANY_IDS)}
        )


@contextlib.asynccontextmanager
async def open_lab(stack: Stack, scenario: Scenario) -> AsyncIterator[Lab]:
    """The scenario's world, torn down in reverse: processes, servers of this process, the database
    connections, the database (or the lab's own PostgreSQL), the lab's own Temporal server."""
    folder = stack.folder / scenario.name
    folder.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as exit:
        own_pg: EmbeddedPostgres | None = None
        if scenario.own_postgres:
            own_pg = await exit.enter_async_context(embedded_postgres("chaos"))
            url = await create_database(own_pg.url, prefix="chaos")
            await upgrade_async(render(url))
        else:
            server, template = await stack.postgres()
            url = await exit.enter_async_context(throwaway_database(server, "chaos", template=template))
        dev: DevServer | None = None
        if scenario.own_temporal:
            dev = DevServer(free_port(), folder / "temporal.db", folder / "temporal.log")
            exit.push_async_callback(dev.stop)
            address = await dev.start()
        else:
            address = await stack.temporal()
        engine = create_engine(url, pool_size=10)
        exit.push_async_callback(engine.dispose)
        if dev is None:
            await _own_company_ids(engine)
        client = await wait_for_server(address, data_converter=converter_for(stack.codec_keys))
        yield Lab(
            name=scenario.name,
            folder=folder,
            task_queue=f"chaos-{scenario.name}-{uuid.uuid4().hex[:6]}",
            codec_keys=stack.codec_keys,
            database_url=render(url),
            sessions=session_factory(engine),
            temporal_address=address,
            client=client,
            exit=exit,
            postgres=own_pg,
            temporal_server=dev,
        )
