"""The production runner (wiring/workflow_runner.py): a cached callback workflow keeps no completion it
already sent, and its own copies of the messages it keeps, not sub-messages of whole activations."""

from __future__ import annotations

import gc

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from tests.callback_harness import new_callback, running_worker
from tests.factories import add_staff, make_tenant
from wiring.workflow_runner import _LeanInstance


def _instances(workflow_id: str) -> list[_LeanInstance]:
    return [
        o for o in gc.get_objects() if isinstance(o, _LeanInstance) and o._info.workflow_id == workflow_id
    ]


async def test_a_cached_callback_keeps_no_sent_completion(
    time_skipping_env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    await add_staff(sessions, tenant, services=(0,))
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        state = (await client.create(new_callback(tenant))).state
        [instance] = _instances(state.workflow_id)
        assert instance._current_completion.ByteSize() == 0
        assert instance._memo_detached
        assert set(instance._info.raw_memo) == {"customer_name", "phone"}
        # The workflow goes on as before on its copies.
        assert (await client.state(state.workflow_id)) == state
