"""Tenant workflow ids (`c<company>.callback-<id>`, models/workflow_ids.py) and the callbacks that were
started before them: a `callback-<id>` workflow keeps running and is still found — by the API's staff
actions and retried creations, and by the reconciliation sweep — through the row's `workflow_id` (NULL for
rows written before the column existed). Its payloads are under the shared key: only super_admin decodes
them."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import update
from temporalio.api.history.v1 import History
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from api.codec_server import payloads_json
from codec.payload import META_COMPANY_ID, is_encrypted
from models.callbacks import (
    callback_base_id,
    callback_id_of_workflow,
    callback_workflow_id,
    stored_callback_workflow_id,
)
from models.tables import CallbackRequest
from starter.client import callback_id_for
from store.db import transaction
from tests.api_fixtures import Sessions, running_api
from tests.callback_harness import new_callback, row
from tests.factories import make_tenant
from tests.privacy_fixtures import codec_payloads, raw_history_and_description
from tests.test_operations import _sweep


def test_callback_workflow_ids_carry_the_company_and_parse_back() -> None:
    callback_id = uuid.uuid4()
    assert callback_workflow_id(42, callback_id) == f"c42.callback-{callback_id}"
    assert callback_base_id(callback_id) == f"callback-{callback_id}"
    assert stored_callback_workflow_id(callback_id, None) == f"callback-{callback_id}"
    assert stored_callback_workflow_id(callback_id, "c7.callback-x") == "c7.callback-x"
    for workflow_id in (f"c42.callback-{callback_id}", f"callback-{callback_id}"):
        assert callback_id_of_workflow(workflow_id) == callback_id
    for other in ("callbacks-reconcile", "c42.notify-callback-x-1", "callback-not-a-uuid", "c42.callback-"):
        assert callback_id_of_workflow(other) is None


async def test_a_callback_started_under_the_old_id_is_still_found_and_repaired_under_the_new(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    env = time_skipping_env
    tenant = await make_tenant(sessions, staff=1)
    callback_id = callback_id_for(tenant.company_id, "from-before")
    legacy, tenant_id = callback_base_id(callback_id), callback_workflow_id(tenant.company_id, callback_id)
    async with running_api(env.client, sessions, task_queue) as api:
        admin, root = await api.key("admin", tenant), await api.key("super_admin")
        http = api.http(admin)
        # A callback of the previous release: its workflow runs as `callback-<id>`, its row has no
        # workflow_id (written before the column existed).
        await api.callbacks.create(new_callback(tenant), "from-before", workflow_id=legacy)
        async with transaction(sessions) as session:
            await session.execute(
                update(CallbackRequest).where(CallbackRequest.id == callback_id).values(workflow_id=None)
            )

        # The API finds it: a staff action, and the same creation retried with its Idempotency-Key.
        contacted = await http.post(f"/v1/callbacks/{callback_id}/contacted")
        assert contacted.status_code == 200, contacted.text
        assert (await row(sessions, callback_id)).workflow_id == legacy  # its own write records it
        retried = await http.post(
            "/v1/callbacks",
            json={
                "branch_id": tenant.branch_ids[0],
                "service_id": tenant.service_ids[0],
                "customer_name": "Erika Mustermann",
                "phone_number": "+49 30 1234567",
            },
            headers={"Idempotency-Key": "from-before"},
        )
        assert retried.status_code == 200, retried.text
        assert retried.json()["id"] == str(callback_id)
        with pytest.raises(RPCError) as missing:
            await env.client.get_workflow_handle(tenant_id).describe()
        assert missing.value.status == RPCStatusCode.NOT_FOUND

        # Its payloads are under the shared key (no company in its id): super_admin only.
        history, _ = await raw_history_and_description(env.client, legacy)
        payloads = codec_payloads(History(events=history.events))
        assert all(is_encrypted(p) and META_COMPANY_ID not in p.metadata for p in payloads)
        decode = api.http()
        body = payloads_json(payloads)
        refused = await decode.post("/codec/decode", json=body, headers={"Authorization": f"Bearer {admin}"})
        assert refused.status_code == 403
        assert "super_admin" in refused.json()["detail"]
        read = await decode.post("/codec/decode", json=body, headers={"Authorization": f"Bearer {root}"})
        assert read.status_code == 200

        # The sweep leaves the running old workflow alone ...
        with env.auto_time_skipping_disabled():
            report = await _sweep(env, task_queue, "legacy")
        assert (report.started, report.repersisted, report.failed) == (0, 0, 0), report.problems

        # ... and brings a terminated one back under the tenant id, which the row then names.
        await env.client.get_workflow_handle(legacy).terminate("operator mistake")
        with env.auto_time_skipping_disabled():
            report = await _sweep(env, task_queue, "legacy-restart")
        assert (report.started, report.failed) == (1, 0), report.problems
        assert (await row(sessions, callback_id)).workflow_id == tenant_id
        assert (await env.client.get_workflow_handle(tenant_id).describe()).status == (
            WorkflowExecutionStatus.RUNNING
        )
        done = await http.post(f"/v1/callbacks/{callback_id}/complete", json={"notes": "reached"})
        assert done.status_code == 200, done.text
        assert (await row(sessions, callback_id)).status == "completed"
