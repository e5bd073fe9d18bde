"""What ops see in the Temporal UI: search attributes kept current, memo and summary (dev server)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from models.callbacks import Assign, Escalate
from tests.callback_harness import new_callback, running_worker
from tests.factories import add_staff, make_tenant, set_callback_policy

pytestmark = pytest.mark.devserver


async def _ids(env: WorkflowEnvironment, query: str, expected: int) -> set[str]:
    """Visibility is eventually consistent: poll (bounded) until the expected count shows up."""
    found: set[str] = set()
    for _ in range(100):
        found = {wf.id async for wf in env.client.list_workflows(query)}
        if len(found) == expected:
            return found
        await asyncio.sleep(0.1)
    return found


async def test_search_attributes_find_exactly_the_right_callbacks(
    dev_env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    await set_callback_policy(sessions, tenant, {"auto_assign": False})
    staff = await add_staff(sessions, tenant)
    other = await make_tenant(sessions, name="Other", staff=1)  # auto-assigns: assigned, other company
    async with running_worker(dev_env.client, sessions, task_queue) as client:
        # Workflow ids: `c<company>.callback-<id>`, the payload codec's company (models/workflow_ids.py).
        assigned = [(await client.create(new_callback(tenant))).state.workflow_id for _ in range(3)]
        pending = (await client.create(new_callback(tenant))).state.workflow_id
        foreign = (await client.create(new_callback(other))).state.workflow_id
        for workflow_id in assigned:
            await client.act(workflow_id, Assign(staff_id=staff))
        escalated = assigned[0]
        await client.act(escalated, Escalate(reason="customer upset"))

        scope = f'TaskQueue = "{task_queue}"'
        query = f'{scope} AND CallbackStatus = "assigned" AND CompanyId = {tenant.company_id}'
        assert await _ids(dev_env, query, 3) == set(assigned)
        assert all(wid.startswith(f"c{tenant.company_id}.callback-") for wid in assigned)
        pending_query = f'{scope} AND CallbackStatus = "pending"'
        assert await _ids(dev_env, pending_query, 1) == {pending}
        escalated_query = f"{scope} AND EscalationCount = 1"
        assert await _ids(dev_env, escalated_query, 1) == {escalated}
        staff_query = f'{scope} AND AssignedStaffId = "{staff}"'
        # Nobody else works there, so the escalated callback stays with the same staff member.
        assert await _ids(dev_env, staff_query, 3) == set(assigned)
        assert foreign not in await _ids(dev_env, query, 3)

        description = await client.handle(pending).describe()
        memo = await description.memo()
        assert memo == {"customer_name": "Erika Mustermann", "phone": "+49 *******67"}
        assert await description.static_summary() == "Callback for Erika Mustermann (normal)"
