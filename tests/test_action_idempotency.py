"""Staff actions are idempotent and every call into Temporal has a deadline (issue 19, defect 3).

An action sent with an Idempotency-Key is an Update whose id derives from the key: a retry answers the first
call's outcome and applies nothing twice (also after the action finished the callback). A slow Update
answers 504 and is applied later; one Temporal refuses (too many in flight) answers 429; an unreachable
Temporal 503 — each with Retry-After, never a generic 500. Against PostgreSQL and real Temporal servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select
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
from models.tables import CallbackRequest
from starter.client import CallbackClient, callback_id_for
from starter.deadlines import TemporalBusy, TemporalTimeout, api_retry_config, bounded
from tests.api_fixtures import ApiEnv, Sessions, running_api, serve_api
from tests.codec_fixtures import CONVERTER
from tests.console_fixtures import http_sign_in
from tests.factories import Tenant, add_staff, make_tenant
from tests.wedged_workflow import Wedged


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[ApiEnv]:
    async with running_api(
        time_skipping_env.client, sessions, task_queue, api_temporal_timeout_seconds=2.0
    ) as env:
        yield env


def body(tenant: Tenant) -> dict[str, Any]:
    return {"branch_id": tenant.branch_ids[0], "customer_name": "Erika", "phone_number": "+49 30 1234567"}


@contextlib.asynccontextmanager
async def row_locked(sessions: Sessions, callback_id: str) -> AsyncIterator[None]:
    """Hold the callback's row lock: the workflow's next write waits, so its Update stays in flight."""
    async with sessions() as session, session.begin():
        await session.execute(
            select(CallbackRequest.id).where(CallbackRequest.id == UUID(callback_id)).with_for_update()
        )
        yield


async def eventually(client: Any, path: str, check: Any) -> dict[str, Any]:
    for _ in range(200):
        found: dict[str, Any] = (await client.get(path)).json()
        if check(found):
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"never true: {found}")


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    problem: dict[str, Any] = response.json()
    assert problem["type"] == f"/problems/{slug}"
    return problem


async def test_a_retried_action_is_applied_once(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    worker = api.http(await api.key("staff", tenant, staff_id=staff))
    created = (await worker.post("/v1/callbacks", json=body(tenant))).json()
    path = f"/v1/callbacks/{created['id']}"

    # Three sends of one failed attempt (a client retrying): one attempt, and so no false escalation
    # for "3 failed attempts".
    first = await worker.post(
        f"{path}/attempts", json={"outcome": "busy"}, headers={"Idempotency-Key": "a-1"}
    )
    assert first.status_code == 200, first.text
    again = await asyncio.gather(
        *(
            worker.post(f"{path}/attempts", json={"outcome": "busy"}, headers={"Idempotency-Key": "a-1"})
            for _ in range(2)
        )
    )
    assert [r.status_code for r in again] == [200, 200]
    detail = (await worker.get(path)).json()
    assert (detail["contact_attempts"], detail["escalation_count"]) == (1, 0)
    # Another key is another attempt; two sends of it at once are still one.
    pair = await asyncio.gather(
        *(
            worker.post(f"{path}/attempts", json={"outcome": "busy"}, headers={"Idempotency-Key": "a-2"})
            for _ in range(2)
        )
    )
    assert {r.json()["contact_attempts"] for r in pair} == {2}

    # The console's form carries a nonce per rendering: the same form posted twice is one action.
    browser = api.http()
    await http_sign_in(browser, await api.key("staff", tenant, staff_id=staff))
    page = await browser.get(f"/console/callbacks/{created['id']}")
    form = {
        "csrf": _field(page.text, "csrf"),
        "submission": _field(page.text, "submission"),
        "outcome": "no_answer",
    }
    for _ in range(2):
        posted = await browser.post(f"/console/callbacks/{created['id']}/attempt", data=form)
        assert posted.status_code == 303, posted.text
    assert (await worker.get(path)).json()["contact_attempts"] == 3

    # A retried `complete` after it closed the callback (its workflow has finished) answers the outcome;
    # a new `complete` is refused with the state named.
    done = await worker.post(f"{path}/complete", json={"notes": "booked"}, headers={"Idempotency-Key": "c-1"})
    assert done.json()["status"] == "completed"
    retried = await worker.post(
        f"{path}/complete", json={"notes": "booked"}, headers={"Idempotency-Key": "c-1"}
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "completed"
    fresh = await worker.post(f"{path}/complete", json={"notes": "x"}, headers={"Idempotency-Key": "c-2"})
    assert fresh.status_code == 409
    assert "completed" in fresh.json()["detail"]
    events = [e["type"] for e in (await worker.get(path)).json()["events"]]
    assert events.count("callback.attempt_failed") == 3
    assert events.count("callback.completed") == 1


def _field(html: str, name: str) -> str:
    import re

    found = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert found is not None, name
    return found.group(1)


async def test_a_slow_update_answers_504_and_a_retry_with_the_key_is_safe(
    api: ApiEnv, sessions: Sessions
) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    worker = api.http(await api.key("staff", tenant, staff_id=staff))
    created = (await worker.post("/v1/callbacks", json=body(tenant))).json()
    path = f"/v1/callbacks/{created['id']}"
    key = {"Idempotency-Key": "slow-1"}

    async with row_locked(sessions, created["id"]):
        slow = await worker.post(f"{path}/attempts", json={"outcome": "busy"}, headers=key)
        problem = assert_problem(slow, 504, "engine-timeout")
        assert "may still be applied" in problem["detail"]
        assert "same Idempotency-Key is safe" in problem["detail"]
    # Accepted before the deadline, the Update is applied once the write gets through.
    await eventually(worker, path, lambda found: found["contact_attempts"] == 1)
    retried = await worker.post(f"{path}/attempts", json={"outcome": "busy"}, headers=key)
    assert retried.status_code == 200, retried.text
    assert retried.json()["contact_attempts"] == 1


async def test_the_cli_sends_its_idempotency_key(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    key = await api.key("staff", tenant, staff_id=staff)
    created = (await api.http(key).post("/v1/callbacks", json=body(tenant))).json()
    async with serve_api(api.app) as url:
        env = {**os.environ, "CALLBACKS_API_URL": url, "CALLBACKS_API_KEY": key}
        for _ in range(2):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-m", "cli.main", "callbacks", "attempt", created["id"], "--outcome", "voicemail"),
                *("--idempotency-key", "cli-attempt-1", "--json"),
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await process.communicate()
            assert process.returncode == 0, err.decode()
    assert (await api.http(key).get(f"/v1/callbacks/{created['id']}")).json()["contact_attempts"] == 1


async def test_a_reused_key_with_another_request_is_refused(api: ApiEnv, sessions: Sessions) -> None:
    """Another action or other arguments under a used Idempotency-Key answer 422 on the header and apply
    nothing, never the first request's outcome; the first request itself still answers its outcome."""
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    worker = api.http(await api.key("staff", tenant, staff_id=staff))
    created = (await worker.post("/v1/callbacks", json=body(tenant))).json()
    path = f"/v1/callbacks/{created['id']}"
    key = {"Idempotency-Key": "r-1"}
    first = await worker.post(f"{path}/attempts", json={"outcome": "busy"}, headers=key)
    assert first.status_code == 200, first.text

    for action, arguments in (("attempts", {"outcome": "voicemail"}), ("priority", {"priority": "urgent"})):
        reused = await worker.post(f"{path}/{action}", json=arguments, headers=key)
        assert reused.status_code == 422, reused.text
        assert reused.json()["type"] == "/problems/idempotency-key-reused"
        assert [e["field"] for e in reused.json()["errors"]] == ["Idempotency-Key"]
        assert "different request" in reused.json()["errors"][0]["message"]
    again = await worker.post(f"{path}/attempts", json={"outcome": "busy"}, headers=key)
    assert (again.status_code, again.json()["contact_attempts"]) == (200, 1)
    detail = (await worker.get(path)).json()
    assert (detail["contact_attempts"], detail["priority"]) == (1, "normal")

    # Two different requests under one new key at once: one is applied, the other refused.
    pair = await asyncio.gather(
        *(
            worker.post(f"{path}/attempts", json={"outcome": outcome}, headers={"Idempotency-Key": "r-2"})
            for outcome in ("busy", "no_answer")
        )
    )
    assert sorted(r.status_code for r in pair) == [200, 422], [r.text for r in pair]
    assert (await worker.get(path)).json()["contact_attempts"] == 2

    # Once the action finished the callback (its workflow has ended), still 422, not the state's 409.
    done_key = {"Idempotency-Key": "r-3"}
    done = await worker.post(f"{path}/complete", json={"notes": "booked"}, headers=done_key)
    assert done.json()["status"] == "completed"
    for action, arguments in (("complete", {"notes": "something else"}), ("cancel", {})):
        late = await worker.post(f"{path}/{action}", json=arguments, headers=done_key)
        assert late.status_code == 422, late.text
        assert late.json()["type"] == "/problems/idempotency-key-reused"
    retried = await worker.post(f"{path}/complete", json={"notes": "booked"}, headers=done_key)
    assert (retried.status_code, retried.json()["status"]) == (200, "completed")

    # Creation: a reused key with another body is refused on the header too.
    create_key = {"Idempotency-Key": "r-create"}
    assert (await worker.post("/v1/callbacks", json=body(tenant), headers=create_key)).status_code == 201
    other = await worker.post(
        "/v1/callbacks", json={**body(tenant), "customer_name": "Someone Else"}, headers=create_key
    )
    assert other.status_code == 422, other.text
    assert [e["field"] for e in other.json()["errors"]] == ["Idempotency-Key"]


