"""What the callback workflow tests share: a worker on a given Temporal environment and row readers."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from calcom.client import CalcomClient
from models.callbacks import CreatedCallback, NewCallback, Priority
from models.settings import Settings
from models.tables import CallbackEscalation, CallbackEventRow, CallbackRequest
from starter.client import CallbackClient
from tests.factories import Tenant
from worker import build_worker
from workflows.callback import CallbackWorkflow


class TrackingCallbackClient(CallbackClient):
    """Remembers the callbacks a test created, so they can be ended with the test.

    The time-skipping server never skips past a workflow task nobody polls: a callback left waiting on its
    SLA after its test's worker stopped would stall every later test's clock."""

    def __init__(self, client: Client, task_queue: str) -> None:
        super().__init__(client, task_queue)
        self.created: set[uuid.UUID] = set()

    async def create(self, request: NewCallback, idempotency_key: str | None = None) -> CreatedCallback:
        result = await super().create(request, idempotency_key)
        self.created.add(result.state.id)
        return result

    async def end_all(self) -> None:
        """Terminate the test's callbacks and the notification workflows their events started (ids
        `notify-callback-<id>-<seq>`). Needs the worker still running, to answer the state query."""
        for callback_id in self.created:
            handle = self.handle(callback_id)
            with contextlib.suppress(RPCError):
                state = await handle.query(CallbackWorkflow.state)
                for seq in range(1, (state.event_count if state else 0) + 1):
                    with contextlib.suppress(RPCError):
                        await self.temporal.get_workflow_handle(
                            f"notify-callback-{callback_id}-{seq}"
                        ).terminate("test finished")
            with contextlib.suppress(RPCError):
                await handle.terminate("test finished")


@asynccontextmanager
async def running_worker(
    client: Client, sessions: async_sessionmaker[AsyncSession], task_queue: str, **overrides: Any
) -> AsyncIterator[TrackingCallbackClient]:
    settings = Settings(task_queue=task_queue, **overrides)
    callbacks = TrackingCallbackClient(client, task_queue)
    async with (
        CalcomClient.from_settings(settings) as calcom,
        build_worker(client, settings, sessions, calcom=calcom),
    ):
        try:
            yield callbacks
        finally:
            await callbacks.end_all()


def new_callback(tenant: Tenant, **overrides: Any) -> NewCallback:
    values: dict[str, Any] = {
        "company_id": tenant.company_id,
        "branch_id": tenant.branch_ids[0],
        "service_id": tenant.service_ids[0],
        "customer_name": "Erika Mustermann",
        "phone_number": "+49 30 1234567",
        "priority": Priority.NORMAL,
    }
    values.update(overrides)
    return NewCallback(**values)


async def row(sessions: async_sessionmaker[AsyncSession], callback_id: uuid.UUID) -> CallbackRequest:
    async with sessions() as session:
        found = await session.get(CallbackRequest, callback_id)
        assert found is not None, "no callback_requests row"
        return found


async def escalation_rows(
    sessions: async_sessionmaker[AsyncSession], callback_id: uuid.UUID
) -> list[CallbackEscalation]:
    async with sessions() as session:
        result = await session.scalars(
            select(CallbackEscalation)
            .where(CallbackEscalation.callback_request_id == callback_id)
            .order_by(CallbackEscalation.sequence)
        )
        return list(result)


async def event_rows(
    sessions: async_sessionmaker[AsyncSession], callback_id: uuid.UUID
) -> list[CallbackEventRow]:
    async with sessions() as session:
        result = await session.scalars(
            select(CallbackEventRow)
            .where(CallbackEventRow.callback_request_id == callback_id)
            .order_by(CallbackEventRow.seq)
        )
        return list(result)


async def skip_time(
    env: WorkflowEnvironment, duration: timedelta, step: timedelta = timedelta(hours=1)
) -> None:
    """Skip time on the time-skipping server in steps: one long `sleep` across many timers and child
    workflows can stall in the test server (1.40) until its RPC times out, while short steps do not."""
    remaining = duration
    while remaining > timedelta(0):
        chunk = min(step, remaining)
        await env.sleep(chunk)
        remaining -= chunk
