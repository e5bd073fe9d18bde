"""Temporal refusing or unreachable reaches an API caller as a defined answer with Retry-After, never a
generic 500 (issue 19, defect 3): an Update Temporal refuses (too many in flight) answers 429, and an
unreachable Temporal (connections refused or swallowed) 503, with nothing applied; a create whose start
failed after its first step was written goes through on the retry, with the first attempt's SLA clock.
Against PostgreSQL and real Temporal servers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowUpdateInput,
    StartWorkflowUpdateWithStartInput,
    WorkflowUpdateStage,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.callbacks import callback_workflow_id
from starter.client import CallbackClient, callback_id_for
from starter.deadlines import TemporalBusy, TemporalTimeout, api_retry_config, bounded
from tests.api_fixtures import ApiEnv, Sessions, assert_problem, callback_body, running_api
from tests.codec_fixtures import CONVERTER
from tests.factories import add_staff, make_tenant
from tests.wedged_workflow import Wedged


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[ApiEnv]:
    async with running_api(
        time_skipping_env.client, sessions, task_queue, api_temporal_timeout_seconds=2.0
    ) as env:
        yield env


class RefuseUpdates(Interceptor):
    """Temporal refusing every Update as the dev server does when too many are in flight."""

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        class Refusing(OutboundInterceptor):
            async def start_workflow_update(self, input: StartWorkflowUpdateInput) -> Any:
                raise RPCError(IN_FLIGHT_LIMIT, RPCStatusCode.RESOURCE_EXHAUSTED, b"")

            async def start_update_with_start_workflow(self, input: StartWorkflowUpdateWithStartInput) -> Any:
                raise RPCError(IN_FLIGHT_LIMIT, RPCStatusCode.RESOURCE_EXHAUSTED, b"")

        return Refusing(next)


IN_FLIGHT_LIMIT = "limit on number of concurrent in-flight updates has been reached (10)"


async def test_updates_temporal_refuses_answer_429(api: ApiEnv, sessions: Sessions, task_queue: str) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    admin = api.http(await api.key("admin", tenant))
    created = (await admin.post("/v1/callbacks", json=callback_body(tenant))).json()
    path = f"/v1/callbacks/{created['id']}"
    temporal = api.deps.callbacks.temporal
    refusing = Client(**{**temporal.config(), "interceptors": [RefuseUpdates()]})
    api.deps.callbacks = CallbackClient(refusing, task_queue, timeout=2.0)

    refused = await admin.post(
        f"{path}/priority", json={"priority": "urgent"}, headers={"Idempotency-Key": "p"}
    )
    problem = assert_problem(refused, 429, "engine-busy")
    assert "was not applied" in problem["detail"]
    assert IN_FLIGHT_LIMIT in problem["detail"]
    # A create sends no Update (the API writes the first step, then starts the workflow): it goes through.
    create = await admin.post("/v1/callbacks", json=callback_body(tenant))
    assert create.status_code == 201, create.text
    bulk = await admin.post(
        "/v1/callbacks/bulk/assign", json={"ids": [created["id"]], "staff_id": str(staff)}
    )
    assert bulk.json()["results"][0]["error"]["status"] == 429
    assert (await admin.get(path)).json()["priority"] == "normal"


async def test_the_in_flight_limit_reaches_an_api_caller_as_a_refusal(
    dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Against the dev server: its limit of 10 Updates in flight per workflow, reached by a client with the
    API's retry settings: `TemporalBusy` well within a deadline, not a timeout (the SDK's default retries
    would hide the refusal until any deadline of ours ran out)."""
    target = dev_env.client.service_client.config.target_host
    api_client = await Client.connect(target, data_converter=CONVERTER, retry_config=api_retry_config(3.0))
    async with Worker(dev_env.client, task_queue=task_queue, workflows=[Wedged]):
        handle = await dev_env.client.start_workflow(
            Wedged.run, id=f"wedged-{task_queue}", task_queue=task_queue
        )
        for n in range(10):
            await handle.start_update(Wedged.act, id=f"u-{n}", wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        with pytest.raises(TemporalBusy, match="in-flight updates"):
            await bounded(api_client, 8.0, api_client.get_workflow_handle(handle.id).execute_update("act"))
        # An Update id already in flight is not a new Update: it waits for the same outcome.
        with pytest.raises(TemporalTimeout):
            await bounded(
                api_client, 0.5, api_client.get_workflow_handle(handle.id).execute_update("act", id="u-0")
            )
        await handle.signal(Wedged.release)
        await handle.result()


class Proxy:
    """A TCP proxy in front of the Temporal server that can start refusing or swallowing connections."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.mode = "pass"
        self.writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def __aenter__(self) -> Proxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cut("refuse")
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        if self.mode != "pass":
            if self.mode == "refuse":
                writer.close()
            return  # "hang": accepted, never answered
        upstream_reader, upstream = await asyncio.open_connection(*self.target)
        self.writers.append(upstream)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await source.read(65536):
                    if self.mode != "pass":
                        break
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream), pipe(upstream_reader, writer))

    def cut(self, mode: str) -> None:
        self.mode = mode
        for writer in self.writers:
            writer.close()
        self.writers.clear()


@pytest.mark.parametrize("failure", ["refuse", "hang"])
async def test_an_unreachable_temporal_answers_503(
    dev_env: WorkflowEnvironment, sessions: Sessions, task_queue: str, failure: str
) -> None:
    host, port = dev_env.client.service_client.config.target_host.rsplit(":", 1)
    async with (
        running_api(dev_env.client, sessions, task_queue) as api,
        Proxy((host, int(port))) as proxy,
    ):
        tenant = await make_tenant(sessions)
        admin = api.http(await api.key("admin", tenant))
        created = (await admin.post("/v1/callbacks", json=callback_body(tenant))).json()
        through = await Client.connect(
            f"127.0.0.1:{proxy.port}",
            namespace="default",
            data_converter=CONVERTER,
            retry_config=api_retry_config(2.0),
        )
        api.deps.callbacks = CallbackClient(through, task_queue, timeout=2.0)
        assert (await admin.get("/readyz")).status_code == 200

        proxy.cut(failure)
        # Unique per test: the dev server outlives the test, and every test's company has the same id.
        key = {"Idempotency-Key": f"k-{task_queue}"}
        refused = await admin.post("/v1/callbacks", json=callback_body(tenant), headers=key)
        assert "try again in" in assert_problem(refused, 503, "engine-unavailable")["detail"]
        action = await admin.post(f"/v1/callbacks/{created['id']}/priority", json={"priority": "urgent"})
        assert_problem(action, 503, "engine-unavailable")
        # The first step was written before the start failed: the callback "may still be created" (by the
        # reconciliation sweep, or by the retry below), and its workflow was never started.
        assert await api.callback_count() == 2
        pending = callback_id_for(tenant.company_id, key["Idempotency-Key"])
        pending_id = callback_workflow_id(tenant.company_id, pending)
        assert await api.callbacks.run_status(pending_id) == (None, False)

        # Back: the same request goes through (a client follows Retry-After until it does).
        proxy.cut("pass")
        for _ in range(20):
            retried = await admin.post("/v1/callbacks", json=callback_body(tenant), headers=key)
            if retried.status_code not in (503, 504):
                break
            await asyncio.sleep(0.5)
        assert retried.status_code == 201, retried.text
        assert await api.callback_count() == 2
        # Its workflow runs from the stored first step: the SLA clock of the first attempt.
        stored = await api.callbacks.state(pending_id)
        assert stored is not None
        assert stored.expires_at == datetime.fromisoformat(retried.json()["expires_at"])
