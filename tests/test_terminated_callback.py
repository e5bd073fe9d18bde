"""A callback whose workflow an operator terminated is in a defined state (issue 19, defect 5): a retried
creation with the same Idempotency-Key starts no fresh run beneath the stored row (which would begin at
version 0, its writes skipped and its events dropped); it is refused with 409 saying how to restore the
callback, and so are staff actions. Resetting the workflow, as the answer says, brings the callback back.
A run stopped before it took its first task never held more than its row: a retry starts it again from it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities.opening import CallbackOpener
from activities.preparation import CallbackPreparer
from activities.step_writer import StepWriter
from config import Settings
from models.callbacks import callback_workflow_id
from starter.client import CallbackClient
from starter.opening import open_callback
from store.policies import PolicyResolver
from tests.api_fixtures import ApiEnv, Sessions, callback_body, running_api
from tests.callback_harness import new_callback
from tests.factories import add_staff, make_tenant


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[ApiEnv]:
    async with running_api(time_skipping_env.client, sessions, task_queue) as env:
        yield env


async def test_a_retried_create_after_a_terminate_is_refused_and_starts_nothing(
    api: ApiEnv, sessions: Sessions
) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    worker = api.http(await api.key("staff", tenant, staff_id=staff))
    key = {"Idempotency-Key": "order-4711"}
    created = await worker.post("/v1/callbacks", json=callback_body(tenant), headers=key)
    assert created.status_code == 201
    callback = created.json()
    path = f"/v1/callbacks/{callback['id']}"
    assert (await worker.post(f"{path}/contacted")).status_code == 200
    before = (await worker.get(path)).json()

    handle = api.callbacks.handle(callback_workflow_id(callback["company_id"], uuid.UUID(callback["id"])))
    terminated_run = (await handle.describe()).run_id
    await handle.terminate(reason="operator: stuck")

    retried = await worker.post("/v1/callbacks", json=callback_body(tenant), headers=key)
    assert retried.status_code == 409, retried.text
    problem = retried.json()
    assert problem["type"] == "/problems/callback-stopped"
    assert "its workflow was terminated" in problem["detail"]
    workflow_id = callback_workflow_id(callback["company_id"], uuid.UUID(callback["id"]))
    assert f"temporal workflow reset --workflow-id {workflow_id}" in problem["detail"]
    # Nothing was started: the terminated run is still the latest, and the row is as it was.
    described = await handle.describe()
    assert (described.run_id, described.status) == (terminated_run, WorkflowExecutionStatus.TERMINATED)
    after = (await worker.get(path)).json()
    assert (after["status"], after["version"], after["events"]) == (
        "contacted",
        before["version"],
        before["events"],
    )

    # Staff actions get the same answer (not a 500, not a write into the void).
    action = await worker.post(f"{path}/attempts", json={"outcome": "busy"})
    assert action.status_code == 409
    assert action.json()["type"] == "/problems/callback-stopped"
    # A creation that never stored anything may still be retried: only a stored callback is protected.
    fresh = await worker.post(
        "/v1/callbacks", json=callback_body(tenant), headers={"Idempotency-Key": "order-4712"}
    )
    assert fresh.status_code == 201


async def took_its_first_task(api: ApiEnv, workflow_id: str) -> None:
    """A create answers once its first step is written, before a worker took the workflow's first task."""
    for _ in range(200):
        if (await api.callbacks.run_status(workflow_id))[1]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{workflow_id} never took its first task")


async def test_a_run_stopped_before_its_first_task_is_started_again_from_the_row(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    """Terminated before any worker took its first task, the run never held more than the row it was
    started from: a retry with the key starts it again from the row instead of refusing."""
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    preparer = CallbackPreparer.from_settings(sessions, PolicyResolver(sessions), Settings())
    request = new_callback(tenant, branch_id=tenant.branch_ids[0], service_id=None, customer_name="Erika")
    prepared = await preparer.prepare(request, at=await time_skipping_env.get_current_time())
    no_worker = CallbackClient(time_skipping_env.client, task_queue)
    opener = CallbackOpener(preparer, StepWriter(sessions))
    first = (await open_callback(opener, no_worker, request, prepared, "order-4713")).state
    await no_worker.handle(first.workflow_id).terminate(reason="operator: too early")
    assert await no_worker.run_status(first.workflow_id) == (WorkflowExecutionStatus.TERMINATED, False)

    async with running_api(time_skipping_env.client, sessions, task_queue) as api:
        http = api.http(await api.key("staff", tenant, staff_id=staff))
        retried = await http.post(
            "/v1/callbacks", json=callback_body(tenant), headers={"Idempotency-Key": "order-4713"}
        )
        assert retried.status_code == 200, retried.text
        assert (retried.json()["id"], retried.json()["created"]) == (str(first.id), False)
        status, _ = await api.callbacks.run_status(first.workflow_id)
        assert status == WorkflowExecutionStatus.RUNNING
        contacted = await http.post(f"/v1/callbacks/{first.id}/contacted")
        assert contacted.status_code == 200, contacted.text
        assert contacted.json()["version"] == 2


async def test_the_restore_the_answer_names_brings_the_callback_back(
    dev_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    async with running_api(dev_env.client, sessions, task_queue) as api:
        tenant = await make_tenant(sessions)
        staff = await add_staff(sessions, tenant)
        worker = api.http(await api.key("staff", tenant, staff_id=staff))
        key = {"Idempotency-Key": f"restore-{task_queue}"}
        callback = (await worker.post("/v1/callbacks", json=callback_body(tenant), headers=key)).json()
        path = f"/v1/callbacks/{callback['id']}"
        handle = api.callbacks.handle(callback_workflow_id(callback["company_id"], uuid.UUID(callback["id"])))
        await took_its_first_task(api, handle.id)  # an operator terminates a run that got stuck
        await handle.terminate(reason="operator: stuck")
        assert (
            await worker.post("/v1/callbacks", json=callback_body(tenant), headers=key)
        ).status_code == 409

        # `temporal workflow reset --type LastWorkflowTask`, as the refusal says (here through the API).
        last_task = max(
            [
                event.event_id
                async for event in handle.fetch_history_events()
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
            ]
        )
        await dev_env.client.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace=dev_env.client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=handle.id),
                reason="restore",
                workflow_task_finish_event_id=last_task,
                request_id=handle.id,
            )
        )
        again = await worker.post("/v1/callbacks", json=callback_body(tenant), headers=key)
        assert again.status_code == 200, again.text
        assert again.json()["created"] is False
        contacted = await worker.post(f"{path}/contacted")
        assert contacted.status_code == 200, contacted.text
        detail = (await worker.get(path)).json()
        assert detail["status"] == "contacted"
        assert [e["type"] for e in detail["events"]][-1] == "callback.contacted"
