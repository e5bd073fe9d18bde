"""The callback lifecycle on Temporal's time-skipping server against real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from models.callbacks import CallbackStatus
from tests.callback_harness import event_rows, new_callback, row, running_worker
from tests.factories import add_staff, make_tenant

Sessions = async_sessionmaker[AsyncSession]


async def test_create_assigns_and_persists_before_returning(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant, services=(0,))
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        result = await client.create(new_callback(tenant))
        assert result.created
        state = result.state
        assert state.status == CallbackStatus.ASSIGNED
        assert state.assigned_to == staff
        assert state.expires_at - state.created_at == timedelta(hours=24)
        stored = await row(sessions, state.id)
        assert stored.status == "assigned"
        assert stored.assigned_to == staff
        assert stored.phone_number == "+49301234567"
        assert [e.type for e in await event_rows(sessions, state.id)] == [
            "callback.created",
            "callback.assigned",
        ]