async def test_the_cli_names_a_reused_key(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    key = await api.key("staff", tenant, staff_id=staff)
    created = (await api.http(key).post("/v1/callbacks", json=body(tenant))).json()
    async with serve_api(api.app) as url:
        env = {**os.environ, "CALLBACKS_API_URL": url, "CALLBACKS_API_KEY": key}
        outcomes = []
        for outcome in ("voicemail", "busy"):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-m", "cli.main", "callbacks", "attempt", created["id"], "--outcome", outcome),
                *("--idempotency-key", "cli-attempt-1", "--json"),
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await process.communicate()
            outcomes.append((process.returncode, err.decode()))
    assert outcomes[0][0] == 0, outcomes[0][1]
    returncode, message = outcomes[1]
    assert returncode != 0
    assert "Idempotency-Key reused (422)" in message
    assert "Idempotency-Key: this Idempotency-Key was already used for a different request" in message
    assert (await api.http(key).get(f"/v1/callbacks/{created['id']}")).json()["contact_attempts"] == 1


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
    created = (await admin.post("/v1/callbacks", json=body(tenant))).json()
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
    create = await admin.post("/v1/callbacks", json=body(tenant))
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
        created = (await admin.post("/v1/callbacks", json=body(tenant))).json()
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
        refused = await admin.post("/v1/callbacks", json=body(tenant), headers=key)
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
            retried = await admin.post("/v1/callbacks", json=body(tenant), headers=key)
            if retried.status_code not in (503, 504):
                break
            await asyncio.sleep(0.5)
        assert retried.status_code == 201, retried.text
        assert await api.callback_count() == 2
        # Its workflow runs from the stored first step: the SLA clock of the first attempt.
        stored = await api.callbacks.state(pending_id)
        assert stored is not None
        assert stored.expires_at == datetime.fromisoformat(retried.json()["expires_at"])
